"""Fixtures of the differential tier: the real API server to compare the fake with.

The tier needs a real server: ``--podrunner-backend=kwok`` (what ``nox -s integration``
passes) or ``kind``/``kubeconfig``. On the fake alone there is nothing to compare, so it skips.
"""

from __future__ import annotations

import pytest

from podrunner.backends.base import Backend


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Backend:
    """The session's real API server (the plugin starts kwok or kind once)."""
    from podrunner.testing.plugin import settings

    if settings(request.config).backend == "fake":
        pytest.skip("the differential tier compares the fake with a real API server")
    backend: Backend = request.getfixturevalue("podrunner_backend")
    return backend
