"""Schemathesis against the server's own OpenAPI schema: generated requests never get a 5xx, and answers match
the schema. `make test` runs at least 500 cases; `make fuzz` (RNNKIT_FUZZ_EXAMPLES=600) at least 2,000."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

import pytest

pytest.importorskip("fastapi")
schemathesis = pytest.importorskip("schemathesis")
uvicorn = pytest.importorskip("uvicorn")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis import checks  # noqa: E402

from _serve_runs import lm_run  # noqa: E402
from rnnkit.serve import ServeConfig, asgi  # noqa: E402
from test_serve_cli import free_port  # noqa: E402

#: generated cases per operation with inputs (predict, whose cases generate text, gets 40% of that)
EXAMPLES = int(os.environ.get("RNNKIT_FUZZ_EXAMPLES", "150"))
KEY = "fuzz-key"


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The server (an LM, with an API key and a short idle TTL) on a free port, in a thread."""
    run = lm_run(tmp_path_factory.mktemp("fuzz"))
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
    assert cases >= 3.3 * EXAMPLES  # the cases ran: >= 500 in `make test`, >= 2,000 in `make fuzz`
