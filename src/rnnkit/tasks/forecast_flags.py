"""The ``rnnkit train forecast`` flags, and what ``--help`` says for defaults that depend on the data."""

from __future__ import annotations

from pathlib import Path

from .flags import Flag, parse_floats


def _quantiles(text: str) -> tuple[float, ...] | None:
    return None if text.strip().lower() == "none" else parse_floats(text, "--quantiles")


AUTO_DEFAULTS: dict[str, str] = {
    "timestep": "3, 2 or 1 seasons, the most that fit the training rows, at most 336",
    "train_part": "what val and test leave",
    "val_part": "10% of the rows, at least the horizon",
    "test_part": "20% of the rows, at least the horizon; the rest if --train is given",
    "season": "inferred from the time column: hourly 24, daily 7, monthly 12, ...; else 1",
    "batch_size": "64, fewer for small data (at least 4 steps per epoch)",
    "time_budget": "none",
    "time_column": "none: the rows in file order, one step each",
    "series_id": "none: the table is one series",
    "static": "none",
    "past": "none",
    "future": "none",
    "calendar": "none",
    "epochs": "until val_loss has not improved for 10 evaluations (after at least 500 updates, at most --max-epochs)",
    "config": "none",
}

FLAGS = (
    Flag("data", "--data", "CSV or Parquet file with the series", Path, required=True),
    Flag("target", "--target", "column(s) to forecast", key="series.target", multiple=True),
    Flag("time_column", "--time-column", "date/time column (parsed and sorted by)", key="series.time_column"),
    Flag(
        "series_id",
        "--series-id",
        "column naming each row's series (long format: many series, one global model)",
        key="series.series_id",
    ),
    Flag("static", "--static", "static covariate column(s): one value per series", key="series.static", multiple=True),
    Flag("past", "--past", "past-observed covariate column(s)", key="series.past_covariates", multiple=True),
    Flag("future", "--future", "known-future covariate column(s)", key="series.future_covariates", multiple=True),
    Flag(
        "calendar",
        "--calendar",
        "calendar features: hour, dayofweek, day, month, dayofyear",
        key="series.calendar",
        multiple=True,
    ),
    Flag(
        "timestep",
        "--timestep",
        "lookback: past steps each forecast reads",
        int,
        key="series.timestep",
    ),
    Flag("horizon", "--horizon", "future steps predicted", int, key="series.horizon"),
    Flag(
        "train_part",
        "--train",
        "train part of each series: fraction (<1) or rows",
        float,
        key="series.train",
    ),
    Flag(
        "val_part",
        "--val",
        "validation part: fraction (<1) or rows",
        float,
        key="series.val",
    ),
    Flag(
        "test_part",
        "--test",
        "test part: fraction or rows",
        float,
        key="series.test",
    ),
    Flag("missing", "--missing", "missing values: error, interpolate or ffill", key="series.missing"),
    Flag(
        "quantiles",
        "--quantiles",
        "prediction-interval quantiles, e.g. 0.1,0.5,0.9 ('none' for a point forecast)",
        key="quantiles",
        parse=_quantiles,
    ),
    Flag("linear", "--linear", "the model's linear part: frozen, tuned or none", key="linear"),
    Flag("patch", "--patch", "steps per recurrent step (the RNN reads the window in segments)", int, key="patch"),
    Flag(
        "season",
        "--season",
        "seasonal period for the naive baseline, MASE and the default lookback",
        int,
        key="season",
    ),
    Flag("encoding", "--encoding", "text encoding of the CSV", key="encoding"),
)
