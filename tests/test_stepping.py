"""Recurrent.step on torch's cell kernels: equal to the reference step, at small and large batches, unchecked too."""

from __future__ import annotations

import pytest
import torch

from rnnkit import Recurrent
from rnnkit.stepping import LSTM_LAYER_KERNEL_ROWS


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn_tanh", "rnn_relu"])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("batch", [3, LSTM_LAYER_KERNEL_ROWS])  # an LSTM this wide steps as a one-step torch.lstm
@pytest.mark.parametrize("bias", [True, False])
def test_fused_step_equals_the_reference_step(kind, num_layers, batch, bias):
    fast = Recurrent(kind, 5, 6, num_layers, bias=bias)
    ref = Recurrent(kind, 5, 6, num_layers, bias=bias, impl="reference")
    ref.load_state_dict(fast.state_dict())
    state = tuple(torch.randn(num_layers, batch, 6) for _ in range(fast.num_states))
    s_fast = s_ref = state
    for _ in range(3):
        x = torch.randn(batch, 5)
        y, s_fast = fast.step(x, s_fast)
        y_ref, s_ref = ref.step(x, s_ref)
        torch.testing.assert_close(y, y_ref, atol=1e-5, rtol=1e-5)
        for a, b in zip(s_fast, s_ref):
            assert a.shape == (num_layers, batch, 6)
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_unchecked_step_is_the_same_step_and_still_differentiable():
    layer = Recurrent("lstm", 5, 6, 2)
    x, state = torch.randn(4, 5, requires_grad=True), layer.initial_state(4)
    y, _ = layer.step(x, state)
    y2, _ = layer.step(x, state, check=False)
    torch.testing.assert_close(y, y2)
    y2.sum().backward()
    assert x.grad is not None and layer.weight_hh_l1.grad is not None
    y3, _ = layer.step(x, None, check=False)  # no state: zeros, as with the checks
    torch.testing.assert_close(y3, layer.step(x)[0])
    with pytest.raises(ValueError, match=r"expected input \(B, 5\)"):
        layer.step(torch.randn(4, 7))  # the checks are on by default


def test_dropout_between_layers_applies_in_training_only():
    layer = Recurrent("gru", 5, 6, 3, dropout=0.5)
    x, state = torch.randn(4, 5), layer.initial_state(4)
    layer.train()
    assert not torch.allclose(layer.step(x, state)[0], layer.step(x, state)[0])
    layer.eval()
    torch.testing.assert_close(layer.step(x, state)[0], layer.step(x, state)[0])
