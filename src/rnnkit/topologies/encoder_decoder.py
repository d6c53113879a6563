"""Many-to-many, unaligned: encoder -> bridge -> decoder, with attention (translation, summarisation)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..decoding import Hypothesis, beam_search, greedy_search
from ..errors import option
from ..layers.attention import make_attention
from ..layers.packed_linear import packed_linear
from .base import RNNConfig, as_lengths, mask_of


@dataclass
class EncoderDecoderConfig:
    """Source tokens -> target tokens of another length.

    Attributes:
        src_vocab, tgt_vocab: vocabulary sizes.
        embedding_dim: token embedding size (both sides).
        encoder: the encoder's recurrent core (bidirectional allowed).
        decoder: the decoder's (unidirectional).
        attention: ``none`` (the bridge carries everything), ``bahdanau`` (additive, on the previous decoder
            state, context fed into the cell), ``dot`` or ``general`` (Luong, on the current state, combined
            after the cell; the decoder then runs over all target steps at once in training).
        bridge: ``linear`` (encoder's final top-layer state -> decoder's initial state, per layer) or ``zero``.
        dropout: on embeddings and before the output layer.
        sampling_ratio: scheduled sampling: in training, feed the model's own previous prediction instead of the
            true token with this probability (0 = pure teacher forcing).
        tie_embeddings: the output layer reuses the decoder's embedding matrix.
        label_smoothing: in training, the loss's target puts this much probability mass uniformly on all tokens
            (Szegedy et al. 2016; 0.1 in most translation recipes); evaluation losses stay plain cross-entropy.
        pad, bos, eos: special token ids (shared by both vocabularies).
    """

    src_vocab: int = 100
    tgt_vocab: int = 100
    embedding_dim: int = 128
    encoder: RNNConfig = field(default_factory=lambda: RNNConfig(cell="gru", bidirectional=True))
    decoder: RNNConfig = field(default_factory=lambda: RNNConfig(cell="gru"))
    attention: str = "general"
    bridge: str = "linear"
    dropout: float = 0.0
    sampling_ratio: float = 0.0
    tie_embeddings: bool = False
    label_smoothing: float = 0.0
    pad: int = 0
    bos: int = 2
    eos: int = 3

    def __post_init__(self) -> None:
        if self.decoder.bidirectional:
            raise ValueError("EncoderDecoderConfig: the decoder generates left to right; it cannot be bidirectional")
        if self.bridge not in ("linear", "zero"):
            raise ValueError(f"EncoderDecoderConfig: bridge must be 'linear' or 'zero', got {self.bridge!r}")
        if not 0 <= self.sampling_ratio <= 1:
            raise ValueError(f"EncoderDecoderConfig: sampling_ratio must be in [0, 1], got {self.sampling_ratio}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(
                f"EncoderDecoderConfig: {option('label_smoothing')} must be in [0, 1), got {self.label_smoothing}"
            )


@dataclass
class DecoderState:
    """What the decoder carries between steps: its recurrent state and the encoded source it attends to."""

    rnn: tuple[Tensor, ...]
    memory: Tensor  # (B, S, K) encoder outputs
    mask: Tensor  # (B, S) valid source positions

    def select(self, index: Tensor) -> DecoderState:
        return DecoderState(
            tuple(s.index_select(1, index) for s in self.rnn),
            self.memory.index_select(0, index),
            self.mask.index_select(0, index),
        )

    @property
    def device(self) -> torch.device:
        return self.memory.device


class EncoderDecoder(nn.Module):
    """``src (B, S)`` -> ``tgt (B, T)``. ``forward(src, src_lengths, tgt_in)`` gives ``logits (B, T, V)`` for the
    next target token at every step (teacher forcing); ``translate`` searches (greedy or beam)."""

    #: decode_step reads a memory row shared by a run of consecutive tokens (see :meth:`beam_select`)
    beams_share_memory: ClassVar[bool] = True

    def __init__(self, cfg: EncoderDecoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        E = cfg.embedding_dim
        self.src_embed = nn.Embedding(cfg.src_vocab, E, padding_idx=cfg.pad)
        self.tgt_embed = nn.Embedding(cfg.tgt_vocab, E, padding_idx=cfg.pad)
        self.encoder = cfg.encoder.build(E)
        K, H = cfg.encoder.output_size, cfg.decoder.hidden_size
        self.kind = cfg.attention
        self.attention = make_attention(cfg.attention, H, K)
        self.decoder = cfg.decoder.build(E + (K if cfg.attention == "bahdanau" else 0))
        self.bridge = (
            nn.ModuleList(nn.Linear(K, cfg.decoder.num_layers * H) for _ in range(self.decoder.num_states))
            if cfg.bridge == "linear"
            else None
        )
        self.combine = nn.Linear(K + H, H) if cfg.attention in ("dot", "general") else None
        out_in = H + (K if cfg.attention == "bahdanau" else 0)
        self.pre_out = nn.Linear(out_in, E) if cfg.tie_embeddings and out_in != E else None
        self.out = nn.Linear(E if cfg.tie_embeddings else out_in, cfg.tgt_vocab)
        if cfg.tie_embeddings:
            self.out.weight = self.tgt_embed.weight
        self.drop = nn.Dropout(cfg.dropout)

    # ---- encoder -----------------------------------------------------------------------------------------------
    def encode(self, src: Tensor, src_lengths: Tensor | None = None) -> DecoderState:
        """Run the encoder; the decoder's starting state (bridge) and the attention memory."""
        if src.dim() != 2 or src.dtype != torch.long:
            raise ValueError(
                f"EncoderDecoder: expected source token ids (B, S) int64, got {tuple(src.shape)} {src.dtype}"
            )
        if src.numel() and int(src.max()) >= self.cfg.src_vocab:
            raise ValueError(f"EncoderDecoder: source id {int(src.max())} >= src_vocab {self.cfg.src_vocab}")
        B, S = src.shape
        lengths = as_lengths(src_lengths, B, S, "EncoderDecoder.encode")
        memory, state = self.encoder(self.drop(self.src_embed(src)), lengths=lengths)
        D = self.encoder.num_directions
        summary = torch.cat(list(state[0][-D:]), dim=-1)  # (B, K): top layer, every direction
        L, H = self.cfg.decoder.num_layers, self.cfg.decoder.hidden_size
        if self.bridge is None:
            rnn = self.decoder.initial_state(B, like=memory)
        else:
            parts = [lin(summary).view(B, L, H).transpose(0, 1).contiguous() for lin in self.bridge]
            parts[0] = torch.tanh(parts[0])
            rnn = tuple(parts)
        return DecoderState(rnn, memory, mask_of(lengths, B, S, memory.device))

    # ---- decoder -----------------------------------------------------------------------------------------------
    def _logits(self, features: Tensor, packed: bool = False) -> Tensor:
        """``packed``: the output layers through oneDNN with packed weights (inference steps; see
        :mod:`rnnkit.layers.packed_linear`), the decoder's largest product."""
        features = self.drop(features)
        if self.pre_out is not None:
            features = _apply(self.pre_out, features, packed)
        return _apply(self.out, features, packed)

    def decode_step(self, tokens: Tensor, state: DecoderState) -> tuple[Tensor, DecoderState, Tensor | None]:
        """Previous target tokens ``(N,)`` -> ``(logits (N, V), state, attention weights (N, S) or None)``.

        The memory may hold one row per token or one per group of ``N / G`` consecutive tokens (beam search: the
        beams of an input share its memory, see :meth:`beam_select`).
        """
        emb = self.drop(self.tgt_embed(tokens))
        weights = None
        packed = not self.training and not torch.is_grad_enabled()  # search: weights packed for oneDNN
        if self.kind == "bahdanau":
            context, weights = self._attend(state.rnn[0][-1], state)  # query: h_{t-1}
            y, rnn = self.decoder.step(torch.cat([emb, context], -1), state.rnn)
            features = torch.cat([y, context], -1)
        else:
            y, rnn = self.decoder.step(emb, state.rnn)
            features = y
            if self.attention is not None:
                context, weights = self._attend(y, state)  # query: h_t
                combined = torch.cat([context, y], -1)
                features = torch.tanh(_apply(self.combine, combined, packed))
        return self._logits(features, packed), DecoderState(rnn, state.memory, state.mask), weights

    def _attend(self, query: Tensor, state: DecoderState) -> tuple[Tensor, Tensor]:
        """Attention of ``query (N, H)`` over the memory; with ``G < N`` memory rows, each run of ``N / G``
        queries reads one memory row as the time axis of one attention call: no copy of the memory per query."""
        assert self.attention is not None
        N, G = query.shape[0], state.memory.shape[0]
        if N == G:
            return self.attention(query, state.memory, state.mask)
        context, weights = self.attention(query.view(G, N // G, -1), state.memory, state.mask)
        return context.reshape(N, -1), weights.reshape(N, -1)

    @staticmethod
    def beam_select(beams: int) -> Callable[[DecoderState, Tensor], DecoderState]:
        """``select`` for :func:`~rnnkit.decoding.beam_search` that keeps one memory row per input, shared by its
        ``beams`` rows: a reordering of beams within their inputs touches only the recurrent state, and the
        memory is selected only when the set of inputs changes (the start, and finished inputs leaving)."""

        def select(state: DecoderState, index: Tensor) -> DecoderState:
            rows = state.rnn[0].shape[1]
            rnn = tuple(s.index_select(1, index) for s in state.rnn)
            per = rows // state.memory.shape[0]  # rows per input before: 1 at the start, then beams
            if index.numel() == rows and per == beams:
                return DecoderState(rnn, state.memory, state.mask)
            inputs = index[::beams] // per
            return DecoderState(rnn, state.memory.index_select(0, inputs), state.mask.index_select(0, inputs))

        return select

    @staticmethod
    def select_state(state: DecoderState, index: Tensor) -> DecoderState:
        return state.select(index)

    def forward(self, src: Tensor, src_lengths: Tensor | None, tgt_in: Tensor) -> Tensor:
        """Logits ``(B, T, V)`` for the next token after each of ``tgt_in (B, T)`` (``bos`` + target[:-1])."""
        state = self.encode(src, src_lengths)
        ratio = self.cfg.sampling_ratio if self.training else 0.0
        if self.kind != "bahdanau" and ratio == 0.0:
            # every decoder input is known: run the decoder over all steps at once
            y, _ = self.decoder(self.drop(self.tgt_embed(tgt_in)), state.rnn)  # (B, T, H)
            if self.attention is not None:
                context, _ = self.attention(y, state.memory, state.mask)
                y = torch.tanh(self.combine(torch.cat([context, y], -1)))
            return self._logits(y)
        logits, tokens = [], tgt_in[:, 0]
        for t in range(tgt_in.shape[1]):
            step_logits, state, _ = self.decode_step(tokens, state)
            logits.append(step_logits)
            if t + 1 < tgt_in.shape[1]:
                tokens = tgt_in[:, t + 1]
                if ratio > 0:  # scheduled sampling: sometimes feed the model's own guess
                    own = torch.rand(tokens.shape, device=tokens.device) < ratio
                    tokens = torch.where(own, step_logits.argmax(-1).detach(), tokens)
        return torch.stack(logits, 1)

    def loss(self, logits: Tensor, tgt_out: Tensor) -> Tensor:
        """Cross-entropy over non-pad target positions; ``tgt_out (B, T)`` is the target followed by ``eos``.
        Label-smoothed (``label_smoothing``) in training mode only, so validation losses stay comparable."""
        smoothing = self.cfg.label_smoothing if self.training else 0.0
        return F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]),
            tgt_out.reshape(-1),
            ignore_index=self.cfg.pad,
            label_smoothing=smoothing,
        )

    @torch.no_grad()
    def translate(
        self,
        src: Tensor,
        src_lengths: Tensor | None = None,
        beam_size: int = 1,
        max_length: int | Sequence[int] = 100,
        alpha: float = 0.0,
        n_best: int = 1,
    ) -> list[list[Hypothesis]]:
        """Search for the best targets: greedy (``beam_size=1``) or beam search; ``n_best`` per source.
        ``max_length``: one for all sources, or (beam search) one per source."""
        state = self.encode(src, src_lengths)
        B = src.shape[0]
        if beam_size == 1 and n_best == 1:
            if not isinstance(max_length, int):
                raise ValueError("EncoderDecoder.translate: greedy search takes one max_length for all sources")
            hyps = greedy_search(self.decode_step, self.select_state, state, B, self.cfg.bos, self.cfg.eos, max_length)
            return [[h] for h in hyps]
        # beams share their input's memory where decode_step can read it so (this class); a stand-in borrowing
        # translate (the ONNX predictor) gets a memory row per beam
        shared = getattr(self, "beams_share_memory", False)
        return beam_search(
            self.decode_step,
            self.beam_select(beam_size) if shared else self.select_state,
            state,
            B,
            self.cfg.bos,
            self.cfg.eos,
            beam_size,
            max_length,
            alpha,
            n_best,
        )

    @torch.no_grad()
    def sequence_log_prob(
        self, src: Tensor, src_lengths: Tensor | None, tgt: list[list[int]], finished: list[bool]
    ) -> list[float]:
        """Sum of log-probabilities the model gives each target (plus ``eos`` where ``finished``): re-scoring."""
        out = []
        for b, (toks, fin) in enumerate(zip(tgt, finished)):
            seq = toks + ([self.cfg.eos] if fin else [])
            if not seq:
                out.append(0.0)
                continue
            tgt_in = torch.tensor([[self.cfg.bos, *seq[:-1]]], device=src.device)
            lengths = None if src_lengths is None else torch.as_tensor(src_lengths)[b : b + 1]
            logp = F.log_softmax(self(src[b : b + 1], lengths, tgt_in).float(), -1)[0]
            out.append(float(logp.gather(1, torch.tensor(seq, device=src.device)[:, None]).sum()))
        return out


def _apply(layer: nn.Module, x: Tensor, packed: bool) -> Tensor:
    """``layer(x)``; with ``packed``, through oneDNN with the layer's packed weight (:func:`packed_linear`)."""
    return packed_linear(layer, x) if packed else layer(x)
