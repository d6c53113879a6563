"""Traces equal what the layer computes (fused, scanned, C++ paths) and their gates rebuild the states."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from rnnkit import EncoderDecoder, EncoderDecoderConfig, ManyToOne, ManyToOneConfig, Recurrent, RNNConfig
from rnnkit.cells import LSTMCell
from rnnkit.inspect import memory_horizon, trace
from rnnkit.layers.inputs import InputConfig

CELLS = ("rnn_tanh", "rnn_relu", "lstm", "gru", "layernorm_lstm", "mingru", "minlstm")
LENGTHS = torch.tensor([7, 3, 5, 1])


def _layer(cell: str, **kw) -> Recurrent:
    return Recurrent(cell, 3, 5, num_layers=2, bidirectional=True, **kw).double()


@pytest.mark.parametrize("cell", CELLS)
def test_trace_equals_layer_outputs_and_final_states(cell):
    layer = _layer(cell)
    x = torch.randn(4, 7, 3, dtype=torch.float64)
    h0 = tuple(torch.randn(4, 4, 5, dtype=torch.float64) for _ in range(layer.num_states))
    out, state = layer(x, h0, LENGTHS)
    tr = trace(layer, (x, h0, LENGTHS))
    assert_close(tr.output, out)
    for got, want in zip(tr.final_state, state, strict=True):
        assert_close(got, want)
    # the lower layer is what the upper one reads: check it against a one-layer layer with the same weights
    low = Recurrent(cell, 3, 5, bidirectional=True).double()
    low.load_state_dict({k: v for k, v in layer.state_dict().items() if "_l0" in k})
    low_out, _ = low(x, tuple(s[:2] for s in h0), LENGTHS)
    assert_close(tr.layer_output(0), low_out)
    assert not tr.output[1, 3:].any() and not tr.h(0, 1)[1, 3:].any(), "zero past each length, both directions"


@pytest.mark.parametrize("cell", ["lstm", "layernorm_lstm"])
def test_lstm_gates_rebuild_the_cell_state(cell):
    layer = Recurrent(cell, 3, 6).double()
    x = torch.randn(5, 9, 3, dtype=torch.float64)
    tr = trace(layer, x)
    i, f, g, o = (tr.gate(n) for n in "ifgo")
    for name in tr.gate_names:
        v = tr.gate(name)
        assert float(v.min()) >= 0 and float(v.max()) <= 1, name
        assert float(v.std()) > 0.01, f"{name} varies with the input"
    c_prev = torch.cat([tr.initial_state[1][0].unsqueeze(1), tr.c()[:, :-1]], 1)
    assert_close(tr.c(), f * c_prev + i * g)
    if cell == "lstm":
        assert_close(tr.h(), o * torch.tanh(tr.c()))


def test_gru_and_mingru_gates_rebuild_the_hidden_state():
    x = torch.randn(3, 8, 3, dtype=torch.float64)
    gru = trace(Recurrent("gru", 3, 4).double(), x)
    h_prev = torch.cat([torch.zeros(3, 1, 4, dtype=torch.float64), gru.h()[:, :-1]], 1)
    z = gru.gate("z")
    assert_close(gru.h(), (1 - z) * gru.gate("n") + z * h_prev)
    assert gru.gate_names == ("r", "z")
    mingru = trace(Recurrent("mingru", 3, 4).double(), x)
    h_prev = torch.cat([torch.zeros(3, 1, 4, dtype=torch.float64), mingru.h()[:, :-1]], 1)
    z = mingru.gate("z")
    assert_close(mingru.h(), (1 - z) * h_prev + z * mingru.gate("h~"))


def test_trace_of_a_topology_follows_what_the_model_feeds_its_layer():
    cfg = ManyToOneConfig(InputConfig(vocab_size=20, embedding_dim=6), RNNConfig("gru", 5, bidirectional=True), "max")
    model = ManyToOne(cfg).eval()
    x, lengths = torch.randint(4, 20, (3, 6)), torch.tensor([6, 2, 4])
    tr = trace(model, (x, lengths))
    out, _ = model.rnn(model.input(x), lengths=lengths)
    assert_close(tr.output, out)
    assert_close(tr.inputs, model.input.embedding(x))


def test_trace_of_an_encoder_decoder_layer_by_name():
    model = EncoderDecoder(EncoderDecoderConfig(src_vocab=15, tgt_vocab=12, embedding_dim=8, attention="general"))
    src, tgt_in = torch.randint(4, 15, (2, 5)), torch.randint(4, 12, (2, 4))
    model.eval()
    state = model.encode(src)
    dec, _ = model.decoder(model.tgt_embed(tgt_in), state.rnn)
    tr = trace(model, (src, None, tgt_in), layer="decoder")
    assert_close(tr.output, dec)
    assert_close(tr.initial_state[0], state.rnn[0])
    with pytest.raises(ValueError, match="no recurrent layer 'decoderr' .*choose layer from encoder, decoder"):
        trace(model, (src, None, tgt_in), layer="decoderr")


def test_a_cell_that_redefines_recur_is_traced_without_stale_gates():
    class Leaky(LSTMCell):
        def recur(self, u, state, p):
            h, (_, c) = super().recur(u, state, p)
            return 0.5 * h, (0.5 * h, c)

    layer = Recurrent(Leaky, 2, 3)
    x = torch.randn(2, 4, 2)
    with pytest.warns(UserWarning, match="without gates"):
        tr = trace(layer, x)
    assert_close(tr.output, layer(x)[0])
    assert tr.gates[0] == {}


def test_trace_of_a_decoder_that_is_stepped_one_token_at_a_time():
    cfg = EncoderDecoderConfig(src_vocab=15, tgt_vocab=12, embedding_dim=8, attention="bahdanau")
    model = EncoderDecoder(cfg).eval()
    src, tgt_in = torch.randint(4, 15, (2, 5)), torch.randint(4, 12, (2, 4))
    tr = trace(model, (src, None, tgt_in), layer="decoder")
    assert tr.inputs.shape == (2, 4, 8 + model.encoder.output_size)
    # the decoder's outputs and the contexts it read rebuild the model's logits: the steps were captured in order
    context = tr.inputs[..., 8:]
    with torch.no_grad():
        assert_close(model.out(torch.cat([tr.output, context], -1)), model(src, None, tgt_in))
    assert "step" not in vars(model.decoder), "the layer's own step() is back"
    with pytest.raises(ValueError, match="stepped one timestep at a time"):
        memory_horizon(model, (src, None, tgt_in), layer="decoder")
