"""The five input/output shapes of recurrent networks."""

from .base import RNNConfig
from .encoder_decoder import DecoderState, EncoderDecoder, EncoderDecoderConfig
from .many_to_many import ManyToMany, ManyToManyConfig
from .many_to_one import ManyToOne, ManyToOneConfig
from .one_to_many import OneToMany, OneToManyConfig
from .one_to_one import OneToOne, OneToOneConfig

__all__ = [
    "DecoderState",
    "EncoderDecoder",
    "EncoderDecoderConfig",
    "ManyToMany",
    "ManyToManyConfig",
    "ManyToOne",
    "ManyToOneConfig",
    "OneToMany",
    "OneToManyConfig",
    "OneToOne",
    "OneToOneConfig",
    "RNNConfig",
]
