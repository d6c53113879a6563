"""The plans of the five tasks (see :mod:`rnnkit.export.plans` for what a plan is).

| task      | graphs                                                     | reference                              |
|-----------|------------------------------------------------------------|----------------------------------------|
| forecast  | sequence (x, future -> prediction), step (over one patch)  | ``ForecastNet.forward``, ``rnn.step``  |
| classify  | sequence (tokens, lengths -> logits), step, head           | ``ManyToOne.forward``, ``rnn.step``    |
| tag, lm   | sequence (tokens, [lengths], state -> scores, state), step | ``ManyToMany.forward``/``decode_step`` |
| translate | encoder, decoder_step                                      | ``encode``, ``decode_step``, forward   |

Real inputs come from the run directory's held-out predictions (classify ``predictions.csv``, tag
``predictions.conll``, translate ``predictions.jsonl``, lm ``samples.txt``) or, for a forecaster, the series given
as ``data``.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .graph import GraphSpec, IOSpec
from .models import (
    DecoderStep,
    Encoder,
    ForecastSequence,
    ForecastStep,
    ManyToManySequence,
    ManyToManyStep,
    ManyToOneHead,
    ManyToOneSequence,
    ManyToOneStep,
)
from .plans import (
    Composite,
    Feeds,
    Plan,
    Run,
    as_dict_state,
    as_state,
    batches,
    drive,
    read_run_file,
    select_graphs,
    state_out,
    state_specs,
    to64,
    zero_state,
)


# ---- many-to-many: tag and lm ----------------------------------------------------------------------------------
def many_to_many_plan(task: Any, names: tuple[str, ...] | None, lengths: bool, real: list[list[int]]) -> Plan:
    model = task.model
    rnn, K = model.rnn, model.cfg.head.num_classes
    V = model.cfg.input.vocab_size
    plan = Plan(task)
    wanted = select_graphs(
        names, ["sequence", "step"] if not rnn.bidirectional else ["sequence"], rnn.bidirectional, task.name
    )
    tokens = IOSpec("tokens", ("batch", "time"), "tokens", "token ids (right-padded)", high=V)
    token = IOSpec("token", ("batch",), "tokens", "the current token id", high=V)
    inp = model.cfg.input
    if inp.packed:  # a tagger's words with their casing class and characters: (B, T, F) ids
        F, col = task.encoder.width, "word id, casing class, character ids (0-padded)"
        if not inp.casing_classes:
            col = col.replace(" casing class,", "")
        # random inputs must be valid in every column: ids below the smallest of the three ranges
        high = min(V, inp.casing_classes or V, inp.char.vocab_size if inp.char is not None else V)
        tokens = IOSpec("tokens", ("batch", "time", F), "tokens", f"per token: {col} (right-padded)", high=high)
        token = IOSpec("token", ("batch", F), "tokens", f"the current token: {col}", high=high)
    lens = [IOSpec("lengths", ("batch",), "lengths", "valid tokens per sequence, 1..time")] if lengths else []
    what = "tag scores (emissions)" if task.name == "tag" else "next-token logits"
    if "sequence" in wanted:
        plan.graphs.append(
            GraphSpec(
                "sequence",
                ManyToManySequence(model, lengths),
                [tokens, *lens, *state_specs(rnn)],
                [IOSpec("scores", ("batch", "time", K), doc=what + " per step"), *state_specs(rnn, "_out")],
                "The whole sequence: ManyToMany.forward(tokens, state, lengths).",
            )
        )

        def ref_sequence(m: nn.Module, f: Feeds) -> Feeds:
            out, state = m(f["tokens"], as_state(f, rnn.num_states), f.get("lengths"))
            return {"scores": out} | state_out(state)

        plan.references["sequence"] = ref_sequence
        plan.real["sequence"] = [
            {"tokens": x, **({"lengths": n} if lengths else {}), **zero_state(rnn, len(x))} for x, n in batches(real, 0)
        ]
    if "step" in wanted:
        plan.graphs.append(
            GraphSpec(
                "step",
                ManyToManyStep(model),
                [token, *state_specs(rnn)],
                [IOSpec("scores", ("batch", K), doc=what), *state_specs(rnn, "_out")],
                "One timestep: ManyToMany.decode_step(token, state).",
            )
        )

        def ref_step(m: nn.Module, f: Feeds) -> Feeds:
            out, state, _ = m.decode_step(f["token"], as_state(f, rnn.num_states))
            return {"scores": out} | state_out(state)

        plan.references["step"] = ref_step
    if getattr(model, "crf", None) is not None:
        crf = model.crf
        plan.files["crf.json"] = {
            "transitions": crf.transitions.detach().cpu().tolist(),
            "start": crf.start.detach().cpu().tolist(),
            "end": crf.end.detach().cpu().tolist(),
        }
        plan.notes.append("crf.json: transitions[from][to], start, end of the CRF; decode the scores with Viterbi.")

    def compose(run: Run, feeds: Feeds) -> list[Composite]:
        if not (plan.has("step") and plan.has("sequence")):
            return []
        seq = {"tokens": feeds["tokens"], **as_dict_state(feeds, rnn.num_states)}
        if lengths:
            seq["lengths"] = torch.full((len(feeds["tokens"]),), feeds["tokens"].shape[1], dtype=torch.long)
        stepped = drive(lambda f: run("step", f), plan.spec("step"), {"token": seq["tokens"], **as_dict_state(seq, 2)})
        ref = plan.references["sequence"]
        return [
            Composite(
                "step graph driven T steps == sequence graph",
                stepped,
                run("sequence", seq),
                lambda m, wide: ref(m, to64(seq, wide)),
            )
        ]

    plan.compose = compose  # type: ignore[method-assign]
    return plan


def tag_plan(task: Any, names: tuple[str, ...] | None, run: Path | None) -> Plan:
    text = read_run_file(run, "predictions.conll")
    sentences = [[line.split("\t")[0] for line in block.splitlines()] for block in (text or "").split("\n\n")]
    real = [task.encode(s) for s in sentences if s and s[0]]
    plan = many_to_many_plan(task, names, True, real)
    plan.train_length = None
    return plan


def lm_plan(task: Any, names: tuple[str, ...] | None, run: Path | None) -> Plan:
    text = read_run_file(run, "samples.txt") or ""
    ids = task.ids(text.split("\n", 1)[-1]) if text else []
    chunk = max(1, min(len(ids) // 8, 64))
    real = [ids] + [ids[i * chunk : (i + 1) * chunk] for i in range(7)] if ids else []
    plan = many_to_many_plan(task, names, False, real)
    plan.train_length = task.cfg.timestep
    return plan


# ---- many-to-one: classify ---------------------------------------------------------------------------------------
def classify_plan(task: Any, names: tuple[str, ...] | None, run: Path | None) -> Plan:
    """``sequence`` (tokens, lengths -> logits), ``step`` (one token -> the recurrent layer's output) and ``head``
    (the pooled outputs -> logits)."""
    net = task.model
    rnn = net.rnn
    plan = Plan(task)
    bi = rnn.bidirectional
    wanted = select_graphs(names, ["sequence"] if bi else ["sequence", "step", "head"], bi, task.name)
    V = len(task.vocab)
    tokens = IOSpec("tokens", ("batch", "time"), "tokens", "token ids (right-padded)", high=V)
    lengths = IOSpec("lengths", ("batch",), "lengths", "valid steps per sequence, 1..time")
    logits = IOSpec(
        "logits",
        ("batch", len(task.labels)),
        doc="class logits (calibrated: their softmax is the model's probabilities), in the order of labels in "
        "config.json",
    )
    net_logits = IOSpec("logits", logits.shape, doc="the network's class logits (before the bag's votes, uncalibrated)")
    bag = net.ngrams is not None and bool(net.mix != 0)  # the sequence graph adds mix x the n-gram bag's votes
    if "sequence" in wanted:
        plan.graphs.append(
            GraphSpec(
                "sequence",
                ManyToOneSequence(net, True),
                [tokens, lengths],
                [logits],
                "The whole sequence from the zero state to the task's output."
                + (
                    " Words outside the vocabulary are read as <unk> by the n-gram bag too (rnnkit itself lets their"
                    " character n-grams vote), so a text with such words can score slightly differently here."
                    if bag and net.ngrams.cfg.chars and net.ngrams.cfg.unseen
                    else ""
                ),
            )
        )
    plan.references["sequence"] = lambda m, f: {"logits": m(f["tokens"], f["lengths"])}
    if "step" in wanted:
        plan.graphs.append(
            GraphSpec(
                "step",
                ManyToOneStep(net),
                [IOSpec("token", ("batch",), "tokens", "the current token id", high=V), *state_specs(rnn)],
                [IOSpec("y", ("batch", rnn.hidden_size), doc="top layer's output"), *state_specs(rnn, "_out")],
                "One timestep of the recurrent layer (pool the outputs, then run head.onnx).",
            )
        )

        def ref_step(m: nn.Module, f: Feeds) -> Feeds:
            y, state = m.rnn.step(m.input(f["token"].unsqueeze(1))[:, 0], as_state(f, rnn.num_states))
            return {"y": y} | state_out(state)

        plan.references["step"] = ref_step
    if "head" in wanted:
        plan.graphs.append(
            GraphSpec(
                "head",
                ManyToOneHead(net),
                [IOSpec("summary", ("batch", rnn.output_size), doc=f"pooled outputs ({net.pool.kind})")],
                [net_logits if bag else logits],
                "The head: the pooled summary (with pooling 'last': h_out of the top layer) to the output"
                + (
                    " (the network's logits before calibration; sequence.onnx adds the n-gram bag's votes, then"
                    f" multiplies by the temperature {float(net.temperature):.6g})."
                    if bag
                    else f" (the network's logits times the temperature {float(net.temperature):.6g} chosen on"
                    " validation data, as sequence.onnx)."
                ),
            )
        )
        plan.references["head"] = lambda m, f: {"logits": m.head(f["summary"]) * (1.0 if bag else m.temperature)}

    def compose(run: Run, feeds: Feeds) -> list[Composite]:
        if not (plan.has("step") and plan.has("head") and plan.has("sequence")) or net.pool.kind == "attention":
            return []
        if bag:  # the sequence graph adds the n-gram bag's votes, which head.onnx (the network's part) has not
            return []
        x = feeds["tokens"]
        seq = {"tokens": x, "lengths": torch.full((len(x),), x.shape[1], dtype=torch.long)}
        stepped = drive(lambda f: run("step", f), plan.spec("step"), {"token": x, **zero_state(rnn, len(x))})
        summary = {"last": stepped["h_out"][-1], "mean": stepped["y"].mean(1), "max": stepped["y"].amax(1)}
        ref = plan.references["sequence"]
        return [
            Composite(
                "step graph driven T steps, pooled, then head == sequence graph",
                run("head", {"summary": summary[net.pool.kind]}),
                run("sequence", seq),
                lambda m, wide: ref(m, to64(seq, wide)),
            )
        ]

    plan.compose = compose  # type: ignore[method-assign]
    text = read_run_file(run, "predictions.csv")
    if text is not None:
        import pandas as pd

        texts = pd.read_csv(io.StringIO(text))["text"].astype(str).tolist()
        plan.real["sequence"] = [{"tokens": x, "lengths": n} for x, n in batches(task.encode(texts), task.vocab.pad)]
    plan.train_length = task.cfg.max_length
    return plan


# ---- forecast ------------------------------------------------------------------------------------------------------
def forecast_plan(task: Any, names: tuple[str, ...] | None, data: Any) -> Plan:
    """The forecaster's own ``forward`` as the sequence graph; one step of its recurrent layer (over one patch of
    ``patch`` steps) as the step graph. The forecast itself needs the whole window: the relative shift is to the
    window's last value, and a linear part, where the model has one, maps exactly ``timestep`` steps, which then
    fixes the sequence graph's time axis."""
    cfg, model = task.cfg, task.model
    n, horizon = len(cfg.series.target), cfg.series.horizon
    F, Ff = len(task.columns["input"]), len(task.columns["future"])
    rnn = model.net.rnn
    bi = rnn.bidirectional
    wanted = select_graphs(names, ["sequence"] if bi else ["sequence", "step"], bi, task.name)
    plan = Plan(task)
    time: str | int = cfg.series.timestep if getattr(model, "linear", None) is not None else "time"
    x = IOSpec("x", ("batch", time, F), doc="scaled inputs per step, columns as 'input' in config.json")
    future = IOSpec("future", ("batch", horizon, Ff), doc="scaled known-future covariates") if Ff else None
    q = (len(cfg.quantiles),) if cfg.quantiles else ()
    pred = IOSpec("prediction", ("batch", horizon, n, *q), doc="scaled forecast" + (" per quantile" if q else ""))
    if "sequence" in wanted:
        spec = GraphSpec(
            "sequence",
            ForecastSequence(model, horizon, Ff),
            [x, *([future] if future is not None else [])],
            [pred],
            "The forecast from a window of past steps: ForecastNet.forward(x, future).",
        )
        plan.graphs.append(spec)
        if isinstance(time, int):
            spec.notes.append(
                f"The time axis is fixed at timestep={time}: the model's linear part maps exactly that many steps."
            )

    def ref_sequence(m: nn.Module, f: Feeds) -> Feeds:
        fut = f["future"] if Ff else f["x"].new_zeros(len(f["x"]), horizon, 0)
        return {"prediction": m(f["x"], fut)}

    plan.references["sequence"] = ref_sequence
    if "step" in wanted:
        plan.graphs.append(forecast_step(task))

        def ref_step(m: nn.Module, f: Feeds) -> Feeds:
            xs = f["x"] if m.patch > 1 else f["x"].unsqueeze(1)  # (B, patch, F)
            if m.relative:
                xs = torch.cat([xs[..., :n] - f["base"][:, None], xs[..., n:]], -1)
            y, state = m.net.rnn.step(m.net.input(m.patches(xs))[:, 0], as_state(f, rnn.num_states))
            return {"y": y} | state_out(state)

        plan.references["step"] = ref_step
    if data is not None:
        xs, fs, _ = task.prepare(data).windows("all").tensors()  # each series scaled as in training
        plan.real["sequence"] = [
            {"x": xs[idx], **({"future": fs[idx]} if Ff else {})} for idx in (slice(-1, None), slice(0, 8))
        ]
    plan.train_length = cfg.series.timestep
    return plan


def forecast_step(task: Any) -> GraphSpec:
    """``(x (B, [patch,] F), [base (B, n)], h[, c]) -> (y (B, H), h_out[, c_out])``: one recurrent step."""
    model, cfg = task.model, task.cfg
    rnn, P, n = model.net.rnn, cfg.patch, len(cfg.series.target)
    F = len(task.columns["input"])
    if P > 1:
        x = IOSpec("x", ("batch", P, F), doc=f"one patch of {P} steps (oldest first), columns as 'input'")
        what = (
            f"One step of the recurrent layer: it reads a window in patches, one patch of {P} steps per step (the "
            f"oldest timestep % {P} steps of a window go to the linear part alone)"
        )
    else:
        x = IOSpec("x", ("batch", F), doc="this step's scaled inputs, columns as 'input' in config.json")
        what = "One step of the recurrent layer"
    base = [IOSpec("base", ("batch", n), doc="last observed targets of the window (scaled)")] if model.relative else []
    relative = ", with the targets relative to base" if model.relative else ""
    return GraphSpec(
        "step",
        ForecastStep(model),
        [x, *base, *state_specs(rnn)],
        [IOSpec("y", ("batch", rnn.hidden_size), doc="top layer's output"), *state_specs(rnn, "_out")],
        f"{what}{relative}. The forecast itself needs the whole window (sequence.onnx).",
    )


# ---- encoder-decoder: translate ----------------------------------------------------------------------------------
def translate_plan(task: Any, names: tuple[str, ...] | None, run: Path | None) -> Plan:
    from ..topologies.encoder_decoder import DecoderState

    model, cfg = task.model, task.model.cfg
    wanted = select_graphs(names, ["encoder", "decoder_step"], False, task.name)
    plan = Plan(task)
    dec, K, V = model.decoder, model.encoder.output_size, cfg.tgt_vocab
    attn = model.attention is not None
    memory = [
        IOSpec("memory", ("batch", "source", K), doc="encoder outputs (from encoder.onnx)"),
        IOSpec("mask", ("batch", "source"), "mask", "valid source positions (from encoder.onnx)", length_of="source"),
    ]
    plan.graphs.append(
        GraphSpec(
            "encoder",
            Encoder(model),
            [
                IOSpec("src", ("batch", "source"), "tokens", "source token ids (right-padded)", high=cfg.src_vocab),
                IOSpec("src_lengths", ("batch",), "lengths", "valid source tokens, 1..source", length_of="source"),
            ],
            [
                IOSpec("memory", ("batch", "source", K), doc="encoder outputs, the attention memory"),
                IOSpec("mask", ("batch", "source"), "mask", "valid source positions", length_of="source"),
                *state_specs(dec, when="to start the decoder from (the bridge)"),
            ],
            "EncoderDecoder.encode: the attention memory and the decoder's initial state (the bridge).",
        )
    )
    plan.graphs.append(
        GraphSpec(
            "decoder_step",
            DecoderStep(model),
            [IOSpec("token", ("batch",), "tokens", "previous target token (bos first)", high=V), *state_specs(dec)]
            + (memory if attn else []),
            [IOSpec("logits", ("batch", V), doc="next-token logits"), *state_specs(dec, "_out")]
            + ([IOSpec("attention", ("batch", "source"), doc="attention weights of this step")] if attn else []),
            "EncoderDecoder.decode_step: one target token; beam search runs around it.",
        )
    )

    def ref_encoder(m: nn.Module, f: Feeds) -> Feeds:
        st = m.encode(f["src"], f["src_lengths"])
        return {"memory": st.memory, "mask": st.mask} | dict(zip(("h", "c"), st.rnn))

    def ref_step(m: nn.Module, f: Feeds) -> Feeds:
        st = DecoderState(as_state(f, dec.num_states), f.get("memory"), f.get("mask"))  # type: ignore[arg-type]
        logits, new, weights = m.decode_step(f["token"], st)
        return {"logits": logits} | state_out(new.rnn) | ({"attention": weights} if attn else {})

    plan.references |= {"encoder": ref_encoder, "decoder_step": ref_step}
    text = read_run_file(run, "predictions.jsonl")
    if text:
        sources = [json.loads(line)["source"] for line in text.splitlines() if line.strip()]
        ids = [task.src_vocab.encode(task.src_tok.tokenize(task._prep(s))) for s in sources]
        plan.real["encoder"] = [{"src": x, "src_lengths": n} for x, n in batches(ids, 0)]
    plan.train_length = task.cfg.max_length + 2
    plan.graphs = [g for g in plan.graphs if g.name in wanted]

    def compose(run_graph: Run, feeds: Feeds) -> list[Composite]:
        if not (plan.has("encoder") and plan.has("decoder_step")):
            return []
        enc = run_graph("encoder", feeds)
        gen = torch.Generator().manual_seed(1)
        tgt_in = torch.randint(0, V, (len(feeds["src"]), 7), generator=gen)
        tgt_in[:, 0] = cfg.bos
        steps = {"token": tgt_in, **as_dict_state(enc, dec.num_states)} | (
            {"memory": enc["memory"], "mask": enc["mask"]} if attn else {}
        )
        got = drive(lambda f: run_graph("decoder_step", f), plan.spec("decoder_step"), steps)

        def ref(m: nn.Module, wide: bool) -> Feeds:
            return {"logits": m(feeds["src"], feeds["src_lengths"], tgt_in)}

        with torch.no_grad():
            want = ref(model, False)
        label = "encoder + decoder_step driven 7 target steps == model(src, lengths, tgt_in)"
        return [Composite(label, {"logits": got["logits"]}, want, ref)]

    plan.compose = compose  # type: ignore[method-assign]
    return plan
