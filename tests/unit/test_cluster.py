"""Tests for podrunner.backends.kubernetes.ClusterConfig."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING

import pytest

from podrunner.backends.kubernetes import ClusterConfig
from podrunner.errors import ConfigError

if TYPE_CHECKING:
    from pathlib import Path

KUBECONFIG = textwrap.dedent(
    """\
    apiVersion: v1
    kind: Config
    current-context: dev
    clusters:
    - name: dev-cluster
      cluster:
        server: https://127.0.0.1:6443
        insecure-skip-tls-verify: true
    - name: prod-cluster
      cluster:
        server: https://10.0.0.1:6443
        insecure-skip-tls-verify: true
    users:
    - name: dev-user
      user:
        token: dev-token-value
    contexts:
    - name: dev
      context: {cluster: dev-cluster, user: dev-user, namespace: agents}
    - name: prod
      context: {cluster: prod-cluster, user: dev-user}
    """
)


def write(tmp_path: Path, text: str = KUBECONFIG, name: str = "config") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_from_kubeconfig_file(tmp_path: Path) -> None:
    """A valid file gives its current context and namespace."""
    cfg = ClusterConfig.from_kubeconfig_file(write(tmp_path))
    assert cfg.source == "kubeconfig-file"
    assert cfg.context == "dev"
    assert cfg.namespace == "agents"
    assert ClusterConfig.from_kubeconfig_file(write(tmp_path), "prod").namespace == "default"


def test_credentials_not_in_repr(tmp_path: Path) -> None:
    """The parsed kubeconfig (tokens included) stays out of repr."""
    cfg = ClusterConfig.from_kubeconfig_file(write(tmp_path))
    assert "dev-token-value" not in repr(cfg)


def test_missing_file_names_path(tmp_path: Path) -> None:
    """Seed: a missing file is a clear error naming the path."""
    missing = tmp_path / "nope"
    with pytest.raises(ConfigError, match="nope: no such file"):
        ClusterConfig.from_kubeconfig_file(missing)


def test_unreadable_yaml(tmp_path: Path) -> None:
    """Invalid YAML, or YAML that is not a mapping, is a ConfigError naming the source."""
    with pytest.raises(ConfigError, match="not readable as YAML"):
        ClusterConfig.from_kubeconfig_file(write(tmp_path, "a: [unclosed"))
    with pytest.raises(ConfigError, match="inline kubeconfig"):
        ClusterConfig.from_kubeconfig_yaml("- just a list")


def test_no_current_context() -> None:
    """A kubeconfig without current-context (and none asked for) fails clearly."""
    text = KUBECONFIG.replace("current-context: dev\n", "")
    with pytest.raises(ConfigError, match="no current context"):
        ClusterConfig.from_kubeconfig_yaml(text)
    assert ClusterConfig.from_kubeconfig_yaml(text, context="prod").context == "prod"


def test_unknown_context_named() -> None:
    """An unknown context is named in the error, with the ones that exist."""
    with pytest.raises(ConfigError, match=r"unknown context 'staging'; contexts: dev, prod"):
        ClusterConfig.from_kubeconfig_yaml(KUBECONFIG, context="staging")


def test_context_with_unknown_cluster() -> None:
    """A context pointing at a missing cluster is caught early."""
    text = KUBECONFIG.replace("cluster: dev-cluster,", "cluster: ghost,")
    with pytest.raises(ConfigError, match="unknown cluster 'ghost'"):
        ClusterConfig.from_kubeconfig_yaml(text)


def test_inline_yaml() -> None:
    """Seed: inline YAML works like a file."""
    cfg = ClusterConfig.from_kubeconfig_yaml(KUBECONFIG)
    assert (cfg.source, cfg.path, cfg.context) == ("kubeconfig-yaml", None, "dev")


def test_default_uses_kubeconfig_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Seed: default() reads $KUBECONFIG; a path list is merged, first file winning."""
    first = write(tmp_path, KUBECONFIG, "a")
    second = write(
        tmp_path, KUBECONFIG.replace("current-context: dev", "current-context: prod"), "b"
    )
    monkeypatch.setenv("KUBECONFIG", str(first))
    assert ClusterConfig.default().path == str(first)
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'missing'}:{second}:{first}")
    cfg = ClusterConfig.default()
    assert cfg.context == "prod"
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match=r"\$KUBECONFIG"):
        ClusterConfig.default()


def test_default_home_then_in_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without $KUBECONFIG: ~/.kube/config, else a clear error outside a cluster."""
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(ConfigError, match="not running in a cluster"):
        ClusterConfig.default()
    (tmp_path / ".kube").mkdir()
    write(tmp_path / ".kube")
    assert ClusterConfig.default().context == "dev"


def test_in_cluster_without_cluster_fails_on_load() -> None:
    """in_cluster() defers its check; loading outside a cluster raises ConfigError."""
    cfg = ClusterConfig.in_cluster()
    assert cfg.source == "in-cluster"
    with pytest.raises(ConfigError):
        cfg.load_client_configuration()


def test_load_client_configuration(tmp_path: Path) -> None:
    """The client configuration carries the context's server and token."""
    configuration = ClusterConfig.from_kubeconfig_file(write(tmp_path)).load_client_configuration()
    assert configuration.host == "https://127.0.0.1:6443"
    # The key's name differs between client releases ("authorization", "BearerToken").
    assert "Bearer dev-token-value" in configuration.api_key.values()
    prod = ClusterConfig.from_kubeconfig_yaml(KUBECONFIG, "prod").load_client_configuration()
    assert prod.host == "https://10.0.0.1:6443"


def test_reload_reads_a_rewritten_file_for_the_same_context(tmp_path: Path) -> None:
    """reload() sees the file as it is now and keeps the context chosen at load time."""
    path = write(tmp_path)
    cfg = ClusterConfig.from_kubeconfig_file(path, "prod")
    path.write_text(KUBECONFIG.replace("namespace: agents", "namespace: moved"))
    fresh = cfg.reload()
    assert fresh.context == "prod"
    assert ClusterConfig.from_kubeconfig_file(path).reload().namespace == "moved"
    path.unlink()
    with pytest.raises(ConfigError, match="no such file"):
        cfg.reload()


def test_reload_of_inline_and_in_cluster_sources_is_the_same_config() -> None:
    """Nothing to re-read for inline YAML or the in-cluster account."""
    inline = ClusterConfig.from_kubeconfig_yaml(KUBECONFIG)
    assert inline.reload() is inline
    in_cluster = ClusterConfig.in_cluster()
    assert in_cluster.reload() is in_cluster


def test_importing_cluster_config_does_not_import_the_client() -> None:
    """ClusterConfig lives beside the Kubernetes backend but loads without the client."""
    code = (
        "import sys; from podrunner import ClusterConfig; ClusterConfig.in_cluster(); "
        "assert 'kubernetes' not in sys.modules, 'kubernetes imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
