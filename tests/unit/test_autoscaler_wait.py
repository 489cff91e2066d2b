"""A pod no node takes yet, on a cluster that grows: wait for the autoscaler's node, or fail.

The fake's scripted cluster autoscaler answers a refused pod as cluster-autoscaler does, with a
``TriggeredScaleUp`` Event (then a node that takes the pod) or ``NotTriggerScaleUp``.
"""

from __future__ import annotations

import asyncio

import pytest

from podrunner import AsyncPodRunner, Deadlines, PodRunner, PodSpec, SpecError, Unschedulable
from podrunner.testing import FakeCluster, leftovers

GPU_SPEC = PodSpec("trainer:1", ["train"]).with_resources(extended={"nvidia.com/gpu": 1})


def test_a_run_waits_for_the_node_an_autoscaler_brings() -> None:
    """A GPU node that takes 4 minutes to arrive: the run waits for it and succeeds."""
    cluster = FakeCluster()
    cluster.when(image="trainer:*").unschedulable(
        "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
        scale_up_after=240,
        logs="epoch 1 done\n",
    )
    start = cluster.clock.now()
    result = PodRunner(cluster.backend).run(GPU_SPEC, timeout=3600)
    assert (result.exit_code, result.logs) == (0, "epoch 1 done\n")
    assert cluster.clock.now() - start >= 240
    assert leftovers(cluster) == []


def test_an_autoscaler_that_cannot_help_fails_the_run_at_once() -> None:
    """NotTriggerScaleUp: Unschedulable with the autoscaler's reason, before the grace ends."""
    cluster = FakeCluster()
    cluster.when(image="trainer:*").unschedulable(scale_up_after=-1)
    start = cluster.clock.now()
    with pytest.raises(Unschedulable) as err:
        PodRunner(cluster.backend).run(GPU_SPEC, timeout=3600)
    assert cluster.clock.now() - start < Deadlines().autoscaler_grace
    assert any(e.startswith("NotTriggerScaleUp:") for e in err.value.events)
    assert leftovers(cluster) == []


@pytest.mark.parametrize("grace", [0.0, 15.0, 40.0])
def test_without_an_autoscaler_the_run_fails_after_the_grace(grace: float) -> None:
    """Nobody answers: Unschedulable once the grace is over (at once with 0)."""
    cluster = FakeCluster()
    cluster.when(image="trainer:*").unschedulable()
    start = cluster.clock.now()
    with pytest.raises(Unschedulable) as err:
        PodRunner(cluster.backend).run(
            GPU_SPEC, deadlines=Deadlines(total=3600, autoscaler_grace=grace)
        )
    waited = cluster.clock.now() - start
    assert grace <= waited < grace + 10
    assert "Insufficient cpu" in str(err.value)
    assert leftovers(cluster) == []


def test_the_async_runner_waits_for_the_node_too() -> None:
    async def main() -> int | None:
        cluster = FakeCluster()
        cluster.when(image="trainer:*").unschedulable(scale_up_after=90, logs="ok\n")
        async with AsyncPodRunner(cluster.async_backend) as runner:
            result = await runner.run(GPU_SPEC, timeout=600)
        return result.exit_code

    assert asyncio.run(main()) == 0


@pytest.mark.parametrize("value", [-1, float("nan"), "15", True])
def test_a_bad_grace_is_refused(value: object) -> None:
    with pytest.raises(SpecError) as err:
        Deadlines(autoscaler_grace=value)  # type: ignore[arg-type]
    assert err.value.field == "deadlines.autoscaler_grace"
