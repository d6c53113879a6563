"""The Cell protocol: one timestep of a recurrent network.

A cell maps ``(x_t, state) -> (y_t, state)``. It is split in two halves so that a layer can do the input half for
every timestep in one matrix product and only loop over the recurrent half:

* ``project(x, p)``: the input projection ``x W_ih^T + b_ih``, for ``(B, F)`` or ``(B, T, F)``;
* ``recur(u_t, state, p)``: the rest of the step, given the projected input ``u_t`` of shape ``(B, G*H)``.

Parameters are passed in explicitly as a mapping ``p`` (name -> tensor). A standalone cell owns its parameters
(named as torch.nn's ``LSTMCell``: ``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh``) and passes its own; inside a
:class:`~rnnkit.Recurrent` the layer registers the same parameter objects under torch.nn's layer names
(``weight_ih_l0_reverse``) and passes those, while the cell, not a submodule, supplies the equations and stays usable
on its own. That is what lets state_dicts interchange with ``torch.nn.LSTM``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

State = tuple[Tensor, ...]
Params = Mapping[str, Tensor]


@dataclass(frozen=True)
class CellInit:
    """Initialisation options that decide how long a cell remembers at the start of training.

    Attributes:
        forget_bias: LSTM-family cells: the forget-gate bias (``b_ih + b_hh``) starts at this value (Jozefowicz et
            al. 2015 recommend 1.0; Keras' ``unit_forget_bias``). ``None`` keeps torch.nn's uniform init.
        orthogonal: recurrent weights start orthogonal, one ``(H, H)`` block per gate (Saxe et al. 2014).
        chrono: chrono initialisation (Tallec & Ollivier 2018) for an expected dependency range of up to ``chrono``
            steps: the keep-gate bias is ``log U(1, chrono - 1)`` (the input gate gets its negative for LSTMs).
    """

    forget_bias: float | None = None
    orthogonal: bool = False
    chrono: int | None = None

    def __post_init__(self) -> None:
        if self.chrono is not None and self.chrono < 3:
            raise ValueError(f"CellInit(chrono={self.chrono}): chrono is the longest expected dependency, need >= 3")
        if self.chrono is not None and self.forget_bias is not None:
            raise ValueError("CellInit: give forget_bias or chrono, not both (both set the forget-gate bias)")


class Cell(nn.Module):
    """Base class of all cells. Subclasses set the class attributes and write ``project``/``recur``.

    Class attributes:
        kind: registry name (``"lstm"``).
        num_states: tensors in the state tuple (2 for LSTM's ``(h, c)``, else 1).
        gates: the input projection has ``gates * H`` features.
        fused_mode: the torch kernel that computes exactly this cell (``"lstm"``, ``"gru"``, ``"rnn_tanh"``,
            ``"rnn_relu"``) or ``None``. It vouches for the equations of the class that sets it: a subclass that
            redefines one of :attr:`FUSED_REPLACES` without setting it again is not fused (see :attr:`fused_kernel`).
        keep_gate: ``(block, sign)`` of the gate whose bias decides memory length (``forget_bias`` / ``chrono``), or
            ``None``; ``input_gate`` the block that chrono init sets to the negative of it.
        gate_names: the sigmoid gates (values in ``[0, 1]``) among what :meth:`recur_gates` reports.
    """

    kind: ClassVar[str] = ""
    num_states: ClassVar[int] = 1
    gates: ClassVar[int] = 1
    fused_mode: ClassVar[str | None] = None
    keep_gate: ClassVar[tuple[int, float] | None] = None
    input_gate: ClassVar[int | None] = None
    forget_bias_ok: ClassVar[bool] = False
    gate_names: ClassVar[tuple[str, ...]] = ()
    #: what torch's kernel computes in place of the cell's own methods (the parameter layout included)
    FUSED_REPLACES: ClassVar[tuple[str, ...]] = ("param_shapes", "project", "recur", "recur_gates", "step", "scan")

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, init: CellInit | None = None) -> None:
        super().__init__()
        if input_size < 1 or hidden_size < 1:
            raise ValueError(
                f"{type(self).__name__}: input_size and hidden_size must be >= 1, got {input_size}, {hidden_size}"
            )
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        self.init = init or CellInit()
        self._check_init()
        for name, shape in self.param_shapes().items():
            self.register_parameter(name, nn.Parameter(torch.empty(shape)))
        self.reset_parameters()

    # ---- what a subclass describes ---------------------------------------------------------------------------
    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Parameter names and shapes, in torch.nn's order (``weight_ih, weight_hh, bias_ih, bias_hh``)."""
        G, H, In = self.gates * self.hidden_size, self.hidden_size, self.input_size
        shapes: dict[str, tuple[int, ...]] = {"weight_ih": (G, In), "weight_hh": (G, H)}
        if self.bias:
            shapes |= {"bias_ih": (G,), "bias_hh": (G,)}
        return shapes

    def extra_options(self) -> dict[str, Any]:
        """Constructor options beyond (input_size, hidden_size, bias, init), so the cell can be re-created."""
        return {}

    def project(self, x: Tensor, p: Params) -> Tensor:
        """Input half of the step: ``x W_ih^T + b_ih``; ``(..., F) -> (..., G*H)``."""
        return nn.functional.linear(x, p["weight_ih"], p.get("bias_ih"))

    def recur(self, u: Tensor, state: State, p: Params) -> tuple[Tensor, State]:
        """Recurrent half of the step: ``u (B, G*H)``, state tuple of ``(B, H)`` -> ``(y (B, H), state)``."""
        raise NotImplementedError

    def recur_gates(self, u: Tensor, state: State, p: Params) -> tuple[Tensor, State, dict[str, Tensor]]:
        """:meth:`recur` that also returns its inner activations by name, each ``(B, H)`` (``rnnkit.inspect``).

        Gated cells compute their step here and ``recur`` calls it, so the activations are the very values of the
        step. Cells without gates return ``{}``.
        """
        y, state = self.recur(u, state, p)
        return y, state, {}

    def scan(self, x: Tensor, state: State, p: Params, lengths: Tensor | None) -> tuple[Tensor, State] | None:
        """Optional fast whole-sequence path over raw inputs ``x (B, T, F)``; ``None`` means "unroll recur()"."""
        return None

    # ---- shared behaviour ------------------------------------------------------------------------------------
    @property
    def fused_kernel(self) -> str | None:
        """The torch kernel that may run this cell: ``fused_mode``, or ``None`` if a subclass changed its equations."""
        return None if self.fused_mode is None or self.kernel_overrides() else self.fused_mode

    def kernel_overrides(self) -> list[str]:
        """``Class.method`` for each of :attr:`FUSED_REPLACES` redefined below the class that set ``fused_mode``.

        torch's kernel would silently skip those methods, so a cell with any is not fused.
        """
        mro = type(self).__mro__
        declarer = next(c for c in mro if "fused_mode" in vars(c))
        found = []
        for name in self.FUSED_REPLACES:
            owner = next(c for c in mro if name in vars(c))
            if not issubclass(declarer, owner):  # defined in a subclass of (or a mixin beside) the declarer
                found.append(f"{owner.__name__}.{name}")
        return found

    def params(self) -> dict[str, Tensor]:
        """This cell's own parameters as the mapping ``project``/``recur`` take."""
        return dict(self.named_parameters(recurse=False))

    def step(self, x: Tensor, state: State, p: Params | None = None) -> tuple[Tensor, State]:
        """One timestep: ``x (B, F)``, state tuple of ``(B, H)`` -> ``(y (B, H), state)``."""
        p = self.params() if p is None else p
        return self.recur(self.project(x, p), state, p)

    def zero_state(self, batch_size: int, *, like: Tensor) -> State:
        """The all-zero state, each ``(B, H)``, on ``like``'s device and dtype."""
        z = like.new_zeros(batch_size, self.hidden_size)
        return tuple(z.clone() if k else z for k in range(self.num_states))

    def forward(self, x: Tensor, state: State | Tensor | None = None) -> tuple[Tensor, State]:
        """Standalone use, like ``torch.nn.LSTMCell``: ``x (B, F)`` -> ``(y (B, H), state)``."""
        if x.dim() != 2 or x.shape[1] != self.input_size:
            raise ValueError(
                f"{type(self).__name__}(input_size={self.input_size}): expected input (B, {self.input_size}), "
                f"got {tuple(x.shape)}"
            )
        if state is None:
            state = self.zero_state(x.shape[0], like=x)
        elif isinstance(state, Tensor):
            state = (state,)
        return self.step(x, tuple(state))

    def spawn(self, input_size: int) -> Cell:
        """A fresh cell of the same kind and options for another layer or direction."""
        return type(self)(input_size, self.hidden_size, bias=self.bias, init=self.init, **self.extra_options())

    def reset_parameters(self) -> None:
        """torch.nn's init (uniform in ``±1/sqrt(H)``), then the memory options of :class:`CellInit`."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        with torch.no_grad():
            for param in self.parameters(recurse=False):
                param.uniform_(-bound, bound)
            self._reset_special()
            self._apply_init()

    def _reset_special(self) -> None:
        """Hook for parameters that are not uniform-initialised (layer-norm gains)."""

    def _check_init(self) -> None:
        init, name = self.init, type(self).__name__
        if init.forget_bias is not None and not self.forget_bias_ok:
            raise ValueError(f"{name}: forget_bias applies to LSTM-family cells (lstm, layernorm_lstm, minlstm)")
        if init.chrono is not None and self.keep_gate is None:
            raise ValueError(f"{name}: chrono init needs a gated cell (lstm, gru, layernorm_lstm, mingru, minlstm)")
        if (init.forget_bias is not None or init.chrono is not None) and not self.bias:
            raise ValueError(f"{name}: forget_bias/chrono set a bias, but the cell was built with bias=False")
        if init.orthogonal and "weight_hh" not in self.param_shapes():
            raise ValueError(f"{name}: orthogonal init needs a recurrent weight; this cell has none")

    def _bias_names(self) -> tuple[str, str | None]:
        names = self.param_shapes()
        first = "bias_ih" if "bias_ih" in names else "bias"
        return first, ("bias_hh" if "bias_hh" in names else None)

    def _apply_init(self) -> None:
        H, init = self.hidden_size, self.init
        if init.orthogonal:
            w = self.weight_hh
            for k in range(self.gates):
                nn.init.orthogonal_(w[k * H : (k + 1) * H])
        if self.keep_gate is None or (init.forget_bias is None and init.chrono is None):
            return
        first, second = self._bias_names()
        b1 = getattr(self, first)
        b2 = getattr(self, second) if second else None
        gate, sign = self.keep_gate
        block = slice(gate * H, (gate + 1) * H)
        if init.chrono is not None:
            value = torch.log(torch.empty(H).uniform_(1.0, init.chrono - 1.0)).to(b1)
        else:
            value = torch.full((H,), float(init.forget_bias), dtype=b1.dtype)
        b1[block] = sign * value
        if b2 is not None:
            b2[block] = 0.0
        if init.chrono is not None and self.input_gate is not None:
            ib = slice(self.input_gate * H, (self.input_gate + 1) * H)
            b1[ib] = -value
            if b2 is not None:
                b2[ib] = 0.0
