"""From a trained task and its kind of data to what the inspector runs: model inputs, and how to show them.

Each task reads inspection data as it reads data for prediction:

* forecast: ``--data`` a CSV/Parquet series; the examples are its windows of ``timestep`` steps;
* classify: ``--data`` a CSV/Parquet (text column), ``label text`` lines, or one text per line; or ``--text``;
* tag: ``--data`` CoNLL or plain text (one sentence per line); or ``--text``;
* translate: ``--data`` a file of source sentences, one per line (as ``rnnkit predict``); or ``--text``;
* lm: ``--data`` a text file or ``--text``; the examples are consecutive windows of ``timestep`` tokens.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..data.batching import pad_collate
from ..errors import option
from ..tasks.base import Task
from .capture import find_layer
from .horizon import Output

#: the longest lm window shown (a longer ``timestep`` is cut: a heatmap of thousands of steps is unreadable)
MAX_WINDOW = 200
SHOW = {" ": "␣", "\n": "↵", "\t": "⇥"}


@dataclass
class Examples:
    """What the inspector runs for one task.

    Attributes:
        chosen: the model's inputs for the chosen example alone (traced and drawn).
        batch: the model's inputs for up to ``n`` examples, the chosen one among them (memory horizon, saturation).
        labels: the chosen example's input along time, one short label per step (characters, words, values).
        count: how many examples the data holds.
        text: the inputs are text (the report colours it by a unit).
        output: what :func:`~rnnkit.inspect.memory_horizon` differentiates; ``output_name`` says it in words.
        prediction: the model's answer for the chosen example, in words.
        translation: translate: ``(src (1, S), lengths, tgt_in (1, T), source tokens, target tokens)``.
        patch: input steps per step of the recurrent layer (a forecaster with ``patch`` > 1 reads one patch of
            that many steps per step; each label is then the patch's last value).
    """

    chosen: tuple
    batch: tuple
    labels: list[str]
    count: int
    text: bool
    output: Output = "auto"
    output_name: str = ""
    prediction: str = ""
    translation: tuple | None = field(default=None, repr=False)
    patch: int = 1


def _pick(count: int, index: int, n: int, what: str) -> list[int]:
    """The examples of the batch: the first ``n``, with the chosen ``index`` among them."""
    if count == 0:
        raise ValueError(f"the data holds no {what}")
    if not 0 <= index < count:
        raise ValueError(
            f"{option('example', index)} is out of range: the data holds {count} {what} "
            f"(choose {option('example')} 0..{count - 1})"
        )
    chosen = list(range(min(n, count)))
    return chosen if index in chosen else [*chosen[:-1], index]


def _check_known(tokens: list[str], ids: list[int], unk: int, index: int) -> None:
    if not tokens:
        raise ValueError(f"example {index} is empty: give text with at least one token")
    if all(i == unk for i in ids):
        shown = " ".join(tokens[:8]) + (" ..." if len(tokens) > 8 else "")
        raise ValueError(
            f"the model's vocabulary knows none of the {len(tokens)} tokens of example {index} ({shown!r}): every "
            f"one would be <unk>; give text in the language and spelling the model was trained on"
        )


def _token_batch(ids: list[list[int]], rows: list[int], pad: int) -> tuple[Tensor, Tensor]:
    x, lengths = pad_collate([(torch.tensor(ids[i]),) for i in rows], pad=pad)
    return x, lengths


def _text_source(task: Task, data: Path | None, text: str | None) -> None:
    if (data is None) == (text is None):
        raise ValueError(f"give {option('data')} (a file in the task's input format) or {option('text')} (a text)")


# ---- the five tasks ------------------------------------------------------------------------------------------------
def _forecast(task: Any, data: Path | None, text: str | None, index: int, n: int, layer: str | None) -> Examples:
    if text is not None or data is None:
        raise ValueError(f"a forecaster reads a series: give {option('data')} with a CSV/Parquet file")
    cfg = task.cfg
    prepared = task.prepare(data)  # each series scaled (and its statics encoded) as in training
    windows = prepared.windows("all")
    rows = _pick(len(windows), index, n, f"windows of {cfg.series.timestep} steps")
    x, f, _ = windows.tensors()
    series = int(windows.series[index])
    scaler, targets, P = prepared.scalers[series], cfg.series.target, cfg.patch
    shown = scaler.inverse(x[index, :, : len(targets)].numpy().astype(np.float64), targets)[:, 0]
    keep = len(shown) - len(shown) % P  # the recurrent part reads the last `keep` steps, a patch per step
    with torch.no_grad():
        pred = task.model.point(task.model(x[index : index + 1].to(task.device), f[index : index + 1].to(task.device)))
    ahead = scaler.inverse(pred[0].cpu().numpy().astype(np.float64), targets)[:, 0]
    first: Callable[[Tensor], Tensor] = lambda out: task.model.point(out)[:, 0, 0]  # noqa: E731
    where = f"series {prepared.ids[series]!r}: " if cfg.series.series_id else ""
    return Examples(
        chosen=(x[index : index + 1], f[index : index + 1]),
        batch=(x[rows], f[rows]),
        labels=[f"{v:.4g}" for v in shown[len(shown) - keep :][P - 1 :: P]],  # a patch: its last value
        count=len(windows),
        text=False,
        output=first,
        output_name=f"the forecast of {targets[0]} one step ahead",
        prediction=f"{where}{targets[0]}, next {len(ahead)} steps: " + ", ".join(f"{v:.4g}" for v in ahead),
        patch=P,
    )


def _classify(task: Any, data: Path | None, text: str | None, index: int, n: int, layer: str | None) -> Examples:
    from ..data.readers import looks_like_label_lines
    from ..tasks.classify import TABLES

    _text_source(task, data, text)
    cfg = task.cfg
    if text is not None:
        texts = [text]
    elif Path(data).suffix.lower() not in TABLES and looks_like_label_lines(data, cfg.encoding):
        texts = [t for t, _ in task.read(cfg, data)]
    else:
        texts = task.read_texts(data, cfg.text_column, cfg.encoding)
    rows = _pick(len(texts), index, n, "texts")
    tokens = task.tokenizer.tokenize(texts[index])[: cfg.max_length]
    ids = task.encode(texts)
    _check_known(tokens, task.vocab.encode(tokens), task.vocab.unk, index)
    x, lengths = _token_batch(ids, rows, task.vocab.pad)
    chosen = (torch.tensor([ids[index]]), torch.tensor([len(ids[index])]))
    probs = task.predict_proba([texts[index]])[0]
    best = int(probs.argmax())
    return Examples(
        chosen=chosen,
        batch=(x, lengths),
        labels=tokens,
        count=len(texts),
        text=True,
        output_name="the score of the predicted label",
        prediction=f"{task.labels[best]} (p = {probs[best]:.2f})",
    )


def _tag(task: Any, data: Path | None, text: str | None, index: int, n: int, layer: str | None) -> Examples:
    _text_source(task, data, text)
    if text is not None:
        sentences = [text.split()]
    else:
        try:
            sentences = task.read_tokens(data, "conll")
        except ValueError:  # plain text, one sentence per line
            sentences = task.read_tokens(data, "text")
    rows = _pick(len(sentences), index, n, "sentences")
    # what the model reads: word ids, or (T, F) ids with the casing and character columns of the recipe's tagger
    encoded = [torch.as_tensor(task.encode(s or ["<unk>"])) for s in sentences]
    ids = [e[:, 0].tolist() if e.dim() == 2 else e.tolist() for e in encoded]  # the word ids
    _check_known(sentences[index], ids[index], task.vocab.unk, index)
    x, lengths = pad_collate([(encoded[i],) for i in rows], pad=task.vocab.pad)
    tags = task.predict([sentences[index]])[0]
    return Examples(
        chosen=(encoded[index].unsqueeze(0), None, torch.tensor([len(ids[index])])),
        batch=(x, None, lengths),
        labels=list(sentences[index]),
        count=len(sentences),
        text=True,
        output_name="the score of the predicted tag of the last word",
        prediction=" ".join(f"{w}/{t}" for w, t in zip(sentences[index], tags)),
    )


def _translate(task: Any, data: Path | None, text: str | None, index: int, n: int, layer: str | None) -> Examples:
    """The encoder (default): a source sentence along time. The decoder (``layer="decoder"``): the model's own
    translation along time, each step reading the word before it, teacher-forced on that translation."""
    from ..data.text import Vocab

    _text_source(task, data, text)
    sources = [text] if text is not None else task.read_sources(data)
    rows = _pick(len(sources), index, n, "source sentences")
    tokens = [task.src_tok.tokenize(task._prep(s)) for s in sources]
    ids = [task.src_vocab.encode(t) or [Vocab.unk] for t in tokens]
    _check_known(tokens[index], ids[index], Vocab.unk, index)
    x, lengths = _token_batch(ids, rows, Vocab.pad)
    model, dev = task.model, task.device
    src, src_len = torch.tensor([ids[index]]), torch.tensor([len(ids[index])])
    (hyp,) = model.translate(src.to(dev), src_len, beam_size=1, max_length=len(ids[index]) + 10)[0]
    # one row per word of the translation (and its end): each step reads the word before it
    target = task.tgt_vocab.decode(hyp.tokens, skip_special=False) + (["<eos>"] if hyp.finished else [])
    tgt_in = torch.tensor([[Vocab.bos, *hyp.tokens][: len(target)]])
    common = dict(
        chosen=(src, src_len, tgt_in),
        count=len(sources),
        text=True,
        prediction=task.tgt_tok.detokenize(task.tgt_vocab.decode(hyp.tokens)),
        translation=(src, src_len, tgt_in, tokens[index], target),
    )
    if find_layer(model, layer) is not model.decoder:
        first = torch.full((len(rows), 1), Vocab.bos)
        return Examples(
            batch=(x, lengths, first),
            labels=tokens[index],
            output_name="the score of the first word of the translation",
            **common,
        )
    # the decoder's memory horizon: every example teacher-forced on its own translation, as far as the chosen
    # example's (those whose translation is shorter are left out, so no row reads past its end)
    T = tgt_in.shape[1]
    found = model.translate(x.to(dev), lengths, max_length=int(lengths.max()) + 10)
    words = [[Vocab.bos, *h.tokens] for (h,) in found]
    words[rows.index(index)] = tgt_in[0].tolist()
    keep = [i for i, w in enumerate(words) if len(w) >= T]
    forced = torch.tensor([words[i][:T] for i in keep])
    return Examples(
        batch=(x[keep], lengths[keep], forced),
        labels=task.tgt_vocab.decode(tgt_in[0].tolist(), skip_special=False),
        output_name=f"the score of the word each translation chose at its target step {T - 1} (teacher-forced on "
        f"the model's own translation)",
        **common,
    )


def _lm(task: Any, data: Path | None, text: str | None, index: int, n: int, layer: str | None) -> Examples:
    _text_source(task, data, text)
    cfg = task.cfg
    if text is None:
        text = task.read(cfg, data)
    elif cfg.lowercase:
        text = text.lower()
    tokens = task.tokenizer.tokenize(text)
    all_ids = task.vocab.encode(tokens)
    W = max(2, min(cfg.timestep, MAX_WINDOW))
    starts = list(range(0, max(len(tokens) - 1, 1), W))
    rows = _pick(len(starts), index, n, f"windows of {W} tokens")
    ids = [all_ids[s : s + W] for s in starts]
    window = tokens[starts[index] : starts[index] + W]
    _check_known(window, ids[index], task.vocab.unk, index)
    x, lengths = _token_batch(ids, rows, task.vocab.pad)
    chosen = torch.tensor([ids[index]])
    with torch.no_grad():
        logits, _ = task.model.eval()(chosen.to(task.device))
    probs = torch.softmax(logits[0, -1].float(), -1)
    best = int(probs.argmax())
    following = task.vocab.itos[best]
    return Examples(
        chosen=(chosen, None, None),
        batch=(x, None, lengths),
        labels=[SHOW.get(t, t) for t in window] if cfg.level == "char" else window,
        count=len(starts),
        text=True,
        output_name="the score of the predicted next token after the window",
        prediction=f"next token: {SHOW.get(following, following)!r} (p = {float(probs[best]):.2f})",
    )


READERS: dict[str, Callable[[Any, Path | None, str | None, int, int, str | None], Examples]] = {
    "forecast": _forecast,
    "classify": _classify,
    "tag": _tag,
    "translate": _translate,
    "lm": _lm,
}


def examples_for(
    task: Task, data: Path | None, text: str | None, index: int = 0, n: int = 64, layer: str | None = None
) -> Examples:
    """The chosen example ``index`` of ``data`` (or the ``text``) and a batch of up to ``n`` examples for ``task``,
    as the recurrent layer ``layer`` (None: the first) reads them."""
    reader = READERS.get(task.name)
    if reader is None:
        raise ValueError(
            f"'rnnkit inspect' knows the tasks {sorted(READERS)}, not {task.name!r}; use rnnkit.inspect.trace and "
            f"memory_horizon on its model from Python"
        )
    if n < 1:
        raise ValueError(f"need at least one example for the memory horizon, got {option('examples', n)}")
    return reader(task, data, text, index, n, layer)
