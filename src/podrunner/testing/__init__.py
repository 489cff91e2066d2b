"""Testing helpers: the fake cluster, pytest fixtures, local control planes, assertions.

Names load on first use, so ``import podrunner.testing`` (done by the pytest plugin in every
test session of every project that installs podrunner) costs next to nothing. The assertion
helpers are registered for pytest's assertion rewriting whenever pytest is running, so their
failures show the compared values.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from podrunner.backends.fake import FakeCluster
    from podrunner.testing.assertions import (
        assert_no_leftovers,
        assert_pod_created,
        assert_run_state,
        leftovers,
    )
    from podrunner.testing.controlplane.kind import KindCluster
    from podrunner.testing.controlplane.kwok import KwokCluster
    from podrunner.testing.fixtures import SharedCluster

# Registering is only possible before the module is imported, and only meaningful under
# pytest; pytest is never imported here for that (a CLI user of FakeCluster must not pay it).
if "pytest" in sys.modules:  # pragma: no branch - depends on the caller
    sys.modules["pytest"].register_assert_rewrite("podrunner.testing.assertions")

_LAZY = {
    "FakeCluster": "podrunner.backends.fake",
    "KindCluster": "podrunner.testing.controlplane.kind",
    "KwokCluster": "podrunner.testing.controlplane.kwok",
    "SharedCluster": "podrunner.testing.fixtures",
    "assert_no_leftovers": "podrunner.testing.assertions",
    "assert_pod_created": "podrunner.testing.assertions",
    "assert_run_state": "podrunner.testing.assertions",
    "leftovers": "podrunner.testing.assertions",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'podrunner.testing' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "FakeCluster",
    "KindCluster",
    "KwokCluster",
    "SharedCluster",
    "assert_no_leftovers",
    "assert_pod_created",
    "assert_run_state",
    "leftovers",
]
