"""Trainer: learning, evaluation, early stopping, schedules, TBPTT mode, logs, and exact resumption."""

from __future__ import annotations

import csv

import pytest
import torch
from torch.utils.data import DataLoader

from rnnkit import HeadConfig, InputConfig, ManyToMany, ManyToManyConfig, ManyToOne, ManyToOneConfig, RNNConfig
from rnnkit.data.batching import BucketBatchSampler, StreamBatches, pad_collate
from rnnkit.training.distributed import unwrap
from rnnkit.training.trainer import Callback, Trainer, TrainerConfig


def regression_data(n=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(3, 12, (n,), generator=g)
    seqs = [torch.randn(int(n_i), 2, generator=g) for n_i in lengths]
    return [(s, s[:, 0].sum().view(1, 1)) for s in seqs]  # target (horizon 1, 1 output): sum of the first feature


def loader(data, seed=0, batch=16):
    sampler = BucketBatchSampler([len(x) for x, _ in data], batch, seed=seed, pool_batches=2)
    return DataLoader(data, batch_sampler=sampler, collate_fn=pad_collate)


def model(dropout=0.0):
    cfg = ManyToOneConfig(
        InputConfig(input_size=2, dropout=dropout),
        RNNConfig(cell="gru", hidden_size=16),
        head=HeadConfig(kind="regression"),
    )
    return ManyToOne(cfg)


def loss_fn(m, batch):
    x, lengths, y = batch
    return unwrap(m).loss(m(x, lengths), y)


def test_fit_learns_and_writes_logs_and_checkpoints(tmp_path):
    data = regression_data()
    trainer = Trainer(
        model(),
        TrainerConfig(epochs=8, lr=1e-2, log_every=1, progress=False),
        loss_fn,
        out_dir=tmp_path,
        run_config={"task": "test"},
    )
    state = trainer.fit(loader(data), loader(regression_data(32, seed=1)))
    assert state.epoch == 8 and state.step == 8 * len(loader(data))
    assert state.evals[-1]["val_loss"] < 0.3 * state.evals[0]["val_loss"]
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert {"step", "train_loss", "lr", "items_per_s", "val_loss"} <= set(rows[0]) | set(rows[-1])
    assert (tmp_path / "checkpoint" / "trainer_state.json").is_file() and (
        tmp_path / "best" / "model.safetensors"
    ).is_file()


def test_same_seed_same_losses():
    runs = []
    for _ in range(2):
        torch.manual_seed(3)  # the model's initial weights
        t = Trainer(model(dropout=0.2), TrainerConfig(epochs=2, progress=False, seed=3), loss_fn)
        runs.append(t.fit(loader(regression_data())).train_loss)
    assert runs[0] == runs[1]


def test_resume_after_interruption_continues_exactly(tmp_path):
    cfg = TrainerConfig(epochs=3, lr=5e-3, schedule="cosine", warmup_steps=3, progress=False, seed=1)
    data, val = regression_data(), regression_data(32, seed=1)
    torch.manual_seed(0)
    full = Trainer(model(dropout=0.3), cfg, loss_fn).fit(loader(data), loader(val))

    class StopAt(Callback):
        def on_step_end(self, trainer, step, loss):
            if step == 9:  # mid-way through the second epoch
                trainer.stop()

    torch.manual_seed(0)
    first = Trainer(model(dropout=0.3), cfg, loss_fn, callbacks=[StopAt()], out_dir=tmp_path)
    first.fit(loader(data), loader(val))
    assert first.interrupted and first.state.step == 9
    resumed = Trainer(model(dropout=0.3), cfg, loss_fn, out_dir=tmp_path)
    state = resumed.fit(loader(data), loader(val), resume=True)
    assert state.train_loss == full.train_loss, "the resumed loss sequence must equal the uninterrupted one"
    assert [e["val_loss"] for e in state.evals] == [e["val_loss"] for e in full.evals]


def test_early_stopping_and_plateau():
    values = iter([1.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1])
    seen_lr = []

    class LR(Callback):
        def on_evaluate(self, trainer, metrics):
            seen_lr.append(trainer.schedule.lr(trainer.state.step))

    cfg = TrainerConfig(epochs=20, schedule="plateau", plateau_patience=1, early_stopping=3, progress=False)
    t = Trainer(model(), cfg, loss_fn, evaluate_fn=lambda m, d: {"val_loss": next(values)}, callbacks=[LR()])
    state = t.fit(loader(regression_data(32)), [None])
    assert state.stopped_early and len(state.evals) == 5 and state.best == 0.5
    assert seen_lr[:2] == [1e-3, 1e-3] and seen_lr[2] == pytest.approx(5e-4) and seen_lr[3] == pytest.approx(2.5e-4)


def lm_loss(m, batch, state):
    x, y = batch
    out, state = m(x, state)
    return unwrap(m).loss(out, y), state


def language_model():
    return ManyToMany(
        ManyToManyConfig(
            InputConfig(vocab_size=8, embedding_dim=8), RNNConfig(hidden_size=16), HeadConfig(num_classes=8)
        )
    )


def test_tbptt_mode_carries_detached_state_across_batches():
    ids = torch.tensor([4, 5, 6, 7] * 100)
    seen = []

    def spy(m, batch, state):
        seen.append(None if state is None else (state[0].clone(), state[0].requires_grad))
        return lm_loss(m, batch, state)

    t = Trainer(language_model(), TrainerConfig(epochs=8, tbptt=5, lr=1e-2, progress=False), spy)
    state = t.fit(StreamBatches(ids, batch_size=4, timestep=10))  # each 10-step batch -> two 5-step chunks
    per_epoch = 2 * len(StreamBatches(ids, 4, 10))
    assert all(seen[e * per_epoch] is None for e in range(8)), "each epoch starts from a fresh state"
    assert all(s is not None and not s[1] for i, s in enumerate(seen) if i % per_epoch)
    assert len(seen) == 8 * 2 * len(StreamBatches(ids, 4, 10)) and state.step == len(seen)
    assert state.train_loss[-1] < 0.1, "a periodic stream is easy"


def test_tbptt_resume_restores_the_carried_state(tmp_path):
    ids = torch.randint(4, 8, (600,), generator=torch.Generator().manual_seed(0))
    cfg = TrainerConfig(epochs=2, tbptt=6, lr=1e-2, progress=False, seed=2)
    torch.manual_seed(0)
    full = Trainer(language_model(), cfg, lm_loss).fit(StreamBatches(ids, 4, 12))

    class StopAt(Callback):
        def on_step_end(self, trainer, step, loss):
            if step == 14:
                trainer.stop()

    torch.manual_seed(0)
    Trainer(language_model(), cfg, lm_loss, callbacks=[StopAt()], out_dir=tmp_path).fit(StreamBatches(ids, 4, 12))
    state = Trainer(language_model(), cfg, lm_loss, out_dir=tmp_path).fit(StreamBatches(ids, 4, 12), resume=True)
    assert state.train_loss == full.train_loss


def test_non_finite_loss_is_a_clear_error():
    def bad(m, batch):
        return loss_fn(m, batch) * float("nan")

    with pytest.raises(FloatingPointError, match="training loss became nan at step 0; lower the learning rate"):
        Trainer(model(), TrainerConfig(progress=False), bad).fit(loader(regression_data(16)))


def test_bad_config():
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        TrainerConfig(epochs=0)
    with pytest.raises(ValueError, match="monitor 'val_acc' is not among the evaluation metrics"):
        Trainer(model(), TrainerConfig(monitor="val_acc", progress=False), loss_fn).fit(
            loader(regression_data(16)), loader(regression_data(16))
        )
    with pytest.raises(ValueError, match="resume needs the Trainer's out_dir"):
        Trainer(model(), TrainerConfig(progress=False), loss_fn).fit([], resume=True)
