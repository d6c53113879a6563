"""The C++ sequence kernel for LSTM/GRU/RNN layers: float64 gradcheck, parity with torch.nn, which path runs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rnnkit import Recurrent
from rnnkit.sequence_kernel import GATES, directions, kernel_forward

pytestmark = pytest.mark.usefixtures("kernels")  # every test here runs the C++ kernel

MODES = ["lstm", "gru", "rnn_tanh", "rnn_relu"]
B, T, I, H = 3, 5, 4, 3


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("lengths", [None, [5, 2, 0]], ids=["full", "lengths"])
def test_gradcheck_float64_both_directions(mode, lengths):
    """Every input of both directions (run together, as a bidirectional layer does), with and without lengths."""
    G = GATES[mode]
    lens = None if lengths is None else torch.tensor(lengths)

    def make(*shape):
        return torch.randn(*shape, dtype=torch.double, requires_grad=True)

    x = make(B, T, I)
    per_dir = [[make(B, H), make(B, H), make(G * H, I), make(G * H, H), make(G * H), make(G * H)] for _ in range(2)]

    def run(x, *flat):
        states, weights = [], []
        for d in range(2):
            h0, c0, *w = flat[6 * d : 6 * d + 6]
            states.append((h0, c0 if mode == "lstm" else None))
            weights.append(w)
        outs = []
        for out, h, c in directions(mode, x, states, weights, lens):
            outs += [out, h] + ([c] if c is not None else [])
        return tuple(outs)

    flat = [t for d in per_dir for t in d]
    if mode != "lstm":  # c0 is not an input of these cells
        for d in range(2):
            flat[6 * d + 1].requires_grad_(False)
    assert torch.autograd.gradcheck(run, (x, *flat))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
def test_two_layers_with_lengths_equal_torch_packed(mode, bidirectional):
    """Outputs, states and every gradient equal torch.nn's packed-sequence path, empty sequences included."""
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    kw = {"nonlinearity": mode[4:]} if mode.startswith("rnn") else {}
    cls = {"lstm": nn.LSTM, "gru": nn.GRU}.get(mode, nn.RNN)
    module = cls(I, H, 2, batch_first=True, bidirectional=bidirectional, **kw)
    D = 2 if bidirectional else 1
    x = torch.randn(4, 7, I, requires_grad=True)
    lengths = torch.tensor([7, 3, 0, 5])
    states = tuple(torch.randn(2 * D, 4, H, requires_grad=True) for _ in range(2 if mode == "lstm" else 1))
    out, new = kernel_forward(
        mode,
        x,
        states,
        list(module.parameters()),
        bias=True,
        num_layers=2,
        dropout=0.0,
        training=False,
        bidirectional=bidirectional,
        lengths=lengths,
    )
    keep = lengths > 0  # torch cannot pack an empty sequence: compare the others, and check the empty one alone
    packed = pack_padded_sequence(x[keep], lengths[keep], batch_first=True, enforce_sorted=False)
    hx = tuple(s[:, keep] for s in states)
    ref_out, ref_state = module(packed, hx if mode == "lstm" else hx[0])
    ref_out = pad_packed_sequence(ref_out, batch_first=True, total_length=7)[0]
    ref_state = ref_state if isinstance(ref_state, tuple) else (ref_state,)
    torch.testing.assert_close(out[keep], ref_out, atol=1e-5, rtol=1e-5)
    assert torch.all(out[~keep] == 0)
    for s, r, s0 in zip(new, ref_state, states):
        torch.testing.assert_close(s[:, keep], r, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(s[:, ~keep], s0[:, ~keep])
    weights = [torch.randn_like(out)] + [torch.randn_like(s) for s in new]
    loss = (out[keep] * weights[0][keep]).sum() + sum((s[:, keep] * w[:, keep]).sum() for s, w in zip(new, weights[1:]))
    ref_loss = (ref_out * weights[0][keep]).sum() + sum((r * w[:, keep]).sum() for r, w in zip(ref_state, weights[1:]))
    inputs = [x, *states, *module.parameters()]
    for g, r in zip(torch.autograd.grad(loss, inputs), torch.autograd.grad(ref_loss, inputs)):
        torch.testing.assert_close(g, r, atol=1e-5, rtol=1e-5)


def _nodes(t: torch.Tensor) -> set[str]:
    names, stack = set(), [t.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or type(node).__name__ in names:
            continue
        names.add(type(node).__name__)
        stack.extend(n for n, _ in node.next_functions)
    return names


@pytest.mark.parametrize(
    ("mode", "with_lengths", "kernel"),
    [("gru", False, True), ("rnn_tanh", False, True), ("lstm", True, True), ("lstm", False, False)],
)
def test_which_path_runs(mode, with_lengths, kernel):
    """GRU/RNN always and every cell with lengths run on the kernel; an LSTM without lengths on torch's."""
    layer = Recurrent(mode, I, H)
    out, _ = layer(torch.randn(2, T, I), lengths=[T, 2] if with_lengths else None)
    assert any("Directions" in n for n in _nodes(out)) == kernel
    fused = Recurrent(mode, I, H, impl="fused")  # impl="fused" is torch's kernel, exactly as torch.nn calls it
    assert not any("Directions" in n for n in _nodes(fused(torch.randn(2, T, I), lengths=[T, 2])[0]))


def test_two_threads_give_the_same_numbers():
    """A bidirectional layer runs its directions concurrently when there are threads: same result as one thread."""
    layer = Recurrent("gru", I, 16, num_layers=2, bidirectional=True)
    x, lengths = torch.randn(6, 9, I), torch.tensor([9, 1, 4, 0, 9, 6])
    threads = torch.get_num_threads()
    results = []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            out, (h,) = layer(x, lengths=lengths)
            grads = torch.autograd.grad(out.square().sum() + h.sum(), list(layer.parameters()))
            results.append((out, h, *grads))
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)
