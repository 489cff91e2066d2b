"""RetryingBackend: the retries every caller gets, at the I/O boundary, on any Backend."""

from __future__ import annotations

from typing import Any

import pytest

from podrunner import Backend, PodRunner, PodSpec, RetryingBackend, RetryPolicy
from podrunner.errors import AlreadyExists, NotFound, ServerError, Unauthorized
from podrunner.manifest import MANAGED_SELECTOR, RUN_ID_LABEL, build_manifests
from podrunner.testing import FakeCluster

FAST = RetryPolicy(backoff=0.01, max_backoff=0.01)
SPEC = PodSpec(image="busybox:1.36", command=["echo", "hi"])


class _LostAnswers:
    """A fake cluster whose first create lands but whose answer is lost (a 500 after it)."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self.lost = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)

    def create(self, manifest: Any, *, dry_run: bool = False) -> dict[str, Any]:
        created = self._backend.create(manifest, dry_run=dry_run)
        if self.lost == 0:
            self.lost += 1
            raise ServerError("the connection dropped after the write", status=500)
        return created


def test_transient_errors_are_retried_for_any_caller() -> None:
    cluster = FakeCluster()
    cluster.fault(verb="list", kind="Pod", status=503, times=2)
    cluster.fault(verb="get", kind="ConfigMap", status=429, retry_after=0.01, times=1)
    api = RetryingBackend(cluster.backend, FAST)
    assert api.list("Pod", "default").items == []
    with pytest.raises(NotFound):
        api.get("ConfigMap", "default", "missing")  # the 429 was retried, the 404 is real


@pytest.mark.parametrize(
    ("status", "outage"),
    [
        (500, 30.0),  # a refusal: only the attempts count, whatever the outage budget
        (503, 0.0),  # an outage, with no outage budget
    ],
)
def test_gives_up_after_the_policys_attempts(status: int, outage: float) -> None:
    cluster = FakeCluster()
    cluster.fault(verb="list", kind="Pod", status=status)
    policy = RetryPolicy(attempts=3, backoff=0.01, outage=outage)
    with pytest.raises(ServerError):
        RetryingBackend(cluster.backend, policy).list("Pod", "default")
    assert len([a for a in cluster.actions if a.verb == "list"]) == 3


def test_a_401_refreshes_the_credentials_once() -> None:
    cluster = FakeCluster()
    cluster.fault(verb="list", kind="Pod", status=401)
    with pytest.raises(Unauthorized):
        RetryingBackend(cluster.backend, FAST).list("Pod", "default")


def test_an_ambiguous_create_is_resolved_by_the_run_id() -> None:
    cluster = FakeCluster()
    lossy = _LostAnswers(cluster.backend)
    pod = build_manifests(SPEC, run_id="run-1").pod
    pod["metadata"]["namespace"] = "default"
    stored = RetryingBackend(lossy, FAST).create(pod)  # type: ignore[arg-type]
    assert stored["metadata"]["labels"][RUN_ID_LABEL] == "run-1"
    assert len(cluster.backend.list("Pod", "default").items) == 1


def test_an_ambiguous_create_of_someone_elses_object_still_fails() -> None:
    cluster = FakeCluster()
    lossy = _LostAnswers(cluster.backend)
    pod = build_manifests(SPEC, run_id="run-1").pod
    pod["metadata"]["namespace"] = "default"
    cluster.backend.create({**pod, "metadata": {**pod["metadata"], "labels": {}}})
    lossy.lost = 1  # answers are not lost: the 409 is the first answer
    with pytest.raises(AlreadyExists):
        RetryingBackend(lossy, FAST).create(pod)  # type: ignore[arg-type]


def test_the_runner_uses_a_given_retrying_backend_as_it_is() -> None:
    cluster = FakeCluster()
    cluster.when(image="busybox:*").succeed(logs="hi\n", after=1.0)
    lossy = _LostAnswers(cluster.backend)
    runner = PodRunner(RetryingBackend(lossy, FAST))  # type: ignore[arg-type]
    result = runner.run(SPEC)
    assert result.ok
    assert result.logs == "hi\n"
    assert cluster.backend.list("Pod", "default", label_selector=MANAGED_SELECTOR).items == []
