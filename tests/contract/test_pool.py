"""The warm pool (PodPool, AsyncPodPool) on the fake and on a real API server, same tests.

On the sync parameters (``fake``, ``kwok``) the tests drive a :class:`PodPool`; on the async
ones (``fake-async``, ``kwok-async``) an :class:`AsyncPodPool` on the bridge's event loop,
through :class:`AsyncPoolFacade`, so both drivers of the pool core answer the same questions.
Pool pods carry the simulation annotation that keeps them running (the fake and kwok both
read it; a real kubelet runs the holder, ``sleep infinity``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from podrunner import (
    AsyncPodPool,
    AsyncPodRunner,
    PodFailed,
    PodPool,
    PodRunner,
    PodSpec,
    SpecError,
    StartTimeout,
)
from podrunner.manifest.plan import EXPIRES_ANNOTATION
from podrunner.run.pool_core import CLAIM_ANNOTATION, POOL_LABEL, STATE_LABEL
from podrunner.testing import leftovers

SPEC = PodSpec("busybox:1.36", ["unused"], annotations={"sim.podrunner.dev/duration": "1000000"})


class AsyncPoolFacade:
    """An AsyncPodPool driven from the test thread: each call runs on the bridge's loop."""

    def __init__(self, bridge: Any, pool: AsyncPodPool) -> None:
        self.bridge = bridge
        self.pool = pool
        self.name = pool.name

        async def start() -> None:
            pool.start()

        bridge.run(start())

    def run(self, argv: list[str], **kw: Any) -> Any:
        return self.bridge.run(self.pool.run(argv, **kw))

    def wait_ready(self, timeout: float | None = None) -> None:
        self.bridge.run(self.pool.wait_ready(timeout))

    def close(self) -> None:
        self.bridge.run(self.pool.close())

    def refresh(self) -> None:
        self.bridge.run(self.pool.refresh())

    @property
    def created(self) -> int:
        return self.pool.created

    def exec_in(self, pod: Any, argv: list[str], **kw: Any) -> Any:
        return self.bridge.run(self.pool.exec_in(pod, argv, **kw))

    @property
    def warm(self) -> int:
        return self.pool.warm

    @contextlib.contextmanager
    def claim(self, **kw: Any) -> Iterator[Any]:
        manager = self.pool.claim(**kw)
        pod = self.bridge.run(manager.__aenter__())
        try:
            yield pod
        except BaseException as exc:
            self.bridge.run(manager.__aexit__(type(exc), exc, exc.__traceback__))
            raise
        self.bridge.run(manager.__aexit__(None, None, None))


Pool = Any  # PodPool or AsyncPoolFacade
MakePool = Callable[..., Pool]


@pytest.fixture
def make_pool(kit: Any) -> Iterator[MakePool]:
    """Build pools of the parameter's kind in the test namespace; all closed at the end."""
    made: list[Pool] = []

    def make(spec: PodSpec = SPEC, size: int = 2, **kw: Any) -> Pool:
        spec = spec.with_namespace(kit.namespace)
        # Virtual time jumps while the test thread works between calls: no lease to run out
        # or age to reach there unless the test asks for one.
        kw.setdefault("lease", 86400.0)
        kw.setdefault("max_age", None)
        if kit.name.endswith("-async"):
            runner = AsyncPodRunner(kit.backend.inner, namespace=kit.namespace)
            pool: Pool = AsyncPoolFacade(kit.backend, AsyncPodPool(runner, spec, size, **kw))
        else:
            pool = PodPool(PodRunner(kit.backend, kit.namespace), spec, size, **kw).start()
        made.append(pool)
        return pool

    yield make
    for pool in made:
        pool.close()


def pool_pods(kit: Any, name: str) -> dict[str, dict[str, Any]]:
    """The pool's pods that are not being deleted, by name."""
    listed = kit.backend.list("Pod", kit.namespace, label_selector=f"{POOL_LABEL}={name}")
    return {
        p["metadata"]["name"]: p for p in listed.items if not p["metadata"].get("deletionTimestamp")
    }


def refilled(kit: Any, pool: Pool, size: int, without: str) -> set[str]:
    """Wait until the pool holds ``size`` ready pods again, none of them ``without``."""
    from podrunner.run.pool_core import is_ready

    clock = kit.backend.clock
    deadline = clock.monotonic() + 60
    while True:
        pods = pool_pods(kit, pool.name)
        ready = {n for n, p in pods.items() if is_ready(p)}
        if len(ready) == size and without not in ready:
            return ready
        seen = [(n, p.get("status"), p["metadata"]) for n, p in pods.items() if not is_ready(p)]
        assert clock.monotonic() < deadline, f"not refilled: {seen}"
        clock.sleep(0.2)


def _all_pods(kit: Any) -> list[str]:
    return [p["metadata"]["name"] for p in kit.backend.list("Pod", kit.namespace).items]


# -- claims ------------------------------------------------------------------------------------


def test_a_run_claims_a_warm_pod_runs_the_command_and_the_pool_refills(
    kit: Any, make_pool: MakePool
) -> None:
    pool = make_pool(size=2)
    pool.wait_ready()
    warm = set(pool_pods(kit, pool.name))
    assert len(warm) == 2
    result = pool.run(["echo", "hi"])
    assert (result.exit_code, result.logs, result.ok) == (0, "hi\n", True)
    assert result.pod_name in warm
    assert result.run_id.startswith("claim-")
    kit.wait_gone("Pod", result.pod_name)  # deleted after the run: nothing leaks to the next
    refilled(kit, pool, 2, without=result.pod_name)


def test_exit_code_output_and_check(kit: Any, make_pool: MakePool) -> None:
    pool = make_pool(size=1)
    result = pool.run(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (result.exit_code, result.logs, result.ok) == (3, "out\nerr\n", False)
    with pytest.raises(PodFailed) as caught:
        pool.run(["false"], check=True)
    assert caught.value.result.exit_code == 1


def test_pool_pods_keep_the_spec_and_run_the_holder(kit: Any, make_pool: MakePool) -> None:
    spec = SPEC.with_env(GREETING="hello").with_labels(team="ml")
    pool = make_pool(spec, size=1, holder=["sleep", "3600"], lease=300, max_age=3600)
    pool.wait_ready()
    (pod,) = pool_pods(kit, pool.name).values()
    container = pod["spec"]["containers"][0]
    assert container["command"] == ["sleep", "3600"]
    assert {"name": "GREETING", "value": "hello"} in container["env"]
    assert pod["metadata"]["labels"]["team"] == "ml"
    assert pod["metadata"]["labels"][STATE_LABEL] == "warm"
    assert EXPIRES_ANNOTATION in pod["metadata"]["annotations"]
    assert pod["spec"]["activeDeadlineSeconds"] == 3600  # max_age: bounded without a reaper


def test_recycle_gives_the_pod_back(kit: Any, make_pool: MakePool) -> None:
    pool = make_pool(size=1, recycle=True)
    first = pool.run(["true"])
    second = pool.run(["true"])
    assert first.pod_name == second.pod_name
    assert first.run_id != second.run_id
    pod = kit.backend.get("Pod", kit.namespace, first.pod_name)
    assert pod["metadata"]["labels"][STATE_LABEL] == "warm"
    assert CLAIM_ANNOTATION not in (pod["metadata"].get("annotations") or {})
    # recycle=False on one run overrides the pool's setting
    third = pool.run(["true"], recycle=False)
    kit.wait_gone("Pod", third.pod_name)


def test_a_claimed_pod_carries_its_claim_and_expiry(kit: Any, make_pool: MakePool) -> None:
    pool = make_pool(size=1)
    before = kit.backend.clock.now()
    # An hour: the fake's virtual time may jump while this thread works between two calls.
    with pool.claim(timeout=3600) as claimed:
        after = kit.backend.clock.now()
        pod = kit.backend.get("Pod", kit.namespace, claimed.name)
        meta = pod["metadata"]
        assert meta["labels"][STATE_LABEL] == "claimed"
        assert meta["annotations"][CLAIM_ANNOTATION] == claimed.claim_id
        from podrunner._time import epoch_of

        expires = epoch_of(meta["annotations"][EXPIRES_ANNOTATION])
        assert expires is not None
        assert before + 3600 <= expires <= after + 3600 + 30 + 1
    kit.wait_gone("Pod", claimed.name)


def test_two_pools_racing_never_hold_the_same_pod(kit: Any, make_pool: MakePool) -> None:
    """Two pools of one name (as two processes would be), 8 claimers: no pod held twice."""
    pools = [make_pool(size=2, name="shared", recycle=True) for _ in range(2)]
    for pool in pools:
        pool.wait_ready()
    per_thread = 25 if kit.is_fake else 8
    holders: dict[str, str] = {}
    lock = threading.Lock()
    doubles: list[str] = []
    counts: collections.Counter[str] = collections.Counter()

    def hold(name: str, me: str) -> None:
        with lock:
            if name in holders:
                doubles.append(f"{name}: {holders[name]} and {me}")
            holders[name] = me
            counts[name] += 1
        with lock:
            del holders[name]

    if isinstance(pools[0], AsyncPoolFacade):
        # Async claimers are tasks of one event loop (what an async program runs).
        async def task(pool: AsyncPodPool, me: str) -> None:
            for _ in range(per_thread):
                async with pool.claim() as pod:
                    hold(pod.name, me)

        async def race() -> None:
            await asyncio.gather(*(task(pools[i % 2].pool, f"t{i}") for i in range(8)))

        pools[0].bridge.run(race())
    else:

        def claimer(pool: PodPool, me: str) -> None:
            for _ in range(per_thread):
                with pool.claim() as pod:
                    hold(pod.name, me)

        threads = [threading.Thread(target=claimer, args=(pools[i % 2], f"t{i}")) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert doubles == []
    assert sum(counts.values()) == 8 * per_thread
    assert len(counts) >= 2  # the claimers really shared several pods


# -- failures ----------------------------------------------------------------------------------


def test_a_warm_pod_that_goes_away_is_replaced(kit: Any, make_pool: MakePool) -> None:
    if kit.name == "fake-async":
        # As for the renewal below: this thread's waits move the fake's sync clock in steps
        # the async pool's task is not counted in, so a refill's start timer can be jumped
        # (about 1 run in 25). The refill is held on fake, kwok and kwok-async.
        pytest.skip("the bridge's thread and the async pool's task share no virtual clock")
    pool = make_pool(size=2)
    pool.wait_ready()
    victim = next(iter(pool_pods(kit, pool.name)))
    kit.backend.delete("Pod", kit.namespace, victim, grace_period_seconds=0)
    kit.wait_gone("Pod", victim)
    refilled(kit, pool, 2, without=victim)


def test_a_pool_pod_that_cannot_start_is_the_engines_error(kit: Any, make_pool: MakePool) -> None:
    from podrunner import ImagePullError

    spec = SPEC.with_annotations({"sim.podrunner.dev/failure": "ImagePullBackOff"})
    pool = make_pool(spec, size=1, start_timeout=60)
    # Not a StartTimeout a minute later: the pod's state says it will never start.
    with pytest.raises(ImagePullError, match="could not be pulled") as info:
        pool.run(["true"])
    assert info.value.pod_name in _all_pods(kit)


def test_refresh_replaces_the_pods_no_run_holds(kit: Any, make_pool: MakePool) -> None:
    pool = make_pool(size=2)
    pool.wait_ready()
    before = set(pool_pods(kit, pool.name))
    pool.refresh()
    for name in before:
        kit.wait_gone("Pod", name)
    pool.wait_ready()
    assert not before & set(pool_pods(kit, pool.name))


def test_exec_in_a_held_pod_keeps_the_streams_apart(kit: Any, make_pool: MakePool) -> None:
    pool = make_pool(size=1)
    with pool.claim() as pod:  # no timeout: virtual time may jump between the test's calls
        out = pool.exec_in(pod, ["sh", "-c", "echo out; echo err >&2; exit 3"], timeout=30)
    assert (out.exit_code, out.stdout, out.stderr) == (3, b"out\n", b"err\n")


def test_on_log_gets_each_line_as_it_arrives(kit: Any, make_pool: MakePool) -> None:
    pool = make_pool(size=1)
    lines: list[str] = []
    script = "echo one; echo two >&2; printf three"
    result = pool.run(["sh", "-c", script], on_log=lines.append, timeout=60)
    assert sorted(lines) == ["one", "three", "two"]  # the two streams interleave freely
    assert result.exit_code == 0
    assert result.logs == "one\nthree" + "two\n"  # stdout, then stderr, as without on_log


def test_an_on_log_that_raises_ends_the_run_and_its_pod(kit: Any, make_pool: MakePool) -> None:
    pool = make_pool(size=1, recycle=True)
    pool.wait_ready()
    (name,) = pool_pods(kit, pool.name)

    def refuse(line: str) -> None:
        raise ValueError(f"no thanks: {line}")

    with pytest.raises(ValueError, match="no thanks: hello"):
        pool.run(["sh", "-c", "echo hello; sleep 30"], on_log=refuse, timeout=60)
    kit.wait_gone("Pod", name)  # never given back: its command may still run


def test_a_streamed_run_past_its_timeout_is_a_run_timeout(kit: Any, make_pool: MakePool) -> None:
    from podrunner import RunTimeout

    pool = make_pool(size=1)
    lines: list[str] = []
    with pytest.raises(RunTimeout) as caught:
        pool.run(["sh", "-c", "echo started; sleep 5"], on_log=lines.append, timeout=1)
    assert lines == ["started"]
    kit.wait_gone("Pod", caught.value.pod_name)


def test_pools_of_one_pod_name_share_one_pod(kit: Any, make_pool: MakePool) -> None:
    one = make_pool(size=1, pod_name="box", recycle=True)
    other = make_pool(size=1, pod_name="box", recycle=True)
    assert one.run(["true"]).pod_name == other.run(["true"]).pod_name == "box"
    assert list(pool_pods(kit, one.name)) == ["box"]
    assert one.created + other.created == 1


def test_a_stranger_under_the_pod_name_is_refused_and_kept(kit: Any, make_pool: MakePool) -> None:
    from podrunner import RunError

    stranger = {
        "kind": "Pod",
        "metadata": {"name": "box", "namespace": kit.namespace},
        "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]},
    }
    uid = kit.backend.create(stranger)["metadata"]["uid"]
    pool = make_pool(size=1, pod_name="box", start_timeout=30)
    with pytest.raises(RunError, match="is not a pod of pool"):
        pool.run(["true"])
    pool.close()
    assert kit.backend.get("Pod", kit.namespace, "box")["metadata"]["uid"] == uid
    kit.backend.delete("Pod", kit.namespace, "box", grace_period_seconds=0)


def test_a_pool_pod_no_node_takes_is_unschedulable(kit: Any, make_pool: MakePool) -> None:
    from podrunner import Unschedulable

    spec = SPEC.with_annotations({"sim.podrunner.dev/failure": "Unschedulable"})
    pool = make_pool(spec, size=1, start_timeout=600)
    clock = kit.backend.clock
    began = clock.monotonic()
    # After the autoscaler grace (15 s) with no scale-up in the pod's events: not 10 minutes.
    with pytest.raises(Unschedulable):
        pool.run(["true"])
    assert clock.monotonic() - began < 120


def test_no_warm_pod_in_time_is_a_start_timeout(kit: Any, make_pool: MakePool) -> None:
    # recycle: the held pod counts toward the size, so no other pod is made meanwhile.
    pool = make_pool(SPEC, size=1, start_timeout=3, recycle=True)
    pool.wait_ready()
    with pool.claim(), pytest.raises(StartTimeout, match="no warm pod in pool"):
        pool.run(["true"])  # the one pod is held by the block


def test_a_command_past_its_timeout_is_a_run_timeout_and_its_pod_goes(
    kit: Any, make_pool: MakePool
) -> None:
    from podrunner import RunTimeout

    kit.fake_differs("the fake's exec runs builtins to their end, ignoring the timeout")
    pool = make_pool(size=1, recycle=True)
    with pytest.raises(RunTimeout) as caught:
        pool.run(["sh", "-c", "sleep 2"], timeout=1)
    assert caught.value.pod_name
    kit.wait_gone("Pod", caught.value.pod_name)  # it may still run: never recycled


def test_close_leaves_nothing(kit: Any, make_pool: MakePool) -> None:
    pool = make_pool(size=3, recycle=True)
    pool.wait_ready()
    pool.run(["true"])
    pool.close()
    for name in _all_pods(kit):
        kit.wait_gone("Pod", name)
    assert leftovers(kit.backend, kit.namespace) == []


def test_a_live_pool_renews_its_pods_expiry(kit: Any, make_pool: MakePool) -> None:
    """Past the first expiry the pool's pods are still there: the reaper leaves them alone."""
    from podrunner._time import epoch_of

    if kit.name == "fake-async":
        # This thread moves the fake's sync clock in steps the async pool's task is not
        # counted in; the renewal is held to the real clock on kwok-async.
        pytest.skip("the bridge's thread and the async pool's task share no virtual clock")
    pool = make_pool(size=1, lease=6)  # renewed when 4 s are left
    pool.wait_ready()
    (name,) = pool_pods(kit, pool.name)

    def expiry() -> float:
        pod = kit.backend.get("Pod", kit.namespace, name)
        value = epoch_of(pod["metadata"]["annotations"][EXPIRES_ANNOTATION])
        assert value is not None
        return value

    first = expiry()
    clock = kit.backend.clock
    while clock.now() < first + 1:
        clock.sleep(0.5)
    assert expiry() > clock.now()
    report = PodRunner(kit.backend, kit.namespace).reap()
    assert [d for d in report.deleted if d[0] == "Pod"] == []


def abandon(pool: Pool) -> None:
    """Stop the pool's background work as a killed process would: nothing renews or deletes."""
    if isinstance(pool, AsyncPoolFacade):
        task = pool.pool._task
        assert task is not None

        async def cancel() -> None:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task

        pool.bridge.run(cancel())
        return
    pool._stop.set()
    stream = pool._stream
    if stream is not None:
        stream.close()
    assert pool._thread is not None
    pool._thread.join()


def test_pods_of_a_dead_pool_expire_and_are_reaped(kit: Any, make_pool: MakePool) -> None:
    """A process killed outright leaves its pods; their lease runs out and reap deletes them."""
    pool = make_pool(size=2, lease=2, max_age=None)
    pool.wait_ready()
    abandon(pool)
    assert len(pool_pods(kit, pool.name)) == 2
    kit.backend.clock.sleep(3)
    report = PodRunner(kit.backend, kit.namespace).reap()
    assert len([d for d in report.deleted if d[0] == "Pod"]) == 2
    for name in _all_pods(kit):
        kit.wait_gone("Pod", name)


# -- bad input, before any API call --------------------------------------------------------------


def test_a_bad_command_is_refused_before_a_claim(kit: Any, make_pool: MakePool) -> None:
    pool = make_pool(size=1)
    with pytest.raises(SpecError) as caught:
        pool.run("echo hi")
    assert caught.value.field == "argv"
