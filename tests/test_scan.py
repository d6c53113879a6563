"""Linear recurrences: parallel log-space scan == C++ sequential walk == a plain loop, values and gradients."""

from __future__ import annotations

import pytest
import torch

from rnnkit.scan import LOG_ZERO, linear_recurrence, log_space_scan, sequential_scan

needs_ext = pytest.mark.usefixtures("kernels")


def loop(a, b, h0):
    h, outs = h0, []
    for t in range(a.shape[1]):
        h = a[:, t] * h + b[:, t]
        outs.append(h)
    return torch.stack(outs, 1)


def coefficients(B=3, T=40, H=5, dtype=torch.float64):
    log_a = -torch.nn.functional.softplus(torch.randn(B, T, H, dtype=dtype))  # a in (0, 1)
    log_b = torch.randn(B, T, H, dtype=dtype) - 1
    h0 = torch.randn(B, H, dtype=dtype)  # any sign
    return log_a, log_b, h0


@pytest.mark.parametrize("chunk", [7, 256])
def test_log_space_scan_equals_loop(chunk):
    log_a, log_b, h0 = coefficients()
    torch.testing.assert_close(log_space_scan(log_a, log_b, h0, chunk=chunk), loop(log_a.exp(), log_b.exp(), h0))


@needs_ext
def test_sequential_scan_equals_loop_and_log_scan():
    log_a, log_b, h0 = coefficients()
    expect = loop(log_a.exp(), log_b.exp(), h0)
    torch.testing.assert_close(sequential_scan(log_a.exp(), log_b.exp(), h0), expect)
    torch.testing.assert_close(linear_recurrence(log_a, log_b, h0, impl="sequential"), expect)
    torch.testing.assert_close(linear_recurrence(log_a, log_b, h0, impl="log"), expect)


def test_log_space_scan_gradcheck():
    log_a, log_b, h0 = (t[:, :9].requires_grad_() if t.dim() == 3 else t.requires_grad_() for t in coefficients())
    assert torch.autograd.gradcheck(lambda a, b, h: log_space_scan(a, b, h, chunk=4), (log_a, log_b, h0))


@needs_ext
def test_sequential_scan_gradcheck():
    log_a, log_b, h0 = coefficients(T=9)
    a, b = log_a.exp().requires_grad_(), log_b.exp().requires_grad_()
    assert torch.autograd.gradcheck(sequential_scan, (a, b, h0.requires_grad_()))


def test_log_zero_stops_the_input_and_keeps_the_state():
    log_a, log_b, h0 = coefficients(T=6)
    log_a[:, 3:] = 0.0
    log_b[:, 3:] = LOG_ZERO
    h = log_space_scan(log_a, log_b, h0)
    for t in (3, 4, 5):
        torch.testing.assert_close(h[:, t], h[:, 2])


def test_float32_stays_accurate_on_long_sequences():
    """Strong forgetting over 2,000 steps: chunking keeps |a*| bounded so float32 does not drift."""
    log_a, log_b, h0 = coefficients(B=2, T=2000, H=4)
    log_a = log_a * 3
    expect = loop(log_a.exp(), log_b.exp(), h0)
    got = log_space_scan(log_a.float(), log_b.float(), h0.float())
    torch.testing.assert_close(got.double(), expect, atol=1e-4, rtol=1e-4)


def test_shape_errors_name_both_shapes():
    with pytest.raises(ValueError, match=r"expected a, b \(B, T, H\) and h0 \(B, H\)"):
        log_space_scan(torch.zeros(2, 3, 4), torch.zeros(2, 3, 4), torch.zeros(2, 5))


@pytest.mark.parametrize("lstm", [False, True], ids=["mingru", "minlstm"])
@pytest.mark.parametrize("lengths", [None, [6, 2, 0]], ids=["full", "lengths"])
def test_fused_min_rnn_kernel_gradcheck_float64(lstm, lengths, kernels):
    """minGRU/minLSTM gates, recurrence and lengths in one C++ walk: exact float64 gradients, including gates so
    small that f / (f + i) would be 0/0 done naively."""
    from rnnkit.scan import minrnn_sequence

    G = 3 if lstm else 2
    u = torch.randn(3, 6, G * 4, dtype=torch.double)
    if lstm:
        u[0, 1, :8] = -120.0  # both gates of a step vanish: the mix must stay finite
    u.requires_grad_()
    h0 = torch.randn(3, 4, dtype=torch.double, requires_grad=True)
    lens = None if lengths is None else torch.tensor(lengths)
    out, h = minrnn_sequence(u, h0, lens, lstm)
    assert torch.isfinite(out).all() and torch.isfinite(h).all()
    assert torch.autograd.gradcheck(lambda u, h0: minrnn_sequence(u, h0, lens, lstm), (u, h0))


@pytest.mark.parametrize("cls", ["MinGRUCell", "MinLSTMCell"])
def test_fused_min_rnn_kernel_float32_equals_the_step_loop(cls, kernels):
    """The float32 kernel (vectorised: H = 37 is two 16-lane blocks and a tail) against the cells' own step in
    float64, outputs, state and gradients, with lengths and gates far in both tails."""
    from rnnkit import cells
    from rnnkit.scan import minrnn_sequence

    cell = getattr(cells, cls)(1, 37)
    B, T, H, G = 3, 9, 37, cell.gates
    u = 3 * torch.randn(B, T, G * H, dtype=torch.double)
    u[0, 2] = -120.0  # every gate vanishes (minLSTM: f / (f + i) would be 0/0)
    u[1, 3] = 60.0
    h0, lens = torch.randn(B, H, dtype=torch.double), torch.tensor([T, 4, 0])
    d_out, d_h = torch.randn(B, T, H, dtype=torch.double), torch.randn(B, H, dtype=torch.double)

    def reference(u, h0):
        h, outs = h0, []
        for t in range(T):
            new, _ = cell.recur(u[:, t], (h,), {})
            live = (t < lens)[:, None]
            h = torch.where(live, new, h)
            outs.append(torch.where(live, new, 0.0))
        return torch.stack(outs, 1), h

    results = []
    for dtype in (torch.float32, torch.double):
        leaves = [t.to(dtype).requires_grad_() for t in (u, h0)]
        if dtype == torch.float32:
            out, h = minrnn_sequence(*leaves, lens, lstm=G == 3)
        else:
            out, h = reference(*leaves)
        ((out * d_out.to(dtype)).sum() + (h * d_h.to(dtype)).sum()).backward()
        results.append([out, h, *(t.grad for t in leaves)])
    for got, expect in zip(*results):
        assert got.dtype == torch.float32
        torch.testing.assert_close(got.double(), expect, atol=1e-5, rtol=1e-4)
