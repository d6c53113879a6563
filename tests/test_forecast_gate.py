"""The point gate: how much of the recurrent correction the point forecast keeps, and its choice on validation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from rnnkit.data.timeseries import SeriesConfig
from rnnkit.tasks.forecast import ForecastConfig, Forecaster
from rnnkit.tasks.forecast_gate import POINT_GATES, point_error
from rnnkit.tasks.forecast_linear import MIN_BLOCKS
from rnnkit.tasks.forecast_model import ForecastNet
from rnnkit.topologies.base import RNNConfig


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models: one thread is as fast, and far faster on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("quantiles", [(0.1, 0.5, 0.9), None])
def test_the_point_gate_scales_the_recurrent_correction_of_the_point_forecast_only(quantiles):
    cfg = ForecastConfig(series=SeriesConfig(target=["y"], timestep=12, horizon=4), quantiles=quantiles)
    net = ForecastNet(cfg, n_inputs=1, n_future=0).double()
    x, f = torch.randn(16, 12, 1, dtype=torch.float64), torch.zeros(16, 4, 0, dtype=torch.float64)
    start = net(x, f)  # the correction at zero: the linear forecast
    for p in net.net.parameters():
        torch.nn.init.normal_(p, std=0.5)
    out = {}
    for gate in (1.0, 0.5, 0.0):
        net.set_point_gate(gate)
        out[gate] = net(x, f)
    point = {g: net.point(o) for g, o in out.items()}
    torch.testing.assert_close(point[0.0], net.point(start))  # none of it: the linear forecast
    torch.testing.assert_close(point[0.5], (point[0.0] + point[1.0]) / 2)  # half: the average of the two
    assert not torch.allclose(point[1.0], point[0.0])
    if quantiles:  # the interval keeps its trained width around whichever point, and stays ordered
        for o in out.values():
            assert (o.diff(dim=-1) >= 0).all()
            torch.testing.assert_close(o - o[..., 1:2], out[1.0] - out[1.0][..., 1:2])
    state = {k: v for k, v in net.state_dict().items() if k != "point_gate"}  # a run saved before the gate
    net.load_state_dict(state)
    assert float(net.point_gate) == 1.0


def test_with_enough_val_windows_the_point_gate_is_the_one_with_the_lowest_val_error(tmp_path):
    rng = np.random.default_rng(5)
    t = np.arange(1200)
    y = 50 + 5 * np.sin(2 * np.pi * t / 7) + np.cumsum(rng.normal(0, 0.5, len(t)))
    frame = pd.DataFrame({"day": pd.date_range("2020-01-01", periods=len(t), freq="D"), "y": y})
    cfg = ForecastConfig(series=SeriesConfig(target=["y"], time_column="day", horizon=7))
    cfg.rnn = RNNConfig(cell="gru", hidden_size=8)
    cfg.trainer.progress, cfg.trainer.min_steps, cfg.trainer.max_epochs = False, 0, 2
    task, metrics = Forecaster.train(cfg, frame, tmp_path / "run")
    splits = Forecaster.split(cfg, frame)
    val = task.loader(splits.val, train=False)
    assert len(splits.val) >= MIN_BLOCKS * 7, "enough val windows to choose on"
    chosen = metrics["training"]["point_gate"]
    errors = {}
    for gate in POINT_GATES:
        task.model.set_point_gate(gate)
        errors[gate] = point_error(task, val)
    assert errors[chosen] == min(errors.values()), (chosen, errors)
    reloaded = Forecaster.load(tmp_path / "run")
    assert float(reloaded.model.point_gate) == chosen
