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
from .decoding import Hypothesis, SamplingConfig, beam_search, greedy_search
from .layers import HeadConfig, InputConfig, LinearChainCRF
from .recurrent import Recurrent
from .scan import linear_recurrence, log_space_scan, sequential_scan
from .tasks import load
from .topologies import (
    EncoderDecoder,
    EncoderDecoderConfig,
    ManyToMany,
    ManyToManyConfig,
    ManyToOne,
    ManyToOneConfig,
    OneToMany,
    OneToManyConfig,
    OneToOne,
    OneToOneConfig,
    RNNConfig,
)
from .training.tbptt import TBPTTChunk, detach_state, tbptt

__version__ = "0.1.0"

__all__ = [
    "CELLS",
    "Cell",
    "CellInit",
    "EncoderDecoder",
    "EncoderDecoderConfig",
    "GRUCell",
    "HeadConfig",
    "Hypothesis",
    "InputConfig",
    "LSTMCell",
    "LayerNormLSTMCell",
    "LinearChainCRF",
    "ManyToMany",
    "ManyToManyConfig",
    "ManyToOne",
    "ManyToOneConfig",
    "MinGRUCell",
    "MinLSTMCell",
    "OneToMany",
    "OneToManyConfig",
    "OneToOne",
    "OneToOneConfig",
    "RNNCell",
    "RNNConfig",
    "ReLURNNCell",
    "Recurrent",
    "SamplingConfig",
    "TBPTTChunk",
    "__version__",
    "beam_search",
    "cell_class",
    "detach_state",
    "greedy_search",
    "linear_recurrence",
    "load",
    "log_space_scan",
    "register_cell",
    "sequential_scan",
    "tbptt",
]
