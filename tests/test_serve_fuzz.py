"""Schemathesis against the server's own OpenAPI schema, serving a language model and a forecaster: generated
requests never get a 5xx, and answers match the schema. The forecaster's rows (the parse-heavy path) are also
fuzzed with its real column names, so that generated values reach the time parsing, the checks and the model.
`make test` runs at least 800 cases; `make fuzz` (RNNKIT_FUZZ_EXAMPLES=600) at least 3,000."""

from __future__ import annotations

import datetime
import os
import threading
import time
from collections.abc import Iterator

import pytest

pytest.importorskip("fastapi")
schemathesis = pytest.importorskip("schemathesis")
uvicorn = pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from schemathesis import checks  # noqa: E402

from _serve_runs import forecast_run, lm_run, series  # noqa: E402
from rnnkit.serve import ServeConfig, asgi  # noqa: E402
from test_serve_cli import free_port  # noqa: E402

#: generated cases per operation with inputs (predict, whose cases generate text, gets 40% of that)
EXAMPLES = int(os.environ.get("RNNKIT_FUZZ_EXAMPLES", "150"))
KEY = "fuzz-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module", params=["lm", "forecast"])
def base_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The server (an LM or a forecaster, with an API key and a short idle TTL) on a free port, in a thread."""
    make = lm_run if request.param == "lm" else forecast_run
    run = make(tmp_path_factory.mktemp(f"fuzz-{request.param}"))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(asgi(ServeConfig(run, api_key=KEY, idle_ttl=5.0)), port=port, log_level="error")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def test_api_never_fails(base_url: str) -> None:
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json", headers={"Authorization": f"Bearer {KEY}"})
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 7
    forecaster = httpx.get(f"{base_url}/v1/model", headers=AUTH).json()["task"] == "forecast"
    if forecaster:  # the other operations do not depend on the task: the LM run covers them
        operations = [op for op in operations if op.method.upper() == "POST"]
    cases = 0
    for operation in operations:
        n = max(1, int(EXAMPLES * 0.4)) if operation.path == "/v1/predict" else EXAMPLES

        @given(case=operation.as_strategy())
        @settings(max_examples=n, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        def check(case) -> None:
            nonlocal cases
            cases += 1
            # every check but positive_data_acceptance: the schema is the same for every task, so a schema-valid
            # request can still be wrong for the served model (a forecaster's row sent to a language model): a 4xx
            case.call_and_validate(
                headers={"Authorization": f"Bearer {KEY}"}, excluded_checks=[checks.positive_data_acceptance]
            )

        check()
    # the cases ran: >= 500 (LM) and >= 200 (forecaster) in `make test`, >= 2,000 and 800 in `make fuzz`
    assert cases >= (1.3 if forecaster else 3.3) * EXAMPLES


#: values a client might put in a row: numbers of every size, dates and not-quite dates, empty, wrong types
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.dates(min_value=datetime.date(1677, 9, 22), max_value=datetime.date(2262, 4, 11)).map(str),
    st.datetimes().map(lambda d: d.isoformat()),
    st.sampled_from(["", "2024-02-30", "2024-13-01", "1e400", "NaN", "inf", "now", "2024-01-01T25:00"]),
    st.text(max_size=12),
)
NUMBERS = st.one_of(
    st.floats(-1e6, 1e6), st.integers(-(10**6), 10**6), st.sampled_from([0, -0.0, 1e-300, 1e14, -1e15, 1e15])
)
COLUMNS = ["date", "y", "x"]
DATES = (str, lambda d: f"{d}T00:00:00", lambda d: f"{d} 00:00:00+00:00", lambda d: d.strftime("%Y%m%d"))


@st.composite
def series_rows(draw: st.DrawFn) -> list[dict]:
    """Mostly a well-formed series (steps of a day to a month, in one of several date spellings), with now and
    then one value of one row replaced by anything."""
    n = draw(st.integers(1, 12))
    start = draw(st.dates(datetime.date(1700, 1, 1), datetime.date(2200, 1, 1)))
    step = datetime.timedelta(days=draw(st.sampled_from([1, 1, 7, 30, 31])))
    spell = draw(st.sampled_from(DATES))
    rows = [{"date": spell(start + k * step), "y": draw(NUMBERS), "x": draw(NUMBERS)} for k in range(n)]
    if draw(st.booleans()):
        row = rows[draw(st.integers(0, n - 1))]
        column = draw(st.sampled_from([*COLUMNS, "z"]))
        if draw(st.integers(0, 4)) == 0:
            row.pop(column, None)
        else:
            row[column] = draw(VALUES)
    return rows


def test_forecaster_rows_never_fail(base_url: str) -> None:
    """Rows with the forecaster's own columns and generated values: a 4xx naming a field, or a forecast."""
    with httpx.Client(base_url=base_url, headers=AUTH, timeout=30) as c:
        if c.get("/v1/model").json()["task"] != "forecast":
            pytest.skip("the forecaster's rows")
        good = series(12).to_dict("records")
        cases = 0

        @given(rows=series_rows(), prefix=st.integers(0, 12))
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        def check(rows: list[dict], prefix: int) -> None:
            nonlocal cases
            cases += 1
            for path, body in (
                (f"/v1/streams/f{cases}/observe", {"rows": rows}),  # a new stream each time
                ("/v1/predict", {"inputs": [{"rows": good[:prefix] + rows}]}),
            ):
                r = c.post(path, json=body)
                assert r.status_code < 500, (path, body, r.text)
                if r.status_code >= 400:
                    assert r.json()["field"] and "\n" not in r.json()["detail"], r.text
                else:
                    key = "outputs" if path == "/v1/predict" else "answer"
                    assert key in r.json()

        check()
        assert cases >= EXAMPLES
