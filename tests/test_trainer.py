"""Trainer: learning, evaluation, early stopping, schedules, TBPTT mode, logs, and exact resumption."""

from __future__ import annotations

import csv
import itertools
import json

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


# ---- issue 8: exact resume, checkpoints on a clock, no silent fresh start, schedule length, progress, devices ----
def shuffled_loader(data, batch=16):
    return DataLoader(data, batch_size=batch, shuffle=True, collate_fn=pad_collate)  # no generator of its own


def csv_rows(path):
    """metrics.csv without the timing column (items/s differs from run to run)."""
    return [{k: v for k, v in row.items() if k != "items_per_s"} for row in csv.DictReader(path.open())]


def assert_same_weights(a, b):
    for (na, pa), (nb, pb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert na == nb and torch.equal(pa, pb), f"{na} differs"


class StopAtStep(Callback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, trainer, step, loss):
        if step == self.step:
            trainer.stop()


class StopAtEpochEnd(Callback):
    def on_epoch_end(self, trainer, epoch):
        if epoch == 1:
            trainer.stop()


@pytest.mark.parametrize("make_loader", [loader, shuffled_loader], ids=["bucket", "shuffle"])
@pytest.mark.parametrize(
    "stopper", [StopAtStep(9), StopAtStep(12), StopAtEpochEnd()], ids=["mid-epoch", "last-batch", "epoch-end"]
)
def test_resume_is_exact_mid_epoch_and_at_an_epoch_end(tmp_path, make_loader, stopper):
    cfg = TrainerConfig(epochs=3, lr=5e-3, log_every=1, progress=False, seed=1)  # 6 batches an epoch
    data, val = regression_data(), regression_data(32, seed=1)
    torch.manual_seed(0)
    full = Trainer(model(dropout=0.3), cfg, loss_fn, out_dir=tmp_path / "full")
    full.fit(make_loader(data), make_loader(val))

    torch.manual_seed(0)
    first = Trainer(model(dropout=0.3), cfg, loss_fn, callbacks=[stopper], out_dir=tmp_path / "cut")
    first.fit(make_loader(data), make_loader(val))
    assert first.interrupted
    torch.manual_seed(123)  # the resumed run must not depend on the RNG it starts with
    resumed = Trainer(model(dropout=0.3), cfg, loss_fn, out_dir=tmp_path / "cut")
    resumed.fit(make_loader(data), make_loader(val), resume=True)
    assert_same_weights(resumed.model, full.model)
    assert csv_rows(tmp_path / "cut" / "metrics.csv") == csv_rows(tmp_path / "full" / "metrics.csv")


def test_parse_every():
    from rnnkit.training.trainer import parse_every

    assert parse_every("500") == (500, None)
    assert parse_every("10m") == (None, 10.0)
    assert parse_every("90s") == (None, 1.5)
    assert parse_every("1.5h") == (None, 90.0)
    assert parse_every(" 2 min ") == (None, 2.0)
    assert parse_every("off") == (None, None)
    for bad in ("", "ten", "5x", "0", "-3m", "0s"):
        with pytest.raises(ValueError, match="--checkpoint-every: expected"):
            parse_every(bad)


class Crash(Exception):
    pass


def test_checkpoints_on_a_clock_and_a_crash_loses_no_logged_rows(tmp_path, monkeypatch):
    import rnnkit.training.trainer as trainer_module

    now = [0.0]
    monkeypatch.setattr(trainer_module, "_clock", lambda: now[0])
    seen = {}

    class Tick(Callback):
        def __init__(self, crash_at=None):
            self.crash_at = crash_at

        def on_step_end(self, trainer, step, loss):
            now[0] += 30.0  # each step takes half a minute
            if step == self.crash_at:  # what kill -9 leaves on disk (no finally runs then)
                seen["rows"] = [int(r["step"]) for r in csv.DictReader((tmp_path / "cut" / "metrics.csv").open())]
                seen["state"] = json.loads((tmp_path / "cut" / "checkpoint" / "trainer_state.json").read_text())
                raise Crash

    cfg = TrainerConfig(epochs=2, lr=5e-3, log_every=1, checkpoint_minutes=1.0, progress=False, seed=1)
    data, val = regression_data(), regression_data(32, seed=1)
    torch.manual_seed(0)
    full = Trainer(model(dropout=0.3), cfg, loss_fn, callbacks=[Tick()], out_dir=tmp_path / "full")
    full.fit(loader(data), loader(val))

    torch.manual_seed(0)
    with pytest.raises(Crash):
        Trainer(model(dropout=0.3), cfg, loss_fn, callbacks=[Tick(crash_at=9)], out_dir=tmp_path / "cut").fit(
            loader(data), loader(val)
        )
    assert seen["state"]["state"]["step"] == 8, "a checkpoint every minute: steps 2, 4, 6 (epoch end), 8"
    assert seen["rows"][-1] == 8, "the training log is flushed with every checkpoint"
    resumed = Trainer(model(dropout=0.3), cfg, loss_fn, callbacks=[Tick()], out_dir=tmp_path / "cut")
    resumed.fit(loader(data), loader(val), resume=True)
    assert_same_weights(resumed.model, full.model)
    assert csv_rows(tmp_path / "cut" / "metrics.csv") == csv_rows(tmp_path / "full" / "metrics.csv")


def test_resume_without_a_checkpoint_is_an_error_not_a_fresh_run(tmp_path):
    from rnnkit.errors import cli_style

    t = Trainer(model(), TrainerConfig(progress=False), loss_fn, out_dir=tmp_path)
    message = "no checkpoint to resume in .*checkpoint; start a fresh run without --resume"
    with cli_style(), pytest.raises(ValueError, match=message):
        t.fit(loader(regression_data(16)), resume=True)
    assert t.state.step == 0 and not (tmp_path / "checkpoint").exists()


def test_resume_uses_the_checkpoint_a_crashed_swap_left_beside(tmp_path):
    cfg = TrainerConfig(epochs=2, lr=5e-3, progress=False, seed=1)
    data = regression_data()
    torch.manual_seed(0)
    full = Trainer(model(dropout=0.3), cfg, loss_fn).fit(loader(data))
    torch.manual_seed(0)
    Trainer(model(dropout=0.3), cfg, loss_fn, callbacks=[StopAtStep(4)], out_dir=tmp_path).fit(loader(data))
    (tmp_path / "checkpoint").rename(tmp_path / ".checkpoint.old")  # killed between the two os.replace calls
    state = Trainer(model(dropout=0.3), cfg, loss_fn, out_dir=tmp_path).fit(loader(data), resume=True)
    assert state.train_loss == full.train_loss
    assert (tmp_path / "checkpoint").is_dir() and not (tmp_path / ".checkpoint.old").exists()


def test_resuming_with_less_data_than_the_checkpoint_saw_is_an_error(tmp_path):
    cfg = TrainerConfig(epochs=2, progress=False)
    Trainer(model(), cfg, loss_fn, callbacks=[StopAtStep(4)], out_dir=tmp_path).fit(loader(regression_data()))
    with pytest.raises(ValueError, match="4 batches into epoch 0, but the training data has fewer now"):
        Trainer(model(), cfg, loss_fn, out_dir=tmp_path).fit(loader(regression_data(32)), resume=True)


def test_cosine_schedule_spans_every_tbptt_chunk():
    ids = torch.randint(4, 8, (600,), generator=torch.Generator().manual_seed(0))
    lrs, trainer = [], []

    def spy(m, batch, state):  # one call per optimizer step, i.e. per TBPTT chunk
        lrs.append(trainer[0].optimizer.param_groups[0]["lr"])
        return lm_loss(m, batch, state)

    cfg = TrainerConfig(epochs=2, tbptt=5, lr=1e-2, schedule="cosine", min_lr_ratio=0.1, progress=False)
    trainer.append(Trainer(language_model(), cfg, spy))
    state = trainer[0].fit(StreamBatches(ids, 4, 12))  # 149 steps a stream: 12 windows of 12 (3 chunks), one of 5
    assert state.step == len(lrs) == 2 * (12 * 3 + 1) == trainer[0].schedule.total_steps
    assert all(a > b for a, b in itertools.pairwise(lrs)), "the rate decays over the whole run"
    assert lrs[-1] > 1e-3 and trainer[0].schedule.lr(state.step) == pytest.approx(1e-3), "the floor comes at the end"


def test_plain_progress_lines_when_output_is_not_a_terminal(capsys, monkeypatch):
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(name, raising=False)
    cfg = TrainerConfig(epochs=2, progress=True, progress_seconds=0.0, log_every=100)
    Trainer(model(), cfg, loss_fn).fit(loader(regression_data(32)), loader(regression_data(16, seed=1)))
    lines = capsys.readouterr().out.splitlines()
    steps = [ln for ln in lines if ln.startswith("step ")]
    assert len(steps) == 4 and steps[0].startswith("step 1/4  epoch 1  loss "), lines
    assert all(k in steps[-1] for k in ("lr ", "items/s ", "elapsed ", "eta ")), steps[-1]
    evals = [ln for ln in lines if ln.startswith("eval ")]
    assert len(evals) == 2 and "val_loss " in evals[0]
    assert not any("\x1b[" in ln or "━" in ln for ln in lines), "no bar, no escape codes"


@pytest.mark.parametrize("device", ["cpu", "auto"])
def test_device_moves_model_batches_and_state(tmp_path, device):
    seen = []

    def spy(m, batch, state):
        seen.append({t.device.type for t in (*batch, *(state or ()))})
        return lm_loss(m, batch, state)

    ids = torch.randint(4, 8, (200,), generator=torch.Generator().manual_seed(0))
    cfg = TrainerConfig(epochs=1, tbptt=5, device=device, progress=False)
    t = Trainer(language_model(), cfg, spy, out_dir=tmp_path, callbacks=[StopAtStep(3)])
    t.fit(StreamBatches(ids, 4, 10))
    expect = "cuda" if device == "auto" and torch.cuda.is_available() else "cpu"
    assert t.device.type == expect and next(t.model.parameters()).device.type == expect
    assert all(s == {expect} for s in seen)
    state = Trainer(language_model(), cfg, spy, out_dir=tmp_path).fit(StreamBatches(ids, 4, 10), resume=True)
    assert state.step == 4 * 2 + 2 and all(s == {expect} for s in seen)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_an_unavailable_device_is_a_clear_error():
    with pytest.raises(ValueError, match="no CUDA GPU; use 'cpu' or 'auto'"):
        Trainer(model(), TrainerConfig(device="cuda", progress=False), loss_fn)


def test_adaptive_length_stops_on_a_plateau_but_never_before_min_steps():
    flat = lambda m, d: {"val_loss": 1.0}  # noqa: E731 - never improves after the first evaluation
    per_epoch = len(loader(regression_data(32)))  # 2 batches
    cfg = TrainerConfig(epochs=None, max_epochs=50, early_stopping=2, min_steps=10, progress=False)
    t = Trainer(model(), cfg, loss_fn, evaluate_fn=flat)
    state = t.fit(loader(regression_data(32)), [None])
    assert state.stopped_early and state.step == 10 and state.epoch == 10 // per_epoch, "patience waits for min_steps"
    assert t.stop_reason() == "early stopping: val_loss did not improve for 2 evaluations" and not t.interrupted
    cfg = TrainerConfig(epochs=None, max_epochs=4, early_stopping=None, progress=False)
    t = Trainer(model(), cfg, loss_fn, evaluate_fn=flat)
    assert t.fit(loader(regression_data(32)), [None]).epoch == 4 and t.stop_reason() == "max_epochs (4) reached"
    t = Trainer(model(), TrainerConfig(epochs=3, progress=False), loss_fn)
    t.fit(loader(regression_data(32)))
    assert t.stop_reason() == "epochs (3) reached"


def test_early_stopping_never_fires_while_the_metric_is_still_at_its_floor():
    """An F1 of 0 for the first evaluations is a model that has found nothing yet, not a plateau."""
    values = iter([0.0] * 8 + [0.2, 0.1, 0.1, 0.1] + [0.0] * 50)
    f1 = lambda m, d: {"val_f1": next(values)}  # noqa: E731
    common = dict(epochs=None, max_epochs=30, early_stopping=3, monitor="val_f1", mode="max", progress=False)
    t = Trainer(model(), TrainerConfig(**common, early_stopping_floor=0.0), loss_fn, evaluate_fn=f1)
    state = t.fit(loader(regression_data(32)), [None])
    assert state.stopped_early and len(state.evals) == 12 and state.best == 0.2  # 8 zeros, then found, then 3 worse
    values = iter([0.0] * 30)
    t = Trainer(model(), TrainerConfig(**common), loss_fn, evaluate_fn=f1)
    assert len(t.fit(loader(regression_data(32)), [None]).evals) == 4  # without the floor: stops at 0


def test_the_plateau_schedule_can_wait_as_early_stopping_does():
    """With plateau_waits, evaluations without improvement lower the rate only after min_steps updates and once
    the metric has passed the floor: an F1 still at 0 on a small data set is no reason to halve the rate."""
    common = dict(epochs=10, monitor="val_f1", mode="max", schedule="plateau", plateau_patience=1, progress=False)

    def lrs(cfg, values):
        values = iter(values)
        t = Trainer(model(), cfg, loss_fn, evaluate_fn=lambda m, d: {"val_f1": next(values)})
        seen = []

        class Record(Callback):
            def on_epoch_end(self, trainer, epoch):
                seen.append(trainer.schedule.lr(trainer.state.step))

        t.callbacks.append(Record())
        t.fit(loader(regression_data(32)), [None])  # 2 steps an epoch
        return seen

    f1 = [0.0] * 4 + [0.2, 0.1, 0.1, 0.1, 0.1, 0.1]
    assert lrs(TrainerConfig(**common), f1)[:4] == [1e-3, 0.5e-3, 0.25e-3, 0.125e-3]  # halved while still at 0
    waits = TrainerConfig(**common, plateau_waits=True, early_stopping_floor=0.0)
    assert lrs(waits, f1) == [1e-3] * 5 + [0.5e-3, 0.25e-3, 0.125e-3, 0.0625e-3, 0.03125e-3]
    rising = [0.1 * i for i in range(1, 4)] + [0.3] * 7
    waits = TrainerConfig(**common, plateau_waits=True, min_steps=12)  # 12 updates: the evaluation of epoch 6
    assert lrs(waits, rising) == [1e-3] * 5 + [0.5e-3, 0.25e-3, 0.125e-3, 0.0625e-3, 0.03125e-3]
    assert lrs(TrainerConfig(**common), rising)[3] == 0.5e-3  # without waiting: halved at epoch 4


def test_time_budget_stops_training_and_counts_every_session_of_a_resumed_run(tmp_path, monkeypatch):
    import rnnkit.training.trainer as trainer_module

    now = [0.0]
    monkeypatch.setattr(trainer_module, "_clock", lambda: now[0])

    class Tick(Callback):
        def on_step_end(self, trainer, step, loss):
            now[0] += 10.0  # ten seconds a step
            if step == 3:
                trainer.stop()  # an interruption after 30 s

    cfg = TrainerConfig(epochs=100, time_budget=1.0, progress=False, checkpoint_minutes=None)
    first = Trainer(model(), cfg, loss_fn, callbacks=[Tick()], out_dir=tmp_path)
    first.fit(loader(regression_data(32)))
    assert first.interrupted and first.state.seconds == pytest.approx(30.0)
    resumed = Trainer(model(), cfg, loss_fn, callbacks=[Tick()], out_dir=tmp_path)
    state = resumed.fit(loader(regression_data(32)), resume=True)
    assert state.step == 6, "30 s before the interruption + 30 s after it = the one-minute budget"
    assert resumed.stop_reason() == "time budget (1 minutes) reached" and not resumed.interrupted
    with pytest.raises(ValueError, match="time_budget must be > 0"):
        TrainerConfig(time_budget=0)


def test_sigterm_checkpoints_and_stops_like_ctrl_c(tmp_path):
    import os
    import signal

    class Term(Callback):
        def on_step_end(self, trainer, step, loss):
            if step == 3:
                os.kill(os.getpid(), signal.SIGTERM)  # what a scheduler or `kill` sends

    t = Trainer(model(), TrainerConfig(epochs=5, progress=False), loss_fn, callbacks=[Term()], out_dir=tmp_path)
    state = t.fit(loader(regression_data(32)))
    assert t.interrupted and state.step == 3
    assert json.loads((tmp_path / "checkpoint" / "trainer_state.json").read_text())["state"]["step"] == 3
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL, "the handler is put back"


def test_every_epoch_logs_its_last_training_loss(tmp_path):
    t = Trainer(model(), TrainerConfig(epochs=3, log_every=100, progress=False), loss_fn, out_dir=tmp_path)
    t.fit(loader(regression_data(32)))
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert [(int(r["step"]), int(r["epoch"])) for r in rows if r["train_loss"]] == [(2, 1), (4, 2), (6, 3)]
