"""pytest plugin (``pytest11`` entry point ``podrunner``): options, marker, report header, fixtures.

Every project that installs podrunner loads this module in every test session, so loading it
must cost nothing measurable (``benchmarks/bench_plugin.py``): it imports the standard library,
pytest, the ``podrunner`` package (whose names all load on first use) and the fixture module, and
defines no dataclass and no autouse fixture. The fake cluster, the attrs spec classes, the runner,
the ``kubernetes`` client and the control planes load inside the fixtures.

Settings resolve as command line > environment > ini file::

    --podrunner-backend       PODRUNNER_BACKEND        podrunner_backend       (fake)
    --podrunner-kubeconfig    PODRUNNER_KUBECONFIG     podrunner_kubeconfig
    --podrunner-kind-cluster  PODRUNNER_KIND_CLUSTER   podrunner_kind_cluster  (podrunner-test)
    --podrunner-keep-cluster  PODRUNNER_KEEP_CLUSTER   podrunner_keep_cluster  (false)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from podrunner.testing._options import (
    BACKENDS,
    DEFAULT_KIND_CLUSTER,
    MARKER_HELP,
    MarkerOptions,
    Settings,
    marker_options,
    selected_backend,
    settings,
)
from podrunner.testing.aio_fixtures import podrunner_async_backend, podrunner_async_runner
from podrunner.testing.fixtures import (
    CALL_FAILED,
    TRACKED,
    podrunner_backend,
    podrunner_backend_name,
    podrunner_fake,
    podrunner_kind,
    podrunner_kwok,
    podrunner_namespace,
    podrunner_runner,
    podrunner_session_backends,
)

if TYPE_CHECKING:
    from collections.abc import Generator

# pytest only rewrites assertions in modules named by entry points and conftests; the helpers
# are imported by users' tests, so they are registered explicitly before anyone imports them.
pytest.register_assert_rewrite("podrunner.testing.assertions")

__all__ = [
    "BACKENDS",
    "MarkerOptions",
    "Settings",
    "marker_options",
    "podrunner_async_backend",
    "podrunner_async_runner",
    "podrunner_backend",
    "podrunner_backend_name",
    "podrunner_fake",
    "podrunner_kind",
    "podrunner_kwok",
    "podrunner_namespace",
    "podrunner_runner",
    "podrunner_session_backends",
    "selected_backend",
    "settings",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register the ``--podrunner-*`` options and their ini keys."""
    group = parser.getgroup("podrunner", "podrunner: pods on a fake or real cluster")
    group.addoption(
        "--podrunner-backend",
        dest="podrunner_backend",
        choices=BACKENDS,
        default=None,
        help="cluster the podrunner fixtures use: fake (default), kwok (local control plane), "
        "kind, or kubeconfig (an existing cluster). Env PODRUNNER_BACKEND, ini podrunner_backend.",
    )
    group.addoption(
        "--podrunner-kubeconfig",
        dest="podrunner_kubeconfig",
        default=None,
        metavar="PATH",
        help="kubeconfig of --podrunner-backend=kubeconfig (default: $KUBECONFIG or "
        "~/.kube/config). Env PODRUNNER_KUBECONFIG.",
    )
    group.addoption(
        "--podrunner-kind-cluster",
        dest="podrunner_kind_cluster",
        default=None,
        metavar="NAME",
        help=f"kind cluster to reuse or create (default {DEFAULT_KIND_CLUSTER}). "
        "Env PODRUNNER_KIND_CLUSTER.",
    )
    group.addoption(
        "--podrunner-keep-cluster",
        dest="podrunner_keep_cluster",
        action="store_true",
        default=False,
        help="keep the kind cluster this session created (kwok: its work directory). "
        "Env PODRUNNER_KEEP_CLUSTER=1.",
    )
    parser.addini("podrunner_backend", "default podrunner backend (fake)", default="")
    parser.addini("podrunner_kubeconfig", "kubeconfig of the kubeconfig backend", default="")
    parser.addini("podrunner_kind_cluster", "kind cluster name", default="")
    parser.addini("podrunner_keep_cluster", "keep the kind cluster", type="bool", default=False)


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``podrunner`` marker and check the settings early."""
    config.addinivalue_line("markers", MARKER_HELP)
    settings(config)


def pytest_report_header(config: pytest.Config) -> str:
    """Say which backend the podrunner fixtures use, and where that choice came from."""
    chosen = settings(config)
    line = f"podrunner: backend {chosen.backend} (from {chosen.backend_source})"
    if chosen.backend == "kind":
        line += f", kind cluster {chosen.kind_cluster}"
        line += " (kept)" if chosen.keep_cluster else ""
    elif chosen.backend == "kubeconfig":
        line += f", kubeconfig {chosen.kubeconfig or 'default'}"
    return line


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """On a failed test, add the pods its podrunner fixtures saw to the report."""
    report = yield
    if report.failed and report.when in ("setup", "call"):
        item.stash[CALL_FAILED] = True
        tracked = item.stash.get(TRACKED, None)
        if tracked:
            from podrunner.testing.fixtures import describe_pods

            text = describe_pods(tracked)
            if text:
                report.sections.append(("podrunner pods", text))
    return report
