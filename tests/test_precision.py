"""Mixed precision: bf16 layers stay within bf16's rounding of fp32, autocast inputs are accepted and keep the fast
paths, bf16 training learns, and the options refuse what a device cannot do."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from rnnkit import HeadConfig, InputConfig, ManyToOne, ManyToOneConfig, Recurrent, RNNConfig
from rnnkit.data.batching import BucketBatchSampler, pad_collate
from rnnkit.errors import cli_style
from rnnkit.training.distributed import unwrap
from rnnkit.training.trainer import Trainer, TrainerConfig

CELLS = ["lstm", "gru", "rnn_tanh", "layernorm_lstm", "mingru", "minlstm"]


@pytest.mark.parametrize("kind", CELLS)
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
def test_bf16_layer_is_fp32_to_bf16_rounding(kind, bidirectional):
    fp32 = Recurrent(kind, 5, 8, bidirectional=bidirectional)
    bf16 = Recurrent(kind, 5, 8, bidirectional=bidirectional, precision="bf16")
    bf16.load_state_dict(fp32.state_dict())
    x, lengths = torch.randn(4, 9, 5), torch.tensor([9, 3, 0, 7])
    (out, state), (ref, ref_state) = bf16(x, lengths=lengths), fp32(x, lengths=lengths)
    assert out.dtype == torch.float32 and all(s.dtype == torch.float32 for s in state)
    # bf16 keeps 8 bits of mantissa (relative 4e-3); a few products and activations deep that is ~1e-2
    torch.testing.assert_close(out, ref, atol=3e-2, rtol=3e-2)
    for s, r in zip(state, ref_state):
        torch.testing.assert_close(s, r, atol=3e-2, rtol=3e-2)
    assert torch.all(out[1, 3:] == 0) and torch.all(out[2] == 0)  # padding never leaks, in bf16 too
    out.square().sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in bf16.parameters())
    y, _ = bf16.step(x[:, 0]) if not bidirectional else (out[:, 0], None)
    assert y.dtype == torch.float32


def _nodes(t: torch.Tensor) -> set[str]:
    names, stack = set(), [t.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or type(node).__name__ in names:
            continue
        names.add(type(node).__name__)
        stack.extend(n for n, _ in node.next_functions)
    return names


@pytest.mark.parametrize(("kind", "node"), [("gru", "Directions"), ("layernorm_lstm", "LNLSTM"), ("mingru", "MinRNN")])
def test_autocast_inputs_are_accepted_and_keep_the_c_kernels(kind, node, kernels):
    """Inside torch.autocast a layer takes the bf16 output of a previous layer (no dtype error) and still runs its
    C++ kernel (the recurrence in float32), not a Python loop."""
    layer, proj = Recurrent(kind, 6, 8), torch.nn.Linear(5, 6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        h = proj(torch.randn(3, 7, 5))
        assert h.dtype == torch.bfloat16
        out, state = layer(h, lengths=[7, 2, 5])
        y, _ = layer.step(h[:, 0], state)
    assert any(node in n for n in _nodes(out)), _nodes(out)
    assert torch.isfinite(out).all() and torch.isfinite(y).all()


def _fit(precision: str) -> list[float]:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    seqs = [torch.randn(int(n), 2, generator=g) for n in torch.randint(3, 12, (96,), generator=g)]
    data = [(s, s[:, 0].sum().view(1, 1)) for s in seqs]
    sampler = BucketBatchSampler([len(x) for x, _ in data], 16, seed=0, pool_batches=2)
    batches = DataLoader(data, batch_sampler=sampler, collate_fn=pad_collate)
    cfg = ManyToOneConfig(
        InputConfig(input_size=2), RNNConfig(cell="gru", hidden_size=16), head=HeadConfig("regression")
    )
    model = ManyToOne(cfg)
    trainer = Trainer(
        model,
        TrainerConfig(epochs=8, lr=1e-2, progress=False, precision=precision),
        lambda m, b: unwrap(m).loss(m(b[0], b[1]), b[2]),
    )
    assert all(p.dtype == torch.float32 for p in model.parameters()), "master weights stay float32"
    return [e["val_loss"] for e in trainer.fit(batches, batches).evals]


def test_bf16_training_lowers_the_loss_as_fp32_does():
    bf16, fp32 = _fit("bf16"), _fit("fp32")
    assert bf16[-1] < 0.3 * bf16[0]
    assert bf16[-1] == pytest.approx(fp32[-1], rel=0.2)


def test_options_refuse_what_cannot_run():
    with pytest.raises(ValueError, match="precision must be fp32 or bf16 or fp16"):
        TrainerConfig(precision="fp8")
    with pytest.raises(ValueError, match="precision fp16 needs a CUDA device .*; use bf16 on a CPU"):
        Trainer(torch.nn.Linear(2, 2), TrainerConfig(precision="fp16", device="cpu"), lambda m, b: b)
    with cli_style(), pytest.raises(ValueError, match="^--precision fp16 needs a CUDA device"):
        Trainer(torch.nn.Linear(2, 2), TrainerConfig(precision="fp16", device="cpu"), lambda m, b: b)
    with pytest.raises(ValueError, match=r"Recurrent\(input_size=5\): precision must be one of"):
        Recurrent("gru", 5, 8, precision="half")
    with pytest.raises(ValueError, match="input is torch.bfloat16"):  # outside autocast a dtype mismatch is an error
        Recurrent("gru", 5, 8)(torch.randn(2, 3, 5, dtype=torch.bfloat16))
