"""Helpers the Claude unit tests share (imported by name: this directory is on sys.path)."""

from __future__ import annotations

from typing import Any

from podrunner import AsyncPodRunner
from podrunner.claude import AsyncClaudeRunner, ClaudeRunner
from podrunner.manifest import MANAGED_SELECTOR
from podrunner.testing import FakeCluster

IMAGE = "example.com/claude-code:2.0.0"


def leftovers(cluster: FakeCluster) -> list[str]:
    """Every object podrunner made that is still in the store: ``Kind/name``."""
    out: list[str] = []
    for kind in ("Pod", "Secret", "ConfigMap"):
        listed = cluster.backend.list(kind, None, label_selector=MANAGED_SELECTOR)
        out += [f"{kind}/{o['metadata']['name']}" for o in listed.items]
    return out


def standin_runner(pod_runner: Any, standin: str, home: str, **options: Any) -> Any:
    """A ClaudeRunner (an AsyncClaudeRunner for an AsyncPodRunner) running the stand-in."""
    kind = AsyncClaudeRunner if isinstance(pod_runner, AsyncPodRunner) else ClaudeRunner
    options = {"launcher_environ": {}, "timeout": 60, **options}
    return kind(pod_runner, image=IMAGE, claude_path=standin, home=home, **options)
