"""The simulated scheduler and kubelet: pods move through the statuses a real node reports.

Each transition is a timer on the cluster's clock (no thread per pod): scheduling, sandbox and
image pull, container start, exit, restart with back-off, eviction, deadline, and the kill
that graceful deletion triggers. Statuses are rebuilt from a small per-pod state record on
every transition, in the shape a real kubelet writes (conditions with transition times,
``containerStatuses`` with ``waiting``/``running``/``terminated`` states and ``lastState``).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any, Protocol

from podrunner.backends.fake._json import copy_tree, format_rfc3339
from podrunner.backends.fake.logs import LogBuffer
from podrunner.backends.fake.scripting import (
    DEFAULT_OUTCOME,
    ContainerContext,
    Outcome,
    Rule,
    outcome_from_annotations,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from podrunner.backends.fake.clock import SchedulingClock, Timer
    from podrunner.backends.fake.store import Store

__all__ = ["HOST_IP", "NODE_NAME", "ContainerSim", "Kubelet", "PodSim", "Runtime"]

NODE_NAME = "fake-node-1"
HOST_IP = "127.0.0.1"
_HOST_IPS = [{"ip": HOST_IP}]
_COND_ORDER = (
    "DisruptionTarget",
    "PodReadyToStartContainers",
    "Initialized",
    "Ready",
    "ContainersReady",
    "PodScheduled",
)
_BACKOFF_BASE = 10.0
_BACKOFF_CAP = 300.0
_EVICTION_MESSAGE = (
    "The node was low on resource: memory. Threshold quantity: 100Mi, available: 50Mi. "
)
_DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline"


class Runtime(Protocol):
    """How containers actually run (the scripted runtime is built into the kubelet)."""

    def start(self, kubelet: Kubelet, sim: PodSim, container: ContainerSim) -> None:
        """Start the container's process; report its output and exit to the kubelet."""

    def stop(self, sim: PodSim, container: ContainerSim, grace: float) -> None:
        """Send SIGTERM, then SIGKILL after ``grace`` seconds."""

    def cleanup(self, sim: PodSim) -> None:
        """Kill whatever is left and remove temporary files."""


class ContainerSim:
    """Simulation state of one container."""

    __slots__ = (
        "argv",
        "attempt",
        "buffers",
        "container_id",
        "env",
        "image",
        "image_id",
        "last_state",
        "name",
        "proc",
        "ready",
        "restart_count",
        "started",
        "state",
    )

    def __init__(self, spec: dict[str, Any]) -> None:
        self.name: str = spec.get("name", "")
        self.image: str = spec.get("image", "")
        self.argv: list[str] = list(spec.get("command") or []) + list(spec.get("args") or [])
        self.env: dict[str, str] = {
            e["name"]: e["value"]
            for e in spec.get("env") or []
            if isinstance(e, dict) and isinstance(e.get("value"), str)
        }
        self.state: dict[str, Any] = {"waiting": {"reason": "ContainerCreating"}}
        self.last_state: dict[str, Any] = {}
        self.restart_count = 0
        self.ready = False
        self.started = False
        self.container_id = ""
        self.image_id = ""
        self.attempt = -1
        self.buffers: dict[str, LogBuffer] = {}
        self.proc: Any = None

    def running(self) -> bool:
        """Return whether the container is running."""
        return "running" in self.state

    def terminated(self) -> bool:
        """Return whether the container's current state is terminated."""
        return "terminated" in self.state

    def current_buffer(self) -> LogBuffer | None:
        """Return the log of the instance ``kubectl logs`` shows (running or last exited)."""
        if "running" in self.state:
            return self.buffers.get(self.container_id)
        state = self.state.get("terminated")
        if state is None:
            state = self.last_state.get("terminated")
        if state is None:
            return None
        return self.buffers.get(state.get("containerID", ""))

    def previous_buffer(self) -> LogBuffer | None:
        """Return the log of the instance in ``lastState.terminated``, if any."""
        last = self.last_state.get("terminated")
        return None if last is None else self.buffers.get(last.get("containerID", ""))

    def status(self) -> dict[str, Any]:
        """Return this container's entry of ``status.containerStatuses``."""
        out: dict[str, Any] = {
            "name": self.name,
            "state": self.state,
            "lastState": self.last_state,
            "ready": self.ready,
            "restartCount": self.restart_count,
            "image": self.image,
            "imageID": self.image_id,
            "started": self.started,
        }
        if self.container_id:
            out["containerID"] = self.container_id
        return out


class PodSim:
    """Simulation state of one pod."""

    __slots__ = (
        "cond_list",
        "conditions",
        "containers",
        "deleting",
        "done",
        "host",
        "message",
        "name",
        "namespace",
        "outcome",
        "phase",
        "pod_ip",
        "pod_ips",
        "qos",
        "reason",
        "restart_policy",
        "start_time",
        "tempdir",
        "timers",
        "uid",
    )

    def __init__(self, pod: dict[str, Any], outcome: Outcome) -> None:
        meta = pod["metadata"]
        spec = pod["spec"]
        self.namespace: str = meta["namespace"]
        self.name: str = meta["name"]
        self.uid: str = meta["uid"]
        self.outcome = outcome
        self.containers = [ContainerSim(c) for c in spec.get("containers") or []]
        self.restart_policy: str = spec.get("restartPolicy", "Always")
        self.phase = "Pending"
        self.reason: str | None = None
        self.message: str | None = None
        self.conditions: dict[str, dict[str, Any]] = {}
        # status.conditions as last written; versions share it until a condition changes.
        self.cond_list: list[dict[str, Any]] | None = None
        self.start_time: str | None = None
        self.pod_ip: str | None = None
        self.pod_ips: list[dict[str, str]] = []
        self.host = False
        self.qos: str = pod.get("status", {}).get("qosClass", "BestEffort")
        self.timers: list[Timer] = []
        self.deleting = False
        self.done = False
        self.tempdir: str | None = None

    def container(self, name: str) -> ContainerSim | None:
        """Return the named container's state."""
        for c in self.containers:
            if c.name == name:
                return c
        return None


class Kubelet:
    """Scheduler and kubelet of the fake cluster's single node, ``fake-node-1``."""

    def __init__(
        self,
        store: Store,
        clock: SchedulingClock,
        rules: list[Rule],
        *,
        start_delay: float,
        schedule_delay: float = 0.0,
        runtime: Runtime | None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.rules = rules
        self.start_delay = start_delay
        self.schedule_delay = schedule_delay
        self.runtime = runtime
        self.sims: dict[tuple[str, str], PodSim] = {}
        self._ip = 0
        self._image_ids: dict[str, str] = {}

    # -- entry points (lock held) ---------------------------------------------------------

    def admit(self, pod: dict[str, Any]) -> None:
        """Start simulating a newly created pod."""
        outcome = self._outcome(pod)
        sim = PodSim(pod, outcome)
        self.sims[(sim.namespace, sim.name)] = sim
        if pod["spec"].get("nodeName"):
            self._later(sim, 0.0, self._kubelet_start)
        else:
            self._later(sim, self.schedule_delay, self._schedule)

    def sim_for(self, pod: dict[str, Any]) -> PodSim | None:
        """Return the simulation of this exact pod (same uid), if any."""
        meta = pod["metadata"]
        sim = self.sims.get((meta["namespace"], meta["name"]))
        if sim is None or sim.uid != meta.get("uid"):
            return None
        return sim

    def on_delete(self, sim: PodSim, grace: float) -> None:
        """React to a graceful deletion: stop the containers, then remove the pod."""
        if sim.deleting:
            # A second delete may shorten the grace period, never lengthen it.
            self._later(sim, grace, lambda s: self._kill_all(s, 137))
            return
        sim.deleting = True
        running = [c for c in sim.containers if c.running()]
        if sim.done or not running:
            self._cancel(sim)
            self._later(sim, 0.0, self._finalize)
            return
        pod = self._pod(sim)
        for c in running:
            if pod is not None:
                self._event(pod, "Killing", f"Stopping container {c.name}", container=c.name)
        if self.runtime is not None:
            for c in running:
                self.runtime.stop(sim, c, grace)
        elif sim.outcome.ignore_sigterm:
            self._later(sim, grace, lambda s: self._kill_all(s, 137))
        else:
            self._later(sim, 0.0, lambda s: self._kill_all(s, 143))
        # The API server removes the object once the grace period is over, whatever happens.
        self._later(sim, grace, self._finalize)

    def forget(self, namespace: str, name: str, uid: str | None = None) -> None:
        """Stop simulating a pod that left the store."""
        sim = self.sims.get((namespace, name))
        if sim is None or (uid is not None and sim.uid != uid):
            return
        del self.sims[(namespace, name)]
        self._cancel(sim)
        for c in sim.containers:
            for buffer in c.buffers.values():
                buffer.closed = True
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

    def _later(self, sim: PodSim, delay: float, fn: Callable[[PodSim], None]) -> None:
        def fire() -> None:
            if self.sims.get((sim.namespace, sim.name)) is sim:
                fn(sim)

        timers = sim.timers
        if len(timers) > 16:
            timers[:] = [t for t in timers if not t.cancelled]
        timers.append(self.clock.call_later(delay, fire))

    @staticmethod
    def _cancel(sim: PodSim) -> None:
        for timer in sim.timers:
            timer.cancel()
        sim.timers.clear()

    def _pod(self, sim: PodSim) -> dict[str, Any] | None:
        pod = self.store.objects["Pod"].get((sim.namespace, sim.name))
        if pod is None or pod["metadata"].get("uid") != sim.uid:
            return None
        return pod

    def _image_id(self, image: str) -> str:
        image_id = self._image_ids.get(image)
        if image_id is None:
            digest = hashlib.sha256(image.encode()).hexdigest()
            image_id = self._image_ids[image] = f"{image.split(':')[0]}@sha256:{digest}"
        return image_id

    def _now(self) -> str:
        return format_rfc3339(self.clock.now())

    def _cond(
        self,
        sim: PodSim,
        type_: str,
        status: str,
        reason: str | None = None,
        message: str | None = None,
    ) -> None:
        old = sim.conditions.get(type_)
        if old is not None and old["status"] == status:
            if old.get("reason") == reason and old.get("message") == message:
                return  # unchanged: keep sharing the dict with earlier versions
            stamp = old["lastTransitionTime"]
        else:
            stamp = self._now()
        cond: dict[str, Any] = {
            "type": type_,
            "status": status,
            "lastProbeTime": None,
            "lastTransitionTime": stamp,
        }
        if reason:
            cond["reason"] = reason
        if message:
            cond["message"] = message
        sim.conditions[type_] = cond
        sim.cond_list = None

    def _status(self, sim: PodSim) -> dict[str, Any]:
        status: dict[str, Any] = {"phase": sim.phase}
        conds = sim.conditions
        if conds:
            cond_list = sim.cond_list
            if cond_list is None:
                cond_list = sim.cond_list = [conds[t] for t in _COND_ORDER if t in conds]
            status["conditions"] = cond_list
        if sim.reason:
            status["reason"] = sim.reason
        if sim.message:
            status["message"] = sim.message
        if sim.host:
            status["hostIP"] = HOST_IP
            status["hostIPs"] = _HOST_IPS  # shared: stored objects are never mutated
            if sim.pod_ip:
                status["podIP"] = sim.pod_ip
                status["podIPs"] = sim.pod_ips
            status["startTime"] = sim.start_time
            status["containerStatuses"] = [c.status() for c in sim.containers]
        status["qosClass"] = sim.qos
        return status

    def _write(self, sim: PodSim, *, bind: bool = False) -> dict[str, Any] | None:
        old = self._pod(sim)
        if old is None:
            return None
        new = dict(old)
        new["metadata"] = dict(old["metadata"])
        new["status"] = self._status(sim)
        if bind:
            new["spec"] = {**old["spec"], "nodeName": NODE_NAME}
        return self.store.write("Pod", sim.namespace, sim.name, new, "MODIFIED", old)

    def _event(
        self,
        pod: dict[str, Any],
        reason: str,
        message: str,
        *,
        warning: bool = False,
        container: str | None = None,
        component: str = "kubelet",
    ) -> None:
        self.store.emit_event(
            pod,
            reason,
            message,
            type_="Warning" if warning else "Normal",
            component=component,
            host=NODE_NAME if component == "kubelet" else None,
            field_path=None if container is None else f"spec.containers{{{container}}}",
        )

    def _unready(self, sim: PodSim) -> None:
        names = " ".join(c.name for c in sim.containers if not c.ready)
        message = f"containers with unready status: [{names}]"
        self._cond(sim, "Ready", "False", "ContainersNotReady", message)
        self._cond(sim, "ContainersReady", "False", "ContainersNotReady", message)

    # -- transitions ----------------------------------------------------------------------

    def _schedule(self, sim: PodSim) -> None:
        if sim.outcome.kind == "unschedulable":
            message = sim.outcome.message or "0/1 nodes are available: 1 Insufficient cpu."
            self._cond(sim, "PodScheduled", "False", "Unschedulable", message)
            pod = self._write(sim)
            if pod is not None:
                self._event(
                    pod, "FailedScheduling", message, warning=True, component="default-scheduler"
                )
            return
        self._cond(sim, "PodScheduled", "True")
        pod = self._write(sim, bind=True)
        if pod is None:
            return
        self._event(
            pod,
            "Scheduled",
            f"Successfully assigned {sim.namespace}/{sim.name} to {NODE_NAME}",
            component="default-scheduler",
        )
        self._later(sim, 0.0, self._kubelet_start)

    def _kubelet_start(self, sim: PodSim) -> None:
        sim.host = True
        sim.start_time = self._now()
        self._ip += 1
        sim.pod_ip = f"10.244.{(self._ip // 254) % 256}.{self._ip % 254 + 1}"
        sim.pod_ips = [{"ip": sim.pod_ip}]
        self._cond(sim, "PodReadyToStartContainers", "False")
        self._cond(sim, "Initialized", "True")
        self._unready(sim)
        if "PodScheduled" not in sim.conditions:
            self._cond(sim, "PodScheduled", "True")
        pod = self._write(sim)
        if pod is None:
            return
        for c in sim.containers:
            self._event(pod, "Pulling", f'Pulling image "{c.image}"', container=c.name)
        if sim.outcome.kind == "image_pull" and self.runtime is None:
            self._later(sim, self.start_delay, self._pull_failed)
        else:
            self._later(sim, self.start_delay, self._start_all)
        deadline = pod["spec"].get("activeDeadlineSeconds")
        if isinstance(deadline, int) and not isinstance(deadline, bool):
            self._later(sim, float(deadline), self._deadline)

    def _pull_failed(self, sim: PodSim) -> None:
        self._cond(sim, "PodReadyToStartContainers", "True")
        for c in sim.containers:
            detail = sim.outcome.message or (
                f'rpc error: code = NotFound desc = failed to pull and unpack image "{c.image}": '
                "not found"
            )
            c.state = {"waiting": {"reason": "ErrImagePull", "message": detail}}
        pod = self._write(sim)
        if pod is None:
            return
        for c in sim.containers:
            message = c.state["waiting"]["message"]
            self._event(
                pod,
                "Failed",
                f'Failed to pull image "{c.image}": {message}',
                warning=True,
                container=c.name,
            )
            self._event(pod, "Failed", "Error: ErrImagePull", warning=True, container=c.name)
        if (sim.outcome.reason or "ImagePullBackOff") != "ErrImagePull":
            self._later(sim, 1.0, self._pull_backoff)

    def _pull_backoff(self, sim: PodSim) -> None:
        reason = sim.outcome.reason or "ImagePullBackOff"
        for c in sim.containers:
            c.state = {
                "waiting": {"reason": reason, "message": f'Back-off pulling image "{c.image}"'}
            }
        pod = self._write(sim)
        if pod is None:
            return
        for c in sim.containers:
            self._event(pod, "BackOff", f'Back-off pulling image "{c.image}"', container=c.name)
            self._event(pod, "Failed", f"Error: {reason}", warning=True, container=c.name)

    def _start_all(self, sim: PodSim) -> None:
        self._cond(sim, "PodReadyToStartContainers", "True")
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
                reason = "PodFailed" if failed else "PodCompleted"
                for c in sim.containers:
                    c.ready = False
                self._cond(sim, "PodReadyToStartContainers", "False")
                self._cond(sim, "Ready", "False", reason)
                self._cond(sim, "ContainersReady", "False", reason)
                self._cancel(sim)
            else:
                if any(c.started or c.terminated() for c in sim.containers) or any(
                    c.last_state for c in sim.containers
                ):
                    sim.phase = "Running"
                if sim.containers and all(c.ready for c in sim.containers):
                    self._cond(sim, "Ready", "True")
                    self._cond(sim, "ContainersReady", "True")
                else:
                    self._unready(sim)
        self._write(sim)
        if sim.deleting and (sim.done or not any(c.running() for c in sim.containers)):
            self._later(sim, 0.0, self._finalize)

    def _start_container(self, sim: PodSim, c: ContainerSim) -> None:
        pod = self._pod(sim)
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
        c.state = {"running": {"startedAt": self._now()}}
        c.started = True
        c.ready = True
        if first:
            pulled = f'Successfully pulled image "{c.image}" in 1s (1s including waiting)'
        else:
            pulled = f'Container image "{c.image}" already present on machine'
        self._event(pod, "Pulled", pulled, container=c.name)
        self._event(pod, "Created", f"Created container: {c.name}", container=c.name)
        self._event(pod, "Started", f"Started container {c.name}", container=c.name)
        if self.runtime is not None:
            self.runtime.start(self, sim, c)
            return
        outcome = sim.outcome
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
            self._later(sim, after, lambda s: self._exit(s, c, code, reason, c.container_id))
        elif kind == "evict":
            self._later(sim, after, self._evict)

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
                self._later(
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
            "finishedAt": self._now(),
            "containerID": c.container_id,
        }
        if message:
            term["message"] = message
        c.state = {"terminated": term}
        c.ready = False
        c.started = False
        policy = sim.restart_policy
        restart = (
            not sim.deleting
            and not sim.done
            and (policy == "Always" or (policy == "OnFailure" and code != 0))
        )
        if restart:
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
            pod = self._pod(sim)
            if pod is not None:
                self._event(
                    pod,
                    "BackOff",
                    f"Back-off restarting failed container {c.name} in pod "
                    f"{sim.name}_{sim.namespace}({sim.uid})",
                    warning=True,
                    container=c.name,
                )
            self._later(sim, backoff, lambda s: self._restart(s, c))
        self._refresh(sim)

    def _restart(self, sim: PodSim, c: ContainerSim) -> None:
        if sim.done or sim.deleting:
            return
        self._start_container(sim, c)
        self._refresh(sim)

    def _kill_all(self, sim: PodSim, code: int) -> None:
        changed = False
        for c in sim.containers:
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
                "finishedAt": self._now(),
                "containerID": c.container_id,
            }
        }
        c.ready = False
        c.started = False
        if self.runtime is not None:
            self.runtime.stop(sim, c, 0.0)

    def _terminal(self, sim: PodSim, reason: str, message: str, code: int) -> None:
        pod = self._pod(sim)
        if pod is None:
            return
        for c in sim.containers:
            if c.running():
                self._event(pod, "Killing", f"Stopping container {c.name}", container=c.name)
                self._exit_quiet(sim, c, code, "Error")
        sim.phase = "Failed"
        sim.reason = reason
        sim.message = message
        sim.done = True
        for c in sim.containers:
            c.ready = False
        self._cond(sim, "PodReadyToStartContainers", "False")
        self._cond(sim, "Ready", "False", "PodFailed")
        self._cond(sim, "ContainersReady", "False", "PodFailed")
        self._cancel(sim)
        self._write(sim)
        if sim.deleting:
            self._later(sim, 0.0, self._finalize)

    def _evict(self, sim: PodSim) -> None:
        if sim.done:
            return
        names = ", ".join(c.name for c in sim.containers)
        message = sim.outcome.message or (
            _EVICTION_MESSAGE + f"Container {names} was using 200Mi, request is 0, has larger "
            "consumption of memory."
        )
        pod = self._pod(sim)
        if pod is None:
            return
        self._event(pod, "Evicted", message, warning=True)
        self._cond(
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
        pod = self._pod(sim)
        if pod is None:
            return
        self._event(pod, "DeadlineExceeded", _DEADLINE_MESSAGE, warning=True)
        self._terminal(sim, "DeadlineExceeded", _DEADLINE_MESSAGE, 137)

    def _finalize(self, sim: PodSim) -> None:
        pod = self._pod(sim)
        if pod is not None and not pod["metadata"].get("finalizers"):
            # With finalizers left the object stays, deleting, until the last is removed.
            self.store.remove("Pod", sim.namespace, sim.name)
        self.forget(sim.namespace, sim.name, sim.uid)
