"""Gate saturation counts what the gates do at valid steps only."""

from __future__ import annotations

import pytest
import torch

from rnnkit import CellInit, Recurrent
from rnnkit.inspect import saturation, trace


@pytest.mark.parametrize("bias, side", [(20.0, "right"), (-20.0, "left")])
def test_a_forced_forget_gate_is_saturated_on_its_side_and_padding_does_not_count(bias, side):
    layer = Recurrent("lstm", 3, 4, bidirectional=True, init=CellInit(forget_bias=bias))
    x, lengths = torch.randn(3, 10, 3), torch.tensor([10, 4, 6])
    sat = saturation(trace(layer, (x, None, lengths)))
    other = "left" if side == "right" else "right"
    assert sat.steps == 20
    assert set(sat.left) == {"i", "f", "o"} and sat.left["f"].shape == (2, 4)
    assert bool((getattr(sat, side)["f"] == 1).all()), "the gate is saturated at every valid step"
    assert not getattr(sat, other)["f"].any(), "padding (zeros past each length) is not counted as left-saturated"
    # the input gate of a fresh LSTM (weights in ±1/sqrt(H), small inputs) sits mid-range: rarely saturated
    assert float(sat.left["i"].mean()) < 0.2 and float(sat.right["i"].mean()) < 0.2


def test_saturation_matches_a_count_over_the_trace_and_thresholds_matter():
    layer = Recurrent("gru", 2, 5)
    tr = trace(layer, 3 * torch.randn(4, 8, 2))
    sat = saturation(tr, low=0.3, high=0.7)
    z = tr.gate("z")
    assert torch.equal(sat.right["z"][0], (z > 0.7).float().mean((0, 1)))
    assert torch.equal(sat.left["r"][0], (tr.gate("r") < 0.3).float().mean((0, 1)))
    assert float(saturation(tr, 0.01, 0.99).right["z"].sum()) <= float(sat.right["z"].sum())
    assert saturation(trace(Recurrent("rnn_tanh", 2, 3), torch.randn(1, 4, 2))).left == {}, "no gates, no points"
    with pytest.raises(ValueError, match="need 0 <= low < high <= 1"):
        saturation(tr, low=0.9, high=0.1)
