"""Memory horizon: an analytic decay rate, what a trained LSTM attends to, and LSTM vs vanilla RNN after training."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from _adding import train_adding
from rnnkit import (
    EncoderDecoder,
    EncoderDecoderConfig,
    ManyToMany,
    ManyToManyConfig,
    ManyToOne,
    ManyToOneConfig,
    OneToMany,
    OneToManyConfig,
    OneToOne,
    OneToOneConfig,
    Recurrent,
    RNNConfig,
)
from rnnkit.data.synthetic import adding_problem
from rnnkit.inspect import memory_horizon
from rnnkit.inspect.horizon import horizon_of
from rnnkit.layers.heads import HeadConfig
from rnnkit.layers.inputs import InputConfig


@pytest.fixture
def one_thread():
    # tiny models: one thread is fastest, and two threads thrash on a machine shared with other jobs
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _scaled_orthogonal_rnn(a: float, size: int = 16) -> Recurrent:
    """tanh RNN with W_ih orthogonal and W_hh = a * orthogonal, no bias: near h = 0 the gradient of h_T with
    respect to x_t is W_ih^T (W_hh^T)^(T-t) times tanh' ≈ 1, whose norm is exactly a^(T-t) times that at lag 0."""
    rnn = Recurrent("rnn_tanh", size, size, bias=False)
    with torch.no_grad():
        nn.init.orthogonal_(rnn.weight_ih_l0)
        nn.init.orthogonal_(rnn.weight_hh_l0)
        rnn.weight_hh_l0.mul_(a)
    return rnn


def test_untrained_vanilla_rnn_decays_at_the_analytic_rate(one_thread):
    a = 0.7
    rnn = _scaled_orthogonal_rnn(a)
    x = 1e-4 * torch.randn(8, 40, 16)  # small inputs keep tanh' within 1e-7 of 1
    h = memory_horizon(rnn, x)
    ratios = h.curve[1:] / h.curve[:-1]
    torch.testing.assert_close(ratios, torch.full_like(ratios, a), rtol=1e-3, atol=0)
    assert h.horizon == math.floor(math.log(0.01) / math.log(a)) == 12
    assert not h.reached_end and len(h.curve) == 40

    # with lengths, each sequence's lag counts from its own last step: the same geometric curve
    lengths = torch.tensor([40, 25, 31, 12, 40, 7, 19, 33])
    h = memory_horizon(rnn, (x, None, lengths))
    ratios = h.curve[1:] / h.curve[:-1]
    torch.testing.assert_close(ratios, torch.full_like(ratios, a), rtol=1e-3, atol=0)
    assert h.counts[0] == 8 and h.counts[39] == 2 and h.counts[12] == 6
    assert not h.by_step[5, 7:].any(), "nothing past a sequence's end"


@pytest.fixture(scope="module")
def trained(adding_lstm):
    """The session's LSTM trained on the adding problem (conftest.py) and a tanh RNN given 500 updates on the same
    task (more than the LSTM needed; it never solves it)."""
    T = adding_lstm.timestep
    return {"T": T, "lstm": adding_lstm, "rnn_tanh": train_adding("rnn_tanh", T, 500)}


@pytest.mark.slow
def test_trained_lstm_looks_back_at_the_marked_positions(trained):
    lstm = trained["lstm"]
    assert lstm.val_mse < 0.01, "the LSTM solved the adding problem (baseline 0.167)"
    x, _ = adding_problem(200, trained["T"], generator=torch.Generator().manual_seed(7))
    h = memory_horizon(lstm.model, x)
    marked = x[..., 1] > 0  # (B, T): exactly two per sequence
    g = h.by_step
    lowest_marked = g.masked_fill(~marked, float("inf")).min(1).values
    highest_unmarked = g.masked_fill(marked, 0.0).max(1).values
    assert (lowest_marked > highest_unmarked).float().mean() > 0.9, "both marked steps beat every unmarked one"
    assert float(g[marked].mean()) > 5 * float(g[~marked].mean())


@pytest.mark.slow
def test_after_training_the_lstm_remembers_further_than_the_vanilla_rnn(trained):
    T = trained["T"]
    x, _ = adding_problem(200, T, generator=torch.Generator().manual_seed(7))
    lstm, rnn = (memory_horizon(trained[cell].model, x) for cell in ("lstm", "rnn_tanh"))
    assert lstm.reached_end, f"the first marker can be {T - 1} steps back: the trained LSTM still reacts to it"
    assert not rnn.reached_end and lstm.horizon > rnn.horizon, (lstm.horizon, rnn.horizon)
    far = [float((h.curve / h.curve.max())[T // 2 :].mean()) for h in (lstm, rnn)]  # the first half of the sequence
    assert far[0] > 20 * far[1], f"the LSTM's curve stays up, the vanilla RNN's decays: {far}"


def test_every_topology_has_a_curve(one_thread):
    rnn = RNNConfig("gru", 8)
    tokens, lengths = torch.randint(4, 30, (3, 7)), torch.tensor([7, 4, 6])

    clf = ManyToOne(ManyToOneConfig(InputConfig(vocab_size=30), rnn, "last", HeadConfig(num_classes=3)))
    h = memory_horizon(clf, (tokens, lengths))
    assert len(h.curve) == 7 and h.counts.tolist() == [3, 3, 3, 3, 2, 2, 1] and float(h.curve[0]) > 0

    tagger = ManyToMany(ManyToManyConfig(InputConfig(vocab_size=30), RNNConfig("lstm", 8), HeadConfig(num_classes=4)))
    h = memory_horizon(tagger, (tokens, None, lengths), at=2)
    assert len(h.curve) == 3 and h.ends.tolist() == [2, 2, 2]
    assert not h.by_step[:, 3:].any(), "the curve covers the output's step and before"

    gen = OneToMany(OneToManyConfig(condition_size=4, vocab_size=30, rnn=RNNConfig("mingru", 8)))
    h = memory_horizon(gen, (torch.randn(3, 4), tokens))
    assert len(h.curve) == 7 and float(h.curve[-1]) > 0

    one = OneToOne(OneToOneConfig(input_size=5, rnn=rnn, head=HeadConfig(num_classes=2)))
    h = memory_horizon(one, torch.randn(4, 5))
    assert len(h.curve) == 1 and h.horizon == 0

    mt = EncoderDecoder(EncoderDecoderConfig(src_vocab=30, tgt_vocab=20, embedding_dim=8, attention="bahdanau"))
    h = memory_horizon(mt, (tokens, lengths, torch.full((3, 1), 2)))
    assert len(h.curve) == 7 and bool((h.by_step[0] > 0).all()), "attention reaches every source word"


@pytest.mark.parametrize("cell", ["rnn_relu", "lstm", "gru", "layernorm_lstm", "mingru", "minlstm"])
def test_every_cell_has_a_curve(cell, one_thread):
    layer = Recurrent(cell, 3, 6, num_layers=2)
    h = memory_horizon(layer, torch.randn(4, 12, 3))
    assert len(h.curve) == 12 and float(h.curve[0]) > 0 and 0 <= h.horizon <= 11


def test_horizon_of_and_bad_requests():
    assert horizon_of(torch.tensor([1.0, 0.5, 0.02, 0.005, 0.011, 0.001])) == 4, "the last lag above 1%"
    assert horizon_of(torch.zeros(5)) == 0
    layer = Recurrent("gru", 2, 3)
    x, lengths = torch.randn(2, 5, 2), torch.tensor([5, 3])
    with pytest.raises(ValueError, match="at=3 is outside the sequences"):
        memory_horizon(layer, (x, None, lengths), at=3)
    with pytest.raises(ValueError, match="output=9 is out of range: the output has 3 values"):
        memory_horizon(layer, x, output=9)
    clf = ManyToOne(ManyToOneConfig(InputConfig(input_size=2), RNNConfig("gru", 3), head=HeadConfig(num_classes=2)))
    with pytest.raises(ValueError, match="one output after the whole input; drop at="):
        memory_horizon(clf, x, at=1)
