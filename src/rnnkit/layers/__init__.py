"""Building blocks around the recurrent core: inputs, pooling, attention, CRF, output heads."""

from .attention import Attention, BahdanauAttention, LuongAttention, make_attention
from .crf import LinearChainCRF
from .heads import ClassificationHead, HeadConfig, RegressionHead, make_head, pinball_loss
from .inputs import InputConfig, SequenceInput
from .pooling import POOLINGS, Pooling

__all__ = [
    "POOLINGS",
    "Attention",
    "BahdanauAttention",
    "ClassificationHead",
    "HeadConfig",
    "InputConfig",
    "LinearChainCRF",
    "LuongAttention",
    "Pooling",
    "RegressionHead",
    "SequenceInput",
    "make_attention",
    "make_head",
    "pinball_loss",
]
