"""What the pytest fixtures add between a test and its backend: log recording and simulation.

Loaded on first use of a ``podrunner_*`` fixture (never by the plugin at import).

- :class:`LogRecorder` keeps, per pod, the output the test's runs read, so the failure report can
  show the log tail of a pod that cleanup already deleted (the default).
- :class:`SimulatingBackend` is the backend of ``podrunner_runner`` on real clusters: it adds the
  simulation annotations (``sim.podrunner.dev/...``) that the test's fake-cluster scripting
  rules describe to the pods it creates, so ``podrunner_fake.when(...).succeed(logs=...)``
  means the same on kwok as on the fake. A rule kwok cannot express skips the test.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pytest

from podrunner._jsoncopy import copy_tree
from podrunner.backends._stream import closable_from_any_thread
from podrunner.backends.fake.scripting import Outcome, Rule
from podrunner.run.logs import LogCollector
from podrunner.simulation import (
    ANNOTATION_DURATION,
    ANNOTATION_EXIT_CODE,
    ANNOTATION_FAILURE,
    ANNOTATION_LOGS,
)
from podrunner.simulation import PREFIX as SIM_PREFIX

if TYPE_CHECKING:
    from podrunner.backends.base import (
        Backend,
        Clock,
        ExecResult,
        ExecStream,
        Kind,
        ObjectList,
        WatchEvent,
    )
    from podrunner.backends.fake import FakeCluster

__all__ = ["Inexpressible", "LogRecorder", "SimulatingBackend", "simulation_annotations"]

# Enough for a 20-line tail of long lines; older output is dropped as it arrives.
_RECORD_BYTES = 64 * 1024
# kwok has no "run until killed" for a restartPolicy=Never pod: a year is as long.
_HANG_SECONDS = 365 * 24 * 3600
_UNSCHEDULABLE_DEFAULT = "0/1 nodes are available: 1 Insufficient cpu."


class LogRecorder:
    """The output read from each pod's log, kept after the pod is deleted.

    Only timestamped reads of the whole log or of its continuation (what a runner does) are
    recorded; their timestamps let reconnects be de-duplicated as the runner does.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._logs: dict[tuple[str, str], LogCollector] = {}

    def text(self, namespace: str, pod: str) -> str | None:
        """What was read from the pod's log (its newest part), or ``None`` if nothing was."""
        with self._lock:
            collector = self._logs.get((namespace, pod))
            return None if collector is None else collector.text

    def wrap(
        self,
        stream: Iterator[bytes],
        namespace: str,
        pod: str,
        *,
        timestamps: bool,
        since: str | None,
        partial: bool,
        follow: bool,
    ) -> Iterator[bytes]:
        """Return ``stream`` teed into the pod's record (or ``stream`` itself if not recorded)."""
        if not timestamps or partial:
            return stream
        with self._lock:
            collector = self._logs.get((namespace, pod))
            if collector is None or since is None:
                # A read from the start replaces what an earlier read kept.
                collector = self._logs[(namespace, pod)] = LogCollector(max_bytes=_RECORD_BYTES)
        return _Tee(stream, collector, self._lock, follow=follow)


class _Tee:
    """An iterator, not a generator: ``close()`` may come from another thread mid-read."""

    def __init__(
        self,
        inner: Iterator[bytes],
        collector: LogCollector,
        lock: threading.Lock,
        *,
        follow: bool,
    ) -> None:
        self._inner = inner
        self._collector = collector
        self._lock = lock
        self._follow = follow
        self._done = False
        with lock:
            collector.begin_stream()

    def __iter__(self) -> _Tee:
        return self

    @property
    def closable_from_any_thread(self) -> bool:
        """As the stream it wraps: the runner closes a follower's stream from another thread."""
        return closable_from_any_thread(self._inner)

    def __next__(self) -> bytes:
        try:
            chunk = next(self._inner)
        except StopIteration:
            self._finish(complete=not self._follow)
            raise
        with self._lock:
            if not self._done:
                self._collector.feed(chunk)
        return chunk

    def _finish(self, *, complete: bool) -> None:
        with self._lock:
            if not self._done:
                self._done = True
                self._collector.end_stream(complete=complete)

    def close(self) -> None:
        close = getattr(self._inner, "close", None)
        if close is not None:
            close()
        self._finish(complete=False)


class _WatchTee:
    """Pass watch events through, noting each pod's latest state (closable from any thread)."""

    def __init__(self, inner: Iterator[WatchEvent], saw: Any) -> None:
        self._inner = inner
        self._saw = saw

    def __iter__(self) -> _WatchTee:
        return self

    @property
    def closable_from_any_thread(self) -> bool:
        """As the stream it wraps."""
        return closable_from_any_thread(self._inner)

    def __next__(self) -> WatchEvent:
        event = next(self._inner)
        if event.type in ("ADDED", "MODIFIED", "DELETED"):
            self._saw(event.object)
        return event

    def close(self) -> None:
        close = getattr(self._inner, "close", None)
        if close is not None:
            close()


def record_fake_logs(cluster: FakeCluster, recorder: LogRecorder) -> None:
    """Tee the fake backend's ``read_log`` into ``recorder`` (the test holds that backend)."""
    backend = cluster.backend
    read_log = backend.read_log

    def recording_read_log(
        namespace: str, pod: str, container: str | None = None, **kwargs: Any
    ) -> Iterator[bytes]:
        return recorder.wrap(
            read_log(namespace, pod, container, **kwargs),
            namespace,
            pod,
            timestamps=bool(kwargs.get("timestamps")),
            since=kwargs.get("since_time"),
            partial=_partial(kwargs),
            follow=bool(kwargs.get("follow")),
        )

    # The instance attribute shadows the method: same call, same recorded action, plus a copy.
    vars(backend)["read_log"] = recording_read_log


def _partial(kwargs: Mapping[str, Any]) -> bool:
    return any(
        kwargs.get(key) not in (None, False)
        for key in ("tail_lines", "limit_bytes", "since_seconds", "previous")
    )


# -- fake scripting rules as simulation annotations ---------------------------------------------


class Inexpressible(Exception):
    """A scripting rule that the simulation annotations cannot express (the message says why)."""


def _seconds(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")


def _logs_text(outcome: Outcome) -> str:
    if isinstance(outcome.logs, str):
        return outcome.logs
    # Timed pieces: the whole text is written at start (the final output is the same).
    return "".join(text for _, text in outcome.logs)


def _exit_annotations(outcome: Outcome) -> dict[str, str]:
    if outcome.fail_times is not None:
        raise Inexpressible("crash_loop(restarts=N) succeeds after N failures")
    if outcome.reason == "OOMKilled" and outcome.exit_code == 137:
        annotations = {ANNOTATION_FAILURE: "OOMKilled"}
    elif outcome.reason in (None, "Completed" if outcome.exit_code == 0 else "Error"):
        annotations = {ANNOTATION_EXIT_CODE: str(outcome.exit_code)}
    else:
        raise Inexpressible(
            f"terminated reason {outcome.reason!r} with exit code {outcome.exit_code} "
            "(kwok reports Completed for 0, Error otherwise, or OOMKilled)"
        )
    annotations[ANNOTATION_DURATION] = _seconds(outcome.after)
    return annotations


def _evict_annotations(outcome: Outcome) -> dict[str, str]:
    if outcome.message is not None:
        raise Inexpressible("evict(message=...): kwok uses its own eviction message")
    return {ANNOTATION_FAILURE: "Evicted", ANNOTATION_DURATION: _seconds(outcome.after)}


def _image_pull_annotations(outcome: Outcome) -> dict[str, str]:
    if outcome.reason != "ImagePullBackOff" or outcome.message is not None:
        raise Inexpressible(
            "image_pull_error(reason=..., message=...): kwok reports ErrImagePull, then "
            "ImagePullBackOff with its own message"
        )
    return {ANNOTATION_FAILURE: "ImagePullBackOff"}


def _unschedulable_annotations(outcome: Outcome) -> dict[str, str]:
    if outcome.message not in (None, _UNSCHEDULABLE_DEFAULT):
        raise Inexpressible("unschedulable(message=...): the real scheduler writes it")
    return {ANNOTATION_FAILURE: "Unschedulable"}


def _hang_annotations(outcome: Outcome) -> dict[str, str]:
    if outcome.ignore_sigterm:
        raise Inexpressible("hang(ignore_sigterm=True): kwok deletes pods at once")
    return {ANNOTATION_DURATION: str(_HANG_SECONDS)}


def _run_annotations(outcome: Outcome) -> dict[str, str]:
    raise Inexpressible("a .run(fn) rule calls Python for each container")


_ANNOTATIONS_FOR: dict[str, Callable[[Outcome], dict[str, str]]] = {
    "run": _run_annotations,
    "exit": _exit_annotations,
    "evict": _evict_annotations,
    "image_pull": _image_pull_annotations,
    "unschedulable": _unschedulable_annotations,
    "hang": _hang_annotations,
}


def simulation_annotations(outcome: Outcome) -> dict[str, str]:
    """The ``sim.podrunner.dev/*`` annotations that make kwok do what ``outcome`` describes.

    Raises:
        Inexpressible: kwok cannot do it (a Python callback, a custom reason or message...).
    """
    build = _ANNOTATIONS_FOR.get(outcome.kind)
    if build is None:  # pragma: no cover - a new outcome kind must be added here
        raise Inexpressible(f"outcome {outcome.kind!r}")
    annotations = build(outcome)
    logs = _logs_text(outcome)
    if logs and outcome.kind not in ("image_pull", "unschedulable"):
        annotations[ANNOTATION_LOGS] = logs
    return annotations


def _rules(cluster: FakeCluster) -> list[Rule]:
    # FakeCluster keeps its rules private; this module is the fake's sibling in the package.
    rules: list[Rule] = cluster._rules
    return rules


def annotate(pod: Mapping[str, Any], cluster: FakeCluster) -> dict[str, Any]:
    """Return ``pod`` with the annotations of the newest matching rule of ``cluster``.

    A pod that already carries simulation annotations keeps them (the fake does the same).

    Raises:
        Inexpressible: the matching rule cannot be expressed.
    """
    meta = pod.get("metadata") or {}
    annotations = dict(meta.get("annotations") or {})
    if any(key.startswith(SIM_PREFIX) for key in annotations):
        return dict(pod)
    rules = _rules(cluster)
    for rule in reversed(rules):
        if rule.exec_handlers and rule.matches(pod):
            raise Inexpressible("an exec_handler answers exec calls with Python")
    for rule in reversed(rules):
        if rule.outcome is None or rule.times == 0 or not rule.matches(pod):
            continue
        annotations.update(simulation_annotations(rule.outcome))
        if rule.times is not None:
            rule.times -= 1
        out = copy_tree(dict(pod))
        out.setdefault("metadata", {})["annotations"] = annotations
        return out
    return dict(pod)


class SimulatingBackend:
    """A real backend whose created pods follow a fake cluster's scripting rules.

    Every call goes to ``inner``; ``create`` of a Pod adds the annotations first (or skips the
    test when the rule is inexpressible), and log reads are teed into the recorder.
    """

    def __init__(
        self, inner: Backend, recorder: LogRecorder, fake: FakeCluster | None = None
    ) -> None:
        self.inner = inner
        self.recorder = recorder
        self.fake = fake
        self.seen: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        """Each pod created through this backend: (as created, as last seen), by name."""
        self._lock = threading.Lock()

    def _saw(self, pod: Mapping[str, Any], *, created: bool = False) -> None:
        name = (pod.get("metadata") or {}).get("name")
        with self._lock:
            if created and name:
                self.seen[name] = (copy_tree(dict(pod)), copy_tree(dict(pod)))
            elif name in self.seen:
                self.seen[name] = (self.seen[name][0], copy_tree(dict(pod)))

    def __getattr__(self, name: str) -> Any:
        # Backend-specific extras (the kubernetes backend's api_client...).
        return getattr(self.inner, name)

    @property
    def clock(self) -> Clock:
        return self.inner.clock

    def create(self, manifest: Mapping[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        __tracebackhide__ = True
        if manifest.get("kind") == "Pod" and self.fake is not None:
            try:
                manifest = annotate(manifest, self.fake)
            except Inexpressible as exc:
                pytest.skip(f"podrunner: kwok and real clusters cannot follow this rule: {exc}")
        created = self.inner.create(manifest, dry_run=dry_run)
        if manifest.get("kind") == "Pod" and not dry_run:
            self._saw(created, created=True)
        return created

    def get(self, kind: Kind, namespace: str | None, name: str) -> dict[str, Any]:
        obj = self.inner.get(kind, namespace, name)
        if kind == "Pod":
            self._saw(obj)
        return obj

    def list(
        self,
        kind: Kind,
        namespace: str | None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> ObjectList:
        return self.inner.list(
            kind, namespace, label_selector=label_selector, field_selector=field_selector
        )

    def replace(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        return self.inner.replace(manifest)

    def patch(
        self,
        kind: Kind,
        namespace: str | None,
        name: str,
        patch: Mapping[str, Any],
        *,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        return self.inner.patch(kind, namespace, name, patch, subresource=subresource)

    def delete(
        self,
        kind: Kind,
        namespace: str | None,
        name: str,
        *,
        grace_period_seconds: int | None = None,
    ) -> None:
        self.inner.delete(kind, namespace, name, grace_period_seconds=grace_period_seconds)

    def watch(
        self,
        kind: Kind,
        namespace: str | None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resource_version: str | None = None,
        timeout_seconds: float | None = None,
        allow_bookmarks: bool = False,
    ) -> Iterator[WatchEvent]:
        stream = self.inner.watch(
            kind,
            namespace,
            label_selector=label_selector,
            field_selector=field_selector,
            resource_version=resource_version,
            timeout_seconds=timeout_seconds,
            allow_bookmarks=allow_bookmarks,
        )
        return _WatchTee(stream, self._saw) if kind == "Pod" else stream

    def read_log(
        self,
        namespace: str,
        pod: str,
        container: str | None = None,
        *,
        follow: bool = False,
        timestamps: bool = False,
        since_time: str | None = None,
        since_seconds: int | None = None,
        tail_lines: int | None = None,
        limit_bytes: int | None = None,
        previous: bool = False,
    ) -> Iterator[bytes]:
        stream = self.inner.read_log(
            namespace,
            pod,
            container,
            follow=follow,
            timestamps=timestamps,
            since_time=since_time,
            since_seconds=since_seconds,
            tail_lines=tail_lines,
            limit_bytes=limit_bytes,
            previous=previous,
        )
        partial = _partial(
            {
                "tail_lines": tail_lines,
                "limit_bytes": limit_bytes,
                "since_seconds": since_seconds,
                "previous": previous,
            }
        )
        return self.recorder.wrap(
            stream,
            namespace,
            pod,
            timestamps=timestamps,
            since=since_time,
            partial=partial,
            follow=follow,
        )

    def exec(
        self,
        namespace: str,
        pod: str,
        container: str | None,
        argv: Sequence[str],
        *,
        stdin: bytes | None = None,
        timeout: float | None = None,
    ) -> ExecResult:
        return self.inner.exec(namespace, pod, container, argv, stdin=stdin, timeout=timeout)

    def open_exec(
        self,
        namespace: str,
        pod: str,
        container: str | None,
        argv: Sequence[str],
        *,
        stdin: bool = False,
    ) -> ExecStream:
        return self.inner.open_exec(namespace, pod, container, argv, stdin=stdin)

    def refresh_credentials(self) -> bool:
        return self.inner.refresh_credentials()

    def close(self) -> None:
        """Do nothing: the inner backend is the session's, closed at its end."""
