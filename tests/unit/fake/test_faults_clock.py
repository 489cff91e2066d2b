from __future__ import annotations

import threading
import time

import pytest
from fakepods import pod

from podrunner.backends.fake import FakeCluster, RealTimeClock, VirtualClock
from podrunner.errors import (
    AlreadyExists,
    BackendUnavailable,
    Conflict,
    Forbidden,
    Gone,
    NotFound,
    ServerError,
    TooManyRequests,
    Unauthorized,
)


def real_waits(monkeypatch: pytest.MonkeyPatch, clock: object) -> list[float | None]:
    """Record every real-time wait the clock makes (its only way to block for real)."""
    waits: list[float | None] = []
    original = type(clock)._sleep  # type: ignore[attr-defined]

    def counted(self: object, timeout: float | None) -> None:
        waits.append(timeout)
        original(self, timeout)

    monkeypatch.setattr(type(clock), "_sleep", counted)
    return waits


@pytest.mark.parametrize(
    ("status", "reason", "error"),
    [
        (401, "Unauthorized", Unauthorized),
        (403, "Forbidden", Forbidden),
        (404, "NotFound", NotFound),
        (409, "Conflict", Conflict),
        (410, "Expired", Gone),
        (429, "TooManyRequests", TooManyRequests),
        (500, "InternalError", ServerError),
        (503, "ServiceUnavailable", ServerError),
    ],
)
def test_fault_statuses(
    cluster: FakeCluster, status: int, reason: str, error: type[Exception]
) -> None:
    """An injected status surfaces as the matching error with the server's reason."""
    cluster.fault(verb="create", kind="Pod", status=status)
    with pytest.raises(error) as info:
        cluster.backend.create(pod("a"))
    assert info.value.status == status  # type: ignore[attr-defined]
    assert info.value.reason == reason  # type: ignore[attr-defined]
    assert cluster.pods() == []


def test_fault_reason_override_and_retry_after(cluster: FakeCluster) -> None:
    """reason= picks AlreadyExists for a 409; 429 carries Retry-After."""
    cluster.fault(verb="create", status=409, reason="AlreadyExists", times=1)
    cluster.fault(verb="get", status=429, retry_after=3)
    with pytest.raises(AlreadyExists):
        cluster.backend.create(pod("a"))
    with pytest.raises(TooManyRequests) as info:
        cluster.backend.get("Pod", "default", "a")
    assert info.value.retry_after == 3


def test_fault_times_and_nth(cluster: FakeCluster) -> None:
    """Times limits how often a rule fires; nth picks one call."""
    first = cluster.fault(verb="get", status=500, times=2)
    for _ in range(2):
        with pytest.raises(ServerError):
            cluster.backend.get("Namespace", None, "default")
    cluster.backend.get("Namespace", None, "default")
    assert first.fired == 2
    cluster.fault(verb="list", status=503, nth=2)
    cluster.backend.list("Pod", "default")
    with pytest.raises(ServerError):
        cluster.backend.list("Pod", "default")
    cluster.backend.list("Pod", "default")


def test_connection_error_and_name_glob(cluster: FakeCluster) -> None:
    """connection_error answers BackendUnavailable; name globs narrow the rule."""
    cluster.fault(verb="create", name="bad-*", connection_error=True)
    cluster.backend.create(pod("good"))
    with pytest.raises(BackendUnavailable):
        cluster.backend.create(pod("bad-1"))


def test_latency_in_virtual_time(cluster: FakeCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    """Latency waits on the cluster's clock: virtual seconds, no real sleep."""
    waits = real_waits(monkeypatch, cluster.clock)
    cluster.fault(verb="get", latency=30)
    cluster.backend.create(pod("a"))
    cluster.backend.get("Pod", "default", "a")
    assert cluster.clock.monotonic() == 30
    assert waits == []


def test_watch_cut_and_gone(cluster: FakeCluster) -> None:
    """Watch streams can be cut after N events or answered with 410."""
    for name in ("a", "b", "c"):
        cluster.backend.create(pod(name))
    cluster.fault(verb="watch", cut_watch_after=2, times=1)
    assert len(list(cluster.backend.watch("Pod", "default", timeout_seconds=5))) == 2
    cluster.fault(verb="watch", status=410, times=1)
    with pytest.raises(Gone):
        cluster.backend.watch("Pod", "default", resource_version="1")


def test_log_cut_and_utf8_split(cluster: FakeCluster) -> None:
    """Log streams can be cut after N lines and split inside a UTF-8 character."""
    cluster.when(name="a").succeed(logs="é1\né2\né3\n")
    cluster.backend.create(pod("a"))
    cluster.advance(5)
    cluster.fault(verb="read_log", cut_log_after_lines=2, times=1)
    received: list[bytes] = []
    with pytest.raises(BackendUnavailable, match="cut after 2 lines"):
        received.extend(cluster.backend.read_log("default", "a"))
    assert b"".join(received) == "é1\né2\n".encode()
    cluster.fault(verb="read_log", split_utf8=True, times=1)
    chunks = list(cluster.backend.read_log("default", "a"))
    assert b"".join(chunks) == "é1\né2\né3\n".encode()
    with pytest.raises(UnicodeDecodeError):
        chunks[0].decode()


# -- clock ---------------------------------------------------------------------------------


def test_sleep_and_wait_in_virtual_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sleep and wait jump virtual time without sleeping for real."""
    clock = VirtualClock()
    waits = real_waits(monkeypatch, clock)
    clock.sleep(3600)
    assert clock.monotonic() == 3600
    assert clock.wait(threading.Event(), 60) is False
    assert clock.monotonic() == 3660
    assert waits == []


def test_event_set_at_deadline_wins() -> None:
    """An event set by a timer at the waiter's own deadline is delivered: wait returns True."""
    clock = VirtualClock()
    event = threading.Event()
    with clock.lock:
        clock.call_later(10, event.set)
    assert clock.wait(event, 10) is True
    assert clock.monotonic() == 10


def test_kubelet_timers_drive_waits(cluster: FakeCluster) -> None:
    """A runner sleeping on the clock sees the pod progress at the scripted times."""
    cluster.when(name="a").succeed(after=100)
    cluster.backend.create(pod("a"))
    cluster.clock.sleep(50)
    assert cluster.backend.get("Pod", "default", "a")["status"]["phase"] == "Running"
    cluster.clock.sleep(60)
    assert cluster.backend.get("Pod", "default", "a")["status"]["phase"] == "Succeeded"


def test_two_threads_wait_together() -> None:
    """Time jumps only when every thread in the fake is blocked; both see ordered deadlines."""
    clock = VirtualClock()
    woke: list[tuple[str, float]] = []

    def sleeper(name: str, seconds: float) -> None:
        clock.sleep(seconds)
        woke.append((name, clock.monotonic()))

    threads = [threading.Thread(target=sleeper, args=(n, s)) for n, s in (("a", 20), ("b", 10))]
    with clock.lock:
        clock.enter_busy()  # this thread counts as working, so time cannot move yet
    for t in threads:
        t.start()
    while clock.waiting() < 2:
        time.sleep(0.001)
    assert clock.monotonic() == 0
    with clock.lock:
        clock.leave_busy()
    for t in threads:
        t.join(5)
    assert sorted(woke, key=lambda w: w[1]) == [("b", 10), ("a", 20)]


def test_watch_timeout_alone_still_fires(monkeypatch: pytest.MonkeyPatch) -> None:
    """A runner whose only deadline is a watch timeout still times out (after the idle grace)."""
    cluster = FakeCluster()
    waits = real_waits(monkeypatch, cluster.clock)
    cluster.when(name="a").hang()
    cluster.backend.create(pod("a"))
    cluster.advance(5)
    events = list(
        cluster.backend.watch(
            "Pod",
            "default",
            resource_version=cluster.backend.list("Pod", "default").resource_version,
            timeout_seconds=300,
        )
    )
    assert events == []
    assert cluster.clock.monotonic() == 305
    # One idle grace of real time, then the jump: not 300 real seconds.
    assert waits == [cluster.clock.idle_grace]


def test_idle_watcher_does_not_burn_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """An idle background watcher re-watching forever pays an idle grace per round.

    Each round waits one idle grace in real time before its 60 s timeout is allowed to fire,
    so an informer with nothing to see wakes about a hundred times a second instead of
    spinning virtual time forward at full CPU.
    """
    cluster = FakeCluster()
    waits = real_waits(monkeypatch, cluster.clock)
    stop = threading.Event()
    rounds = [0]

    def informer() -> None:
        while not stop.is_set():
            for _ in cluster.backend.watch("Pod", "default", timeout_seconds=60):
                pass
            rounds[0] += 1

    thread = threading.Thread(target=informer, daemon=True)
    thread.start()
    while rounds[0] < 3:
        time.sleep(0.005)
    stop.set()
    thread.join(5)
    assert not thread.is_alive()
    done = rounds[0]
    assert waits.count(cluster.clock.idle_grace) >= done
    assert cluster.clock.monotonic() == pytest.approx(60 * done, abs=60)


def test_idle_watch_without_timeout_blocks_until_change() -> None:
    """A watch with no timeout and nothing pending blocks in real time, then sees the change."""
    cluster = FakeCluster()
    got: list[str] = []

    def watcher() -> None:
        for event in cluster.backend.watch("Pod", "default"):
            got.append(event.object["metadata"]["name"])
            return

    thread = threading.Thread(target=watcher, daemon=True)
    thread.start()
    time.sleep(0.1)
    assert got == []
    assert cluster.clock.monotonic() == 0
    cluster.backend.create(pod("a"))
    thread.join(5)
    assert got == ["a"]


def test_concurrent_creates_are_consistent() -> None:
    """Many threads creating at once never lose or duplicate a version."""
    cluster = FakeCluster()

    def work(i: int) -> None:
        for j in range(50):
            cluster.backend.create({"kind": "ConfigMap", "metadata": {"name": f"c-{i}-{j}"}})

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    items = [
        i
        for i in cluster.backend.list("ConfigMap", "default").items
        if i["metadata"]["name"] != "kube-root-ca.crt"
    ]
    versions = [int(i["metadata"]["resourceVersion"]) for i in items]
    assert len(items) == 400
    assert len(set(versions)) == 400


def test_real_clock_cluster_runs_timers_lazily() -> None:
    """With the real clock, transitions happen in real time when callers look or wait."""
    cluster = FakeCluster(clock="real", start_delay=0.0)
    assert isinstance(cluster.clock, RealTimeClock)
    cluster.when(name="a").succeed(after=0.05)
    created = cluster.backend.create(pod("a"))
    for event in cluster.backend.watch(
        "Pod", "default", resource_version=created["metadata"]["resourceVersion"], timeout_seconds=5
    ):
        if event.object["status"]["phase"] == "Succeeded":
            break
    assert cluster.backend.get("Pod", "default", "a")["status"]["phase"] == "Succeeded"
    with pytest.raises(TypeError):
        cluster.advance(1)


def test_bad_construction() -> None:
    """Unknown runtimes and a virtual clock with the local runtime are refused."""
    with pytest.raises(ValueError, match="runtime"):
        FakeCluster(runtime="docker")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="clock='real'"):
        FakeCluster(runtime="local", clock="virtual")


def test_refresh_credentials_after_401(cluster: FakeCluster) -> None:
    """After an injected 401 a refresh reports new credentials once."""
    assert cluster.backend.refresh_credentials() is False
    cluster.fault(verb="get", status=401, times=1)
    with pytest.raises(Unauthorized):
        cluster.backend.get("Namespace", None, "default")
    assert cluster.backend.refresh_credentials() is True
    assert cluster.backend.refresh_credentials() is False
