"""Recurrent: a cell unrolled over time — stacked, bidirectional, with lengths, an initial state and ``step()``."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .cells import Cell, CellInit, Params, State, cell_class
from .checks import check_input, check_lengths, check_state
from .fused import fused_forward
from .precision import autocast, check_precision
from .sequence_kernel import KERNEL_MODES, kernel_forward
from .sequence_kernel import available as kernel_available
from .stepping import fused_step

Impl = Literal["auto", "reference", "fused"]
_TORCH_MODES = {nn.LSTM: "lstm", nn.GRU: "gru"}


def reverse_padded(x: Tensor, lengths: Tensor | None) -> Tensor:
    """Reverse each sequence of ``x (B, T, ...)`` within its own length; padded positions stay where they are."""
    if lengths is None:
        return x.flip(1)
    B, T = x.shape[:2]
    t = torch.arange(T, device=x.device).expand(B, T)
    n = lengths.to(x.device)[:, None]
    idx = torch.where(t < n, n - 1 - t, t)  # (B, T)
    return x.gather(1, idx.view(B, T, *([1] * (x.dim() - 2))).expand_as(x))


def _overrides_message(cell: Cell) -> str:
    """Why torch's kernel cannot stand in for ``cell``: the methods of it that the kernel would skip."""
    return (
        f"{type(cell).__name__} overrides {', '.join(cell.kernel_overrides())}, which torch's {cell.fused_mode} "
        f"kernel would ignore"
    )


def unroll(cell: Cell, p: Params, u: Tensor, state: State, lengths: Tensor | None) -> tuple[Tensor, State]:
    """The reference path: loop ``cell.recur`` over projected inputs ``u (B, T, G*H)``.

    Past each sequence's end the state is held and the output is zero. Returns ``(y (B, T, H), state)``.
    """
    T = u.shape[1]
    valid = None
    if lengths is not None:
        valid = (torch.arange(T, device=u.device)[:, None] < lengths.to(u.device)[None, :]).unsqueeze(-1)  # (T, B, 1)
    outs = []
    for t in range(T):
        y, new = cell.recur(u[:, t], state, p)
        if valid is not None:
            m = valid[t]
            state = tuple(torch.where(m, n, s) for n, s in zip(new, state))
            y = y * m
        else:
            state = new
        outs.append(y)
    return torch.stack(outs, 1), state


class Recurrent(nn.Module):
    """A cell unrolled over time: ``forward(x (B, T, F), state, lengths) -> (output (B, T, D*H), state)``.

    Args:
        cell: a registry name (``"lstm"``, ``"gru"``, ``"rnn_tanh"``, ``"rnn_relu"``, ``"layernorm_lstm"``,
            ``"mingru"``, ``"minlstm"``), a :class:`Cell` subclass, or a :class:`Cell` instance (which becomes the
            first layer's forward cell and stays usable on its own: the layer registers the very same parameter
            objects under torch.nn's names, so training either trains both).
        input_size: ``F``, features per timestep.
        hidden_size: ``H``.
        num_layers: ``L`` stacked layers; layer ``k > 0`` reads the ``D*H`` outputs of layer ``k - 1``.
        bidirectional: ``D = 2``: a second stack reads each sequence backwards (within its length).
        dropout: dropout on the outputs of every layer but the last, in training mode (as torch.nn).
        impl: ``"auto"`` runs standard RNN/LSTM/GRU on torch's fused kernels and other cells on their fastest own
            path: minGRU/minLSTM on the parallel log-space scan (or its C++ walk on a CPU), the layer-norm LSTM on
            rnnkit's C++ kernel (``csrc/``, compiled on first use by ``rnnkit._ext``), falling back to the Python
            unroll where the kernels cannot be built; ``"reference"`` unrolls every cell step by step in Python
            (the readable oracle); ``"fused"`` demands the torch kernel. A subclass of a standard cell that
            redefines its equations (``recur``, ``project``, ``step`` ...) is never fused: under ``"auto"`` it runs
            its own code, under ``"fused"`` it is refused.
        bias, init, cell_options: passed to each cell (``cell_options`` e.g. ``{"eps": 1e-5}``).
        check_finite: also reject inputs and states holding NaN or inf (one extra reduction per call).
        precision: ``"fp32"``, ``"bf16"`` or ``"fp16"`` (CUDA): run ``forward``/``step`` under torch's autocast in
            that precision (:mod:`rnnkit.precision`); outputs and state come back in the input's dtype. Inside a
            ``torch.autocast`` block (the Trainer's ``precision``) the layer also accepts autocast's dtype as input.

    State is a tuple (LSTM ``(h, c)``, others ``(h,)``) of ``(L*D, B, H)`` tensors, ordered layer-major then
    direction as in torch.nn. Parameters are named as torch.nn's (``weight_ih_l0_reverse``) so state_dicts
    interchange with ``torch.nn.LSTM`` / ``GRU`` / ``RNN`` and between ``impl`` choices.
    """

    def __init__(
        self,
        cell: str | type[Cell] | Cell,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        impl: Impl = "auto",
        *,
        bias: bool = True,
        init: CellInit | None = None,
        cell_options: Mapping[str, Any] | None = None,
        check_finite: bool = False,
        precision: str = "fp32",
    ) -> None:
        super().__init__()
        name = f"Recurrent(input_size={input_size})"
        check_precision(precision, name=f"{name}: precision")
        self.precision = precision
        if num_layers < 1:
            raise ValueError(f"{name}: num_layers must be >= 1, got {num_layers}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"{name}: dropout must be in [0, 1), got {dropout}")
        if impl not in ("auto", "reference", "fused"):
            raise ValueError(f"{name}: impl must be 'auto', 'reference' or 'fused', got {impl!r}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bidirectional, self.dropout, self.impl = bidirectional, float(dropout), impl
        self.num_directions = 2 if bidirectional else 1
        self.check_finite = check_finite
        self._cells: list[Cell] = []
        self._names: list[dict[str, str]] = []  # per (layer, direction): cell's param name -> layer's param name
        for k in range(num_layers):
            in_k = input_size if k == 0 else self.num_directions * hidden_size
            for d in range(self.num_directions):
                c = self._make_cell(cell, in_k, hidden_size, bias, init, cell_options, first=(k == 0 and d == 0))
                self._adopt(c, f"_l{k}" + ("_reverse" if d else ""))
        first = self._cells[0]
        self.cell_kind, self.num_states, self.bias = first.kind, first.num_states, first.bias
        if impl == "fused":
            if first.fused_mode is None:
                raise ValueError(f"{name}: impl='fused' needs rnn/lstm/gru; {type(first).__name__} has no torch kernel")
            if first.fused_kernel is None:
                raise ValueError(
                    f"{name}: impl='fused' cannot run this cell: {_overrides_message(first)}; use impl='auto' or "
                    f"'reference' to run its own code (or set fused_mode on {type(first).__name__} if it still "
                    f"computes exactly that kernel)"
                )
        self.fused_mode: str | None = first.fused_kernel if impl != "reference" else None
        self._flat_names = [n for names in self._names for n in names.values()]

    # ---- construction ------------------------------------------------------------------------------------
    @staticmethod
    def _make_cell(
        cell: str | type[Cell] | Cell,
        input_size: int,
        hidden_size: int,
        bias: bool,
        init: CellInit | None,
        options: Mapping[str, Any] | None,
        first: bool,
    ) -> Cell:
        if isinstance(cell, Cell):
            if cell.hidden_size != hidden_size or (first and cell.input_size != input_size):
                raise ValueError(
                    f"Recurrent: the given {type(cell).__name__}(input_size={cell.input_size}, "
                    f"hidden_size={cell.hidden_size}) does not match input_size={input_size}, hidden_size={hidden_size}"
                )
            return cell if first else cell.spawn(input_size)
        cls = cell_class(cell) if isinstance(cell, str) else cell
        if not (isinstance(cls, type) and issubclass(cls, Cell)):
            raise ValueError(f"Recurrent: cell must be a name, a Cell subclass or a Cell, got {cell!r}")
        return cls(input_size, hidden_size, bias=bias, init=init, **dict(options or {}))

    def _adopt(self, cell: Cell, suffix: str) -> None:
        """Register the cell's parameters under torch.nn's layer names too: the same objects, shared.

        The cell keeps them (a cell given by the user stays a working module) but is not a submodule, so the
        layer's state_dict holds torch.nn's names only.
        """
        names = {}
        for pname, param in cell.named_parameters(recurse=False):
            self.register_parameter(pname + suffix, param)
            names[pname] = pname + suffix
        self._cells.append(cell)
        self._names.append(names)

    def _retie(self) -> None:
        """Point each cell back at the layer's parameter objects after something replaced them on the layer."""
        for cell, names in zip(self._cells, self._names):
            for short, long in names.items():
                cell._parameters[short] = self._parameters[long]

    def _apply(self, fn: Any, recurse: bool = True) -> Recurrent:
        # .to()/.double() may swap in new Parameter objects (torch.__future__ flags); keep the cells on them.
        super()._apply(fn, recurse)
        self._retie()
        return self

    def _load_from_state_dict(self, state_dict: Mapping[str, Any], prefix: str, *args: Any) -> None:
        # load_state_dict(assign=True) replaces the layer's Parameter objects; keep the cells on them.
        super()._load_from_state_dict(state_dict, prefix, *args)
        self._retie()

    @classmethod
    def from_torch(cls, module: nn.RNNBase) -> Recurrent:
        """A Recurrent with the weights of a ``torch.nn.RNN/LSTM/GRU`` (the result is batch-first regardless)."""
        if isinstance(module, nn.LSTM) and module.proj_size:
            raise ValueError("Recurrent.from_torch: LSTM with proj_size > 0 is not supported")
        if isinstance(module, nn.RNN):
            kind = "rnn_" + module.nonlinearity
        elif type(module) in _TORCH_MODES:
            kind = _TORCH_MODES[type(module)]
        else:
            raise ValueError(f"Recurrent.from_torch: expected torch.nn.RNN, LSTM or GRU, got {type(module).__name__}")
        layer = cls(
            kind,
            module.input_size,
            module.hidden_size,
            module.num_layers,
            module.bidirectional,
            module.dropout,
            bias=module.bias,
        )
        p = next(module.parameters())
        layer.to(device=p.device, dtype=p.dtype).load_state_dict(module.state_dict())
        return layer

    def to_torch(self) -> nn.RNNBase:
        """The equivalent batch-first ``torch.nn.RNN/LSTM/GRU`` with a copy of these weights."""
        first = self._cells[0]
        if first.fused_mode is None:
            raise ValueError(f"Recurrent.to_torch: {type(first).__name__} has no torch.nn equivalent")
        mode = first.fused_kernel
        if mode is None:
            raise ValueError(f"Recurrent.to_torch: no torch.nn equivalent: {_overrides_message(first)}")
        kwargs: dict[str, Any] = dict(
            num_layers=self.num_layers,
            bias=self.bias,
            batch_first=True,
            dropout=self.dropout,
            bidirectional=self.bidirectional,
        )
        if mode == "lstm":
            module: nn.RNNBase = nn.LSTM(self.input_size, self.hidden_size, **kwargs)
        elif mode == "gru":
            module = nn.GRU(self.input_size, self.hidden_size, **kwargs)
        else:
            module = nn.RNN(self.input_size, self.hidden_size, nonlinearity=mode[4:], **kwargs)
        p = self._param(0, "weight_ih")
        module.to(device=p.device, dtype=p.dtype).load_state_dict(self.state_dict())
        return module

    # ---- introspection -----------------------------------------------------------------------------------
    @property
    def output_size(self) -> int:
        """Features per timestep of the output: ``D * H``."""
        return self.num_directions * self.hidden_size

    @property
    def cells(self) -> tuple[Cell, ...]:
        """The cells, one per (layer, direction) in state order; each holds the layer's parameters of its position
        (the same objects, under the cell's names), so ``layer.cells[0](x)`` is the first layer's step."""
        return tuple(self._cells)

    def cell_params(self, index: int) -> dict[str, Tensor]:
        """The parameters of cell ``index`` under the cell's own names (``weight_ih`` ...)."""
        return {short: getattr(self, long) for short, long in self._names[index].items()}

    def _param(self, index: int, short: str) -> Tensor:
        return getattr(self, self._names[index][short])

    def initial_state(self, batch_size: int, *, like: Tensor | None = None) -> State:
        """The zero state: a tuple of ``(L*D, B, H)`` tensors on the parameters' (or ``like``'s) device and dtype."""
        ref = self._param(0, "weight_ih") if like is None else like
        z = ref.new_zeros(self.num_layers * self.num_directions, batch_size, self.hidden_size)
        return tuple(z.clone() if k else z for k in range(self.num_states))

    def extra_repr(self) -> str:
        s = f"{self.cell_kind}, {self.input_size}, {self.hidden_size}, num_layers={self.num_layers}"
        if self.bidirectional:
            s += ", bidirectional=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        s += f", impl={self.impl!r}" + (f" (fused {self.fused_mode})" if self.fused_mode else "")
        return s + (f", precision={self.precision!r}" if self.precision != "fp32" else "")

    # ---- running -----------------------------------------------------------------------------------------
    def forward(
        self, x: Tensor, state: State | Tensor | None = None, lengths: Tensor | Sequence[int] | None = None
    ) -> tuple[Tensor, State]:
        """Unroll over ``x (B, T, F)``.

        Args:
            x: batch-first input.
            state: initial state, tuple of ``(L*D, B, H)`` (a bare tensor is accepted for ``(h,)`` cells);
                zeros when omitted.
            lengths: ``(B,)`` valid steps of each right-padded sequence, each in ``0..T``.

        Returns:
            ``output (B, T, D*H)`` (zero past each length) and the state after each sequence's last valid step.
        """
        if self.precision != "fp32":
            with autocast(self.precision, x.device):
                out, new = self._forward(x, state, lengths)
            return out.to(x.dtype), tuple(s.to(x.dtype) for s in new)
        return self._forward(x, state, lengths)

    def _forward(
        self, x: Tensor, state: State | Tensor | None, lengths: Tensor | Sequence[int] | None
    ) -> tuple[Tensor, State]:
        weight = self._param(0, "weight_ih")
        check_input(self, x, weight, time_axis=True)
        B, T = x.shape[0], x.shape[1]
        lengths = check_lengths(self, lengths, B, T)
        state = self.initial_state(B, like=x) if state is None else check_state(self, state, B, x)
        if self.fused_mode is not None:
            return self._fused(x, state, lengths)
        return self._reference(x, state, lengths)

    def _fused(self, x: Tensor, state: State, lengths: Tensor | None) -> tuple[Tensor, State]:
        assert self.fused_mode is not None
        if self.impl == "auto" and (lengths is not None or self.fused_mode in KERNEL_MODES) and kernel_available(x):
            # rnnkit's sequence kernel: the GRU and RNN always (torch has no fast CPU kernel for them), every cell
            # with lengths (torch's packed path is a slow per-step loop); see rnnkit.sequence_kernel
            return self._run_fused(x, state, lengths, kernel_forward)
        if lengths is not None and int(lengths.min()) == 0:
            # torch cannot pack empty sequences: give them one step, then zero it and hand back their state.
            empty = (lengths == 0).to(x.device)
            out, new = self._run_fused(x, state, lengths.clamp(min=1))
            out = out.masked_fill(empty[:, None, None], 0.0)
            return out, tuple(torch.where(empty[None, :, None], s0, s1) for s0, s1 in zip(state, new))
        return self._run_fused(x, state, lengths)

    def _run_fused(
        self, x: Tensor, state: State, lengths: Tensor | None, forward: Callable[..., Any] = fused_forward
    ) -> tuple[Tensor, State]:
        """Call ``forward`` (torch's kernels, or rnnkit's sequence kernel: the same contract) on the flat weights."""
        assert self.fused_mode is not None
        return forward(
            self.fused_mode,
            x,
            state,
            [getattr(self, n) for n in self._flat_names],
            bias=self.bias,
            num_layers=self.num_layers,
            dropout=self.dropout,
            training=self.training,
            bidirectional=self.bidirectional,
            lengths=lengths,
        )

    def _reference(self, x: Tensor, state: State, lengths: Tensor | None) -> tuple[Tensor, State]:
        D = self.num_directions
        finals: list[list[Tensor]] = [[] for _ in range(self.num_states)]
        layer_in = x
        for k in range(self.num_layers):
            outs = []
            for d in range(D):
                idx = k * D + d
                cell, p = self._cells[idx], self.cell_params(idx)
                inp = reverse_padded(layer_in, lengths) if d else layer_in
                s0 = tuple(s[idx] for s in state)
                res = cell.scan(inp, s0, p, lengths) if self.impl != "reference" else None
                if res is None:  # the input half for all timesteps in one product, then the loop
                    res = unroll(cell, p, cell.project(inp, p), s0, lengths)
                out, s = res
                outs.append(reverse_padded(out, lengths) if d else out)
                for j in range(self.num_states):
                    finals[j].append(s[j])
            layer_in = torch.cat(outs, -1) if D == 2 else outs[0]
            if self.dropout and self.training and k < self.num_layers - 1:
                layer_in = F.dropout(layer_in, self.dropout, True)
        return layer_in, tuple(torch.stack(f, 0) for f in finals)

    def step(self, x: Tensor, state: State | Tensor | None = None, *, check: bool = True) -> tuple[Tensor, State]:
        """Advance the whole stack by one timestep: ``x (B, F)`` -> ``(y (B, H), state)``.

        Equal to ``forward`` on the sequence so far at every ``t`` (streaming, generation, serving). O(1) per step
        for every cell, minGRU/minLSTM included; standard RNN/LSTM/GRU layers run on torch's cell kernels
        (:mod:`rnnkit.stepping`). ``check=False`` skips the input checks: for a stream whose first step was
        checked, so that each further observation pays only for the step itself.
        """
        if self.bidirectional:
            raise ValueError(
                "Recurrent.step: a bidirectional layer cannot stream (its backward direction starts at the end of "
                "the sequence); call forward() on the whole sequence, or build it with bidirectional=False"
            )
        if self.precision != "fp32":
            with autocast(self.precision, x.device):
                y, new = self._step(x, state, check)
            return y.to(x.dtype), tuple(s.to(x.dtype) for s in new)
        return self._step(x, state, check)

    def _step(self, x: Tensor, state: State | Tensor | None, check: bool) -> tuple[Tensor, State]:
        if check:
            check_input(self, x, self._parameters[self._names[0]["weight_ih"]], time_axis=False)  # type: ignore[arg-type]
            state = self.initial_state(x.shape[0], like=x) if state is None else check_state(self, state, x.shape[0], x)
        elif state is None:
            state = self.initial_state(x.shape[0], like=x)
        elif isinstance(state, Tensor):
            state = (state,)
        if self.fused_mode is not None:
            p = self._parameters
            return fused_step(
                self.fused_mode,
                x,
                state,  # type: ignore[arg-type]
                [p[n] for n in self._flat_names],  # type: ignore[misc]
                bias=self.bias,
                num_layers=self.num_layers,
                dropout=self.dropout,
                training=self.training,
            )
        new: list[State] = []
        y = x
        for k in range(self.num_layers):
            y, s = self._cells[k].step(y, tuple(s[k] for s in state), self.cell_params(k))
            new.append(s)
            if self.dropout and self.training and k < self.num_layers - 1:
                y = F.dropout(y, self.dropout, True)
        return y, tuple(torch.stack([s[j] for s in new], 0) for j in range(self.num_states))
