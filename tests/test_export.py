"""ONNX export of the recurrent layer, cell by cell: the graphs onnxruntime runs equal PyTorch, a step graph driven
T steps equals the whole-sequence graph, GRUs carry linear_before_reset=1, and bad options fail in one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
import onnx
import onnxruntime as ort

from rnnkit import Recurrent
from rnnkit.export import ExportConfig, VerificationError, export_onnx
from rnnkit.export import recurrent as export_recurrent
from rnnkit.export.verify import nudged

CELLS = ("rnn_tanh", "rnn_relu", "lstm", "gru", "layernorm_lstm", "mingru", "minlstm")


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Recurrent, object]]:
    """Every cell as a stacked (2-layer) unidirectional layer, exported and verified once."""
    out = {}
    for cell in CELLS:
        torch.manual_seed(0)
        layer = Recurrent(cell, 5, 8, num_layers=2).eval()
        if cell == "gru":  # the caller's model in float64 and training mode: the export must leave it so
            layer.double().train()
        out[cell] = (layer, export_onnx(layer, tmp_path_factory.mktemp(cell)))
    return out


def session(result: object, name: str) -> ort.InferenceSession:
    return ort.InferenceSession(str(result.directory / f"{name}.onnx"), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("cell", CELLS)
def test_every_cell_exports_step_and_sequence_verified_against_pytorch(exported, cell):
    _, result = exported[cell]
    report = json.loads((result.directory / "verify.json").read_text())
    assert report["passed"] and {"sequence.onnx", "step.onnx", "README.txt", "verify.json"} <= set(result.files)
    assert report["lengths"] == [1, 7, 200, 400] and report["batch_sizes"] == [1, 4]
    lengths_seen = {c["length"] for c in report["checks"] if c["graph"] == "step"}
    assert lengths_seen == {1, 7, 200, 400}  # the step graph was driven that many steps
    relative = [c for c in report["checks"] if c["criterion"] != "absolute"]
    assert all(c["length"] not in (1, 7) for c in relative)  # short sequences always meet 1e-5 absolutely
    for c in relative:  # the documented relative criterion (verify.py), stated with its numbers
        assert c["max_abs_error"] <= c["tolerance"] == pytest.approx(10 * c["pytorch_fp32_error"]), c
    if relative:  # only where PyTorch's own float32 answer is that uncertain: the layer-norm LSTM, long sequences
        assert cell == "layernorm_lstm" and "use the relative criterion" in report["summary"]
        assert "allowed: 10x" in report["summary"]
        assert report["summary"] in (result.directory / "README.txt").read_text()
    else:
        assert report["summary"] == f"All {len(report['checks'])} checks are within 1e-05 of PyTorch (absolute)."


@pytest.mark.parametrize("cell", ["lstm", "mingru"])
def test_step_driven_equals_sequence_graph_equals_pytorch_with_lengths(exported, cell):
    layer, result = exported[cell]
    step, seq = session(result, "step"), session(result, "sequence")
    B, T = 3, 40
    x = torch.randn(B, T, 5)
    lengths = torch.tensor([T, 17, 1])
    state = tuple(torch.randn(2, B, 8) * 0.5 for _ in range(layer.num_states))
    names = ("h", "c")[: layer.num_states]
    with torch.no_grad():
        want_y, want_state = layer(x, state, lengths)
    got = seq.run(None, {"x": x.numpy(), "lengths": lengths.numpy(), **{n: s.numpy() for n, s in zip(names, state)}})
    np.testing.assert_allclose(got[0], want_y.numpy(), atol=1e-5)
    assert not got[0][1, 17:].any() and not got[0][2, 1:].any()  # zero past each length
    for g, w in zip(got[1:], want_state):  # the state at each sequence's last valid step
        np.testing.assert_allclose(g, w.numpy(), atol=1e-5)
    # the step graph, driven over the full-length first sequence, reproduces the sequence graph step by step
    feeds = {n: s[:, :1].numpy() for n, s in zip(names, state)}
    ys = []
    for t in range(T):
        y, *new = step.run(None, {"x": x[:1, t].numpy(), **feeds})
        feeds = dict(zip(names, new))
        ys.append(y)
    np.testing.assert_allclose(np.stack(ys, 1)[0], got[0][0], atol=1e-5)
    for n, g in zip(names, got[1:]):
        np.testing.assert_allclose(feeds[n][:, 0], g[:, 0], atol=1e-5)


def test_gru_graph_has_linear_before_reset_and_named_dynamic_axes(exported):
    _, result = exported["gru"]
    for name in ("sequence", "step"):
        model = onnx.load(str(result.directory / f"{name}.onnx"))
        grus = [n for n in model.graph.node if n.op_type == "GRU"]
        assert len(grus) == 2  # one node per layer, in both graphs
        for node in grus:
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            assert attrs["linear_before_reset"] == 1
        inputs = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input}
        outputs = [o.name for o in model.graph.output]
        assert inputs["h"] == [2, "batch", 8] and outputs[1:] == ["h_out"]
        if name == "sequence":
            assert inputs["x"] == ["batch", "time", 5] and inputs["lengths"] == ["batch"]


def test_scan_cells_export_a_scan_over_their_own_equations(exported):
    ops = {n.op_type for n in onnx.load(str(exported["mingru"][1].directory / "sequence.onnx")).graph.node}
    assert "Scan" in ops and not ops & {"LSTM", "GRU", "RNN"}
    readme = (exported["lstm"][1].directory / "README.txt").read_text()
    assert "(L*D, batch, H) = (2, batch, 8)" in readme and "c_out" in readme


@pytest.mark.parametrize("cell", ["lstm", "mingru"])  # a native node and a Scan; tag, translate: a GRU
def test_bidirectional_stacked_sequence_graph(tmp_path, cell):
    layer = Recurrent(cell, 4, 6, num_layers=2, bidirectional=True).eval()
    result = export_onnx(layer, tmp_path)
    assert result.report["passed"] and "step.onnx" not in result.files
    assert "bidirectional" in (tmp_path / "README.txt").read_text()
    with pytest.raises(ValueError, match="bidirectional layer has no step graph"):
        export_onnx(layer, tmp_path / "step", ExportConfig(graphs=("step",)))


def test_a_wrong_graph_fails_verification_with_the_number(tmp_path, monkeypatch):
    # torch's GRU gate order handed to ONNX unpermuted: a silently wrong graph, which the verification must catch
    monkeypatch.setitem(export_recurrent.GATE_ORDER, "gru", (0, 1, 2))
    with pytest.raises(VerificationError, match=r"differs from PyTorch by \d"):
        export_onnx(Recurrent("gru", 3, 4), tmp_path, ExportConfig(graphs=("sequence",)))
    report = json.loads((tmp_path / "verify.json").read_text())
    assert not report["passed"] and max(report["max_abs_error"]["sequence"].values()) > 1e-3


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        (ExportConfig(format="tflite"), "unsupported export format 'tflite'; expected format='onnx'"),
        (ExportConfig(opset=12), "opset must be in 17..21"),
        (ExportConfig(graphs=("decoder",)), "unknown graph 'decoder'"),
    ],
)
def test_unsupported_options_fail_in_one_line(tmp_path, cfg, message):
    with pytest.raises(ValueError, match=message) as info:
        export_onnx(Recurrent("lstm", 3, 4), tmp_path, cfg)
    assert "\n" not in str(info.value)


def test_overwrite_replaces_only_the_exporters_files(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    (tmp_path / "notes").mkdir()
    (tmp_path / "step.onnx").write_text("an earlier export's graph")
    with pytest.raises(ValueError, match="already holds files; pass overwrite=True"):
        export_onnx(Recurrent("rnn_tanh", 3, 4), tmp_path)
    result = export_onnx(Recurrent("rnn_tanh", 3, 4), tmp_path, ExportConfig(graphs=("sequence",), overwrite=True))
    assert (tmp_path / "keep.txt").read_text() == "mine" and (tmp_path / "notes").is_dir()  # the user's files stay
    assert not (tmp_path / "step.onnx").exists()  # a stale graph of the earlier export does not
    assert set(result.files) == {"sequence.onnx", "config.json", "verify.json", "README.txt"}  # what it wrote


def test_export_leaves_the_callers_model_as_it_was(exported):
    layer, result = exported["gru"]
    assert result.report["passed"]  # exported (and verified) as float32 in eval mode ...
    assert layer.training and all(p.dtype == torch.float64 for p in layer.parameters())  # ... from a copy


def test_the_noise_floor_moves_every_parameter_by_one_float32_step():
    layer = Recurrent("lstm", 3, 4)
    twin = nudged(layer, torch.Generator().manual_seed(1))
    for p, q in zip(layer.parameters(), twin.parameters(), strict=True):
        assert (p != q).all()  # every parameter moved (the documented floor), none left as it was
        assert torch.equal(torch.nextafter(p, q), q)  # by exactly one step


def test_the_onnx_predictor_searches_with_the_topologies_own_methods():
    from rnnkit.export.predictor import SequenceStand, TranslateStand
    from rnnkit.topologies.encoder_decoder import EncoderDecoder
    from rnnkit.topologies.many_to_many import ManyToMany

    # not copies: the predictor's beam search, priming and sampling are the task's own, around the graphs
    assert TranslateStand.translate is EncoderDecoder.translate
    assert SequenceStand.stream is ManyToMany.stream and SequenceStand.generate is ManyToMany.generate
