from __future__ import annotations

import pytest

from podrunner.backends.fake import FakeCluster


@pytest.fixture
def cluster() -> FakeCluster:
    return FakeCluster(seed=1)
