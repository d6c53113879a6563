"""Export wrappers of the topologies: the model's own submodules (embeddings, heads, attention scores, bridges),
joined as the topology joins them, around a :class:`~rnnkit.export.recurrent.RecurrentGraph`.

Why not trace ``model.forward`` itself: the topologies check their inputs with Python branches on tensor values
(``int(lengths.min()) < 1``, "every source has a valid position"), which a graph cannot hold, and they call the
recurrent layer's packed-sequence and C++ paths. So each wrapper repeats the few lines of glue without the checks;
every learned part is the model's own module, and :mod:`rnnkit.export.verify` compares the graph with the model's
real ``forward`` / ``decode_step`` / ``step`` on random and real inputs.

Each wrapper's ``forward(*inputs)`` (one signature, so that the exporter's dynamic axes are declared alike) takes
the graph's inputs in declared order and returns its outputs as a tuple.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from ..layers.attention import Attention
from ..layers.pooling import Pooling
from ..recurrent import Recurrent
from ..topologies.encoder_decoder import EncoderDecoder
from ..topologies.many_to_many import ManyToMany
from ..topologies.many_to_one import ManyToOne
from .recurrent import RecurrentGraph


def attend(att: Attention, query: Tensor, keys: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """:meth:`Attention.forward` for one query per row, without its data checks: ``query (N, Q)``, ``keys (N, S,
    K)``, ``mask (N, S)`` -> ``(context (N, K), weights (N, S))``."""
    scores = att.score(query.unsqueeze(1), keys).masked_fill(~mask[:, None, :], float("-inf"))  # (N, 1, S)
    weights = torch.softmax(scores, dim=-1)
    return torch.bmm(weights, keys).squeeze(1), weights.squeeze(1)


def pool(pooling: Pooling, outputs: Tensor, mask: Tensor | None, h_final: Tensor) -> Tensor:
    """:meth:`Pooling.forward` without its data checks: ``outputs (B, T, D*H)``, ``mask (B, T)`` or None,
    ``h_final (L*D, B, H)`` -> ``(B, D*H)``."""
    if pooling.kind == "last":
        return torch.cat([h_final[i - pooling.num_directions] for i in range(pooling.num_directions)], dim=-1)
    if mask is None:
        mask = torch.ones(outputs.shape[:2], dtype=torch.bool, device=outputs.device)
    if pooling.kind == "mean":
        return (outputs * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).to(outputs.dtype)
    if pooling.kind == "max":
        return outputs.masked_fill(~mask[..., None], float("-inf")).amax(1)
    scores = pooling.query(torch.tanh(pooling.proj(outputs))).squeeze(-1)  # (B, T)
    weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=1)
    return torch.einsum("bt,btd->bd", weights, outputs)


def valid_mask(lengths: Tensor, T: int) -> Tensor:
    """``(B, T)`` bool, True at valid steps."""
    return torch.arange(T, device=lengths.device)[None, :] < lengths[:, None]


def _embed(inp: nn.Module, x: Tensor) -> Tensor:
    """:class:`~rnnkit.layers.inputs.SequenceInput` in eval mode: token ids through the embedding (with a tagger's
    casing and character columns: its traceable ``features``), or features."""
    emb = inp.embedding  # type: ignore[attr-defined]
    if emb is not None and inp.cfg.packed:  # type: ignore[attr-defined]
        return inp.features(x)  # type: ignore[attr-defined,operator]
    return emb(x) if emb is not None else x


def with_graph_layers(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose :class:`~rnnkit.Recurrent` layers are :class:`RecurrentGraph` s: a model whose
    ``forward`` has no data-dependent checks then traces as it is, glue and all."""
    model = copy.deepcopy(model)
    for name, module in list(model.named_modules()):
        if isinstance(module, Recurrent):
            parent, _, attr = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, attr, RecurrentGraph(module))
    return model


class ForecastSequence(nn.Module):
    """``(x (B, T, F), [future (B, horizon, F_f)]) -> prediction``: the forecaster's own ``forward``."""

    def __init__(self, model: nn.Module, horizon: int, n_future: int) -> None:
        super().__init__()
        self.model, self.horizon, self.n_future = with_graph_layers(model), horizon, n_future

    def forward(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        x = inputs[0]
        f = inputs[1] if self.n_future else x.new_zeros(x.shape[0], self.horizon, 0)
        return (self.model(x, f),)


class LayerSequence(nn.Module):
    """``(x (B, T, F), lengths (B,), h, [c]) -> (y (B, T, D*H), h_out, [c_out])``: ``Recurrent.forward``."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.rnn = RecurrentGraph(layer)  # type: ignore[arg-type]

    def forward(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        y, new = self.rnn(inputs[0], tuple(inputs[2:]), inputs[1])
        return (y, *new)


class LayerStep(nn.Module):
    """``(x (B, F), h, [c]) -> (y (B, H), h_out, [c_out])``: ``Recurrent.step``."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.rnn = RecurrentGraph(layer)  # type: ignore[arg-type]

    def forward(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        y, new = self.rnn.step(inputs[0], tuple(inputs[1:]))
        return (y, *new)


class ManyToManySequence(nn.Module):
    """``(x (B, T[, F]), [lengths (B,)], h, [c]) -> (outputs (B, T, K), h_out, [c_out])``: ``ManyToMany.forward``."""

    def __init__(self, model: ManyToMany, lengths: bool) -> None:
        super().__init__()
        self.model, self.rnn, self.lengths = model, RecurrentGraph(model.rnn), lengths

    def forward(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        x, rest = inputs[0], inputs[1:]
        lengths = rest[0] if self.lengths else None
        state = tuple(rest[1:] if self.lengths else rest)
        out, new = self.rnn(_embed(self.model.input, x), state, lengths)
        if self.model.proj is not None:
            out = self.model.proj(out)
        return (self.model.head(out), *new)


class ManyToManyStep(nn.Module):
    """``(x_t (B[, F]), h, [c]) -> (outputs_t (B, K), h_out, [c_out])``: ``ManyToMany.decode_step``."""

    def __init__(self, model: ManyToMany) -> None:
        super().__init__()
        self.model, self.rnn = model, RecurrentGraph(model.rnn)

    def forward(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        x = _embed(self.model.input, inputs[0].unsqueeze(1))[:, 0]
        y, new = self.rnn.step(x, tuple(inputs[1:]))
        if self.model.proj is not None:
            y = self.model.proj(y)
        return (self.model.head(y), *new)


class ManyToOneSequence(nn.Module):
    """``(x (B, T[, F]), [lengths], [context (B, C)]) -> output``: ``ManyToOne.forward`` from the zero state."""

    def __init__(self, model: ManyToOne, lengths: bool) -> None:
        super().__init__()
        self.model, self.rnn, self.lengths = model, RecurrentGraph(model.rnn), lengths
        # the n-gram bag is in the graph when forward adds it (decided here: a graph holds no branch on a value)
        self.bag = model.ngrams is not None and bool(model.mix != 0)

    def forward(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        x, rest = inputs[0], list(inputs[1:])
        lengths = rest.pop(0) if self.lengths else None
        context = rest.pop(0) if self.model.cfg.context_size else None
        h = _embed(self.model.input, x)
        state = self.rnn.layer.initial_state(x.shape[0], like=h)
        out, final = self.rnn(h, state, lengths)
        mask = valid_mask(lengths, x.shape[1]) if lengths is not None else None
        summary = pool(self.model.pool, out, mask, final[0])
        if context is not None:
            summary = torch.cat([summary, context.flatten(1)], -1)
        out = self.model.head(summary)
        if self.bag:  # the n-gram bag's share, as ManyToOne.forward adds it
            n = lengths if lengths is not None else torch.full((x.shape[0],), x.shape[1], dtype=torch.long)
            out = out + self.model.mix * self.model.ngrams(x, n)
        if self.model.temperature is not None:  # a classifier's calibration, as ManyToOne.forward scales
            out = out * self.model.temperature
        return (out,)


class ManyToOneStep(nn.Module):
    """``(x_t (B[, F]), h, [c]) -> (y_t (B, H), h_out, [c_out])``: one step of the recurrent layer over the model's
    input."""

    def __init__(self, model: ManyToOne) -> None:
        super().__init__()
        self.model, self.rnn = model, RecurrentGraph(model.rnn)

    def forward(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        y, new = self.rnn.step(_embed(self.model.input, inputs[0].unsqueeze(1))[:, 0], tuple(inputs[1:]))
        return (y, *new)


class ManyToOneHead(nn.Module):
    """``(summary (B, D*H), [context (B, ...)]) -> output``: the head of a many-to-one model, times a classifier's
    ``temperature`` unless an n-gram bag is mixed in (then the network's own logits: the sequence graph adds the
    bag's votes before scaling)."""

    def __init__(self, model: ManyToOne) -> None:
        super().__init__()
        self.model = model
        self.scaled = model.temperature is not None and not (model.ngrams is not None and bool(model.mix != 0))

    def forward(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        summary = inputs[0]
        if self.model.cfg.context_size:
            summary = torch.cat([summary, inputs[1].flatten(1)], -1)
        out = self.model.head(summary)
        return (out * self.model.temperature if self.scaled else out,)


class ForecastStep(nn.Module):
    """``(x (B, [patch,] F), [base (B, n)], h, [c]) -> (y (B, H), h_out, [c_out])``: one step of a forecaster's
    recurrent layer, which reads one patch of ``patch`` steps (one step when ``patch`` is 1) with the targets taken
    relative to ``base``, the last observed targets of the window (a ``relative`` forecaster)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model, self.rnn = model, RecurrentGraph(model.net.rnn)  # type: ignore[union-attr,arg-type]

    def forward(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        m, x, rest = self.model, inputs[0], inputs[1:]
        xs = x if m.patch > 1 else x.unsqueeze(1)  # (B, patch, F)
        if m.relative:
            n = m.n_targets
            xs = torch.cat([xs[..., :n] - rest[0][:, None], xs[..., n:]], -1)
            rest = rest[1:]
        y, new = self.rnn.step(_embed(m.net.input, m.patches(xs))[:, 0], tuple(rest))
        return (y, *new)


class Encoder(nn.Module):
    """``(src (B, S), src_lengths (B,)) -> (memory (B, S, K), mask (B, S), h, [c])``: ``EncoderDecoder.encode``;
    ``h``/``c`` are the decoder's initial state (the bridge)."""

    def __init__(self, model: EncoderDecoder) -> None:
        super().__init__()
        self.model, self.rnn = model, RecurrentGraph(model.encoder)

    def forward(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        (src, lengths), m, cfg = inputs, self.model, self.model.cfg
        emb = m.src_embed(src)
        memory, state = self.rnn(emb, self.rnn.layer.initial_state(src.shape[0], like=emb), lengths)
        B, D = src.shape[0], m.encoder.num_directions
        L, H = cfg.decoder.num_layers, cfg.decoder.hidden_size
        summary = torch.cat([state[0][i - D] for i in range(D)], dim=-1)  # (B, K): top layer, every direction
        if m.bridge is None:
            rnn = m.decoder.initial_state(B, like=memory)
        else:
            parts = [lin(summary).reshape(B, L, H).transpose(0, 1) for lin in m.bridge]
            rnn = (torch.tanh(parts[0]), *parts[1:])
        return (memory, valid_mask(lengths, src.shape[1]), *rnn)


class DecoderStep(nn.Module):
    """``(tokens (N,), h, [c], [memory (N, S, K), mask (N, S)]) -> (logits (N, V), h_out, [c_out], [attention (N,
    S)])``: ``EncoderDecoder.decode_step`` (memory, mask and attention only with attention)."""

    def __init__(self, model: EncoderDecoder) -> None:
        super().__init__()
        self.model, self.rnn = model, RecurrentGraph(model.decoder)
        self.num_states = model.decoder.num_states

    def forward(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        m = self.model
        tokens, state = inputs[0], tuple(inputs[1 : 1 + self.num_states])
        emb = m.tgt_embed(tokens)
        if m.attention is None:
            y, new = self.rnn.step(emb, state)
            return (m._logits(y), *new)
        memory, mask = inputs[1 + self.num_states :]
        if m.kind == "bahdanau":
            context, weights = attend(m.attention, state[0][-1], memory, mask)  # query: h_{t-1}
            y, new = self.rnn.step(torch.cat([emb, context], -1), state)
            features = torch.cat([y, context], -1)
        else:
            y, new = self.rnn.step(emb, state)
            context, weights = attend(m.attention, y, memory, mask)  # query: h_t
            features = torch.tanh(m.combine(torch.cat([context, y], -1)))  # type: ignore[misc]
        return (m._logits(features), *new, weights)
