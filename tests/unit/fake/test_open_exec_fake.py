"""The fake's streamed exec: what its contract tests cannot see (the process behind it)."""

from __future__ import annotations

from podrunner.testing import FakeCluster


def test_closing_the_fake_ends_a_streamed_exec_left_open() -> None:
    """A caller that never closed its stream: the backend's close ends the process."""
    cluster = FakeCluster()
    cluster.backend.create(
        {
            "kind": "Pod",
            "metadata": {"name": "w", "annotations": {"sim.podrunner.dev/duration": "600"}},
            "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]},
        }
    )
    cluster.advance(5)
    stream = cluster.backend.open_exec("default", "w", None, ["cat"], stdin=True)
    cluster.backend.close()
    assert stream.process.poll() is not None  # type: ignore[attr-defined]
