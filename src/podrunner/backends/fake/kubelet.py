"""The simulated kubelet: bound pods move through the statuses a real node reports.

The scheduler hands each bound pod to :meth:`Kubelet.start`. Each transition is a timer on the
cluster's clock (no thread per pod): sandbox and image pull, container start, exit, restart
with back-off, eviction, deadline, and the kill that graceful deletion triggers. The pod's
state record and its status writes are in :mod:`~podrunner.backends.fake.podsim`.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any, Protocol

from podrunner._jsoncopy import copy_tree
from podrunner.backends.fake.logs import LogBuffer
from podrunner.backends.fake.scripting import (
    DEFAULT_OUTCOME,
    ContainerContext,
    Outcome,
    Rule,
    outcome_from_annotations,
)

if TYPE_CHECKING:
    from podrunner.backends.base import ExecResult, ExecStream
    from podrunner.backends.fake.execstream import Busy
    from podrunner.backends.fake.podsim import ContainerSim, PodSim, PodSims

__all__ = ["Kubelet", "Runtime"]

_BACKOFF_BASE = 10.0
_BACKOFF_CAP = 300.0
_EVICTION_MESSAGE = (
    "The node was low on resource: memory. Threshold quantity: 100Mi, available: 50Mi. "
)
_DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline"
_SIDECAR_OUTCOME = Outcome("hang")  # an unscripted sidecar serves until it is stopped


class Runtime(Protocol):
    """How containers actually run (the scripted runtime is built into the kubelet)."""

    def start(self, kubelet: Kubelet, sim: PodSim, container: ContainerSim) -> None:
        """Start the container's process; report its output and exit to the kubelet."""

    def stop(self, sim: PodSim, container: ContainerSim, grace: float) -> None:
        """Send SIGTERM, then SIGKILL after ``grace`` seconds."""

    def cleanup(self, sim: PodSim) -> None:
        """Kill whatever is left and remove temporary files."""

    def exec(
        self,
        sim: PodSim,
        container: ContainerSim,
        argv: list[str],
        *,
        stdin: bytes | None,
        timeout: float | None,
    ) -> ExecResult:
        """Run ``argv`` next to the container's process."""

    def open_exec(
        self, sim: PodSim, container: ContainerSim, argv: list[str], *, stdin: bool, busy: Busy
    ) -> ExecStream:
        """Start ``argv`` next to the container's process and stream its pipes."""


class Kubelet:
    """The kubelet of the fake cluster's single node, ``fake-node-1``.

    Args:
        pods: The simulated pods, shared with the scheduler.
        rules: The cluster's scripting rules, newest last.
        start_delay: Seconds from binding to running containers (image pull and start).
        runtime: Runs the containers' commands; ``None``: the scripted outcomes.
    """

    def __init__(
        self,
        pods: PodSims,
        rules: list[Rule],
        *,
        start_delay: float,
        runtime: Runtime | None,
    ) -> None:
        self.pods = pods
        self.store = pods.store
        self.clock = pods.clock
        self.rules = rules
        self.start_delay = start_delay
        self.runtime = runtime
        self._ip = 0
        self._image_ids: dict[str, str] = {}

    # -- entry points (lock held) ---------------------------------------------------------

    def track(self, pod: dict[str, Any]) -> PodSim:
        """Start simulating a newly created pod; its scripted outcomes are decided now."""
        sim = self.pods.track(pod, self._outcome(pod))
        for c, spec in zip(sim.inits, pod["spec"].get("initContainers") or (), strict=True):
            c.outcome = self._init_outcome(pod, spec, sidecar=c.sidecar)
        # A second container (run(collect=...)'s collector) serves until the pod is deleted,
        # unless a rule names it by image or command: the pod's outcome is the main one's.
        extra = zip(sim.containers[1:], pod["spec"]["containers"][1:], strict=True)
        for c, spec in extra:
            c.outcome = self._init_outcome(pod, spec, sidecar=True)
        return sim

    def start(self, sim: PodSim) -> None:
        """Take a pod bound to the node: set up its sandbox and pull its images."""
        pods = self.pods
        sim.host = True
        sim.start_time = pods.now()
        self._ip += 1
        sim.pod_ip = f"10.244.{(self._ip // 254) % 256}.{self._ip % 254 + 1}"
        sim.pod_ips = [{"ip": sim.pod_ip}]
        pods.cond(sim, "PodReadyToStartContainers", "False")
        if sim.inits:
            self._initializing(sim)
        else:
            pods.cond(sim, "Initialized", "True")
        self._unready(sim)
        if "PodScheduled" not in sim.conditions:
            pods.cond(sim, "PodScheduled", "True")
        pod = pods.write(sim)
        if pod is None:
            return
        for c in sim.inits[:1] or sim.containers:
            pods.event(pod, "Pulling", f'Pulling image "{c.image}"', container=c.name)
        if sim.inits:
            pods.later(sim, self.start_delay, self._next_init)
        elif sim.outcome.kind == "image_pull" and self.runtime is None:
            pods.later(sim, self.start_delay, self._pull_failed)
        else:
            pods.later(sim, self.start_delay, self._start_all)
        deadline = pod["spec"].get("activeDeadlineSeconds")
        if isinstance(deadline, int) and not isinstance(deadline, bool):
            pods.later(sim, float(deadline), self._deadline)

    def on_delete(self, sim: PodSim, grace: float) -> None:
        """React to a graceful deletion: stop the containers, then remove the pod."""
        pods = self.pods
        if sim.deleting:
            # A second delete may shorten the grace period, never lengthen it.
            pods.later(sim, grace, lambda s: self._kill_all(s, 137))
            return
        sim.deleting = True
        running = [c for c in sim.every() if c.running()]
        if sim.done or not running:
            pods.cancel(sim)
            pods.later(sim, 0.0, self._finalize)
            return
        pod = pods.pod(sim)
        for c in running:
            if pod is not None:
                pods.event(pod, "Killing", f"Stopping container {c.name}", container=c.name)
        if self.runtime is not None:
            for c in running:
                self.runtime.stop(sim, c, grace)
        elif sim.outcome.ignore_sigterm:
            pods.later(sim, grace, lambda s: self._kill_all(s, 137))
        else:
            pods.later(sim, 0.0, lambda s: self._kill_all(s, 143))
        # The API server removes the object once the grace period is over, whatever happens.
        pods.later(sim, grace, self._finalize)

    def forget(self, namespace: str, name: str, uid: str | None = None) -> None:
        """Stop simulating a pod that left the store."""
        sim = self.pods.drop(namespace, name, uid)
        if sim is None:
            return
        if self.runtime is not None:
            self.runtime.cleanup(sim)
        self.clock.notify()

    def container_exited(
        self, sim: PodSim, c: ContainerSim, code: int, reason: str | None = None
    ) -> None:
        """Record a container's exit (the local runtime calls this under the lock)."""
        if reason is None:
            reason = "Completed" if code == 0 else "Error"
        self._exit(sim, c, code, reason)

    def close(self) -> None:
        """Stop every local process (the local runtime); the pods' state stays."""
        if self.runtime is not None:
            for sim in list(self.pods.sims.values()):
                self.runtime.cleanup(sim)

    def write_log(self, c: ContainerSim, data: bytes, container_id: str | None = None) -> None:
        """Append output to a container instance's log and wake followers."""
        buffer = c.buffers.get(container_id or c.container_id)
        if buffer is None or buffer.closed:
            return
        buffer.write(int(self.clock.now() * 1e9), data)
        self.clock.notify()

    # -- helpers --------------------------------------------------------------------------

    def _outcome(self, pod: dict[str, Any]) -> Outcome:
        outcome = outcome_from_annotations(pod["metadata"].get("annotations"))
        if outcome is not None:
            return outcome
        for rule in reversed(self.rules):
            if rule.outcome is None or rule.times == 0:
                continue
            if rule.matches(pod):
                if rule.times is not None:
                    rule.times -= 1
                return rule.outcome
        return DEFAULT_OUTCOME

    def _init_outcome(self, pod: dict[str, Any], spec: dict[str, Any], *, sidecar: bool) -> Outcome:
        for rule in reversed(self.rules):
            if rule.outcome is None or rule.times == 0:
                continue
            if rule.matches_init(pod, spec):
                if rule.times is not None:
                    rule.times -= 1
                return rule.outcome
        return _SIDECAR_OUTCOME if sidecar else DEFAULT_OUTCOME

    def _image_id(self, image: str) -> str:
        image_id = self._image_ids.get(image)
        if image_id is None:
            digest = hashlib.sha256(image.encode()).hexdigest()
            image_id = self._image_ids[image] = f"{image.split(':')[0]}@sha256:{digest}"
        return image_id

    def _unready(self, sim: PodSim) -> None:
        names = " ".join(c.name for c in sim.containers if not c.ready)
        message = f"containers with unready status: [{names}]"
        self.pods.cond(sim, "Ready", "False", "ContainersNotReady", message)
        self.pods.cond(sim, "ContainersReady", "False", "ContainersNotReady", message)

    # -- transitions ----------------------------------------------------------------------

    def _pull_failed(self, sim: PodSim) -> None:
        self.pods.cond(sim, "PodReadyToStartContainers", "True")
        for c in sim.containers:
            detail = sim.outcome.message or (
                f'rpc error: code = NotFound desc = failed to pull and unpack image "{c.image}": '
                "not found"
            )
            c.state = {"waiting": {"reason": "ErrImagePull", "message": detail}}
        pod = self.pods.write(sim)
        if pod is None:
            return
        for c in sim.containers:
            message = c.state["waiting"]["message"]
            self.pods.event(
                pod,
                "Failed",
                f'Failed to pull image "{c.image}": {message}',
                warning=True,
                container=c.name,
            )
            self.pods.event(pod, "Failed", "Error: ErrImagePull", warning=True, container=c.name)
        if (sim.outcome.reason or "ImagePullBackOff") != "ErrImagePull":
            self.pods.later(sim, 1.0, self._pull_backoff)

    def _pull_backoff(self, sim: PodSim) -> None:
        reason = sim.outcome.reason or "ImagePullBackOff"
        for c in sim.containers:
            c.state = {
                "waiting": {"reason": reason, "message": f'Back-off pulling image "{c.image}"'}
            }
        pod = self.pods.write(sim)
        if pod is None:
            return
        for c in sim.containers:
            self.pods.event(pod, "BackOff", f'Back-off pulling image "{c.image}"', container=c.name)
            self.pods.event(pod, "Failed", f"Error: {reason}", warning=True, container=c.name)

    def _start_all(self, sim: PodSim) -> None:
        self.pods.cond(sim, "PodReadyToStartContainers", "True")
        for c in sim.containers:
            self._start_container(sim, c)
        self._refresh(sim)

    def _refresh(self, sim: PodSim) -> None:
        """Recompute phase and readiness from the containers, then write the status."""
        if not sim.done:
            if sim.containers and all(c.terminated() for c in sim.containers):
                failed = any(c.state["terminated"]["exitCode"] != 0 for c in sim.containers)
                sim.phase = "Failed" if failed else "Succeeded"
                sim.done = True
                self._stop_sidecars(sim)
                reason = "PodFailed" if failed else "PodCompleted"
                for c in sim.containers:
                    c.ready = False
                self.pods.cond(sim, "PodReadyToStartContainers", "False")
                self.pods.cond(sim, "Ready", "False", reason)
                self.pods.cond(sim, "ContainersReady", "False", reason)
                self.pods.cancel(sim)
            else:
                if any(c.started or c.terminated() for c in sim.containers) or any(
                    c.last_state for c in sim.containers
                ):
                    sim.phase = "Running"
                if sim.containers and all(c.ready for c in sim.containers):
                    self.pods.cond(sim, "Ready", "True")
                    self.pods.cond(sim, "ContainersReady", "True")
                else:
                    self._unready(sim)
        self.pods.write(sim)
        if sim.deleting and (sim.done or not any(c.running() for c in sim.every())):
            self.pods.later(sim, 0.0, self._finalize)

    def _start_container(self, sim: PodSim, c: ContainerSim) -> None:
        pod = self.pods.pod(sim)
        if pod is None:
            return
        c.attempt += 1
        first = c.attempt == 0
        c.container_id = (
            "containerd://" + hashlib.sha256(f"{sim.uid}/{c.name}/{c.attempt}".encode()).hexdigest()
        )
        if not c.image_id:
            c.image_id = self._image_id(c.image)
        buffer = LogBuffer()
        c.buffers[c.container_id] = buffer
        c.state = {"running": {"startedAt": self.pods.now()}}
        c.started = True
        c.ready = not c.init or c.sidecar  # a plain init container is ready once completed
        if first:
            pulled = f'Successfully pulled image "{c.image}" in 1s (1s including waiting)'
        else:
            pulled = f'Container image "{c.image}" already present on machine'
        self.pods.event(pod, "Pulled", pulled, container=c.name)
        self.pods.event(pod, "Created", f"Created container: {c.name}", container=c.name)
        self.pods.event(pod, "Started", f"Started container {c.name}", container=c.name)
        if self.runtime is not None:
            self.runtime.start(self, sim, c)
            return
        outcome = c.outcome or sim.outcome
        kind = outcome.kind
        code = outcome.exit_code
        reason = outcome.reason or ("Completed" if code == 0 else "Error")
        logs = outcome.logs
        after = outcome.after
        if kind == "run" and outcome.fn is not None:
            code, logs, after = self._call_run(sim, c, pod, outcome)
            reason = "Completed" if code == 0 else "Error"
        elif kind == "exit" and outcome.fail_times is not None and c.attempt >= outcome.fail_times:
            code, reason = 0, "Completed"
        self._schedule_logs(sim, c, logs)
        if kind in ("exit", "run"):
            self.pods.later(sim, after, lambda s: self._exit(s, c, code, reason, c.container_id))
        elif kind == "evict":
            self.pods.later(sim, after, self._evict)

    def _call_run(
        self, sim: PodSim, c: ContainerSim, pod: dict[str, Any], outcome: Outcome
    ) -> tuple[int, str, float]:
        assert outcome.fn is not None
        ctx = ContainerContext(
            pod=copy_tree(pod),
            container=c.name,
            attempt=c.attempt,
            argv=list(c.argv),
            env=dict(c.env),
            now=self.clock.now(),
        )
        try:
            result: object = outcome.fn(ctx)
        except Exception as exc:  # the script's failure is the container's failure
            return 1, f"{type(exc).__name__}: {exc}\n", 0.0
        if result is None:
            return 0, "", 0.0
        if isinstance(result, bool):
            return int(result), "", 0.0
        if isinstance(result, int):
            return result, "", 0.0
        if isinstance(result, str):
            return 0, result, 0.0
        if isinstance(result, tuple):
            after = float(result[2]) if len(result) == 3 else 0.0
            return int(result[0]), str(result[1]), after
        return 1, f"run callable returned {result!r}\n", 0.0

    def _schedule_logs(self, sim: PodSim, c: ContainerSim, logs: Any) -> None:
        if not logs:
            return
        container_id = c.container_id
        if isinstance(logs, str):
            self.write_log(c, logs.encode(), container_id)
            return
        for offset, text in logs:
            data = str(text).encode()
            if offset <= 0:
                self.write_log(c, data, container_id)
            else:
                self.pods.later(
                    sim,
                    float(offset),
                    lambda s, d=data: self.write_log(c, d, container_id),  # type: ignore[misc]
                )

    def _exit(
        self,
        sim: PodSim,
        c: ContainerSim,
        code: int,
        reason: str,
        container_id: str | None = None,
        message: str | None = None,
    ) -> None:
        if not c.running() or (container_id is not None and container_id != c.container_id):
            return
        buffer = c.buffers.get(c.container_id)
        if buffer is not None:
            buffer.closed = True
        term: dict[str, Any] = {
            "exitCode": code,
            "reason": reason,
            "startedAt": c.state["running"]["startedAt"],
            "finishedAt": self.pods.now(),
            "containerID": c.container_id,
        }
        if message:
            term["message"] = message
        c.state = {"terminated": term}
        c.ready = False
        c.started = False
        if self._restarts(sim, c, code):
            c.restart_count += 1
            backoff = min(_BACKOFF_BASE * 2 ** (c.restart_count - 1), _BACKOFF_CAP)
            c.last_state = {"terminated": term}
            c.state = {
                "waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": (
                        f"back-off {int(backoff)}s restarting failed container={c.name} "
                        f"pod={sim.name}_{sim.namespace}({sim.uid})"
                    ),
                }
            }
            pod = self.pods.pod(sim)
            if pod is not None:
                self.pods.event(
                    pod,
                    "BackOff",
                    f"Back-off restarting failed container {c.name} in pod "
                    f"{sim.name}_{sim.namespace}({sim.uid})",
                    warning=True,
                    container=c.name,
                )
            self.pods.later(sim, backoff, lambda s: self._restart(s, c))
        elif c.init and not c.sidecar and not sim.done and not sim.deleting:
            if code != 0:
                self._init_failed(sim, c)
                return
            c.ready = True  # as the kubelet reports a completed init container
            self._next_init(sim)
            return
        self._refresh(sim)

    @staticmethod
    def _restarts(sim: PodSim, c: ContainerSim, code: int) -> bool:
        """Whether the kubelet restarts a container that exited with ``code``."""
        policy = sim.restart_policy
        if c.sidecar:
            policy = "Always"
        elif c.init and policy == "Always":
            policy = "OnFailure"  # a completed init container is never run again
        return (
            not sim.deleting
            and not sim.done
            and (policy == "Always" or (policy == "OnFailure" and code != 0))
        )

    def _restart(self, sim: PodSim, c: ContainerSim) -> None:
        if sim.done or sim.deleting:
            return
        self._start_container(sim, c)
        self._refresh(sim)

    def _kill_all(self, sim: PodSim, code: int) -> None:
        changed = False
        for c in sim.every():
            if c.running():
                self._exit_quiet(sim, c, code, "Error")
                changed = True
        if changed or sim.deleting:
            self._refresh(sim)

    def _exit_quiet(self, sim: PodSim, c: ContainerSim, code: int, reason: str) -> None:
        buffer = c.buffers.get(c.container_id)
        if buffer is not None:
            buffer.closed = True
        c.state = {
            "terminated": {
                "exitCode": code,
                "reason": reason,
                "startedAt": c.state["running"]["startedAt"],
                "finishedAt": self.pods.now(),
                "containerID": c.container_id,
            }
        }
        c.ready = False
        c.started = False
        if self.runtime is not None:
            self.runtime.stop(sim, c, 0.0)

    def _terminal(self, sim: PodSim, reason: str, message: str, code: int) -> None:
        pod = self.pods.pod(sim)
        if pod is None:
            return
        for c in sim.every():
            if c.running():
                self.pods.event(pod, "Killing", f"Stopping container {c.name}", container=c.name)
                self._exit_quiet(sim, c, code, "Error")
        sim.phase = "Failed"
        sim.reason = reason
        sim.message = message
        sim.done = True
        for c in sim.containers:
            c.ready = False
        self.pods.cond(sim, "PodReadyToStartContainers", "False")
        self.pods.cond(sim, "Ready", "False", "PodFailed")
        self.pods.cond(sim, "ContainersReady", "False", "PodFailed")
        self.pods.cancel(sim)
        self.pods.write(sim)
        if sim.deleting:
            self.pods.later(sim, 0.0, self._finalize)

    # -- init containers and sidecars -----------------------------------------------------

    def _initializing(self, sim: PodSim) -> None:
        """Initialized=False while plain init containers are left; the others wait meanwhile."""
        left = [c.name for c in sim.inits if not c.sidecar and not _completed(c)]
        if not left and all(c.started for c in sim.inits if c.sidecar):
            self.pods.cond(sim, "Initialized", "True")
            return
        message = f"containers with incomplete status: [{' '.join(left)}]"
        self.pods.cond(sim, "Initialized", "False", "ContainersNotInitialized", message)
        for c in sim.every():
            if c.attempt < 0:
                c.state = {"waiting": {"reason": "PodInitializing"}}

    def _next_init(self, sim: PodSim) -> None:
        """Start the next init container in order (each sidecar without waiting for it)."""
        if sim.done or sim.deleting:
            return
        self.pods.cond(sim, "PodReadyToStartContainers", "True")
        for index, c in enumerate(sim.inits):
            if c.sidecar and c.attempt >= 0:
                continue  # started; the kubelet restarts it if it exits
            if not c.sidecar and _completed(c):
                continue
            if c.attempt >= 0:
                break  # running, or waiting for its restart after a failure

            if index > 0:
                self._pulling(sim, c)
            if c.outcome is not None and c.outcome.kind == "image_pull" and self.runtime is None:
                self._init_pull_failed(sim, c)
                return
            self._start_container(sim, c)
            if not c.sidecar:
                break
        else:
            self._initializing(sim)
            self._start_main(sim)
            return
        self._initializing(sim)
        self._refresh(sim)

    def _start_main(self, sim: PodSim) -> None:
        for c in sim.containers:
            self._pulling(sim, c)
            c.state = {"waiting": {"reason": "ContainerCreating"}}
        if sim.outcome.kind == "image_pull" and self.runtime is None:
            self._pull_failed(sim)
        else:
            self._start_all(sim)

    def _pulling(self, sim: PodSim, c: ContainerSim) -> None:
        pod = self.pods.pod(sim)
        if pod is not None:
            self.pods.event(pod, "Pulling", f'Pulling image "{c.image}"', container=c.name)

    def _init_pull_failed(self, sim: PodSim, c: ContainerSim) -> None:
        assert c.outcome is not None
        detail = c.outcome.message or (
            f'rpc error: code = NotFound desc = failed to pull and unpack image "{c.image}": '
            "not found"
        )
        c.state = {"waiting": {"reason": "ErrImagePull", "message": detail}}
        pod = self.pods.write(sim)
        if pod is not None:
            message = f'Failed to pull image "{c.image}": {detail}'
            self.pods.event(pod, "Failed", message, warning=True, container=c.name)
            self.pods.event(pod, "Failed", "Error: ErrImagePull", warning=True, container=c.name)

    def _init_failed(self, sim: PodSim, c: ContainerSim) -> None:
        """A plain init container failed under restartPolicy Never: the pod fails with it."""
        sim.phase = "Failed"
        sim.done = True
        self._stop_sidecars(sim)
        self._initializing(sim)
        self.pods.cond(sim, "PodReadyToStartContainers", "False")
        self.pods.cond(sim, "Ready", "False", "PodFailed")
        self.pods.cond(sim, "ContainersReady", "False", "PodFailed")
        self.pods.cancel(sim)
        self.pods.write(sim)
        if sim.deleting:
            self.pods.later(sim, 0.0, self._finalize)

    def _stop_sidecars(self, sim: PodSim) -> None:
        """Stop the running sidecars, last first, once the pod's main containers are done."""
        pod = self.pods.pod(sim)
        for c in reversed(sim.inits):
            if c.sidecar and c.running():
                if pod is not None:
                    self.pods.event(
                        pod, "Killing", f"Stopping container {c.name}", container=c.name
                    )
                outcome = c.outcome or _SIDECAR_OUTCOME
                self._exit_quiet(sim, c, 137 if outcome.ignore_sigterm else 143, "Error")

    def _evict(self, sim: PodSim) -> None:
        if sim.done:
            return
        names = ", ".join(c.name for c in sim.containers)
        message = sim.outcome.message or (
            _EVICTION_MESSAGE + f"Container {names} was using 200Mi, request is 0, has larger "
            "consumption of memory."
        )
        pod = self.pods.pod(sim)
        if pod is None:
            return
        self.pods.event(pod, "Evicted", message, warning=True)
        self.pods.cond(
            sim,
            "DisruptionTarget",
            "True",
            "TerminationByKubelet",
            "The node was low on resource: memory.",
        )
        self._terminal(sim, "Evicted", message, 137)

    def _deadline(self, sim: PodSim) -> None:
        if sim.done:
            return
        pod = self.pods.pod(sim)
        if pod is None:
            return
        self.pods.event(pod, "DeadlineExceeded", _DEADLINE_MESSAGE, warning=True)
        self._terminal(sim, "DeadlineExceeded", _DEADLINE_MESSAGE, 137)

    def _finalize(self, sim: PodSim) -> None:
        pod = self.pods.pod(sim)
        if pod is not None and not pod["metadata"].get("finalizers"):
            # With finalizers left the object stays, deleting, until the last is removed.
            self.store.remove("Pod", sim.namespace, sim.name)
        self.forget(sim.namespace, sim.name, sim.uid)


def _completed(c: ContainerSim) -> bool:
    return bool(c.state.get("terminated", {}).get("exitCode") == 0)
