"""An API server that is unreachable for a while (a restart, a cut load balancer).

Found by the chaos tier (tests/chaos) on a real API server: a restart takes 3-15 s, longer
than the five attempts of the retry budget (about 3 s of back-off), so runs failed and their
objects leaked. Connection errors and 502/503/504 are now retried until
``RetryPolicy.outage`` seconds passed; these tests pin that on the fake cluster, whose virtual
clock makes the waits instant.
"""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

from podrunner import CleanupPolicy, PodRunner, PodSpec, RetryPolicy
from podrunner.errors import AlreadyExists, BackendUnavailable, ServerError
from podrunner.manifest import MANAGED_SELECTOR
from podrunner.testing import FakeCluster

SPEC = PodSpec(image="busybox:1.36", command=["sh", "-c", "echo hi"], secret_env={"TOKEN": "x"})
# Eight failures in a row: about 21 s of back-off, past the 5 attempts, within the outage.
OUTAGE_CALLS = 8


@pytest.fixture
def cluster() -> FakeCluster:
    c = FakeCluster()
    c.when(image="busybox:*").succeed(logs="hi\nthere\n", after=2.0)
    return c


def leftovers(cluster: FakeCluster) -> list[str]:
    out: list[str] = []
    for kind in ("Pod", "Secret", "ConfigMap"):
        listed = cluster.backend.list(kind, None, label_selector=MANAGED_SELECTOR)
        out += [f"{kind}/{o['metadata']['name']}" for o in listed.items]
    return out


@pytest.mark.parametrize(
    ("verb", "kind"),
    [
        ("create", "Pod"),
        ("create", "Secret"),
        ("patch", "Secret"),
        ("watch", "Pod"),
        ("get", "Pod"),
        ("read_log", "Pod"),
        ("delete", "Pod"),
        ("delete", "Secret"),
    ],
)
@pytest.mark.parametrize("error", ["connection", "503"])
def test_a_run_outlives_an_outage_longer_than_the_attempts(
    cluster: FakeCluster, verb: str, kind: str, error: str
) -> None:
    """Every call a run makes rides out the outage: same result, nothing left behind."""
    fault: dict[str, Any] = {"connection_error": True} if error == "connection" else {"status": 503}
    cluster.fault(verb=verb, kind=kind, times=OUTAGE_CALLS, **fault)
    runner = PodRunner(cluster.backend)
    result = runner.run(SPEC, timeout=600)
    assert (result.exit_code, result.logs) == (0, "hi\nthere\n")
    runner.close()
    assert leftovers(cluster) == []


def test_the_outage_is_bounded(cluster: FakeCluster) -> None:
    """A server that stays unreachable fails the run with a typed error, nothing leaked."""
    cluster.fault(verb="create", kind="Pod", connection_error=True)
    runner = PodRunner(cluster.backend, retry=RetryPolicy(outage=10.0))
    before = cluster.clock.monotonic()
    with pytest.raises(BackendUnavailable):
        runner.run(SPEC, timeout=600)
    assert 10.0 <= cluster.clock.monotonic() - before < 10.0 + 2 * runner.retry.max_backoff
    assert leftovers(cluster) == []


def test_a_refusal_is_not_an_outage(cluster: FakeCluster) -> None:
    """A 500 is the server's answer, not its absence: only the attempts are spent on it."""
    rule = cluster.fault(verb="create", kind="Pod", status=500)
    runner = PodRunner(cluster.backend)
    with pytest.raises(ServerError):
        runner.run(SPEC, timeout=600)
    assert rule.fired == runner.retry.attempts


class _LostAnswers:
    """The fake's backend, except that a pod create lands and its answer is lost.

    The server then stays unreachable for creates (an outage longer than the retry budget).
    """

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._landed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def create(self, manifest: Any, **kw: Any) -> dict[str, Any]:
        if manifest.get("kind") == "Pod":
            if not self._landed:
                self._landed = True
                with contextlib.suppress(AlreadyExists):  # another run's pod has the name
                    self._inner.create(manifest, **kw)
            raise BackendUnavailable("connection reset by peer")
        return dict(self._inner.create(manifest, **kw))


@pytest.mark.parametrize("policy", [CleanupPolicy.ALWAYS, CleanupPolicy.ON_SUCCESS])
def test_a_create_whose_answer_was_lost_is_found_by_its_run_id(
    cluster: FakeCluster, policy: CleanupPolicy
) -> None:
    """The create's error is raised, and the pod it made anyway is deleted (and its Secret)."""
    runner = PodRunner(_LostAnswers(cluster.backend), retry=RetryPolicy(outage=5.0))  # type: ignore[arg-type]
    with pytest.raises(BackendUnavailable, match="connection reset"):
        runner.run(SPEC, timeout=600, cleanup=policy)
    assert leftovers(cluster) == []


def test_an_object_of_the_same_name_from_another_run_is_not_deleted(
    cluster: FakeCluster,
) -> None:
    """Only the run-id label proves the object is this run's: another's is left alone."""
    fixed = PodSpec(image="busybox:1.36", command=["true"], name="fixed")
    other = PodRunner(cluster.backend).start(fixed)
    runner = PodRunner(_LostAnswers(cluster.backend), retry=RetryPolicy(outage=5.0))  # type: ignore[arg-type]
    with pytest.raises(BackendUnavailable):
        runner.run(fixed, timeout=600)
    assert cluster.backend.get("Pod", "default", "fixed")["metadata"]["name"] == "fixed"
    other.cancel()
    other.close()


def test_an_outage_is_not_waited_out_past_the_run_deadline(cluster: FakeCluster) -> None:
    """The outage budget (30 s) yields to a shorter run deadline: a typed error in time."""
    cluster.fault(verb="create", kind="Pod", connection_error=True)
    runner = PodRunner(cluster.backend)
    before = cluster.clock.monotonic()
    with pytest.raises(BackendUnavailable):
        runner.run(SPEC, timeout=8)
    assert cluster.clock.monotonic() - before < 8 + 2 * runner.retry.max_backoff
    assert leftovers(cluster) == []


class _BrokenStreams:
    """The fake's backend, except that its first pod watch streams break before any event.

    Each stream opens fine and then fails with a connection error: a load balancer cutting
    streams while the API server restarts behind it, more times than the attempts allow.
    """

    def __init__(self, inner: Any, broken: int) -> None:
        self._inner = inner
        self._broken = broken
        self.opened = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def watch(self, kind: Any, namespace: Any, **kw: Any) -> Any:
        stream = self._inner.watch(kind, namespace, **kw)
        self.opened += 1
        if kind != "Pod" or self.opened > self._broken:
            return stream

        def broken() -> Any:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
            raise BackendUnavailable("connection reset by peer")
            yield  # a generator: it fails when read, not when opened

        return broken()


def test_a_watch_whose_streams_keep_breaking_in_an_outage_is_reopened(
    cluster: FakeCluster,
) -> None:
    """Streams that break at once are reopened through the outage, not given up on."""
    backend = _BrokenStreams(cluster.backend, broken=OUTAGE_CALLS)
    runner = PodRunner(backend)  # type: ignore[arg-type]
    result = runner.run(SPEC, timeout=600)
    assert (result.exit_code, result.logs) == (0, "hi\nthere\n")
    assert backend.opened > OUTAGE_CALLS
    runner.close()
    assert leftovers(cluster) == []
