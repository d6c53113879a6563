"""Attention weights of a translation model: which source positions each target step read, from its own decoder."""

from __future__ import annotations

import torch
from torch import Tensor

from ..errors import option
from ..topologies.encoder_decoder import EncoderDecoder
from .capture import evaluating


def attention(model: EncoderDecoder, src: Tensor, src_lengths: Tensor | None, tgt_in: Tensor) -> Tensor:
    """``(B, T, S)``: the attention weights of target step ``t`` over the source, teacher-forced on ``tgt_in (B, T)``
    (``bos`` then the target; the model's own translation gives the weights its search used).

    The weights are captured from the model's attention module during its own forward pass (whether it attends
    once over all steps, Luong, or step by step, Bahdanau). Each row sums to 1 over the source's valid positions
    and is 0 on padding.
    """
    if not isinstance(model, EncoderDecoder):
        raise ValueError(
            f"attention maps are for translation models (encoder-decoders); this is a {type(model).__name__}, "
            f"which has no attention over a source (drop {option('attention')})"
        )
    if model.attention is None:
        raise ValueError(
            f"this translation model was trained without attention (attention='none'); train it with "
            f"{option('attention', 'general')} (or bahdanau, dot) to see attention maps, or drop {option('attention')}"
        )
    found: list[Tensor] = []

    def hook(module: torch.nn.Module, args: tuple, out: tuple[Tensor, Tensor]) -> None:
        found.append(out[1].detach())

    handle = model.attention.register_forward_hook(hook)
    try:
        with evaluating(model), torch.no_grad():
            model(src, src_lengths, tgt_in)
    finally:
        handle.remove()
    if len(found) == 1 and found[0].dim() == 3:  # Luong: one call over every target step
        return found[0]
    return torch.stack(found, 1)  # Bahdanau: one (B, S) per step
