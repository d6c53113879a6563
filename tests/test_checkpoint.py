"""Checkpoints: pickle-free, tied weights, optimizer and RNG state, atomic replacement."""

from __future__ import annotations

import json

import pytest
import torch

from rnnkit import HeadConfig, InputConfig, ManyToMany, ManyToManyConfig, RNNConfig
from rnnkit.training.checkpoint import (
    load_weights,
    optimizer_from_tensors,
    optimizer_to_tensors,
    read_config,
    read_trainer_state,
    rng_state,
    save_checkpoint,
    set_rng_state,
)


def lm():
    return ManyToMany(
        ManyToManyConfig(
            InputConfig(vocab_size=11, embedding_dim=8),
            RNNConfig(hidden_size=8),
            HeadConfig(num_classes=11),
            tie_weights=True,
        )
    )


def test_weights_with_tied_tensors_round_trip(tmp_path):
    a = lm()
    save_checkpoint(tmp_path / "ck", a, {"task": "lm"})
    b = lm()
    load_weights(b, tmp_path / "ck")
    for (na, pa), (nb, pb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert na == nb and torch.equal(pa, pb)
    assert b.head.net[-1].weight is b.input.embedding.weight, "tying survives loading"
    cfg = read_config(tmp_path / "ck")
    assert cfg["task"] == "lm" and "rnnkit_version" in cfg
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == ["config.json", "model.safetensors"]


def test_no_pickle_anywhere(tmp_path):
    model = lm()
    opt = torch.optim.AdamW(model.parameters())
    model(torch.randint(0, 11, (2, 5)))[0].sum().backward()
    opt.step()
    tensors, meta = optimizer_to_tensors(opt)
    save_checkpoint(tmp_path / "ck", model, {}, trainer_state={"optimizer": meta}, tensors=tensors)
    for f in (tmp_path / "ck").iterdir():
        head = f.read_bytes()[:2]
        assert head != b"\x80\x04" and head != b"PK", f"{f.name} looks like a pickle/zip"
        if f.suffix == ".json":
            json.loads(f.read_text())


def test_optimizer_and_rng_state_round_trip(tmp_path):
    torch.manual_seed(0)
    model = lm()
    opt = torch.optim.AdamW(model.parameters(), lr=0.01, betas=(0.8, 0.9))
    for _ in range(3):
        model(torch.randint(0, 11, (2, 5)))[0].sum().backward()
        opt.step()
    tensors, meta = optimizer_to_tensors(opt)
    rng_meta, rng_tensors = rng_state()
    save_checkpoint(
        tmp_path / "ck",
        model,
        {},
        trainer_state={"optimizer": meta, "rng": rng_meta},
        tensors={**tensors, **rng_tensors},
    )
    expect = torch.rand(3)
    state, loaded = read_trainer_state(tmp_path / "ck")
    set_rng_state(state["rng"], loaded)
    torch.testing.assert_close(torch.rand(3), expect)
    model2 = lm()
    opt2 = torch.optim.AdamW(model2.parameters(), lr=0.5)
    optimizer_from_tensors(opt2, loaded, state["optimizer"])
    assert opt2.param_groups[0]["lr"] == 0.01 and opt2.param_groups[0]["betas"] == (0.8, 0.9)
    for p1, p2 in zip(opt.state.values(), opt2.state.values()):
        torch.testing.assert_close(p1["exp_avg"], p2["exp_avg"])


def test_a_failed_save_keeps_the_old_checkpoint(tmp_path):
    model = lm()
    save_checkpoint(tmp_path / "ck", model, {"v": 1})

    class Boom(torch.nn.Module):
        def state_dict(self, *a, **k):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        save_checkpoint(tmp_path / "ck", Boom(), {"v": 2})
    assert read_config(tmp_path / "ck")["v"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["ck"], "no temporary directories left behind"


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="is not an rnnkit checkpoint"):
        read_config(tmp_path)
    save_checkpoint(tmp_path / "ck", lm(), {})
    other = ManyToMany(
        ManyToManyConfig(InputConfig(vocab_size=30), RNNConfig(hidden_size=8), HeadConfig(num_classes=30))
    )
    with pytest.raises(ValueError, match="the weights do not fit this model"):
        load_weights(other, tmp_path / "ck")
    assert read_trainer_state(tmp_path / "ck") is None
