"""The C++ layer-norm LSTM kernel: float64 gradcheck with lengths, parity with the reference unroll."""

from __future__ import annotations

import pytest
import torch

from rnnkit import LayerNormLSTMCell, Recurrent
from rnnkit.cells.lnlstm_kernel import lnlstm_sequence

B, T, I, H = 3, 6, 4, 5


pytestmark = pytest.mark.usefixtures("kernels")  # every test here runs the C++ kernel


@pytest.mark.parametrize("with_lengths", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_kernel_gradcheck_float64(with_lengths, bias):
    cell = LayerNormLSTMCell(I, H, bias=bias).double()
    with torch.no_grad():
        for p in cell.parameters():
            p.add_(0.3 * torch.randn_like(p))  # move gains/biases off their 1/0 start
    names = list(cell.params())
    lengths = torch.tensor([6, 2, 0]) if with_lengths else None
    x = torch.randn(B, T, I, dtype=torch.double, requires_grad=True)
    h0 = torch.randn(B, H, dtype=torch.double, requires_grad=True)
    c0 = torch.randn(B, H, dtype=torch.double, requires_grad=True)
    params = [p.detach().clone().requires_grad_() for p in cell.params().values()]

    def run(x, h0, c0, *ps):
        out, (h, c) = lnlstm_sequence(x, (h0, c0), dict(zip(names, ps)), lengths, cell.eps)
        return out, h, c

    assert torch.autograd.gradcheck(run, (x, h0, c0, *params))


def test_kernel_float32_is_as_accurate_as_the_reference_unroll():
    """Against a float64 reference: the kernel (polynomial exp, vectorised sums) errs no more than float32 autograd."""
    fast = Recurrent("layernorm_lstm", 8, 32, num_layers=2)
    ref = Recurrent("layernorm_lstm", 8, 32, num_layers=2, impl="reference")
    truth = Recurrent("layernorm_lstm", 8, 32, num_layers=2, impl="reference").double()
    ref.load_state_dict(fast.state_dict())
    truth.load_state_dict(fast.state_dict())
    x = torch.randn(5, 30, 8)
    lengths = torch.tensor([30, 12, 1, 29, 7])
    results = []
    for layer, inp in ((fast, x), (ref, x), (truth, x.double())):
        out, (h, c) = layer(inp, lengths=lengths)
        (out.square().sum() + h.sum() + c.sum()).backward()
        results.append([out.detach().double()] + [p.grad.double() for p in layer.parameters()])
    for k, (a, b, t) in enumerate(zip(*results)):
        err_fast, err_ref = (a - t).abs().max().item(), (b - t).abs().max().item()
        scale = t.abs().max().item()
        assert err_fast <= max(2 * err_ref, 1e-6 * scale), (k, err_fast, err_ref)
        torch.testing.assert_close(a, t, atol=1e-4 * max(scale, 1), rtol=1e-4)


def test_kernel_is_used_when_built():
    """The fast path really runs (not silently the loop): its autograd node is in the graph."""
    layer = Recurrent("layernorm_lstm", I, H)
    out, _ = layer(torch.randn(B, T, I))
    node_names = set()
    stack = [out.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or type(node).__name__ in node_names:
            continue
        node_names.add(type(node).__name__)
        stack.extend(n for n, _ in node.next_functions)
    assert any("LNLSTM" in n for n in node_names), node_names
