"""Tests that `import podrunner` stays light and its public API is complete."""

from __future__ import annotations

import json
import subprocess
import sys

import podrunner
import podrunner.errors


def test_import_does_not_load_heavy_modules() -> None:
    """A fresh interpreter importing podrunner loads neither kubernetes, click, rich nor yaml."""
    code = (
        "import json, sys, podrunner\n"
        "print(json.dumps([m for m in ('kubernetes', 'click', 'rich', 'yaml') "
        "if m in sys.modules]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out) == []


def test_all_is_sorted_and_resolvable() -> None:
    """__all__ is sorted and every name in it exists."""
    assert podrunner.__all__ == sorted(podrunner.__all__)
    for name in podrunner.__all__:
        assert hasattr(podrunner, name), name


def test_public_names_exported() -> None:
    """The spec, manifest and error names of the design are importable from podrunner."""
    expected = {
        "PodSpec",
        "Resources",
        "Volume",
        "EnvVar",
        "SecretRef",
        "ImagePullPolicy",
        "SecurityProfile",
        "CleanupPolicy",
        "Deadlines",
        "ClusterConfig",
        "generate_pod_name",
        "build_pod_manifest",
        "build_manifests",
        "build_credentials_prefix",
        "Manifests",
        *podrunner.errors.__all__,
    }
    assert expected <= set(podrunner.__all__)
