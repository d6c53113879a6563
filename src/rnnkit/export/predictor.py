"""``OnnxPredictor``: a task's ``predict`` with every neural computation in onnxruntime.

The task object is rebuilt from the export's ``config.json`` (vocabularies, tokenisers, labels, scaler) and its
model is replaced by a stand-in that answers the calls the task makes (``model(x, lengths)``, ``model.decode``,
``model.translate``, ``model.stream`` ...) by running the exported graphs. So tokenising, scaling, the CRF's Viterbi
(in numpy, from ``crf.json``), greedy and beam search and sampling are exactly the task's, around onnxruntime:
``translate``, ``stream`` and ``generate`` are the topologies' own methods (``EncoderDecoder.translate``,
``ManyToMany.stream``), running on the stand-in's ``encode``/``decode_step``. PyTorch tensors still carry data
between those steps (the task code is written with them); no PyTorch module runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..config import from_dict
from ..topologies.encoder_decoder import DecoderState, EncoderDecoder
from ..topologies.many_to_many import ManyToMany

_NUMPY = {"tensor(float)": np.float32, "tensor(int64)": np.int64, "tensor(bool)": np.bool_, "tensor(int32)": np.int32}


class Graphs:
    """The ONNX graphs of an export directory, opened on first use: ``run(name, feeds) -> outputs by name``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.sessions: dict[str, Any] = {}

    def has(self, name: str) -> bool:
        return (self.directory / f"{name}.onnx").is_file()

    def session(self, name: str) -> Any:
        if name not in self.sessions:
            import onnxruntime as ort

            path = self.directory / f"{name}.onnx"
            if not path.is_file():
                raise ValueError(f"{self.directory} has no {path.name}; export it (rnnkit export ... --graphs {name})")
            options = ort.SessionOptions()
            options.log_severity_level = 3
            self.sessions[name] = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return self.sessions[name]

    def run(self, name: str, feeds: dict[str, Tensor]) -> dict[str, Tensor]:
        sess = self.session(name)
        inputs = {i.name: feeds[i.name].detach().cpu().numpy().astype(_NUMPY[i.type]) for i in sess.get_inputs()}
        names = [o.name for o in sess.get_outputs()]
        return {n: torch.from_numpy(np.asarray(v)) for n, v in zip(names, sess.run(names, inputs))}


def zero_state(layer: dict[str, Any], batch: int) -> dict[str, Tensor]:
    """``h`` (and ``c``) zeros for a recurrent layer described by ``num_states, rows, hidden``."""
    z = torch.zeros(layer["rows"], batch, layer["hidden"])
    return dict(zip(("h", "c"), [z] * layer["num_states"]))


def _layer_info(rnn: nn.Module) -> dict[str, Any]:
    return {"num_states": rnn.num_states, "rows": rnn.num_layers * rnn.num_directions, "hidden": rnn.hidden_size}


def viterbi(scores: np.ndarray, mask: np.ndarray, crf: dict[str, Any]) -> np.ndarray:
    """Best tag sequences ``(B, T)`` (0 past each length) of a linear-chain CRF, as ``LinearChainCRF.decode``:
    ``scores (B, T, K)`` emissions, ``mask (B, T)`` a prefix of True per row."""
    trans, start, end = (np.asarray(crf[k], dtype=np.float32) for k in ("transitions", "start", "end"))
    T, K = scores.shape[1:]
    score = start + scores[:, 0]
    back = []
    for t in range(1, T):
        cand = score[:, :, None] + trans  # (B, K_prev, K)
        idx, best = cand.argmax(1), cand.max(1)
        keep = mask[:, t : t + 1]
        score = np.where(keep, best + scores[:, t], score)
        back.append(np.where(keep, idx, np.arange(K)[None, :]))  # past the end the path stays put
    last = (score + end).argmax(1)
    path = [last]
    for bp in reversed(back):
        last = np.take_along_axis(bp, last[:, None], 1)[:, 0]
        path.append(last)
    return np.where(mask, np.stack(path[::-1], 1), 0)


class _Stand(nn.Module):
    """Base of the stand-ins: a module without parameters (so the task sees a CPU model) over the graphs."""

    def __init__(self, graphs: Graphs, model: nn.Module) -> None:
        super().__init__()
        self.graphs = graphs
        self.__dict__["original"] = model  # for config-only helpers (point(), cfg); not a submodule


class ForecastStand(_Stand):
    def forward(self, x: Tensor, f: Tensor) -> Tensor:
        feeds = {"x": x, "future": f}
        return self.graphs.run("sequence", feeds)["prediction"]

    def point(self, pred: Tensor) -> Tensor:
        return self.__dict__["original"].point(pred)


class ClassifyStand(_Stand):
    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        lengths = torch.full((len(x),), x.shape[1]) if lengths is None else lengths
        return self.graphs.run("sequence", {"tokens": x, "lengths": lengths})["logits"]


class SequenceStand(_Stand):
    """Tagger and language model: ``forward(x, state, lengths)``, ``decode``, ``decode_step``; ``stream`` and
    ``generate`` are :class:`~rnnkit.ManyToMany`'s own, priming with ``sequence.onnx`` and stepping with
    ``step.onnx``."""

    def __init__(self, graphs: Graphs, model: nn.Module, crf: dict[str, Any] | None) -> None:
        super().__init__(graphs, model)
        self.cfg, self.layer, self.crf = model.cfg, _layer_info(model.rnn), crf
        self.takes_lengths = any(i.name == "lengths" for i in graphs.session("sequence").get_inputs())
        # what ManyToMany's priming calls: rnn(input(tokens), lengths=...) -> (_, state); the sequence graph
        # takes the tokens themselves, so the input is passed through
        self.input = nn.Identity()
        self.rnn = self.forward

    def _state(self, state: tuple[Tensor, ...] | None, batch: int) -> dict[str, Tensor]:
        return zero_state(self.layer, batch) if state is None else dict(zip(("h", "c"), state))

    def forward(
        self, x: Tensor, state: tuple[Tensor, ...] | None = None, lengths: Tensor | None = None
    ) -> tuple[Tensor, tuple[Tensor, ...]]:
        feeds = {"tokens": x, **self._state(state, len(x))}
        if self.takes_lengths:
            feeds["lengths"] = torch.full((len(x),), x.shape[1]) if lengths is None else torch.as_tensor(lengths)
        out = self.graphs.run("sequence", feeds)
        return out["scores"], tuple(out[k] for k in ("h_out", "c_out")[: self.layer["num_states"]])

    @torch.no_grad()
    def decode(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        scores, _ = self(x, None, lengths)
        n = torch.full((len(x),), x.shape[1]) if lengths is None else torch.as_tensor(lengths)
        mask = (torch.arange(x.shape[1])[None, :] < n[:, None]).numpy()
        if self.crf is not None:
            return torch.from_numpy(viterbi(scores.numpy(), mask, self.crf))
        return scores.argmax(-1).masked_fill(~torch.from_numpy(mask), 0)

    def decode_step(self, tokens: Tensor, state: tuple[Tensor, ...] | None) -> tuple[Tensor, tuple[Tensor, ...], None]:
        out = self.graphs.run("step", {"token": tokens, **self._state(state, len(tokens))})
        return out["scores"], tuple(out[k] for k in ("h_out", "c_out")[: self.layer["num_states"]]), None

    stream = ManyToMany.stream
    generate = ManyToMany.generate
    _prime = ManyToMany._prime
    _check_lm = ManyToMany._check_lm


class TranslateStand(_Stand):
    """``encode`` runs ``encoder.onnx``, ``decode_step`` runs ``decoder_step.onnx``; ``translate`` (greedy or beam
    search) is :class:`~rnnkit.EncoderDecoder`'s own around them."""

    def __init__(self, graphs: Graphs, model: nn.Module) -> None:
        super().__init__(graphs, model)
        self.cfg, self.n = model.cfg, model.decoder.num_states

    def encode(self, src: Tensor, src_lengths: Tensor | None = None) -> DecoderState:
        lengths = torch.full((len(src),), src.shape[1]) if src_lengths is None else torch.as_tensor(src_lengths)
        out = self.graphs.run("encoder", {"src": src, "src_lengths": lengths})
        return DecoderState(tuple(out[k] for k in ("h", "c")[: self.n]), out["memory"], out["mask"])

    def decode_step(self, tokens: Tensor, state: DecoderState) -> tuple[Tensor, DecoderState, Tensor | None]:
        feeds = {"token": tokens, **dict(zip(("h", "c"), state.rnn)), "memory": state.memory, "mask": state.mask}
        out = self.graphs.run("decoder_step", feeds)
        rnn = tuple(out[k] for k in ("h_out", "c_out")[: self.n])
        return out["logits"], DecoderState(rnn, state.memory, state.mask), out.get("attention")

    select_state = staticmethod(EncoderDecoder.select_state)
    translate = EncoderDecoder.translate


class OnnxPredictor:
    """The task saved in an export directory, predicting with onnxruntime: ``predict``, ``predict_inputs``,
    ``translate``, ``generate``, ``predict_proba`` ... as the task's own methods (see the task classes).

    Example: ``OnnxPredictor("runs/de-en/onnx").translate(["Ein Hund rennt."], beam_size=4)``.
    """

    def __init__(self, directory: str | Path) -> None:
        from ..tasks import task_class

        directory = Path(directory)
        path = directory / "config.json"
        if not path.is_file():
            raise ValueError(f"{directory} is not an rnnkit ONNX export (no config.json); run 'rnnkit export' first")
        data = json.loads(path.read_text())
        name = data.get("task")
        if name == "recurrent":
            raise ValueError(f"{directory} holds a bare recurrent layer; run its graphs with onnxruntime directly")
        cls = task_class(name)
        with torch.random.fork_rng():  # the stand-in replaces the model; building it must not move the global RNG
            task = cls.from_artifacts(from_dict(cls.Config, data["config"]), data.get("artifacts", {}))
        graphs = Graphs(directory)
        model = task.model.eval()
        if name == "forecast":
            stand: nn.Module = ForecastStand(graphs, model)
        elif name == "classify":
            stand = ClassifyStand(graphs, model)
        elif name == "translate":
            stand = TranslateStand(graphs, model)
        else:
            crf_path = directory / "crf.json"
            stand = SequenceStand(graphs, model, json.loads(crf_path.read_text()) if crf_path.is_file() else None)
        task.model = stand
        self.task, self.directory = task, directory

    @property
    def name(self) -> str:
        return self.task.name

    def __getattr__(self, attr: str) -> Any:
        # predict, predict_inputs, translate, generate ... are the task's own, now running on the graphs
        if attr in ("task", "directory"):
            raise AttributeError(attr)
        return getattr(self.task, attr)
