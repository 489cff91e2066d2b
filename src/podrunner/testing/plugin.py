"""pytest plugin (``pytest11`` entry point ``podrunner``): options, markers, report header.

Loading it costs almost nothing: nothing heavy is imported and nothing runs until a
``podrunner_*`` fixture is requested.
"""

from __future__ import annotations

import os

import pytest

BACKENDS = ("fake", "kwok", "kind", "kubeconfig")


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register the ``--podrunner-*`` options and their ini keys."""
    group = parser.getgroup("podrunner", "podrunner: pods on a fake or real cluster")
    group.addoption(
        "--podrunner-backend",
        choices=BACKENDS,
        default=None,
        help="cluster the podrunner fixtures use (default: fake; env PODRUNNER_BACKEND)",
    )
    group.addoption(
        "--podrunner-kubeconfig",
        default=None,
        help="kubeconfig for --podrunner-backend=kubeconfig (env PODRUNNER_KUBECONFIG)",
    )
    parser.addini("podrunner_backend", "default podrunner backend", default="fake")
    parser.addini("podrunner_kubeconfig", "default kubeconfig for the kubeconfig backend", default="")


def selected_backend(config: pytest.Config) -> str:
    """The backend chosen by CLI option, then environment, then ini (CLI wins)."""
    value = config.getoption("--podrunner-backend") or os.environ.get("PODRUNNER_BACKEND")
    return str(value or config.getini("podrunner_backend") or "fake")


def pytest_report_header(config: pytest.Config) -> str:
    """Say which backend the podrunner fixtures use."""
    return f"podrunner backend: {selected_backend(config)}"
