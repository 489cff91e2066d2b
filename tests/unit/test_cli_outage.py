"""The CLI against an API server that is down: it gives up within its own short budget.

The SDK retries an unreachable server for ``RetryPolicy.outage`` (30 s), to ride out a
control-plane restart under runs in flight; someone at a terminal wants to hear sooner. The
commands run in-process on a fake cluster that refuses every connection, on virtual time, so
the budget is measured on the cluster's clock and no test waits for it.
"""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

import podrunner.backends.fake as fake
from podrunner.cli import main
from podrunner.cli._backend import API_OUTAGE
from podrunner.run import RetryPolicy

REFUSED = "dial tcp 127.0.0.1:6443: connect: connection refused"
COMMANDS = [
    ["run", "--image", "x", "--", "true"],
    ["reap"],
    ["claude", "--image", "x", "hi"],
]


@pytest.fixture
def down(monkeypatch: pytest.MonkeyPatch) -> list[fake.FakeCluster]:
    """Every fake cluster the CLI makes refuses connections (virtual time, nothing runs)."""
    made: list[fake.FakeCluster] = []
    real = fake.FakeCluster

    def refusing(**_: Any) -> fake.FakeCluster:
        cluster = real(clock="virtual")
        cluster.fault(connection_error=True, message=REFUSED)
        made.append(cluster)
        return cluster

    monkeypatch.setattr(fake, "FakeCluster", refusing)
    return made


def _invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    clean: dict[str, str | None] = {"PODRUNNER_BACKEND": None, "PODRUNNER_API_OUTAGE": None}
    return CliRunner().invoke(main, list(args), env={**clean, **(env or {})})


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_a_down_api_server_fails_within_the_cli_budget(
    down: list[fake.FakeCluster], command: list[str]
) -> None:
    """One clear line, exit 1, after the CLI's few seconds, well before the SDK's 30 s."""
    result = _invoke(*command)
    assert result.exit_code == 1, result.output
    (cluster,) = down
    waited = cluster.clock.monotonic()
    # `run` and `claude` look up a create that may have landed, with a budget of its own.
    assert API_OUTAGE <= waited < RetryPolicy().outage
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert errors == [
        "podrunner: error: cannot reach the Kubernetes API server: connection refused "
        "(retried for 5s; --api-outage SECONDS waits longer)"
    ]
    assert "Traceback" not in result.output


def test_the_budget_is_an_option_and_an_environment_variable(
    down: list[fake.FakeCluster],
) -> None:
    """--api-outage (or $PODRUNNER_API_OUTAGE) sets how long the server is retried."""
    result = _invoke("reap", "--api-outage", "60")
    assert result.exit_code == 1
    assert 60 <= down[-1].clock.monotonic() < 60 + RetryPolicy().max_backoff * 1.1
    assert "retried for 60s" in result.stderr
    result = _invoke("run", "--image", "x", "--", "true", env={"PODRUNNER_API_OUTAGE": "45"})
    assert result.exit_code == 1
    assert down[-1].clock.monotonic() >= 45
    assert "retried for 45s" in result.stderr


def test_a_bad_budget_is_a_usage_error(down: list[fake.FakeCluster]) -> None:
    """A negative budget is refused before anything is asked of the server."""
    result = _invoke("reap", "--api-outage", "-1")
    assert result.exit_code == 2
    assert "--api-outage" in result.stderr
    assert "-1" in result.stderr
    assert down == []
