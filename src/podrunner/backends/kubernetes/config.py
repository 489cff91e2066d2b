"""Where the cluster is: a kubeconfig file, inline kubeconfig YAML, or the pod's own cluster.

:class:`ClusterConfig` checks a kubeconfig eagerly, with PyYAML only, so a missing file, bad
YAML, no current context or an unknown context fails at once with a
:class:`~podrunner.errors.ConfigError` naming the path or the context, not later inside the
``kubernetes`` client. That client is imported only by
:meth:`ClusterConfig.load_client_configuration`, which the real backend calls.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import attrs

from podrunner.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping

    import kubernetes.client

__all__ = ["IN_CLUSTER_NAMESPACE_FILE", "IN_CLUSTER_TOKEN_FILE", "ClusterConfig"]

IN_CLUSTER_TOKEN_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/token"  # noqa: S105  # a path
IN_CLUSTER_NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

Source = Literal["kubeconfig-file", "kubeconfig-yaml", "in-cluster"]


def _parse_yaml(text: str, where: str) -> dict[str, Any]:
    import yaml  # lazily: `import podrunner` stays light

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        # PyYAML's own message quotes the offending line, which may hold a token: only the
        # problem and its position are shown, and the original error is not chained.
        problem = getattr(exc, "problem", None) or "malformed YAML"
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"{where}: not readable as YAML: {problem}{at}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: a kubeconfig must be a YAML mapping")
    return data


def _named(data: Mapping[str, Any], section: str, where: str) -> dict[str, dict[str, Any]]:
    entries = data.get(section) or []
    if not isinstance(entries, list):
        raise ConfigError(f"{where}: '{section}' must be a list")
    out: dict[str, dict[str, Any]] = {}
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise ConfigError(f"{where}: every entry of '{section}' needs a name")
        out.setdefault(entry["name"], entry.get(section[:-1]) or {})
    return out


def _check_kubeconfig(data: Mapping[str, Any], context: str | None, where: str) -> str:
    """Return the context to use, or raise ConfigError saying what is missing."""
    contexts = _named(data, "contexts", where)
    clusters = _named(data, "clusters", where)
    users = _named(data, "users", where)
    name = context or data.get("current-context")
    if not name:
        raise ConfigError(
            f"{where}: no current context (set current-context or pass context=...); "
            f"contexts: {', '.join(sorted(contexts)) or 'none'}"
        )
    if name not in contexts:
        raise ConfigError(
            f"{where}: unknown context {name!r}; contexts: {', '.join(sorted(contexts)) or 'none'}"
        )
    ctx = contexts[name]
    cluster = ctx.get("cluster")
    if cluster not in clusters:
        raise ConfigError(f"{where}: context {name!r} names unknown cluster {cluster!r}")
    user = ctx.get("user")
    if user is not None and user not in users:
        raise ConfigError(f"{where}: context {name!r} names unknown user {user!r}")
    return str(name)


def _merge(documents: list[dict[str, Any]]) -> dict[str, Any]:
    # kubectl's rule for $KUBECONFIG lists: the first file to define a name or a
    # current-context wins.
    merged: dict[str, Any] = {"apiVersion": "v1", "kind": "Config"}
    for section in ("clusters", "contexts", "users"):
        seen: set[str] = set()
        items: list[Any] = []
        for doc in documents:
            for entry in doc.get(section) or []:
                name = entry.get("name") if isinstance(entry, dict) else None
                if isinstance(name, str) and name not in seen:
                    seen.add(name)
                    items.append(entry)
        merged[section] = items
    for doc in documents:
        if doc.get("current-context"):
            merged["current-context"] = doc["current-context"]
            break
    return merged


@attrs.frozen
class ClusterConfig:
    """How to reach a cluster. Build one with the class methods.

    The kubeconfig is parsed and checked when the object is built; credentials in it never
    show in ``repr``.

    Attributes:
        source: ``"kubeconfig-file"``, ``"kubeconfig-yaml"`` or ``"in-cluster"``.
        path: The kubeconfig path (file source), for messages and relative cert paths.
        context: The context in use (kubeconfig sources).
        kubeconfig: The parsed kubeconfig (kubeconfig sources).
    """

    source: Source
    path: str | None = None
    context: str | None = None
    kubeconfig: Mapping[str, Any] | None = attrs.field(default=None, repr=False, eq=False)

    @classmethod
    def default(cls, context: str | None = None) -> ClusterConfig:
        """Use ``$KUBECONFIG`` (a path list), else ``~/.kube/config``, else the pod's cluster.

        Args:
            context: Context to use instead of the current one.

        Returns:
            The configuration.

        Raises:
            ConfigError: No kubeconfig exists and this is not running inside a cluster, or
                the kubeconfig found is unusable.
        """
        env = os.environ.get("KUBECONFIG", "")
        paths = [p for p in env.split(os.pathsep) if p]
        if paths:
            existing = [p for p in paths if Path(p).expanduser().is_file()]
            if not existing:
                raise ConfigError(f"$KUBECONFIG names no existing file: {env}")
            if len(existing) == 1:
                return cls.from_kubeconfig_file(existing[0], context)
            docs = [
                _parse_yaml(Path(p).expanduser().read_text(encoding="utf-8"), p) for p in existing
            ]
            merged = _merge(docs)
            where = f"$KUBECONFIG ({env})"
            chosen = _check_kubeconfig(merged, context, where)
            return cls("kubeconfig-file", str(Path(existing[0]).expanduser()), chosen, merged)
        home = Path("~/.kube/config").expanduser()
        if home.is_file():
            return cls.from_kubeconfig_file(home, context)
        if os.environ.get("KUBERNETES_SERVICE_HOST") and Path(IN_CLUSTER_TOKEN_FILE).is_file():
            return cls.in_cluster()
        raise ConfigError(
            f"no kubeconfig ($KUBECONFIG unset, {home} missing) and not running in a cluster"
        )

    @classmethod
    def from_kubeconfig_file(
        cls, path: str | os.PathLike[str], context: str | None = None
    ) -> ClusterConfig:
        """Load a kubeconfig file (``~`` is expanded).

        Args:
            path: The file.
            context: Context to use instead of the file's current one.

        Returns:
            The configuration.

        Raises:
            ConfigError: The file is missing or unreadable, is not valid YAML, has no current
                context, or lacks the context asked for.
        """
        file = Path(path).expanduser()
        try:
            text = file.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"kubeconfig {file}: no such file") from None
        except OSError as exc:
            raise ConfigError(f"kubeconfig {file}: cannot be read: {exc}") from exc
        where = f"kubeconfig {file}"
        data = _parse_yaml(text, where)
        chosen = _check_kubeconfig(data, context, where)
        return cls("kubeconfig-file", str(file), chosen, data)

    @classmethod
    def from_kubeconfig_yaml(cls, text: str, context: str | None = None) -> ClusterConfig:
        """Use a kubeconfig given inline, as YAML text.

        Args:
            text: The kubeconfig.
            context: Context to use instead of its current one.

        Returns:
            The configuration.

        Raises:
            ConfigError: The text is not valid YAML, has no current context, or lacks the
                context asked for.
        """
        where = "inline kubeconfig"
        data = _parse_yaml(text, where)
        chosen = _check_kubeconfig(data, context, where)
        return cls("kubeconfig-yaml", None, chosen, data)

    @classmethod
    def in_cluster(cls) -> ClusterConfig:
        """Use the service account of the pod this code runs in.

        Returns:
            The configuration (checked when the client configuration is loaded).
        """
        return cls("in-cluster")

    @property
    def namespace(self) -> str:
        """The default namespace: the context's, the pod's own (in-cluster), else ``default``."""
        if self.source == "in-cluster":
            try:
                return Path(IN_CLUSTER_NAMESPACE_FILE).read_text(encoding="utf-8").strip()
            except OSError:
                return "default"
        assert self.kubeconfig is not None
        for entry in self.kubeconfig.get("contexts") or []:
            if isinstance(entry, dict) and entry.get("name") == self.context:
                ns = (entry.get("context") or {}).get("namespace")
                return str(ns) if ns else "default"
        return "default"

    def reload(self) -> ClusterConfig:
        """Read the kubeconfig file again (rewritten since by ``aws eks update-kubeconfig``...).

        Returns:
            The configuration as the file now holds it, for the same context; ``self`` for an
            inline kubeconfig or the in-cluster account (whose token file
            :meth:`load_client_configuration` re-reads anyway).

        Raises:
            ConfigError: The file is gone, half-written, or no longer holds the context.
        """
        if self.source != "kubeconfig-file" or self.path is None:
            return self
        return ClusterConfig.from_kubeconfig_file(self.path, self.context)

    def load_client_configuration(self) -> kubernetes.client.Configuration:
        """Build a ``kubernetes.client.Configuration`` (imports ``kubernetes`` now).

        Returns:
            The client configuration for the chosen context or the in-cluster account.

        Raises:
            ConfigError: The client rejects the configuration (bad certificate data, a
                missing token file, not inside a cluster...).
        """
        # Imported as Any: the client's own annotations are partial and vary by release.
        client: Any = importlib.import_module("kubernetes.client")
        kube_config: Any = importlib.import_module("kubernetes.config")

        configuration = client.Configuration()
        try:
            if self.source == "in-cluster":
                kube_config.load_incluster_config(client_configuration=configuration)
            else:
                base = str(Path(self.path).parent) if self.path else ""
                loader = kube_config.kube_config.KubeConfigLoader(
                    config_dict=dict(self.kubeconfig or {}),
                    active_context=self.context,
                    config_base_path=base,
                )
                loader.load_and_set(configuration)
        except kube_config.ConfigException as exc:
            where = self.path or self.source
            raise ConfigError(f"{where}: context {self.context!r}: {exc}") from exc
        result: kubernetes.client.Configuration = configuration
        return result
