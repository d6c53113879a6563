"""Time-series windows: exact contents, splits, scaling without leakage, missing values, bad input, ETTh1."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from rnnkit.data.timeseries import Scaler, SeriesConfig, parse_times, prepare_series, read_table
from rnnkit.errors import cli_style


def frame(n=40, nan_at=()):
    t = pd.date_range("2024-01-01", periods=n, freq="h")
    y = np.arange(n, dtype=float)
    y[list(nan_at)] = np.nan
    return pd.DataFrame({"time": t.astype(str), "y": y, "temp": np.arange(n) * 10.0, "holiday": np.arange(n) % 2})


def test_window_contents_are_exact():
    cfg = SeriesConfig(
        target="y",
        time_column="time",
        past_covariates=["temp"],
        future_covariates=["holiday"],
        timestep=4,
        horizon=2,
        stride=3,
        train=0.5,
        val=0.25,
        scaler="none",
    )
    data = prepare_series(frame(), cfg)
    assert data.borders == (20, 30, 40)
    assert data.input_columns == ["y", "temp", "holiday"] and data.future_columns == ["holiday"]
    train = data.windows("train")
    x, f, y = train[1]  # second window starts at row 3
    assert x[:, 0].tolist() == [3, 4, 5, 6] and x[:, 1].tolist() == [30, 40, 50, 60]
    assert y[:, 0].tolist() == [7, 8] and f[:, 0].tolist() == [1, 0]
    assert all(int(train[i][2][-1, 0]) < 20 for i in range(len(train)))  # targets stay in the train part
    val = data.windows("val")
    xs, _fs, ys = val.tensors()
    assert ys[0, 0, 0] == 20 and xs[0, -1, 0] == 19, "the first val window reads the 4 rows before the border"
    assert ys[:, -1, 0].max() < 30
    torch.testing.assert_close(val[0][0], xs[0])


def test_scaler_is_fitted_on_train_rows_only():
    cfg = SeriesConfig(target="y", timestep=3, horizon=1, train=0.5, val=0.25)
    df = frame()
    base = prepare_series(df, cfg).scaler
    df2 = df.copy()
    df2.loc[20:, "y"] = 1e6  # change only val/test rows
    assert prepare_series(df2, cfg).scaler == base
    assert base.shift[0] == pytest.approx(9.5) and base.scale[0] == pytest.approx(np.arange(20).std())
    data = prepare_series(df, cfg)
    assert abs(data.targets[:20].mean()) < 1e-9
    mm = prepare_series(df, SeriesConfig(target="y", timestep=3, train=0.5, val=0.25, scaler="minmax"))
    assert mm.targets[:20].min() == 0 and mm.targets[:20].max() == pytest.approx(1)


def test_scaler_inverse_and_json_round_trip():
    scaler = Scaler.fit("standard", pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [5.0, 5.0, 5.0]}))
    values = np.array([[1.0, 5.0], [3.0, 5.0]])
    np.testing.assert_allclose(scaler.inverse(scaler.transform(values)), values)
    assert Scaler.from_json(scaler.to_json()) == scaler
    torch.testing.assert_close(scaler.inverse(torch.zeros(2, 1), ["b"]), torch.full((2, 1), 5.0))


def test_missing_values_policy():
    with pytest.raises(ValueError, match=r"column 'y' has 2 missing value\(s\) \(rows \[5, 9\]\); fill them, or pass"):
        prepare_series(frame(nan_at=(5, 9)), SeriesConfig(target="y", timestep=3))
    filled = prepare_series(
        frame(nan_at=(5,)), SeriesConfig(target="y", timestep=3, scaler="none", missing="interpolate")
    )
    assert filled.targets[5, 0] == 5.0
    ffilled = prepare_series(frame(nan_at=(5,)), SeriesConfig(target="y", timestep=3, scaler="none", missing="ffill"))
    assert ffilled.targets[5, 0] == 4.0


def test_calendar_features_are_future_covariates():
    data = prepare_series(
        frame(48), SeriesConfig(target="y", time_column="time", calendar=["hour"], timestep=4, scaler="none")
    )
    assert data.future_columns == ["hour_sin", "hour_cos"]
    np.testing.assert_allclose(data.future[6], [1.0, 0.0], atol=1e-12)  # 06:00 -> angle pi/2


def test_csv_and_parquet_give_the_same_windows(tmp_path):
    df = frame()
    df.to_csv(tmp_path / "s.csv", index=False)
    df.to_parquet(tmp_path / "s.parquet")
    cfg = SeriesConfig(target="y", time_column="time", timestep=4, horizon=2)
    a, b = prepare_series(tmp_path / "s.csv", cfg), prepare_series(tmp_path / "s.parquet", cfg)
    np.testing.assert_allclose(a.values, b.values)


@pytest.mark.parametrize(
    ("kwargs", "data", "match"),
    [
        (
            {"target": "sales"},
            None,
            r"unknown column\(s\) \['sales'\]; the table has \['time', 'y', 'temp', 'holiday'\]",
        ),
        ({"target": "y", "timestep": 30, "horizon": 20}, None, "fewer than timestep \\+ horizon = 50"),
        ({"target": "time"}, None, "column 'time' is not numeric"),
        ({"target": "y", "timestep": 5, "horizon": 5, "train": 0.5, "val": 0.1}, None, "the val part .* is too short"),
    ],
)
def test_bad_input(kwargs, data, match):
    with pytest.raises(ValueError, match=match):
        prepared = prepare_series(frame(), SeriesConfig(**kwargs))
        prepared.windows("val")


def test_bad_files(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ValueError, match="empty.csv: the file is empty"):
        prepare_series(tmp_path / "empty.csv", SeriesConfig(target="y"))
    with pytest.raises(ValueError, match="no such file"):
        prepare_series(tmp_path / "missing.csv", SeriesConfig(target="y"))
    dup = frame()
    dup.loc[3, "time"] = dup.loc[2, "time"]
    with pytest.raises(ValueError, match="duplicate timestamps"):
        prepare_series(dup, SeriesConfig(target="y", time_column="time"))
    with pytest.raises(ValueError, match="unknown calendar feature"):
        SeriesConfig(target="y", time_column="t", calendar=["week"])
    (tmp_path / "ragged.csv").write_text("a,y\n1,2\n3,4,5\n")
    with pytest.raises(ValueError, match=r"malformed CSV \(.*line 3, saw 3\); every row needs as many") as info:
        read_table(tmp_path / "ragged.csv")
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match=r"part must be 'train', 'val', 'test' or 'all', got 'bogus'"):
        prepare_series(frame(), SeriesConfig(target="y", timestep=3)).windows("bogus")
    with cli_style(), pytest.raises(ValueError, match=r"--part must be"):
        prepare_series(frame(), SeriesConfig(target="y", timestep=3)).windows("bogus")


def test_tsv_files_are_read_tab_separated(tmp_path):
    (tmp_path / "s.tsv").write_text("t\ty\n0\t1.5\n1\t2.5\n")
    assert read_table(tmp_path / "s.tsv")["y"].tolist() == [1.5, 2.5]


def test_etth1_standard_split(data_dir):
    cfg = SeriesConfig(target="OT", time_column="date", timestep=96, horizon=96, train=8640, val=2880, test=2880)
    data = prepare_series(data_dir / "ett_small" / "ETTh1.csv", cfg)
    assert data.borders == (8640, 11520, 14400)
    assert [len(data.windows(p)) for p in ("train", "val", "test")] == [8449, 2785, 2785]
    x, _, y = data.windows("test").tensors()
    assert x.shape == (2785, 96, 1) and y.shape == (2785, 96, 1)


@pytest.mark.parametrize("policy", ["ffill", "interpolate"])
def test_filling_never_looks_past_the_part(policy):
    # train = rows 0..19, val = 20..29, test = 30..39; gaps at the very start, inside train, at the end of train
    # (rows 18, 19) and at the end of val (row 29), in a target and a covariate
    cfg = SeriesConfig(target="y", past_covariates=["temp"], timestep=3, train=0.5, val=0.25, missing=policy)
    df = frame(nan_at=(0, 7, 18, 19, 29))
    df.loc[[3, 19, 25], "temp"] = np.nan
    base = prepare_series(df, cfg)
    raw = prepare_series(df, SeriesConfig(**{**cfg.__dict__, "scaler": "none"}))
    y = raw.targets[:, 0]
    assert y[0] == 1.0, "a leading gap is back-filled from the first value of the same part"
    assert y[7] == (7.0 if policy == "interpolate" else 6.0)
    assert y[18] == y[19] == 17.0, "a trailing gap of the train part is forward-filled, never from row 20"
    assert y[29] == 28.0, "the val part ends in a gap: forward-filled, not from the test rows"
    assert raw.values[19, 1] == 180.0

    later = df.copy()
    later.loc[20:, "y"] = 500.0 + 7 * np.arange(20)  # includes row 20, right after train's trailing gap
    later.loc[20:, "temp"] = -3.0 * np.arange(20)
    changed = prepare_series(later, cfg)
    assert changed.scaler == base.scaler
    np.testing.assert_array_equal(changed.values[:20], base.values[:20])

    test_only = df.copy()
    test_only.loc[30:, ["y", "temp"]] = 1e4
    changed = prepare_series(test_only, cfg)
    assert changed.scaler == base.scaler
    np.testing.assert_array_equal(changed.values[:30], base.values[:30])


def test_hints_name_the_option_in_the_callers_words(tmp_path):
    with pytest.raises(ValueError, match=r"pass missing='interpolate' or missing='ffill'"):
        prepare_series(frame(nan_at=(5,)), SeriesConfig(target="y", timestep=3))
    with cli_style(), pytest.raises(ValueError, match=r"pass --missing interpolate or --missing ffill"):
        prepare_series(frame(nan_at=(5,)), SeriesConfig(target="y", timestep=3))

    (tmp_path / "l1.csv").write_bytes(b"y,name\n1,caf\xe9\n")
    with pytest.raises(ValueError, match=r"pass the file's encoding, e\.g\. encoding='latin-1'"):
        read_table(tmp_path / "l1.csv")
    with cli_style(), pytest.raises(ValueError, match=r"pass the file's encoding, e\.g\. --encoding latin-1"):
        read_table(tmp_path / "l1.csv")

    # the val part of 4 rows cannot hold a horizon of 5: the hint names a value that fits (checked below)
    short = SeriesConfig(target="y", timestep=5, horizon=5, train=0.5, val=0.1)
    with pytest.raises(ValueError, match=r"the val part \(4 rows\) is too short .* use val=5 or more, or val=0"):
        prepare_series(frame(), short)
    with cli_style(), pytest.raises(ValueError, match=r"use --val 5 or more, or --val 0 for none"):
        prepare_series(frame(), short)
    fits = SeriesConfig(target="y", timestep=5, horizon=5, train=0.5, val=5)
    assert len(prepare_series(frame(), fits).windows("val")) == 1
    with cli_style(), pytest.raises(ValueError, match=r"no window fits; use a smaller --timestep or --horizon"):
        prepare_series(frame(), SeriesConfig(target="y", timestep=30, horizon=20))
    with cli_style(), pytest.raises(ValueError, match=r"'scaler' in a --config file must be 'standard', 'minmax'"):
        SeriesConfig(target="y", scaler="robust")


def test_not_numeric_names_the_first_bad_row_and_value(tmp_path):
    df = frame()
    df["sales"] = [str(v) for v in range(40)]
    df.loc[17, "sales"], df.loc[30, "sales"] = "1,234", "$5"
    df.to_csv(tmp_path / "sales.csv", index=False)
    with pytest.raises(ValueError) as err:
        prepare_series(tmp_path / "sales.csv", SeriesConfig(target="sales", timestep=3))
    assert str(err.value) == (
        "column 'sales' is not numeric: row 17 has '1,234' (line 19 of "
        f"{tmp_path / 'sales.csv'}); fix or remove it, or mark missing values as empty"
    )
    df.loc[17, "sales"] = "17"
    df.loc[30, "sales"] = "line\nbreak"
    with pytest.raises(ValueError) as err:
        prepare_series(df, SeriesConfig(target="sales", timestep=3))
    assert "\n" not in str(err.value)
    assert str(err.value).startswith(r"column 'sales' is not numeric: row 30 (counting from 0) has 'line\nbreak';")
    df.loc[30, "sales"] = "30"  # numbers held as strings are numbers
    assert prepare_series(df, SeriesConfig(target="sales", timestep=3, scaler="none")).targets[30, 0] == 30.0


@pytest.mark.parametrize("policy", ["error", "ffill", "interpolate"])
def test_empty_and_non_finite_columns_are_named(policy):
    df = frame()
    df["temp"] = np.nan
    with pytest.raises(ValueError, match=r"^column 'temp' has no values; drop it or fill it$"):
        prepare_series(df, SeriesConfig(target="y", past_covariates=["temp"], missing=policy, timestep=3))
    df = frame()
    df.loc[:19, "y"] = np.nan
    with pytest.raises(ValueError, match=r"^column 'y' has no values in the training rows \(0\.\.19\); drop it"):
        prepare_series(df, SeriesConfig(target="y", train=0.5, val=0.25, missing=policy, timestep=3))
    df = frame()
    df.loc[3, "temp"] = np.inf
    with pytest.raises(
        ValueError, match=r"^column 'temp' has a non-finite value: row 3 \(counting from 0\) has inf; fix"
    ):
        prepare_series(df, SeriesConfig(target="y", past_covariates=["temp"], missing=policy, timestep=3))
    df = frame()
    df["temp"] = 1e306 * np.arange(40)  # finite, but their sum (for the mean) overflows
    with pytest.raises(ValueError, match=r"^column 'temp' is not finite after scaling \(row 0"):
        prepare_series(df, SeriesConfig(target="y", past_covariates=["temp"], missing=policy, timestep=3))


def test_an_empty_time_is_named_by_its_row_not_sorted_last(tmp_path):
    df = pd.DataFrame({"t": pd.date_range("2020-01-01", periods=60, freq="D"), "y": np.arange(60.0)})
    df["t"] = df["t"].astype(object)
    df.loc[10, "t"] = None  # sorted last, it would pass for the newest observation
    cfg = SeriesConfig(target=["y"], time_column="t", timestep=7, horizon=2)
    with cli_style(), pytest.raises(ValueError) as info:
        prepare_series(df, cfg)
    assert str(info.value) == (
        "time column 't' (--time-column) is empty in 1 row(s) (first: row 10, counting from 0); give every row its "
        "time or drop those rows"
    )
    df.to_csv(tmp_path / "s.csv", index=False)
    with pytest.raises(ValueError, match=rf"\(first: row 10, line 12 of {tmp_path / 's.csv'}\)"):
        parse_times(read_table(tmp_path / "s.csv"), cfg)
