"""Cluster configuration (moves beside the Kubernetes backend in issue 15)."""

from __future__ import annotations

from podrunner.sdk.cluster import ClusterConfig

__all__ = ["ClusterConfig"]
