"""OneToOne: a single step from the zero state."""

from __future__ import annotations

import pytest
import torch

from rnnkit import HeadConfig, OneToOne, OneToOneConfig, RNNConfig

CELLS = ["rnn_tanh", "lstm", "gru", "layernorm_lstm", "mingru", "minlstm"]


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("batch", [1, 5])
def test_shapes(cell, batch):
    m = OneToOne(OneToOneConfig(input_size=3, rnn=RNNConfig(cell=cell, hidden_size=8), head=HeadConfig(num_classes=4)))
    assert m(torch.randn(batch, 3)).shape == (batch, 4)
    reg = OneToOne(
        OneToOneConfig(
            3,
            RNNConfig(cell=cell, hidden_size=8, bidirectional=True),
            HeadConfig(kind="regression", horizon=2, output_size=3),
        )
    )
    assert reg(torch.randn(batch, 3)).shape == (batch, 2, 3)


def test_equals_one_cell_step_from_zero():
    m = OneToOne(OneToOneConfig(input_size=3, rnn=RNNConfig(cell="lstm", hidden_size=8)))
    x = torch.randn(4, 3)
    y, _ = m.rnn.step(x)
    torch.testing.assert_close(m(x), m.head(y))


def test_learns_xor_which_a_linear_model_cannot():
    torch.manual_seed(0)
    m = OneToOne(
        OneToOneConfig(input_size=2, rnn=RNNConfig(cell="gru", hidden_size=16), head=HeadConfig(num_classes=2))
    )
    x = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]).repeat(8, 1)
    y = (x[:, 0] != x[:, 1]).long()
    opt = torch.optim.Adam(m.parameters(), lr=0.05)
    for _ in range(300):
        loss = m.loss(m(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert (m(x).argmax(-1) == y).all()


def test_bad_input():
    m = OneToOne(OneToOneConfig(input_size=3))
    with pytest.raises(ValueError, match=r"expected input \(B, 3\), got \(4, 2, 3\)"):
        m(torch.randn(4, 2, 3))
