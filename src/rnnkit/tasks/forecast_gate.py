"""How much of the recurrent correction the forecaster's point forecast keeps, chosen after training.

The network's ``point_gate`` (see :mod:`.forecast_model`) scales the correction of the point forecast: 1 all of it,
0.5 the average of the linear and the corrected forecast, 0 the linear forecast. With at least
:data:`~.forecast_linear.MIN_BLOCKS` stretches of ``horizon`` val windows the gate with the lowest val error of the
point forecast is kept; with fewer, half. On few windows the choice is mostly noise: over 36 draws of four synthetic
shapes (benchmarks/tasks/forecast_series.py) the correction chosen on them lost 0.8% test MAE against the linear
forecast (geometric mean), the average of the two none, and the average lost to seasonal naive least often (11 of
144 series; the choice 14, the linear forecast 13). Forecast combination: Bates & Granger (1969).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from .forecast_linear import MIN_BLOCKS

if TYPE_CHECKING:
    from .forecast import Forecaster

#: the shares of the recurrent correction the point forecast may keep, chosen on validation
POINT_GATES = (1.0, 0.5, 0.0)


def point_error(task: Forecaster, loader: Any) -> float:
    """The mean error of ``task``'s point forecast over ``loader``'s windows, in scaled units (absolute for a model
    with quantiles, whose point is the median; squared without)."""
    model = task.model
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for x, f, y in task.batches(loader):
            diff = model.point(model(x, f)) - y
            total += float((diff.abs() if task.cfg.quantiles else diff.square()).mean()) * len(y)
            count += len(y)
    return total / max(count, 1)


def choose_point_gate(task: Forecaster, val: Any) -> str | None:
    """Set ``task.model``'s point gate from the val windows of ``val`` (a DataLoader over them); returns what was
    kept instead of all of the correction, for the report (None: all of it)."""
    model, H = task.model, task.cfg.series.horizon
    windows = len(val.dataset)
    if windows < MIN_BLOCKS * H:
        model.set_point_gate(0.5)
        return (
            f"half the recurrent correction in the point forecast ({windows} val windows, fewer than "
            f"{MIN_BLOCKS} stretches of horizon {H} to choose on)"
        )
    errors = {}
    for gate in POINT_GATES:
        model.set_point_gate(gate)
        errors[gate] = point_error(task, val)
    gate = min(POINT_GATES, key=lambda g: (errors[g], g))  # a tie goes to the smaller share
    model.set_point_gate(gate)
    if gate == 1.0:
        return None
    tried = ", ".join(f"{errors[g]:.4g} with {g:g}" for g in POINT_GATES)
    return f"{gate:g} of the recurrent correction in the point forecast (val error {tried})"
