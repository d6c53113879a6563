"""Checkpoints: pickle-free, tied weights, optimizer and RNG state, atomic replacement."""

from __future__ import annotations

import json
import os

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


def test_a_crash_between_the_two_replaces_keeps_a_findable_checkpoint(tmp_path, monkeypatch):
    from rnnkit.training.checkpoint import find_checkpoint

    model = lm()
    save_checkpoint(tmp_path / "ck", model, {"v": 1}, trainer_state={"step": 1})
    real_replace, calls = os.replace, []

    def crash_after_first(src, dst):
        calls.append((src, dst))
        if len(calls) > 1:  # the process dies between moving the old one aside and moving the new one in
            raise OSError("killed")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crash_after_first)
    with pytest.raises(OSError, match="killed"):
        save_checkpoint(tmp_path / "ck", model, {"v": 2}, trainer_state={"step": 2})
    monkeypatch.setattr(os, "replace", real_replace)
    assert not (tmp_path / "ck").exists()
    assert find_checkpoint(tmp_path / "ck") == tmp_path / ".ck.old"
    assert read_config(tmp_path / "ck")["v"] == 1 and read_trainer_state(tmp_path / "ck")[0] == {"step": 1}
    load_weights(lm(), tmp_path / "ck")
    save_checkpoint(tmp_path / "ck", model, {"v": 3})  # the next save puts things straight
    assert read_config(tmp_path / "ck")["v"] == 3 and find_checkpoint(tmp_path / "ck") == tmp_path / "ck"
    assert [p.name for p in tmp_path.iterdir()] == ["ck"]
    assert find_checkpoint(tmp_path / "nothing") is None and find_checkpoint(tmp_path) is None


def test_leftovers_of_a_killed_save_are_cleaned_up(tmp_path):
    save_checkpoint(tmp_path / "ck", lm(), {})
    (tmp_path / ".ck.tmp-dead").mkdir()  # kill -9 while writing
    (tmp_path / ".ck.tmp-dead" / "model.safetensors").write_bytes(b"half")
    save_checkpoint(tmp_path / "ck", lm(), {})
    assert [p.name for p in tmp_path.iterdir()] == ["ck"]


@pytest.mark.parametrize("damage", ["truncated", "random"])
def test_a_damaged_weights_file_is_a_one_line_error(tmp_path, damage):
    save_checkpoint(tmp_path / "ck", lm(), {})
    weights = tmp_path / "ck" / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2] if damage == "truncated" else os.urandom(len(data)))
    with pytest.raises(ValueError, match=r"ck/model.safetensors is damaged or not a safetensors file \(.+\); retrain"):
        load_weights(lm(), tmp_path / "ck")


def test_damaged_json_and_optimizer_files_are_one_line_errors(tmp_path):
    model = lm()
    opt = torch.optim.AdamW(model.parameters())
    model(torch.randint(0, 11, (2, 5)))[0].sum().backward()
    opt.step()
    tensors, meta = optimizer_to_tensors(opt)
    save_checkpoint(tmp_path / "ck", model, {}, trainer_state={"optimizer": meta}, tensors=tensors)
    opt_file = tmp_path / "ck" / "optimizer.safetensors"
    opt_file.write_bytes(opt_file.read_bytes()[:100])
    with pytest.raises(ValueError, match=r"ck/optimizer.safetensors is damaged or not a safetensors file"):
        read_trainer_state(tmp_path / "ck")
    (tmp_path / "ck" / "trainer_state.json").write_text('{"optimizer": {"param_gr')
    with pytest.raises(ValueError, match=r"ck/trainer_state.json is damaged or not JSON \(.+\); retrain or restore"):
        read_trainer_state(tmp_path / "ck")
    (tmp_path / "ck" / "config.json").write_bytes(os.urandom(64))
    with pytest.raises(ValueError, match=r"ck/config.json is damaged or not JSON"):
        read_config(tmp_path / "ck")
