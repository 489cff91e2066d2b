"""The Kubernetes backend: the official client (``backend``) and where the cluster is (``config``).

:class:`ClusterConfig` is importable without the ``kubernetes`` client; :class:`KubernetesBackend`
imports the client, so it is loaded on first use of the name.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from podrunner.backends.kubernetes.config import ClusterConfig

if TYPE_CHECKING:
    from podrunner.backends.kubernetes.backend import KubernetesBackend

__all__ = ["ClusterConfig", "KubernetesBackend"]


def __getattr__(name: str) -> Any:
    if name == "KubernetesBackend":
        return importlib.import_module("podrunner.backends.kubernetes.backend").KubernetesBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
