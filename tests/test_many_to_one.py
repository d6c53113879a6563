"""ManyToOne: shapes across cells, poolings and heads; padding invariance; the adding problem."""

from __future__ import annotations

import pytest
import torch

from rnnkit import HeadConfig, InputConfig, ManyToOne, ManyToOneConfig, RNNConfig
from rnnkit.data.synthetic import adding_problem

CELLS = ["rnn_tanh", "lstm", "gru", "layernorm_lstm", "mingru", "minlstm"]


def model(cell="gru", pooling="last", bidirectional=False, tokens=True, head=None):
    inp = InputConfig(vocab_size=20, embedding_dim=8) if tokens else InputConfig(input_size=3)
    rnn = RNNConfig(cell=cell, hidden_size=8, num_layers=2, bidirectional=bidirectional)
    return ManyToOne(ManyToOneConfig(inp, rnn, pooling, head or HeadConfig(num_classes=3)))


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("pooling", ["last", "mean", "max", "attention"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_shapes_and_padding_invariance(cell, pooling, bidirectional):
    m = model(cell, pooling, bidirectional).eval()
    x = torch.randint(1, 20, (4, 7))
    lengths = torch.tensor([7, 2, 5, 1])
    out = m(x, lengths)
    assert out.shape == (4, 3)
    x2 = x.clone()
    x2[torch.arange(7)[None, :] >= lengths[:, None]] = 0  # padding ids
    torch.testing.assert_close(m(x2, lengths), out, atol=1e-5, rtol=1e-5)


def test_forecast_head_with_horizon_and_quantiles():
    head = HeadConfig(kind="regression", horizon=12, output_size=2, quantiles=(0.1, 0.5, 0.9))
    m = model("lstm", tokens=False, head=head)
    pred = m(torch.randn(5, 30, 3))
    assert pred.shape == (5, 12, 2, 3)
    assert m.loss(pred, torch.randn(5, 12, 2)).item() > 0


def test_solves_the_adding_problem():
    """The topology learns through its own loss; training stops once a validation set is at half the bound (at most
    700 updates), and the bound is asserted on other sequences."""
    torch.manual_seed(0)
    m = ManyToOne(
        ManyToOneConfig(
            InputConfig(input_size=2), RNNConfig(cell="lstm", hidden_size=32), head=HeadConfig(kind="regression")
        )
    )
    opt = torch.optim.Adam(m.parameters(), lr=2e-2)
    gen = torch.Generator().manual_seed(0)

    def mse(seed: int) -> float:
        x, y = adding_problem(500, 30, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            return m.loss(m(x), y.unsqueeze(-1)).item()

    for step in range(1, 701):
        x, y = adding_problem(64, 30, generator=gen)
        loss = m.loss(m(x), y.unsqueeze(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        if step % 25 == 0 and mse(seed=2) < 0.01:
            break
    held_out = mse(seed=1)
    assert held_out < 0.02, f"adding problem T=30: MSE {held_out:.4f} after {step} updates (baseline 0.167)"


def test_bad_input():
    with pytest.raises(ValueError, match="unknown pooling 'median'"):
        model(pooling="median")
    m = model()
    with pytest.raises(ValueError, match=r"token ids must be in 0..19 \(vocab_size=20\), got min 0, max 25"):
        m(torch.tensor([[0, 25]]))
    with pytest.raises(ValueError, match=r"lengths must be in 1..2"):
        m(torch.tensor([[1, 2]]), torch.tensor([3]))
    with pytest.raises(ValueError, match="give exactly one of input_size"):
        InputConfig()
    with pytest.raises(ValueError, match=r"expected features \(B, T, 3\)"):
        model(tokens=False)(torch.randn(2, 5, 4))


def test_a_classifiers_temperature_scales_its_logits_and_defaults_to_1_when_not_saved():
    """The buffer ``temperature`` multiplies a classification head's logits (1: exactly the head's output); a
    state saved before it existed loads with 1; a regression head has none (its saved tensors are unchanged)."""
    torch.manual_seed(0)
    m = model().eval()
    x = torch.randint(1, 20, (4, 7))
    assert float(m.temperature) == 1.0 and torch.equal(m(x), m.head(m.encode(x)))
    state = {k: v for k, v in m.state_dict().items() if k != "temperature"}  # as saved before
    m.temperature.fill_(0.25)
    torch.testing.assert_close(m(x), 0.25 * m.head(m.encode(x)))
    m.load_state_dict(state, strict=True)  # (strict: no key missing)
    assert float(m.temperature) == 1.0
    forecaster = model("lstm", tokens=False, head=HeadConfig(kind="regression"))
    assert forecaster.temperature is None and "temperature" not in forecaster.state_dict()
