"""Cells: float64 gradcheck of every reference step, torch.nn parity of the standard cells, init options."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from rnnkit import CELLS, Cell, CellInit, Recurrent, cell_class, register_cell
from rnnkit.cells import GRUCell, LayerNormLSTMCell, LSTMCell, MinGRUCell, MinLSTMCell, ReLURNNCell, RNNCell

CLASSES = [RNNCell, ReLURNNCell, LSTMCell, GRUCell, LayerNormLSTMCell, MinGRUCell, MinLSTMCell]
B, I, H = 3, 4, 5


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.kind)
def test_reference_step_passes_float64_gradcheck(cls):
    cell = cls(I, H).double()
    names = list(cell.params())
    x = torch.randn(B, I, dtype=torch.double, requires_grad=True)
    state = tuple(torch.randn(B, H, dtype=torch.double, requires_grad=True) for _ in range(cell.num_states))
    params = [p.detach().clone().requires_grad_() for p in cell.params().values()]
    n_state = len(state)

    def step(x, *rest):
        s, p = rest[:n_state], dict(zip(names, rest[n_state:]))
        y, new = cell.step(x, tuple(s), p)
        return (y, *new)

    assert torch.autograd.gradcheck(step, (x, *state, *params))


@pytest.mark.parametrize(
    ("cls", "torch_cls", "kw"),
    [
        (RNNCell, nn.RNNCell, {"nonlinearity": "tanh"}),
        (ReLURNNCell, nn.RNNCell, {"nonlinearity": "relu"}),
        (LSTMCell, nn.LSTMCell, {}),
        (GRUCell, nn.GRUCell, {}),
    ],
)
def test_standard_cells_match_torch_cells(cls, torch_cls, kw):
    ref = torch_cls(I, H, **kw)
    cell = cls(I, H)
    cell.load_state_dict(ref.state_dict())
    x = torch.randn(B, I)
    state = tuple(torch.randn(B, H) for _ in range(cell.num_states))
    y, new = cell(x, state)
    expect = ref(x, state if cell.num_states == 2 else state[0])
    expect = expect if isinstance(expect, tuple) else (expect,)
    torch.testing.assert_close(y, expect[0])
    for a, b in zip(new, expect):
        torch.testing.assert_close(a, b)


def test_default_init_is_torch_uniform():
    cell = LSTMCell(I, 100)
    bound = 1 / math.sqrt(100)
    for p in cell.parameters():
        assert p.abs().max() <= bound
        assert p.abs().max() > 0.9 * bound


def test_layernorm_gains_start_at_one_and_biases_at_zero():
    cell = LayerNormLSTMCell(I, H)
    for name in ("ln_ih_weight", "ln_hh_weight", "ln_c_weight"):
        assert torch.all(getattr(cell, name) == 1)
    assert torch.all(cell.bias_ih == 0) and torch.all(cell.ln_c_bias == 0)


@pytest.mark.parametrize("cls", [LSTMCell, LayerNormLSTMCell, MinLSTMCell], ids=lambda c: c.kind)
def test_forget_bias_sets_the_summed_forget_gate_bias(cls):
    cell = cls(I, H, init=CellInit(forget_bias=1.0))
    gate, _ = cell.keep_gate
    total = cell.bias_ih.detach().clone()
    if hasattr(cell, "bias_hh"):
        total += cell.bias_hh.detach()
    torch.testing.assert_close(total[gate * H : (gate + 1) * H], torch.ones(H))


def test_chrono_init_spreads_keep_gate_bias_over_log_range():
    cell = LSTMCell(I, 200, init=CellInit(chrono=100))
    f = (cell.bias_ih + cell.bias_hh)[200:400].detach()
    i = (cell.bias_ih + cell.bias_hh)[:200].detach()
    assert f.min() >= 0 and f.max() <= math.log(99) + 1e-6
    assert f.std() > 0.5, "chrono biases must be spread, not constant"
    torch.testing.assert_close(i, -f)
    gru = GRUCell(I, 50, init=CellInit(chrono=30))
    z = (gru.bias_ih + gru.bias_hh)[50:100].detach()
    assert z.min() >= 0
    mingru = MinGRUCell(I, 50, init=CellInit(chrono=30))
    assert mingru.bias_ih[:50].max() <= 0, "minGRU keeps with 1 - z: its z bias is negative"


def test_orthogonal_recurrent_init_per_gate():
    cell = GRUCell(I, H, init=CellInit(orthogonal=True))
    for k in range(3):
        block = cell.weight_hh[k * H : (k + 1) * H].detach()
        torch.testing.assert_close(block @ block.T, torch.eye(H), atol=1e-5, rtol=0)


def test_init_options_survive_into_a_layer():
    layer = Recurrent("lstm", I, H, num_layers=2, init=CellInit(forget_bias=2.0))
    for k in range(2):
        total = getattr(layer, f"bias_ih_l{k}") + getattr(layer, f"bias_hh_l{k}")
        torch.testing.assert_close(total[H : 2 * H].detach(), torch.full((H,), 2.0))


@pytest.mark.parametrize(
    ("cls", "init", "match"),
    [
        (GRUCell, CellInit(forget_bias=1.0), "forget_bias applies to LSTM-family"),
        (RNNCell, CellInit(chrono=10), "chrono init needs a gated cell"),
        (MinGRUCell, CellInit(orthogonal=True), "needs a recurrent weight"),
    ],
)
def test_init_options_that_do_not_apply_are_refused(cls, init, match):
    with pytest.raises(ValueError, match=match):
        cls(I, H, init=init)


def test_cell_init_validates_itself():
    with pytest.raises(ValueError, match="chrono"):
        CellInit(chrono=2)
    with pytest.raises(ValueError, match="not both"):
        CellInit(chrono=10, forget_bias=1.0)
    with pytest.raises(ValueError, match="bias=False"):
        LSTMCell(I, H, bias=False, init=CellInit(forget_bias=1.0))


def test_standalone_cell_checks_its_input():
    with pytest.raises(ValueError, match=r"expected input \(B, 4\), got \(3, 7\)"):
        LSTMCell(I, H)(torch.randn(3, 7))


def test_registry_names_and_custom_cells():
    assert cell_class("LSTM") is LSTMCell
    with pytest.raises(ValueError, match="unknown cell 'lstn'"):
        cell_class("lstn")

    class Leaky(Cell):
        """h_t = tanh(W x_t + b) * 0.5 + 0.5 h_{t-1}: a toy custom cell."""

        kind = "leaky"

        def recur(self, u, state, p):
            h = 0.5 * torch.tanh(u) + 0.5 * state[0]
            return h, (h,)

        def param_shapes(self):
            return {"weight_ih": (self.hidden_size, self.input_size)}

    register_cell("leaky", Leaky)
    try:
        layer = Recurrent("leaky", I, H, num_layers=2)
        out, (h,) = layer(torch.randn(B, 6, I))
        assert out.shape == (B, 6, H) and h.shape == (2, B, H)
        assert layer.fused_mode is None
    finally:
        CELLS.pop("leaky")
    with pytest.raises(ValueError, match="expected a Cell subclass"):
        register_cell("bad", nn.Linear)


def test_rnn_cell_kind_follows_its_nonlinearity():
    assert RNNCell.kind == "rnn_tanh" and ReLURNNCell.kind == "rnn_relu"  # class level: the registry names
    for cell, want in [
        (RNNCell(I, H), "rnn_tanh"),
        (RNNCell(I, H, nonlinearity="relu"), "rnn_relu"),
        (ReLURNNCell(I, H), "rnn_relu"),
        (ReLURNNCell(I, H, nonlinearity="tanh"), "rnn_tanh"),
    ]:
        assert cell.kind == want and cell.fused_mode == want
        assert cell.spawn(7).kind == want
        again = cell_class(cell.kind)(I, H, **cell.extra_options())
        assert again.kind == want
    layer = Recurrent("rnn", I, H, cell_options={"nonlinearity": "relu"})
    assert layer.cell_kind == "rnn_relu" and layer.fused_mode == "rnn_relu"
    assert repr(layer).startswith("Recurrent(rnn_relu, ")


class _ShiftedRecur(LSTMCell):
    """An LSTM whose output is shifted by a constant: not what torch.lstm computes."""

    def recur(self, u, state, p):
        h, (_, c) = super().recur(u, state, p)
        return h + 0.25, (h + 0.25, c)


class _ScaledProject(LSTMCell):
    def project(self, x, p):
        return 2.0 * super().project(x, p)


class _NoisyStep(GRUCell):
    def step(self, x, state, p=None):
        y, (h,) = super().step(x, state, p)
        return y + 1.0, (h + 1.0,)


@pytest.mark.parametrize("cls", [_ShiftedRecur, _ScaledProject, _NoisyStep], ids=lambda c: c.__name__)
def test_a_subclass_that_changes_the_equations_is_not_fused(cls):
    layer = Recurrent(cls, I, H, num_layers=2)
    assert layer.fused_mode is None, "torch's kernel would ignore the overridden method"
    assert layer.cells[0].fused_kernel is None and layer.cells[0].fused_mode is not None
    ref = Recurrent(cls, I, H, num_layers=2, impl="reference")
    ref.load_state_dict(layer.state_dict())
    torch_cls = nn.GRU if issubclass(cls, GRUCell) else nn.LSTM
    module = torch_cls(I, H, 2, batch_first=True)
    module.load_state_dict(layer.state_dict())
    x = torch.randn(B, 6, I)
    out = layer(x)[0]
    torch.testing.assert_close(out, ref(x)[0])
    if cls is not _NoisyStep:  # forward never calls step(); step() is checked below
        assert not torch.allclose(out, module(x)[0], atol=1e-3)
    one = Recurrent(cls, I, H)
    torch.testing.assert_close(one.step(x[:, 0])[0], one.cells[0](x[:, 0])[0])  # step() runs the cell's own
    with pytest.raises(ValueError, match=rf"impl='fused'.*{cls.__name__} overrides"):
        Recurrent(cls, I, H, impl="fused")
    with pytest.raises(ValueError, match=rf"{cls.__name__} overrides"):
        layer.to_torch()


def test_a_subclass_that_redeclares_its_kernel_stays_fused():
    class Logged(LSTMCell):
        fused_mode = "lstm"  # the author vouches: recur below still computes torch.lstm

        def recur(self, u, state, p):
            return super().recur(u, state, p)

    class Renamed(LSTMCell):
        kind = "my_lstm"  # only metadata changes

    assert Recurrent(Logged, I, H).fused_mode == "lstm"
    assert Recurrent(Renamed, I, H).fused_mode == "lstm"
    assert Recurrent(ReLURNNCell, I, H, impl="fused").fused_mode == "rnn_relu"
