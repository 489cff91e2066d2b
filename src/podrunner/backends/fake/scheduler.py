"""The simulated default scheduler: binds new pods to the fake cluster's one node.

Every pod the API server creates comes here. A pod created with ``spec.nodeName`` is already
bound and goes straight to the kubelet, as on a real cluster. Any other pod is bound after the
scheduler's delay: the binding sets ``spec.nodeName`` and the ``PodScheduled`` condition and
records a ``Scheduled`` Event, then the kubelet takes the pod. A pod scripted as unschedulable
stays Pending with ``PodScheduled=False`` (reason ``Unschedulable``) and a
``FailedScheduling`` Event; when the script has a cluster autoscaler answer, its
``TriggeredScaleUp`` (and the new node, which then takes the pod) or ``NotTriggerScaleUp``
Event follows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from podrunner.backends.fake.podsim import NODE_NAME
from podrunner.backends.fake.scripting import Outcome

if TYPE_CHECKING:
    from podrunner.backends.fake.kubelet import Kubelet
    from podrunner.backends.fake.podsim import PodSim, PodSims

__all__ = ["COMPONENT", "Scheduler"]

#: The source of the scheduler's Events, as on a real cluster.
COMPONENT = "default-scheduler"
_NO_NODE = "0/1 nodes are available: 1 Insufficient cpu."
_AUTOSCALER = "cluster-autoscaler"


class Scheduler:
    """Binds pods to ``fake-node-1`` and hands them to the kubelet.

    Args:
        pods: The simulated pods, shared with the kubelet.
        kubelet: The node's kubelet, which runs bound pods.
        delay: Seconds from a pod's creation to its binding (0: at once). A busy or absent
            scheduler leaves pods Pending with no condition at all.
    """

    def __init__(self, pods: PodSims, kubelet: Kubelet, *, delay: float = 0.0) -> None:
        self.pods = pods
        self.kubelet = kubelet
        self.delay = delay

    def admit(self, pod: dict[str, Any]) -> None:
        """Take a newly created pod (lock held): bind it later, or pass a bound one on."""
        sim = self.kubelet.track(pod)
        if pod["spec"].get("nodeName"):
            self.pods.later(sim, 0.0, self.kubelet.start)
        else:
            self.pods.later(sim, self.delay, self._schedule)

    def _schedule(self, sim: PodSim) -> None:
        pods = self.pods
        if sim.outcome.kind == "unschedulable":
            message = sim.outcome.message or _NO_NODE
            pods.cond(sim, "PodScheduled", "False", "Unschedulable", message)
            pod = pods.write(sim)
            if pod is not None:
                pods.event(pod, "FailedScheduling", message, warning=True, component=COMPONENT)
                self._autoscale(sim, pod)
            return
        pods.cond(sim, "PodScheduled", "True")
        pod = pods.write(sim, bind=True)
        if pod is None:
            return
        assigned = f"Successfully assigned {sim.namespace}/{sim.name} to {NODE_NAME}"
        pods.event(pod, "Scheduled", assigned, component=COMPONENT)
        self.pods.later(sim, 0.0, self.kubelet.start)

    def _autoscale(self, sim: PodSim, pod: dict[str, Any]) -> None:
        """A scripted cluster autoscaler's answer to a refused pod, and its node."""
        after = sim.outcome.scale_up_after
        if after is None:
            return
        if after < 0:
            text = "pod didn't trigger scale-up: 1 max node group size reached"
            self.pods.event(pod, "NotTriggerScaleUp", text, component=_AUTOSCALER)
            return
        text = "pod triggered scale-up: [{fake-pool 1->2 (max: 3)}]"
        self.pods.event(pod, "TriggeredScaleUp", text, component=_AUTOSCALER)
        logs = sim.outcome.logs
        sim.outcome = Outcome("exit", 0, "Completed", logs=logs)
        self.pods.later(sim, after, self._schedule)
