"""The simulated pods of the fake node: the state the scheduler and the kubelet share.

Each pod has a small state record (:class:`PodSim`, one :class:`ContainerSim` per container).
:class:`PodSims` keeps the records, the timers of each pod's transitions (dropped with the
pod) and the writes: a pod's status is rebuilt from its record on every transition, in the
shape a real kubelet writes (conditions with transition times, ``containerStatuses`` with
``waiting``/``running``/``terminated`` states and ``lastState``), and Events are recorded
with the source a real scheduler or kubelet gives them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from podrunner.backends.fake._fastcopy import derive_spec
from podrunner.errors import BadRequest

if TYPE_CHECKING:
    from collections.abc import Callable

    from podrunner.backends.fake.clock import SchedulingClock, Timer
    from podrunner.backends.fake.logs import LogBuffer
    from podrunner.backends.fake.scripting import Outcome
    from podrunner.backends.fake.store import Store

__all__ = ["HOST_IP", "NODE_NAME", "ContainerSim", "PodSim", "PodSims", "container_name"]

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


def container_name(pod: dict[str, Any], container: str | None) -> str:
    """The container a log or exec request means: the one named, or the pod's only one.

    An init container or sidecar is only ever the one named, as with the API server.

    Raises:
        BadRequest: No such container, or none named in a pod with several.
    """
    names = [c.get("name", "") for c in pod["spec"].get("containers") or []]
    inits = [c.get("name", "") for c in pod["spec"].get("initContainers") or []]
    name = pod["metadata"]["name"]
    if container is None:
        if len(names) == 1:
            return str(names[0])
        choose = f"choose one of: [{' '.join(names)}]"
        if inits:
            choose += f" or one of the init containers: [{' '.join(inits)}]"
        raise BadRequest(f"a container name must be specified for pod {name}, {choose}")
    if container not in names and container not in inits:
        raise BadRequest(f"container {container} is not valid for pod {name}")
    return container


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
        "init",
        "last_state",
        "name",
        "outcome",
        "proc",
        "ready",
        "restart_count",
        "sidecar",
        "started",
        "state",
    )

    def __init__(self, spec: dict[str, Any], *, init: bool = False) -> None:
        self.name: str = spec.get("name", "")
        self.init = init  # in spec.initContainers: a plain init container or a sidecar
        self.sidecar = init and spec.get("restartPolicy") == "Always"
        # What an init container does (scripted per container); None: the pod's outcome.
        self.outcome: Outcome | None = None
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
        "inits",
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
        self.inits = [ContainerSim(c, init=True) for c in spec.get("initContainers") or []]
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
        """Return the named container's state (an init container's too)."""
        for c in self.containers:
            if c.name == name:
                return c
        for c in self.inits:
            if c.name == name:
                return c
        return None

    def every(self) -> list[ContainerSim]:
        """Return every container: the init containers and sidecars, then the others."""
        return [*self.inits, *self.containers] if self.inits else self.containers


class PodSims:
    """The simulated pods, their transition timers and their status and Event writes.

    Callers hold the clock's lock for every method.
    """

    def __init__(self, store: Store, clock: SchedulingClock) -> None:
        self.store = store
        self.clock = clock
        self.sims: dict[tuple[str, str], PodSim] = {}

    def track(self, pod: dict[str, Any], outcome: Outcome) -> PodSim:
        """Start simulating a newly created pod that follows ``outcome``."""
        sim = PodSim(pod, outcome)
        self.sims[(sim.namespace, sim.name)] = sim
        return sim

    def get(self, pod: dict[str, Any]) -> PodSim | None:
        """Return the simulation of this exact pod (same uid), if any."""
        meta = pod["metadata"]
        sim = self.sims.get((meta["namespace"], meta["name"]))
        if sim is None or sim.uid != meta.get("uid"):
            return None
        return sim

    def drop(self, namespace: str, name: str, uid: str | None = None) -> PodSim | None:
        """Stop simulating a pod (its timers cancelled, its logs closed); return it."""
        sim = self.sims.get((namespace, name))
        if sim is None or (uid is not None and sim.uid != uid):
            return None
        del self.sims[(namespace, name)]
        self.cancel(sim)
        for c in sim.every():
            for buffer in c.buffers.values():
                buffer.closed = True
        return sim

    # -- timers ---------------------------------------------------------------------------

    def later(self, sim: PodSim, delay: float, fn: Callable[[PodSim], None]) -> None:
        """Run ``fn(sim)`` after ``delay`` seconds, unless the pod is dropped before."""

        def fire() -> None:
            if self.sims.get((sim.namespace, sim.name)) is sim:
                fn(sim)

        timers = sim.timers
        if len(timers) > 16:
            timers[:] = [t for t in timers if not t.cancelled]
        timers.append(self.clock.call_later(delay, fire))

    @staticmethod
    def cancel(sim: PodSim) -> None:
        """Cancel every pending transition of the pod."""
        for timer in sim.timers:
            timer.cancel()
        sim.timers.clear()

    # -- writes ---------------------------------------------------------------------------

    def pod(self, sim: PodSim) -> dict[str, Any] | None:
        """Return the stored pod the simulation belongs to, if it is still there."""
        pod = self.store.objects["Pod"].get((sim.namespace, sim.name))
        if pod is None or pod["metadata"].get("uid") != sim.uid:
            return None
        return pod

    def now(self) -> str:
        """Return the clock's time as a status timestamp."""
        return self.store.timestamp(self.clock.now())

    def cond(
        self,
        sim: PodSim,
        type_: str,
        status: str,
        reason: str | None = None,
        message: str | None = None,
    ) -> None:
        """Set a pod condition; its transition time moves only when its status changes."""
        old = sim.conditions.get(type_)
        if old is not None and old["status"] == status:
            if old.get("reason") == reason and old.get("message") == message:
                return  # unchanged: keep sharing the dict with earlier versions
            stamp = old["lastTransitionTime"]
        else:
            stamp = self.now()
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

    @staticmethod
    def status(sim: PodSim) -> dict[str, Any]:
        """Return the pod's ``status`` as its simulation record says."""
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
            if sim.inits:
                status["initContainerStatuses"] = [c.status() for c in sim.inits]
            status["containerStatuses"] = [c.status() for c in sim.containers]
        status["qosClass"] = sim.qos
        return status

    def write(self, sim: PodSim, *, bind: bool = False) -> dict[str, Any] | None:
        """Store the pod with its current status (``bind``: and ``spec.nodeName`` set).

        Returns:
            The stored version, or ``None`` when the pod is gone.
        """
        old = self.pod(sim)
        if old is None:
            return None
        new = dict(old)
        new["metadata"] = dict(old["metadata"])
        new["status"] = self.status(sim)
        if bind:
            new["spec"] = {**old["spec"], "nodeName": NODE_NAME}
            derive_spec(old["spec"], new["spec"], {"nodeName": NODE_NAME})
        return self.store.write("Pod", sim.namespace, sim.name, new, "MODIFIED", old)

    def event(
        self,
        pod: dict[str, Any],
        reason: str,
        message: str,
        *,
        warning: bool = False,
        container: str | None = None,
        component: str = "kubelet",
    ) -> None:
        """Record an Event about the pod from ``component`` (the kubelet's carry the node)."""
        field = "containers"
        if container is not None and any(
            c.get("name") == container for c in pod["spec"].get("initContainers") or ()
        ):
            field = "initContainers"
        self.store.emit_event(
            pod,
            reason,
            message,
            type_="Warning" if warning else "Normal",
            component=component,
            host=NODE_NAME if component == "kubelet" else None,
            field_path=None if container is None else f"spec.{field}{{{container}}}",
        )
