"""Local Kubernetes control planes for tests: kwok (no Docker) and kind, and their build tool.

- :class:`KwokCluster` (:mod:`~podrunner.testing.controlplane.kwok`): etcd, kube-apiserver,
  kube-controller-manager, kube-scheduler and kwok on 127.0.0.1, from binaries built by
  ``python -m podrunner.testing.controlplane build`` (pinned in ``versions.json``) into
  ``~/.cache/podrunner/controlplane/<versions>/bin``. ``python -m podrunner.testing.controlplane
  bin-dir`` prints that directory. Building needs Go >= 1.26.
- :class:`KindCluster` (:mod:`~podrunner.testing.controlplane.kind`): a kind cluster in Docker.

Both raise :class:`ClusterUnavailable` (a tool is missing: fixtures skip) or
:class:`ClusterStartError` (the cluster did not come up: the message carries the log tails).
The kwok Stages and the objects it needs are package data files in ``stages/``. Names load on
first use, so importing this package starts nothing and reads no file.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from podrunner.testing.controlplane._common import (
    ClusterStartError,
    ClusterUnavailable,
    wait_for_api,
)

if TYPE_CHECKING:
    from podrunner.testing.controlplane.kind import KindCluster
    from podrunner.testing.controlplane.kwok import (
        BUILD_COMMAND,
        VERSIONS,
        KwokCluster,
        default_bin_dir,
    )

__all__ = [
    "BUILD_COMMAND",
    "VERSIONS",
    "ClusterStartError",
    "ClusterUnavailable",
    "KindCluster",
    "KwokCluster",
    "default_bin_dir",
    "wait_for_api",
]

_LAZY = {
    "BUILD_COMMAND": "kwok",
    "VERSIONS": "kwok",
    "KwokCluster": "kwok",
    "default_bin_dir": "kwok",
    "KindCluster": "kind",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
