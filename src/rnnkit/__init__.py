"""rnnkit: recurrent neural networks on sequential data."""

from .cells import (
    CELLS,
    Cell,
    CellInit,
    GRUCell,
    LayerNormLSTMCell,
    LSTMCell,
    MinGRUCell,
    MinLSTMCell,
    ReLURNNCell,
    RNNCell,
    cell_class,
    register_cell,
)
from .recurrent import Recurrent
from .scan import linear_recurrence, log_space_scan, sequential_scan
from .training.tbptt import TBPTTChunk, detach_state, tbptt

__version__ = "0.1.0"

__all__ = [
    "CELLS",
    "Cell",
    "CellInit",
    "GRUCell",
    "LSTMCell",
    "LayerNormLSTMCell",
    "MinGRUCell",
    "MinLSTMCell",
    "RNNCell",
    "ReLURNNCell",
    "Recurrent",
    "TBPTTChunk",
    "__version__",
    "cell_class",
    "detach_state",
    "linear_recurrence",
    "log_space_scan",
    "register_cell",
    "sequential_scan",
    "tbptt",
]
