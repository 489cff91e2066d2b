"""The pool's rules without I/O (run/pool_core.py), and what the drivers do on the fake only.

The behaviour on a cluster (claims, races, refill, close, expiry) is tested once for both
drivers on the fake and kwok in tests/contract/test_pool.py; here are the pure decisions with
plain pod dicts, and the cases only the fake can stage (an exec that outlives its timeout, a
signal or Ctrl-C in the middle of a run).
"""

from __future__ import annotations

import asyncio
import math
import random
import signal
import threading
from typing import Any

import pytest

import podrunner
from podrunner import (
    AsyncPodPool,
    AsyncPodRunner,
    PodLost,
    PodPool,
    PodRunner,
    PodSpec,
    RunTimeout,
    SpecError,
)
from podrunner._time import epoch_of, format_rfc3339
from podrunner.backends.base import WatchEvent
from podrunner.errors import BackendUnavailable
from podrunner.manifest.plan import EXPIRES_ANNOTATION
from podrunner.run.pool_core import (
    CLAIM_ANNOTATION,
    OWNER_LABEL,
    POOL_LABEL,
    STATE_LABEL,
    PoolCore,
    claim_body,
    pool_options,
    pool_pod_spec,
    release_patch,
)
from podrunner.run.pool_run import ClaimedPod, exec_result
from podrunner.testing import FakeCluster, leftovers

NOW = 1_800_000_000.0
SPEC = PodSpec("busybox:1.36", ["unused"], annotations={"sim.podrunner.dev/duration": "1e9"})


def options(**kw: Any) -> Any:
    settings: dict[str, Any] = {
        "size": 2,
        "name": "p",
        "holder": ["sleep", "infinity"],
        "recycle": False,
        "lease": 300.0,
        "max_age": 3600.0,
        "start_timeout": 60.0,
    }
    settings.update(kw)
    return pool_options(**settings)


def pod(
    name: str,
    *,
    owner: str = "me",
    state: str = "warm",
    phase: str = "Running",
    ready: bool = True,
    created: float = NOW - 10,
    expires: float | None = NOW + 300,
) -> dict[str, Any]:
    annotations = {} if expires is None else {EXPIRES_ANNOTATION: format_rfc3339(expires)}
    return {
        "metadata": {
            "name": name,
            "resourceVersion": "7",
            "creationTimestamp": format_rfc3339(created),
            "labels": {POOL_LABEL: "p", OWNER_LABEL: owner, STATE_LABEL: state},
            "annotations": annotations,
        },
        "spec": {"containers": [{"name": "main"}]},
        "status": {
            "phase": phase,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def core(*pods: dict[str, Any], **kw: Any) -> PoolCore:
    c = PoolCore(options(**kw), "me", random.Random(0))
    c.listed(list(pods))
    return c


# -- settings --------------------------------------------------------------------------------------


def test_settings_errors_name_field_value_and_rule() -> None:
    with pytest.raises(SpecError) as caught:
        options(size=0)
    assert (caught.value.field, caught.value.value) == ("size", 0)
    assert "at least 1" in caught.value.rule
    with pytest.raises(SpecError, match=r"max_age.*twice the lease"):
        options(max_age=100, lease=300)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"size": 0}, "size"),
        ({"size": "2"}, "size"),
        ({"name": "Not_A_Label"}, "name"),
        ({"holder": "sleep infinity"}, "holder"),
        ({"lease": -1}, "lease"),
        ({"max_age": 10, "lease": 60}, "max_age"),
        ({"start_timeout": 0}, "start_timeout"),
        ({"recycle": "yes"}, "recycle"),
        ({"spec": SPEC.with_name("fixed")}, "spec.name"),
    ],
)
def test_bad_settings_are_refused_before_any_call(kwargs: dict[str, Any], field: str) -> None:
    cluster = FakeCluster()
    spec = kwargs.pop("spec", SPEC)
    with pytest.raises(SpecError) as caught:
        PodPool(PodRunner(cluster.backend), spec, **kwargs)
    assert caught.value.field == field
    assert cluster.actions == []


def test_the_pool_spec_keeps_the_spec_and_swaps_the_command() -> None:
    spec = pool_pod_spec(SPEC.with_labels(team="ml"), options(), "me")
    assert spec.command == ("sleep", "infinity")
    assert spec.labels["team"] == "ml"
    assert (spec.labels[POOL_LABEL], spec.labels[OWNER_LABEL]) == ("p", "me")
    assert spec.active_deadline_seconds == 3600
    assert spec.annotations == SPEC.annotations
    with pytest.raises(SpecError, match=r"spec\.name"):
        pool_pod_spec(SPEC.with_name("x"), options(), "me")


def test_async_pool_checks_its_settings_before_any_call() -> None:
    cluster = FakeCluster()
    with pytest.raises(SpecError) as caught:
        AsyncPodPool(AsyncPodRunner(cluster.async_backend), SPEC, size=-1)
    assert caught.value.field == "size"
    assert cluster.actions == []


# -- claims ----------------------------------------------------------------------------------------


def test_take_offers_only_ready_warm_unclaimed_pods_once() -> None:
    c = core(
        pod("a"),
        pod("b", state="claimed"),
        pod("c", ready=False),
        pod("d", phase="Pending", ready=False),
        pod("e", owner="other"),  # another process's pod of the same pool: claimable
    )
    taken = {c.take(NOW)["metadata"]["name"], c.take(NOW)["metadata"]["name"]}  # type: ignore[index]
    assert taken == {"a", "e"}
    assert c.take(NOW) is None  # each is offered once while its claim is under way
    c.taken("a", None)  # lost: not offered again until the watch brings it back
    assert c.take(NOW) is None
    assert c.lost == 1


def test_claim_body_is_conditional_and_marks_the_claim() -> None:
    body = claim_body(pod("a"), "claim-1", NOW + 90)
    meta = body["metadata"]
    assert meta["resourceVersion"] == "7"  # the server refuses it if the pod changed since
    assert meta["labels"][STATE_LABEL] == "claimed"
    assert meta["annotations"][CLAIM_ANNOTATION] == "claim-1"
    assert epoch_of(meta["annotations"][EXPIRES_ANNOTATION]) == NOW + 90
    assert "status" not in body
    released = release_patch(NOW + 300)["metadata"]
    assert released["annotations"][CLAIM_ANNOTATION] is None
    assert released["labels"][STATE_LABEL] == "warm"


def test_a_renewal_is_conditional_too() -> None:
    from podrunner.run.pool_core import renew_body

    body = renew_body(pod("a"), NOW + 300)
    assert body["metadata"]["resourceVersion"] == "7"  # a claim that landed first wins
    assert epoch_of(body["metadata"]["annotations"][EXPIRES_ANNOTATION]) == NOW + 300
    assert body["metadata"]["labels"][STATE_LABEL] == "warm"


def test_claim_expiry_is_the_run_deadline_plus_a_margin() -> None:
    c = core()
    assert c.claim_expiry(NOW, 60.0, 86400.0) == NOW + 90.0
    assert c.claim_expiry(NOW, None, 86400.0) == NOW + 86400.0


# -- refill, renewal, expiry, retirement ----------------------------------------------------------


def test_work_refills_to_size_and_counts_creates_under_way() -> None:
    c = core(pod("a"))
    work = c.work(NOW)
    assert work.create == 1
    c.creating += work.create
    assert c.work(NOW).create == 0


def test_a_claimed_pod_is_refilled_at_once_unless_it_comes_back() -> None:
    claimed = pod("a", state="claimed")
    assert core(claimed, pod("b")).work(NOW).create == 1  # deleted after its run
    assert core(claimed, pod("b"), recycle=True).work(NOW).create == 0  # given back


def test_free_pods_beyond_size_are_deleted_newest_first() -> None:
    c = core(pod("old", created=NOW - 20), pod("mid", created=NOW - 10), pod("new", created=NOW))
    work = c.work(NOW)
    assert (work.create, work.delete) == (0, ("new",))


def test_dead_and_expired_pods_are_deleted_and_replaced() -> None:
    c = core(
        pod("dead", phase="Failed", ready=False),
        pod("expired", expires=NOW - 1, state="claimed", owner="crashed"),
        pod("ok"),
    )
    work = c.work(NOW)
    assert set(work.delete) == {"dead", "expired"}
    assert work.create == 1
    assert c.work(NOW).delete == ()  # asked once
    c.event(WatchEvent("DELETED", pod("dead")))
    assert "dead" not in c.pods


def test_renewal_when_two_thirds_of_the_lease_are_left() -> None:
    c = core(pod("fresh", expires=NOW + 250), pod("due", expires=NOW + 150))
    assert c.work(NOW).renew == ("due",)
    assert c.next_look(NOW) == pytest.approx(1.0)  # due now: look again soon
    fresh = core(pod("fresh", expires=NOW + 60), lease=60.0)
    assert fresh.next_look(NOW) == pytest.approx(20.0)  # when 40 s of its 60 are left


def test_a_warm_pod_past_half_its_max_age_is_retired() -> None:
    c = core(pod("old", created=NOW - 1801), pod("young"))
    assert c.take(NOW)["metadata"]["name"] == "young"  # type: ignore[index]
    work = c.work(NOW)
    assert work.delete == ("old",)
    assert work.create == 1


def test_exec_result_keeps_the_tail_and_names_the_claim() -> None:
    from podrunner.backends.base import ExecResult

    pod = ClaimedPod(name="a", namespace="n", container="c", claim_id="claim-1")
    result = exec_result(ExecResult(2, b"abcdef", b"gh"), pod, duration=0.5, log_limit_bytes=4)
    assert (result.exit_code, result.logs, result.logs_truncated) == (2, "efgh", True)
    assert (result.run_id, result.ok) == ("claim-1", False)


# -- what only the fake can stage -----------------------------------------------------------------


def test_an_exec_cut_at_its_timeout_is_a_run_timeout_and_the_pod_goes() -> None:
    cluster = FakeCluster()

    def slow(request: Any) -> Any:
        cluster.advance(5)  # the command runs past the timeout: the stream is closed
        raise BackendUnavailable("exec timed out")

    cluster.when(image="busybox:*").exec_handler(slow, argv="slow*")
    with PodPool(PodRunner(cluster.backend), SPEC, size=1, recycle=True) as pool:
        with pytest.raises(RunTimeout) as caught:
            pool.run(["slow"], timeout=5)
        assert caught.value.run_id is not None
        assert caught.value.run_id.startswith("claim-")
        assert caught.value.pod_name not in {p["metadata"]["name"] for p in cluster.pods()}
    assert leftovers(cluster) == []


def test_a_pod_deleted_during_its_run_is_pod_lost() -> None:
    cluster = FakeCluster()

    def vanish(request: Any) -> Any:
        cluster.backend.delete("Pod", request.namespace, request.pod, grace_period_seconds=0)
        raise podrunner.NotFound("pod gone", kind="Pod")

    cluster.when(image="busybox:*").exec_handler(vanish)
    with PodPool(PodRunner(cluster.backend), SPEC, size=1) as pool, pytest.raises(PodLost):
        pool.run(["anything"])
    assert leftovers(cluster) == []


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="signals")
def test_sigterm_in_the_middle_of_a_run_leaves_nothing() -> None:
    cluster = FakeCluster()
    cluster.when(image="busybox:*").exec_handler(
        lambda request: signal.raise_signal(signal.SIGTERM), argv="work*"
    )
    pool = PodPool(PodRunner(cluster.backend), SPEC, size=3)

    def program() -> None:
        with podrunner.stop_on_signals(), pool:
            pool.wait_ready()
            pool.run(["work"])

    with pytest.raises(podrunner.Terminated):
        program()
    assert leftovers(cluster) == []


def test_ctrl_c_in_the_middle_of_a_run_leaves_nothing() -> None:
    cluster = FakeCluster()

    def interrupt(request: Any) -> Any:
        raise KeyboardInterrupt

    cluster.when(image="busybox:*").exec_handler(interrupt, argv="work*")
    pool = PodPool(PodRunner(cluster.backend), SPEC, size=2)
    with pytest.raises(KeyboardInterrupt), pool:
        pool.run(["work"])
    assert leftovers(cluster) == []


def test_cancelling_an_async_run_leaves_nothing() -> None:
    cluster = FakeCluster()
    started = threading.Event()

    def hang(request: Any) -> Any:
        started.set()
        raise asyncio.CancelledError

    cluster.when(image="busybox:*").exec_handler(hang, argv="work*")

    async def main() -> None:
        async with AsyncPodPool(AsyncPodRunner(cluster.async_backend), SPEC, size=2) as pool:
            await pool.wait_ready()
            with pytest.raises(asyncio.CancelledError):
                await pool.run(["work"])

    asyncio.run(main())
    assert started.is_set()
    assert leftovers(cluster) == []


def test_a_refused_pool_pod_waits_for_an_autoscaler_as_a_run_does() -> None:
    """The grace first; then a scale-up under way means look again, anything else raises."""
    from podrunner import Unschedulable
    from podrunner.run.core import CAPACITY_RECHECK
    from podrunner.run.pool_run import RefusedPod
    from podrunner.run.state import Phase, PodState, Reason

    state = PodState(Phase.PENDING, Reason.UNSCHEDULABLE, message="0/3 nodes: Insufficient gpu")
    refused = RefusedPod(grace=15.0)
    assert refused.due(None, 0.0) == math.inf
    assert refused.due(("p-1", state), 100.0) == 15.0
    assert refused.due(("p-1", state), 110.0) == 5.0
    assert refused.due(("p-1", state), 115.0) is None  # the grace is over: read the events
    coming = ["FailedScheduling: 0/3 nodes", "TriggeredScaleUp: pod triggered scale-up"]
    assert refused.verdict(("p-1", state), coming, "ns") == CAPACITY_RECHECK
    with pytest.raises(Unschedulable) as caught:
        refused.verdict(("p-1", state), [*coming, "NotTriggerScaleUp: no node group"], "ns")
    assert caught.value.pod_name == "p-1"
    assert "Insufficient gpu" in str(caught.value)
    assert refused.due(("p-2", state), 120.0) == 15.0  # another pod: its own grace


def test_an_async_pool_run_copies_files_out(tmp_path: Any) -> None:
    """collect= on AsyncPodPool: the tar stream is extracted off the loop, into a directory."""
    import io
    import tarfile

    from podrunner import Collect, CollectFailed

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("./answer.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"42\n"))
    archive = buf.getvalue()
    cluster = FakeCluster()
    cluster.when(image="busybox:*").exec_handler(
        lambda request: archive if "/out" in request.argv else (127, b"", b"tar: not found"),
        argv="tar *",
    )
    wanted = Collect(["/out/**"], directory=tmp_path / "files")

    async def main() -> None:
        async with AsyncPodPool(AsyncPodRunner(cluster.async_backend), SPEC, size=1) as pool:
            result = await pool.run(["true"], collect=wanted)
            assert result.files is not None
            assert (tmp_path / "files" / "answer.txt").read_bytes() == b"42\n"
            with pytest.raises(CollectFailed, match="has no usable tar") as caught:
                await pool.run(["true"], collect=["/elsewhere/**"])
            assert caught.value.result.exit_code == 0

    asyncio.run(main())
    assert leftovers(cluster) == []


def test_an_async_pool_awaits_its_adopt_check() -> None:
    """An async pool awaits a coroutine adopt check: its refusal is what runs raise."""
    from podrunner import RunError

    cluster = FakeCluster()
    cluster.when(image="busybox:*").hang()
    cluster.backend.create(
        {
            "kind": "Pod",
            "metadata": {"name": "box"},
            "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]},
        }
    )
    seen: list[str] = []

    async def adopt(obj: Any) -> None:
        seen.append(obj["metadata"]["name"])
        raise RunError("not ours: made by hand", pod_name="box")

    async def main() -> None:
        runner = AsyncPodRunner(cluster.async_backend)
        async with AsyncPodPool(runner, SPEC, pod_name="box", adopt=adopt) as pool:
            with pytest.raises(RunError, match="not ours: made by hand"):
                await pool.run(["true"])

    asyncio.run(main())
    assert seen == ["box"]
    assert [p["metadata"]["name"] for p in cluster.pods()] == ["box"]
