"""Recurrent: parity with torch.nn, padding, carried state, streaming step."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnkit import Recurrent

ALL_CELLS = ["rnn_tanh", "rnn_relu", "lstm", "gru", "layernorm_lstm", "mingru", "minlstm"]
STANDARD = [
    ("rnn_tanh", nn.RNN, {"nonlinearity": "tanh"}),
    ("rnn_relu", nn.RNN, {"nonlinearity": "relu"}),
    ("lstm", nn.LSTM, {}),
    ("gru", nn.GRU, {}),
]
B, T, I, H = 4, 7, 5, 6
TOL = {"atol": 1e-5, "rtol": 1e-5}


def _torch_run(module: nn.RNNBase, x, state, lengths):
    hx = state if isinstance(module, nn.LSTM) else state[0]
    if lengths is None:
        out, s = module(x, hx)
    else:
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, s = module(packed, hx)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    return out, (s if isinstance(s, tuple) else (s,))


def _grads(run, module, x, state, weights):
    x = x.clone().requires_grad_()
    state = tuple(s.clone().requires_grad_() for s in state)
    out, s = run(x, state)
    loss = (out * weights[0]).sum() + sum((a * w).sum() for a, w in zip(s, weights[1:]))
    loss.backward()
    named = {n: p.grad.clone() for n, p in module.named_parameters()}
    module.zero_grad()
    return out.detach(), tuple(a.detach() for a in s), x.grad, tuple(a.grad for a in state), named


@pytest.mark.parametrize(("kind", "torch_cls", "kw"), STANDARD, ids=[s[0] for s in STANDARD])
@pytest.mark.parametrize("num_layers", [1, 2, 3])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("with_lengths", [False, True], ids=["full", "lengths"])
def test_fused_reference_and_torch_agree(kind, torch_cls, kw, num_layers, bidirectional, with_lengths):
    """Outputs, final states and every gradient: torch.nn == fused path == reference path (copied weights)."""
    module = torch_cls(I, H, num_layers, batch_first=True, bidirectional=bidirectional, **kw)
    fused = Recurrent.from_torch(module)
    ref = Recurrent(kind, I, H, num_layers, bidirectional, impl="reference")
    ref.load_state_dict(module.state_dict())
    assert fused.fused_mode == kind and ref.fused_mode is None
    D = 2 if bidirectional else 1
    x = torch.randn(B, T, I)
    state = tuple(0.5 * torch.randn(num_layers * D, B, H) for _ in range(fused.num_states))
    lengths = torch.tensor([7, 3, 5, 1]) if with_lengths else None
    weights = [torch.randn(B, T, D * H)] + [torch.randn(num_layers * D, B, H) for _ in state]

    expect = _grads(lambda a, s: _torch_run(module, a, s, lengths), module, x, state, weights)
    for layer in (fused, ref):
        got = _grads(lambda a, s, layer=layer: layer(a, s, lengths), layer, x, state, weights)
        torch.testing.assert_close(got[0], expect[0], **TOL)
        for a, b in zip(got[1] + got[3] + (got[2],), expect[1] + expect[3] + (expect[2],)):
            torch.testing.assert_close(a, b, **TOL)
        assert got[4].keys() == expect[4].keys()
        for name in expect[4]:
            torch.testing.assert_close(got[4][name], expect[4][name], **TOL, msg=name)


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn_tanh"])
def test_state_dicts_interchange(kind):
    a = Recurrent(kind, I, H, 2, True)
    b = Recurrent(kind, I, H, 2, True, impl="reference")
    b.load_state_dict(a.state_dict())
    x = torch.randn(B, T, I)
    torch.testing.assert_close(a(x)[0], b(x)[0], **TOL)
    back = a.to_torch()
    assert set(back.state_dict()) == set(a.state_dict())
    torch.testing.assert_close(back(x)[0], a(x)[0], **TOL)


def _per_sequence(layer, x, lengths):
    """Run each sequence alone, unpadded: the ground truth for padding."""
    outs, states = [], []
    for b, n in enumerate(lengths.tolist()):
        out, s = layer(x[b : b + 1, :n])
        outs.append(out[0])
        states.append(s)
    return outs, states


@pytest.mark.parametrize("kind", ALL_CELLS)
@pytest.mark.parametrize("impl", ["auto", "reference"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
def test_padded_batch_equals_each_sequence_alone(kind, impl, bidirectional):
    layer = Recurrent(kind, I, H, 2, bidirectional, impl=impl).eval()
    x = torch.randn(B, T, I)
    lengths = torch.tensor([7, 2, 5, 1])
    out, state = layer(x, lengths=lengths)
    alone, alone_states = _per_sequence(layer, x, lengths)
    for b, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(out[b, :n], alone[b], **TOL)
        assert torch.all(out[b, n:] == 0)
        for s, s_alone in zip(state, alone_states[b]):
            torch.testing.assert_close(s[:, b], s_alone[:, 0], **TOL)


@pytest.mark.parametrize("kind", ALL_CELLS)
@settings(max_examples=8, deadline=None)
@given(data=st.data())
def test_padded_content_changes_nothing(kind, data):
    lengths = torch.tensor(data.draw(st.lists(st.integers(0, T), min_size=1, max_size=4), label="lengths"))
    bidirectional = data.draw(st.booleans(), label="bidirectional")
    impl = data.draw(st.sampled_from(["auto", "reference"]), label="impl")
    torch.manual_seed(1)
    layer = Recurrent(kind, I, H, 2, bidirectional, impl=impl)
    n = lengths.shape[0]
    x = torch.randn(n, T, I)
    pad = torch.arange(T)[None, :] >= lengths[:, None]  # (n, T)
    x2 = x.clone()
    x2[pad] = 100 * torch.randn(int(pad.sum()), I)
    results = []
    for inp in (x, x2):
        inp = inp.clone().requires_grad_()
        out, state = layer(inp, lengths=lengths)
        (out.sum() + sum(s.sum() for s in state)).backward()
        grads = [p.grad.clone() for p in layer.parameters()]
        layer.zero_grad()
        results.append((out, state, grads, inp.grad))
        assert torch.all(out[pad] == 0), "padded outputs must be zero"
        assert torch.all(inp.grad[pad] == 0), "padded inputs must get no gradient"
    (o1, s1, g1, _), (o2, s2, g2, _) = results
    torch.testing.assert_close(o1, o2, **TOL)
    for a, b in zip(s1 + tuple(g1), s2 + tuple(g2)):
        torch.testing.assert_close(a, b, **TOL)


@pytest.mark.parametrize("kind", ALL_CELLS)
@pytest.mark.parametrize("impl", ["auto", "reference"])
def test_two_chunks_with_carried_state_equal_one_pass(kind, impl):
    layer = Recurrent(kind, I, H, 2, impl=impl)
    x = torch.randn(B, 12, I)
    whole, s_whole = layer(x)
    first, s = layer(x[:, :5])
    second, s = layer(x[:, 5:], s)
    torch.testing.assert_close(torch.cat([first, second], 1), whole, **TOL)
    for a, b in zip(s, s_whole):
        torch.testing.assert_close(a, b, **TOL)


@pytest.mark.parametrize("kind", ALL_CELLS)
def test_step_loop_equals_full_pass(kind):
    layer = Recurrent(kind, I, H, 3)
    x = torch.randn(B, T, I)
    state0 = tuple(0.3 * torch.randn(3, B, H) for _ in range(layer.num_states))
    full, s_full = layer(x, state0)
    state = state0
    for t in range(T):
        y, state = layer.step(x[:, t], state)
        torch.testing.assert_close(y, full[:, t], **TOL)
    for a, b in zip(state, s_full):
        torch.testing.assert_close(a, b, **TOL)


def test_step_without_state_starts_from_zero():
    layer = Recurrent("gru", I, H)
    x = torch.randn(B, I)
    y, _ = layer.step(x)
    torch.testing.assert_close(y, layer(x[:, None])[0][:, 0], **TOL)


def test_bidirectional_refuses_step():
    layer = Recurrent("lstm", I, H, bidirectional=True)
    with pytest.raises(ValueError, match="bidirectional layer cannot stream"):
        layer.step(torch.randn(B, I))


def test_dropout_between_layers_only_in_training():
    layer = Recurrent("lstm", I, H, 3, dropout=0.5)
    x = torch.randn(B, T, I)
    layer.train()
    a, b = layer(x)[0], layer(x)[0]
    assert not torch.allclose(a, b), "dropout must make two training passes differ"
    layer.eval()
    torch.testing.assert_close(layer(x)[0], layer(x)[0])
    ref = Recurrent("lstm", I, H, 3, dropout=0.5, impl="reference")
    ref.load_state_dict(layer.state_dict())
    ref.eval()
    torch.testing.assert_close(ref(x)[0], layer(x)[0], **TOL)
    ref.train()
    assert not torch.allclose(ref(x)[0], ref(x)[0])


def test_cell_instance_becomes_first_cell_and_is_spawned_for_the_rest():
    from rnnkit import LayerNormLSTMCell

    cell = LayerNormLSTMCell(I, H, eps=1e-3)
    w = cell.weight_ih.detach().clone()
    layer = Recurrent(cell, I, H, num_layers=2, bidirectional=True)
    assert layer.cells[0] is cell
    torch.testing.assert_close(layer.weight_ih_l0, w)
    assert all(c.eps == 1e-3 for c in layer.cells)
    assert layer.weight_ih_l1_reverse.shape == (4 * H, 2 * H)
    assert layer.ln_c_weight_l1_reverse.shape == (H,)


def test_zero_length_sequences_keep_their_state():
    for kind in ("lstm", "mingru", "layernorm_lstm"):
        layer = Recurrent(kind, I, H)
        x = torch.randn(3, T, I)
        state = tuple(torch.randn(1, 3, H) for _ in range(layer.num_states))
        out, new = layer(x, state, lengths=[0, 4, 0])
        assert torch.all(out[[0, 2]] == 0)
        for s, s0 in zip(new, state):
            torch.testing.assert_close(s[:, [0, 2]], s0[:, [0, 2]])
        all_empty, kept = layer(x, state, lengths=[0, 0, 0])
        assert torch.all(all_empty == 0)
        for s, s0 in zip(kept, state):
            torch.testing.assert_close(s, s0)


@pytest.mark.parametrize("kind", ["mingru", "minlstm"])
@pytest.mark.parametrize("scan", ["log", "sequential"])
def test_each_min_rnn_scan_equals_the_step_loop_with_lengths(kind, scan, request):
    if scan == "sequential":
        request.getfixturevalue("kernels")  # skips without a compiler; fails where the kernels are required
    layer = Recurrent(kind, I, H, 2, cell_options={"scan": scan})
    loop = Recurrent(kind, I, H, 2, impl="reference")
    loop.load_state_dict(layer.state_dict())
    x, lengths = torch.randn(B, T, I), torch.tensor([7, 3, 0, 5])
    state0 = (0.5 * torch.randn(2, B, H),)
    (out, (h,)), (ref, (h_ref,)) = layer(x, state0, lengths), loop(x, state0, lengths)
    torch.testing.assert_close(out, ref, **TOL)
    torch.testing.assert_close(h, h_ref, **TOL)
    with pytest.raises(ValueError, match="scan must be one of"):
        Recurrent(kind, I, H, cell_options={"scan": "fast"})


def test_a_given_cell_stays_usable_and_shares_the_layers_parameters():
    from rnnkit import LSTMCell

    cell = LSTMCell(I, H)
    layer = Recurrent(cell, I, H)
    assert set(layer.state_dict()) == set(nn.LSTM(I, H).state_dict()), "torch.nn names only"
    x = torch.randn(B, I)
    y, (_, c) = cell(x)
    y_layer, (_, c_layer) = layer.step(x)
    torch.testing.assert_close(y, y_layer)
    torch.testing.assert_close(c, c_layer[0])
    # a training step on the layer changes what the cell computes
    opt = torch.optim.SGD(layer.parameters(), lr=1.0)
    layer(torch.randn(B, T, I))[0].pow(2).sum().backward()
    opt.step()
    y2, _ = cell(x)
    assert not torch.allclose(y, y2)
    torch.testing.assert_close(y2, layer.step(x)[0])
    # still tied after a dtype move and after loading weights by assignment
    layer.double()
    assert cell.weight_ih is layer.weight_ih_l0 and cell.weight_ih.dtype == torch.double
    fresh = {k: torch.randn_like(v) for k, v in layer.state_dict().items()}
    layer.load_state_dict(fresh, assign=True)
    assert cell.weight_hh is layer.weight_hh_l0
    torch.testing.assert_close(cell(x.double())[0], layer.step(x.double())[0])


def test_a_given_cell_in_a_deep_bidirectional_layer_keeps_torch_names():
    from rnnkit import GRUCell

    cell = GRUCell(I, H)
    layer = Recurrent(cell, I, H, num_layers=2, bidirectional=True)
    module = nn.GRU(I, H, 2, batch_first=True, bidirectional=True)
    assert list(layer.state_dict()) == list(module.state_dict())
    module.load_state_dict(layer.state_dict())
    x = torch.randn(B, T, I)
    torch.testing.assert_close(layer(x)[0], module(x)[0], **TOL)
    for k, each in enumerate(layer.cells):  # every cell computes with the layer's own parameters
        own, mine = each.params(), layer.cell_params(k)
        assert own.keys() == mine.keys() and all(own[n] is mine[n] for n in own)
    assert cell(x[:, 0])[0].shape == (B, H)
