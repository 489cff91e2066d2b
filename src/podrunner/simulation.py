"""The simulation annotations: how a pod asks a simulated cluster to behave.

The fake cluster (:mod:`podrunner.backends.fake`) and the kwok control plane's Stages
(:mod:`podrunner.testing.controlplane`) both read these annotations, so a test written for one
runs on the other. A real kubelet ignores them.

- :data:`ANNOTATION_EXIT_CODE`: the container's exit code (default 0);
- :data:`ANNOTATION_DURATION`: seconds the container runs (default 1);
- :data:`ANNOTATION_LOGS`: text written to the container's log when it starts;
- :data:`ANNOTATION_FAILURE`: ``ImagePullBackOff``, ``Unschedulable``, ``OOMKilled`` or
  ``Evicted``.
"""

from __future__ import annotations

__all__ = [
    "ANNOTATION_DURATION",
    "ANNOTATION_EXIT_CODE",
    "ANNOTATION_FAILURE",
    "ANNOTATION_LOGS",
    "PREFIX",
]

#: Every simulation annotation starts with this.
PREFIX = "sim.podrunner.dev/"
ANNOTATION_EXIT_CODE = PREFIX + "exit-code"
ANNOTATION_DURATION = PREFIX + "duration"
ANNOTATION_LOGS = PREFIX + "logs"
ANNOTATION_FAILURE = PREFIX + "failure"
