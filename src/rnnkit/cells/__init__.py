"""Cells (one timestep each) and the registry that turns a name into a cell class."""

from __future__ import annotations

from .base import Cell, CellInit, Params, State
from .gru import GRUCell
from .layernorm_lstm import LayerNormLSTMCell
from .lstm import LSTMCell
from .mingru import MinGRUCell, MinLSTMCell
from .rnn import ReLURNNCell, RNNCell

CELLS: dict[str, type[Cell]] = {
    "rnn": RNNCell,
    "rnn_tanh": RNNCell,
    "rnn_relu": ReLURNNCell,
    "lstm": LSTMCell,
    "gru": GRUCell,
    "layernorm_lstm": LayerNormLSTMCell,
    "ln_lstm": LayerNormLSTMCell,
    "mingru": MinGRUCell,
    "minlstm": MinLSTMCell,
}


def register_cell(name: str, cls: type[Cell]) -> None:
    """Make a custom :class:`Cell` subclass available by name to ``Recurrent`` and every task config."""
    if not (isinstance(cls, type) and issubclass(cls, Cell)):
        raise ValueError(f"register_cell({name!r}): expected a Cell subclass, got {cls!r}")
    CELLS[name] = cls


def cell_class(name: str) -> type[Cell]:
    """The cell class registered under ``name``; the error lists the known names."""
    try:
        return CELLS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown cell {name!r}; expected one of {sorted(CELLS)}") from None


__all__ = [
    "CELLS",
    "Cell",
    "CellInit",
    "GRUCell",
    "LSTMCell",
    "LayerNormLSTMCell",
    "MinGRUCell",
    "MinLSTMCell",
    "Params",
    "RNNCell",
    "ReLURNNCell",
    "State",
    "cell_class",
    "register_cell",
]
