"""Testing helpers: the fake cluster, pytest fixtures, local control planes, assertions."""

from __future__ import annotations

from podrunner.backends.fake import FakeCluster

__all__ = ["FakeCluster"]
