"""The ``cleanup`` argument at every runner entry point: the enum or its value, nothing else.

A policy given as its string (``cleanup="never"``) used to be compared by identity and fall
through to ALWAYS, deleting a pod the caller asked to keep.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from podrunner import AsyncPodRunner, CleanupPolicy, PodRunner, PodSpec, SpecError
from podrunner.manifest import MANAGED_SELECTOR
from podrunner.testing import FakeCluster

SPEC = PodSpec(image="busybox:1.36", command=["false"], secret_env={"TOKEN": "x"})


def _cluster() -> FakeCluster:
    cluster = FakeCluster()
    cluster.when(image="busybox:*").fail(exit_code=1, logs="no\n", after=1.0)
    return cluster


def _kept(cluster: FakeCluster) -> dict[str, int]:
    return {
        kind: len(cluster.backend.list(kind, None, label_selector=MANAGED_SELECTOR).items)
        for kind in ("Pod", "Secret")
    }


NOTHING = {"Pod": 0, "Secret": 0}
BOTH = {"Pod": 1, "Secret": 1}


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("never", BOTH),
        ("on-success", BOTH),  # the run failed: kept for inspection
        ("ON_SUCCESS", BOTH),
        ("always", NOTHING),
        (CleanupPolicy.NEVER, BOTH),
    ],
)
def test_sync_entry_points_honour_a_policy_given_by_value(given: Any, kept: dict[str, int]) -> None:
    for entry in ("run", "start", "run_many"):
        cluster = _cluster()
        runner = PodRunner(cluster.backend)
        if entry == "run":
            runner.run(SPEC, cleanup=given)
        elif entry == "start":
            with runner.start(SPEC, cleanup=given) as handle:
                handle.wait()
        else:
            list(runner.run_many([SPEC], cleanup=given))
        assert _kept(cluster) == kept, entry


@pytest.mark.parametrize(("given", "kept"), [("never", BOTH), ("always", NOTHING)])
def test_async_entry_points_honour_a_policy_given_by_value(
    given: str, kept: dict[str, int]
) -> None:
    async def main(entry: str) -> dict[str, int]:
        cluster = _cluster()
        runner = AsyncPodRunner(cluster.async_backend)
        if entry == "run":
            await runner.run(SPEC, cleanup=given)  # type: ignore[arg-type]
        elif entry == "start":
            async with runner.start(SPEC, cleanup=given) as handle:  # type: ignore[arg-type]
                await handle.wait()
        else:
            await runner.run_many([SPEC], cleanup=given)
        return _kept(cluster)

    for entry in ("run", "start", "run_many"):
        assert asyncio.run(main(entry)) == kept, entry


def test_attach_honours_a_policy_given_by_value() -> None:
    cluster = _cluster()
    runner = PodRunner(cluster.backend)
    with runner.start(SPEC, cleanup=CleanupPolicy.NEVER) as first:
        run_id = first.run_id
    handle = runner.attach(run_id, cleanup="always")  # type: ignore[arg-type]
    with handle:
        handle.wait()
    assert _kept(cluster) == NOTHING


@pytest.mark.parametrize("bad", ["sometimes", "", 0, None, True])
def test_any_other_value_is_refused_before_anything_is_created(bad: object) -> None:
    cluster = _cluster()
    runner = PodRunner(cluster.backend)
    calls: list[Any] = [
        lambda: runner.run(SPEC, cleanup=bad),  # type: ignore[arg-type]
        lambda: runner.start(SPEC, cleanup=bad),  # type: ignore[arg-type]
        lambda: runner.attach("some-run", cleanup=bad),  # type: ignore[arg-type]
        lambda: AsyncPodRunner(cluster.async_backend).start(SPEC, cleanup=bad),  # type: ignore[arg-type]
    ]
    for call in calls:
        with pytest.raises(SpecError) as info:
            call()
        assert info.value.field == "cleanup"
        assert "'always', 'on-success', 'never'" in info.value.rule
    assert _kept(cluster) == NOTHING


@pytest.mark.parametrize("kind", ["Secret", "ConfigMap"])
def test_reap_under_the_documented_role_skips_what_it_may_not_list(kind: str) -> None:
    """docs/rbac grants no list on Secrets: reap still reaps pods and says what it skipped."""
    cluster = _cluster()
    runner = PodRunner(cluster.backend)
    with runner.start(SPEC, cleanup=CleanupPolicy.NEVER) as handle:
        handle.wait()
    cluster.fault(verb="list", kind=kind, status=403, times=None)
    report = runner.reap(older_than=0.0)
    assert report.skipped == (kind,)
    assert ("Pod", "default", handle.pod_name) in report.deleted
    assert cluster.backend.list("Pod", None, label_selector=MANAGED_SELECTOR).items == []


def test_reap_without_list_on_pods_fails() -> None:
    cluster = _cluster()
    cluster.fault(verb="list", kind="Pod", status=403, times=None)
    with pytest.raises(Exception, match="403"):
        PodRunner(cluster.backend).reap()
