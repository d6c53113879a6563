"""Bad input to Recurrent raises ValueError naming what was expected and what arrived."""

from __future__ import annotations

import pytest
import torch

from rnnkit import Recurrent

B, T, I, H = 4, 10, 32, 8


@pytest.fixture
def lstm():
    return Recurrent("lstm", I, H, num_layers=2)


def test_wrong_rank(lstm):
    with pytest.raises(ValueError, match=r"Recurrent\(input_size=32\): expected input \(B, T, 32\), got \(10, 32\)"):
        lstm(torch.randn(T, I))
    with pytest.raises(ValueError, match=r"expected input \(B, T, 32\), got \(1, 4, 10, 32\)"):
        lstm(torch.randn(1, B, T, I))


def test_wrong_feature_size(lstm):
    with pytest.raises(ValueError, match=r"expected input \(B, T, 32\), got \(4, 10, 16\)"):
        lstm(torch.randn(B, T, 16))


def test_empty_time_axis(lstm):
    with pytest.raises(ValueError, match="at least one timestep"):
        lstm(torch.randn(B, 0, I))


def test_non_float_dtype(lstm):
    with pytest.raises(ValueError, match="expected a floating-point input, got dtype torch.int64"):
        lstm(torch.ones(B, T, I, dtype=torch.long))


def test_dtype_mismatch_with_parameters(lstm):
    with pytest.raises(ValueError, match="input is torch.float64 .* parameters are torch.float32"):
        lstm(torch.randn(B, T, I, dtype=torch.double))


@pytest.mark.parametrize(
    ("lengths", "match"),
    [
        (torch.tensor([10, 11, 3, 4]), r"lengths must be in 0..10 \(the input has T=10\), got min 3, max 11"),
        (torch.tensor([10, -1, 3, 4]), r"lengths must be in 0..10 .* got min -1"),
        (torch.tensor([10, 3]), r"lengths must have shape \(4,\) to match the batch, got \(2,\)"),
        (torch.tensor([10.0, 3.0, 2.0, 1.0]), "lengths must be integers, got dtype torch.float32"),
        ("abcd", "lengths must be a"),
    ],
)
def test_bad_lengths(lstm, lengths, match):
    with pytest.raises(ValueError, match=match):
        lstm(torch.randn(B, T, I), lengths=lengths)


def test_lengths_as_a_list_are_accepted(lstm):
    out, _ = lstm(torch.randn(B, T, I), lengths=[10, 3, 1, 7])
    assert torch.all(out[1, 3:] == 0)


@pytest.mark.parametrize(
    ("state", "match"),
    [
        ((torch.zeros(2, B, H),), r"state for lstm must be a tuple \(h, c\) of tensors, got tuple of 1"),
        ((torch.zeros(1, B, H),) * 2, r"state h must be \(L\*D, B, H\) = \(2, 4, 8\), got \(1, 4, 8\)"),
        (
            (torch.zeros(2, B, H), torch.zeros(2, 3, H)),
            r"state c must be \(L\*D, B, H\) = \(2, 4, 8\), got \(2, 3, 8\)",
        ),
        ("h", "must be a tuple"),
        ((torch.zeros(2, B, H, dtype=torch.double),) * 2, "state h is torch.float64"),
    ],
)
def test_bad_state(lstm, state, match):
    with pytest.raises(ValueError, match=match):
        lstm(torch.randn(B, T, I), state)


def test_gru_accepts_a_bare_tensor_state():
    gru = Recurrent("gru", I, H)
    _, (h,) = gru(torch.randn(B, T, I), torch.zeros(1, B, H))
    assert h.shape == (1, B, H)


def test_nan_and_inf_when_check_finite():
    layer = Recurrent("gru", I, H, check_finite=True)
    x = torch.randn(B, T, I)
    x[2, 5, 7] = float("nan")
    with pytest.raises(ValueError, match=r"input holds NaN/inf \(first at index \(2, 5, 7\)\)"):
        layer(x)
    x[2, 5, 7] = float("inf")
    with pytest.raises(ValueError, match="NaN/inf"):
        layer(x)
    state = torch.zeros(1, B, H)
    state[0, 1, 0] = float("nan")
    with pytest.raises(ValueError, match="state h holds NaN/inf"):
        layer(torch.randn(B, T, I), state)
    with pytest.raises(ValueError, match="NaN/inf"):
        layer.step(torch.full((B, I), float("nan")))
    # without the flag NaN propagates silently, as in torch.nn
    x[2, 5, 7] = float("nan")
    assert torch.isnan(Recurrent("gru", I, H)(x)[0]).any()


def test_step_input_shape():
    layer = Recurrent("lstm", I, H)
    with pytest.raises(ValueError, match=r"expected input \(B, 32\), got \(4, 10, 32\) \(step\(\) takes one timestep"):
        layer.step(torch.randn(B, T, I))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_layers": 0}, "num_layers must be >= 1"),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\)"),
        ({"impl": "fast"}, "impl must be 'auto', 'reference' or 'fused'"),
    ],
)
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Recurrent("lstm", I, H, **kwargs)


def test_fused_impl_needs_a_torch_kernel():
    with pytest.raises(ValueError, match="impl='fused' needs rnn/lstm/gru"):
        Recurrent("mingru", I, H, impl="fused")
    with pytest.raises(ValueError, match="has no torch.nn equivalent"):
        Recurrent("mingru", I, H).to_torch()
    with pytest.raises(ValueError, match="expected torch.nn.RNN, LSTM or GRU"):
        Recurrent.from_torch(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="proj_size"):
        Recurrent.from_torch(torch.nn.LSTM(4, 8, proj_size=2))
