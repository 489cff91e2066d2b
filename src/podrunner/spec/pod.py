"""The pod spec builder: frozen attrs value objects, validated on construction.

A :class:`PodSpec` describes one pod once, in Python. Every field is checked when the object is
built, so a bad value raises :class:`~podrunner.errors.SpecError` (field, value, rule) long
before anything reaches a cluster. Specs are immutable: the ``with_*`` methods return
re-validated copies made with :func:`attrs.evolve`.

Design notes:

* ``attrs.evolve`` feeds every unchanged, already-converted value back through the converters,
  so converters here are idempotent (a tuple stays the same tuple, a :class:`FrozenMap` the
  same map) and never generate names or random values. Names and run ids are made when the
  manifest is built (:mod:`podrunner.manifest`).
* The rules mirror the API server's (:mod:`podrunner._validation`); a few are deliberately
  stricter where the server's leniency only defers the failure to run time (see the field
  docs).
* Secret values never show in ``repr`` or in error messages.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

import podrunner.spec.containers as _c
import podrunner.spec.workspace as _ws
from podrunner import _validation as v
from podrunner.errors import REDACTED, SpecError, kind_of
from podrunner.spec._fields import (
    _MAX_ID,
    FrozenMap,
    SecretMap,
    SecretRef,
    _absolute_path,
    _blen,
    _bool,
    _check,
    _clean,
    _enum,
    _mapping,
    _optional_int,
    _require_str,
    _str_map,
    _str_tuple,
    _text,
)
from podrunner.spec.affinity import NodeAffinity
from podrunner.spec.egress import EgressPolicy, _egress
from podrunner.spec.patch import freeze_patch
from podrunner.spec.sizes import MAX_ARG_BYTES, MAX_EXEC_BYTES, MAX_POD_CONTENT_BYTES, check_sizes
from podrunner.spec.values import (
    EnvVar,
    ImagePullPolicy,
    Resources,
    SecurityProfile,
    Toleration,
    Volume,
    env_vars,
)

__all__ = [
    "MAX_ARG_BYTES",
    "MAX_EXEC_BYTES",
    "MAX_POD_CONTENT_BYTES",
    "RESERVED_ANNOTATION_BYTES",
    "RESERVED_ANNOTATION_KEYS",
    "RESERVED_LABEL_KEYS",
    "PodSpec",
]

RESERVED_LABEL_KEYS: frozenset[str] = frozenset(
    {"app.kubernetes.io/managed-by", "app.kubernetes.io/component", "podrunner.dev/run-id"}
)
"""Label keys podrunner sets on everything it creates; user labels may not use them."""

RESERVED_ANNOTATION_KEYS: frozenset[str] = frozenset({"podrunner.dev/expires-at"})
"""Annotation keys the runner sets on everything it creates; user annotations may not use them."""

RESERVED_ANNOTATION_BYTES = 64
"""Room kept free in the API server's 256 KiB annotation budget for the runner's annotations.

The runner adds ``podrunner.dev/expires-at: <RFC 3339 time>`` (24 + 20 bytes) to every object
it creates; user annotations may use at most ``TOTAL_ANNOTATION_SIZE_LIMIT`` minus this, so the
create never fails with 422 because of what podrunner added.
"""

# --------------------------------------------------------------------------------------------
# PodSpec field converters


def _image(value: str) -> str:
    image = _text("image", value)
    _check("image", image, v.image_error(image))
    return image


def _command(value: Iterable[str]) -> tuple[str, ...]:
    argv = _str_tuple("command", value)
    if not argv:
        raise SpecError("command", value, "must hold at least one element (the program)")
    if not argv[0]:
        raise SpecError("command[0]", argv[0], "the program must not be empty")
    for i, arg in enumerate(argv):
        size = _blen(arg)
        if size > MAX_ARG_BYTES:
            raise SpecError(
                f"command[{i}]",
                arg,
                f"is {size} bytes; execve takes at most {MAX_ARG_BYTES} bytes per argument "
                "(MAX_ARG_STRLEN): pass large data in a file (secret_files, a volume) instead",
            )
    return argv


def _name(value: str | None) -> str | None:
    if value is None:
        return None
    name = _require_str("name", value)
    # Stricter than the server (which takes a subdomain): the pod name is also its hostname.
    _check("name", name, v.dns1123_label_error(name))
    return name


def _name_prefix(value: str | None) -> str | None:
    # Any prefix is accepted: generate_pod_name sanitises it into a valid label.
    return None if value is None else _text("name_prefix", value)


def _namespace(value: str | None) -> str | None:
    if value is None:
        return None
    ns = _require_str("namespace", value)
    _check("namespace", ns, v.dns1123_label_error(ns))
    return ns


def _resources(value: Resources | None) -> Resources:
    if value is None:
        return Resources()
    if not isinstance(value, Resources):
        raise SpecError("resources", value, f"must be a Resources, not {kind_of(value)}")
    return value


def _service_account(value: str | None) -> str | None:
    if value is None:
        return None
    sa = _require_str("service_account", value)
    _check("service_account", sa, v.dns1123_subdomain_error(sa))
    return sa


def _class_name(field: str, value: str | None) -> str | None:
    # Both names are object names (DNS-1123 subdomains), checked as the API server does.
    if value is None:
        return None
    name = _require_str(field, value)
    _check(field, name, v.dns1123_subdomain_error(name))
    return name


def _runtime_class_name(value: str | None) -> str | None:
    return _class_name("runtime_class_name", value)


def _priority_class_name(value: str | None) -> str | None:
    return _class_name("priority_class_name", value)


def _restart_policy(value: str) -> str:
    policy = _require_str("restart_policy", value)
    _check("restart_policy", policy, v.restart_policy_error(policy))
    return policy


def _pull_policy(value: ImagePullPolicy | str) -> ImagePullPolicy:
    return _enum(ImagePullPolicy, "image_pull_policy", value)


def _security(value: SecurityProfile | str) -> SecurityProfile:
    return _enum(SecurityProfile, "security", value)


def _blank_env(value: Iterable[str]) -> tuple[str, ...]:
    names = _str_tuple("blank_env", value)
    for name in names:
        _check("blank_env", name, v.env_name_error(name))
    return tuple(dict.fromkeys(names))  # de-duplicated, order kept


def _secret_mapping(field: str, value: object) -> Mapping[Any, Any]:
    # Never echo a secret-bearing value of the wrong shape: a list of (name, value) pairs, a
    # string... holds the secret itself. Only its type is named.
    if not isinstance(value, Mapping):
        raise SpecError(
            field, REDACTED, f"must be a mapping of names to values, not {kind_of(value)}"
        )
    return value


def _secret_env_name(field: str, name: object) -> str:
    if not isinstance(name, str):
        raise SpecError(field, REDACTED, f"names must be strings, not {kind_of(name)}")
    if "=" in name:
        # "TOKEN=sk-..." as a name: whatever follows "=" may be the secret itself.
        shown = name.partition("=")[0] + "=" + REDACTED
        raise SpecError(field, shown, "must be a variable name, without '=' and a value")
    _clean(field, name)
    _check(field, name, v.env_name_error(name))
    return name


def _secret_item(field: str, item: object, *, allow_nul: bool) -> str | SecretRef:
    if isinstance(item, SecretRef):
        return item
    if not isinstance(item, str):
        raise SpecError(field, REDACTED, f"must be a str or a SecretRef, not {kind_of(item)}")
    # A file's content may hold NUL bytes (it travels base64-encoded); an env value may not.
    return _clean(field, item, secret=True, allow_nul=allow_nul)


def _secret_env(value: Mapping[str, str | SecretRef] | None) -> SecretMap[str | SecretRef]:
    if value is None:
        return SecretMap()
    items = _secret_mapping("secret_env", value)
    for name, item in items.items():
        _secret_env_name("secret_env", name)
        _secret_item(f"secret_env[{name}]", item, allow_nul=False)
    return items if isinstance(items, SecretMap) else SecretMap(items)


def _secret_files(value: Mapping[str, str | SecretRef] | None) -> SecretMap[str | SecretRef]:
    if value is None:
        return SecretMap()
    items = _secret_mapping("secret_files", value)
    for path, item in items.items():
        if not isinstance(path, str):
            raise SpecError("secret_files", REDACTED, f"paths must be strings, not {kind_of(path)}")
        _absolute_path("secret_files", path)
        if path.endswith("/"):
            raise SpecError("secret_files", path, "must be a file path, not a directory")
        _secret_item(f"secret_files[{path}]", item, allow_nul=True)
    return items if isinstance(items, SecretMap) else SecretMap(items)


def _files(value: Mapping[str, str] | None) -> FrozenMap[str]:
    items = _mapping("files", {} if value is None else value)
    total = 0
    for path, content in items.items():
        _absolute_path("files", path)
        if path.endswith("/"):
            raise SpecError("files", path, "must be a file path, not a directory")
        parent, base = posixpath.split(path)
        if parent == "/":
            raise SpecError(
                "files", path, "must be in a directory other than / (the directory is mounted)"
            )
        _check("files", path, v.config_map_key_error(base))
        if not isinstance(content, str):
            raise SpecError(f"files[{path}]", kind_of(content), "must be a str")
        try:
            total += len(content.encode("utf-8"))
        except UnicodeEncodeError:
            # Shown by size only: the content may be a long prompt.
            shown = f"<{len(content)} characters>"
            raise SpecError(
                f"files[{path}]", shown, "must be valid Unicode (no lone surrogates)"
            ) from None
    if total > v.SECRET_DATA_SIZE_LIMIT:
        raise SpecError(
            "files",
            f"<{total} bytes>",
            f"the per-run ConfigMap would hold {total} bytes; the API server takes at most "
            f"{v.SECRET_DATA_SIZE_LIMIT} (1 MiB) in one ConfigMap: put larger data in a volume",
        )
    return items if isinstance(items, FrozenMap) else FrozenMap(items)


def _redacted_repr(value: Mapping[str, object]) -> str:
    shown = {k: (item if isinstance(item, SecretRef) else REDACTED) for k, item in value.items()}
    return repr(shown)


def _pull_secrets(value: Iterable[str]) -> tuple[str, ...]:
    names = _str_tuple("image_pull_secrets", value)
    for name in names:
        _check("image_pull_secrets", name, v.dns1123_subdomain_error(name))
    return names


def _labels(value: Mapping[str, str] | None) -> FrozenMap[str]:
    labels = _str_map("labels", {} if value is None else value)
    for key, item in labels.items():
        if key in RESERVED_LABEL_KEYS:
            raise SpecError(
                "labels", key, "is reserved: podrunner sets it on every object it creates"
            )
        _check("labels", key, v.label_key_error(key))
        _check(f"labels[{key}]", item, v.label_value_error(item))
    return labels


def _annotations(value: Mapping[str, str] | None) -> FrozenMap[str]:
    annotations = _str_map("annotations", {} if value is None else value)
    for key in annotations:
        if key in RESERVED_ANNOTATION_KEYS:
            raise SpecError(
                "annotations", key, "is reserved: podrunner sets it on every object it creates"
            )
        _check("annotations", key, v.annotation_key_error(key))
    # The runner adds its own annotations to what is given here: keep room for them.
    limit = v.TOTAL_ANNOTATION_SIZE_LIMIT - RESERVED_ANNOTATION_BYTES
    size = sum(_blen(k) + _blen(x) for k, x in annotations.items())
    if size > limit:
        raise SpecError(
            "annotations",
            annotations,
            f"keys and values total {size} bytes; at most {limit} are allowed (the API "
            f"server's {v.TOTAL_ANNOTATION_SIZE_LIMIT}, less {RESERVED_ANNOTATION_BYTES} "
            "kept for podrunner's own annotations)",
        )
    return annotations


def _volumes(value: Iterable[Volume]) -> tuple[Volume, ...]:
    if isinstance(value, Volume):
        value = (value,)
    if not isinstance(value, Iterable):
        raise SpecError("volumes", value, "must be a sequence of Volume")
    volumes = tuple(value)
    for volume in volumes:
        if not isinstance(volume, Volume):
            raise SpecError(
                "volumes", volume, f"must be a sequence of Volume, not {kind_of(volume)}"
            )
    return volumes


def _working_dir(value: str | None) -> str | None:
    return None if value is None else _absolute_path("working_dir", value)


def _node_selector(value: Mapping[str, str] | None) -> FrozenMap[str]:
    selector = _str_map("node_selector", {} if value is None else value)
    for key, item in selector.items():
        _check("node_selector", key, v.label_key_error(key))
        _check(f"node_selector[{key}]", item, v.label_value_error(item))
    return selector


def _node_affinity(value: NodeAffinity | None) -> NodeAffinity | None:
    if value is None or isinstance(value, NodeAffinity):
        return value
    raise SpecError("node_affinity", value, f"must be a NodeAffinity, not {kind_of(value)}")


def _tolerations(value: Iterable[Toleration]) -> tuple[Toleration, ...]:
    if not isinstance(value, Iterable):
        raise SpecError("tolerations", value, "must be a sequence of Toleration")
    items = tuple(value)
    for item in items:
        if not isinstance(item, Toleration):
            raise SpecError(
                "tolerations", item, f"must be a sequence of Toleration, not {kind_of(item)}"
            )
    return items


def _active_deadline(value: int | None) -> int | None:
    return _optional_int("active_deadline_seconds", value, minimum=1, maximum=2**63 - 1)


def _container_name(value: str) -> str:
    name = _require_str("container_name", value)
    _check("container_name", name, v.container_name_error(name))
    return name


def _component(value: str) -> str:
    component = _require_str("component", value)
    if not component:
        raise SpecError("component", component, "must be non-empty")
    _check("component", component, v.label_value_error(component))
    return component


def _run_as_user(value: int | None) -> int | None:
    return _optional_int("run_as_user", value, minimum=0, maximum=_MAX_ID)


def _run_as_group(value: int | None) -> int | None:
    return _optional_int("run_as_group", value, minimum=0, maximum=_MAX_ID)


def _fs_group(value: int | None) -> int | None:
    return _optional_int("fs_group", value, minimum=0, maximum=_MAX_ID)


def _read_only_root(value: bool) -> bool:
    return _bool("read_only_root_filesystem", value)


def _automount(value: bool) -> bool:
    return _bool("automount_service_account_token", value)


def _stdin(value: bool) -> bool:
    return _bool("stdin", value)


# --------------------------------------------------------------------------------------------
# PodSpec


@attrs.frozen
class PodSpec:
    """One pod, described once: image, argv and everything around them.

    ``image`` and ``command`` are positional; everything else is keyword-only. The object is
    immutable and validated on construction; ``with_*`` methods return re-validated copies.

    Attributes:
        image: Container image reference.
        command: The container's argv (``command`` in Kubernetes terms; no shell is implied).
        name: Exact pod name (a DNS-1123 label). Default: generated from ``name_prefix``.
        name_prefix: Start of a generated name; sanitised, never rejected.
        namespace: Namespace; default: the runner's.
        resources: CPU and memory limits and requests, extended resources (GPUs).
        service_account: Service account name.
        runtime_class_name: The RuntimeClass the pod runs with (``"gvisor"``, ``"kata"``);
            it must exist in the cluster, or the create is refused (403).
        priority_class_name: The PriorityClass of the pod; it must exist in the cluster, or
            the create is refused (403).
        restart_policy: ``"Never"`` (default), ``"OnFailure"`` or ``"Always"``.
        image_pull_policy: When to pull the image.
        env: Plain variables, in order; a mapping or :class:`EnvVar` items.
        blank_env: Names set to ``""`` (blanks variables the image or launcher sets); an
            ``env`` or ``secret_env`` entry of the same name wins.
        secret_env: Name -> value (stored in a per-run Secret) or :class:`SecretRef`.
        secret_files: Absolute file path -> content (per-run Secret) or :class:`SecretRef`,
            mounted read-only, mode 0400.
        files: Absolute file path -> text, put in a per-run ConfigMap owned by the pod; each
            file's directory is mounted read-only from it (so give the files a directory of
            their own). For inputs too large for the argv, such as a long prompt.
        image_pull_secrets: Names of existing registry Secrets.
        labels: Extra pod labels; the managed keys are reserved.
        annotations: Pod annotations.
        volumes: Volumes, mounted in order as ``vol-0``, ``vol-1``...
        working_dir: Absolute working directory of the container.
        init_containers: :class:`InitContainer` steps run in order before the main container.
        sidecars: :class:`Sidecar` containers started first and kept running beside it.
        workspace: A :class:`Workspace` (git checkouts, downloads) filled before it starts.
        node_selector: Node labels the pod requires.
        node_affinity: Node label expressions the pod requires (``In``, ``NotIn``...).
        tolerations: Taints the pod tolerates.
        egress: Where the pod may connect (a NetworkPolicy owned by the pod); default: the
            runner's, else unrestricted.
        active_deadline_seconds: Server-side kill after this many seconds, even if the client
            is gone.
        container_name: The container's name (``"main"``; ``"claude-code"`` for Claude).
        component: Value of the ``app.kubernetes.io/component`` label.
        security: The Pod Security Standard to meet.
        run_as_user: UID; with ``RESTRICTED`` the default is 65532.
        run_as_group: GID.
        fs_group: Group owning mounted volumes.
        read_only_root_filesystem: Mount the image's filesystem read-only.
        automount_service_account_token: Mount the service account token (off by default).
        stdin: Keep the container's stdin open for an attach.
        pod_patch: A JSON merge patch applied to the built pod, for fields PodSpec has no
            option for; it may not touch the pod's identity, managed labels or Secret wiring
            (see the spec guide).
    """

    image: str = attrs.field(converter=_image)
    command: tuple[str, ...] = attrs.field(converter=_command)
    name: str | None = attrs.field(default=None, kw_only=True, converter=_name)
    name_prefix: str | None = attrs.field(default=None, kw_only=True, converter=_name_prefix)
    namespace: str | None = attrs.field(default=None, kw_only=True, converter=_namespace)
    resources: Resources = attrs.field(factory=Resources, kw_only=True, converter=_resources)
    service_account: str | None = attrs.field(
        default=None, kw_only=True, converter=_service_account
    )
    runtime_class_name: str | None = attrs.field(
        default=None, kw_only=True, converter=_runtime_class_name
    )
    priority_class_name: str | None = attrs.field(
        default=None, kw_only=True, converter=_priority_class_name
    )
    restart_policy: str = attrs.field(default="Never", kw_only=True, converter=_restart_policy)
    image_pull_policy: ImagePullPolicy = attrs.field(
        default=ImagePullPolicy.IF_NOT_PRESENT, kw_only=True, converter=_pull_policy
    )
    env: tuple[EnvVar, ...] = attrs.field(default=(), kw_only=True, converter=env_vars)
    blank_env: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=_blank_env)
    secret_env: FrozenMap[str | SecretRef] = attrs.field(
        factory=FrozenMap, kw_only=True, converter=_secret_env, repr=_redacted_repr
    )
    secret_files: FrozenMap[str | SecretRef] = attrs.field(
        factory=FrozenMap, kw_only=True, converter=_secret_files, repr=_redacted_repr
    )
    files: FrozenMap[str] = attrs.field(
        factory=FrozenMap, kw_only=True, converter=_files, repr=False
    )
    image_pull_secrets: tuple[str, ...] = attrs.field(
        default=(), kw_only=True, converter=_pull_secrets
    )
    labels: FrozenMap[str] = attrs.field(factory=FrozenMap, kw_only=True, converter=_labels)
    annotations: FrozenMap[str] = attrs.field(
        factory=FrozenMap, kw_only=True, converter=_annotations
    )
    volumes: tuple[Volume, ...] = attrs.field(default=(), kw_only=True, converter=_volumes)
    working_dir: str | None = attrs.field(default=None, kw_only=True, converter=_working_dir)
    init_containers: tuple[_c.InitContainer, ...] = attrs.field(
        default=(), kw_only=True, converter=_c.init_containers, validator=_c.check_containers
    )
    sidecars: tuple[_c.Sidecar, ...] = attrs.field(default=(), kw_only=True, converter=_c.sidecars)
    workspace: _ws.Workspace | None = attrs.field(
        default=None, kw_only=True, converter=_ws.workspace, validator=_ws.check_workspace
    )
    node_selector: FrozenMap[str] = attrs.field(
        factory=FrozenMap, kw_only=True, converter=_node_selector
    )
    node_affinity: NodeAffinity | None = attrs.field(
        default=None, kw_only=True, converter=_node_affinity
    )
    tolerations: tuple[Toleration, ...] = attrs.field(
        default=(), kw_only=True, converter=_tolerations
    )
    egress: EgressPolicy | None = attrs.field(default=None, kw_only=True, converter=_egress)
    active_deadline_seconds: int | None = attrs.field(
        default=None, kw_only=True, converter=_active_deadline
    )
    container_name: str = attrs.field(default="main", kw_only=True, converter=_container_name)
    component: str = attrs.field(default="runner", kw_only=True, converter=_component)
    security: SecurityProfile = attrs.field(
        default=SecurityProfile.RESTRICTED, kw_only=True, converter=_security
    )
    run_as_user: int | None = attrs.field(default=None, kw_only=True, converter=_run_as_user)
    run_as_group: int | None = attrs.field(default=None, kw_only=True, converter=_run_as_group)
    fs_group: int | None = attrs.field(default=None, kw_only=True, converter=_fs_group)
    read_only_root_filesystem: bool = attrs.field(
        default=False, kw_only=True, converter=_read_only_root
    )
    automount_service_account_token: bool = attrs.field(
        default=False, kw_only=True, converter=_automount
    )
    stdin: bool = attrs.field(default=False, kw_only=True, converter=_stdin)
    pod_patch: FrozenMap[Any] | None = attrs.field(
        default=None, kw_only=True, converter=freeze_patch
    )

    def __attrs_post_init__(self) -> None:
        if self.name is not None and self.name_prefix is not None:
            raise SpecError("name_prefix", self.name_prefix, "give either name or name_prefix")
        explicit = {e.name for e in self.env}
        for name in self.secret_env:
            if name in explicit:
                raise SpecError(
                    "secret_env", name, "is also set in env; give each variable one source"
                )
        mount_paths: dict[str, str] = {}
        for i, volume in enumerate(self.volumes):
            self._claim_mount(mount_paths, volume.mount_path, f"volumes[{i}].mount_path")
            if volume.kind == "hostPath" and self.security is not SecurityProfile.NONE:
                raise SpecError(
                    f"volumes[{i}]",
                    volume.source,
                    "hostPath volumes are forbidden by the baseline and restricted Pod "
                    "Security Standards; pass security=SecurityProfile.NONE to opt out",
                )
        for path in self.secret_files:
            self._claim_mount(mount_paths, path, "secret_files")
        # Each directory holding files is mounted whole from the run's ConfigMap.
        for directory in dict.fromkeys(posixpath.dirname(path) for path in self.files):
            self._claim_mount(mount_paths, directory, "files")
        if self.security is SecurityProfile.RESTRICTED and self.run_as_user == 0:
            raise SpecError(
                "run_as_user",
                0,
                "the restricted Pod Security Standard requires a non-root user (runAsNonRoot)",
            )
        check_sizes(self)

    @staticmethod
    def _claim_mount(seen: dict[str, str], path: str, field: str) -> None:
        key = posixpath.normpath(path)
        if key in seen:
            raise SpecError(field, path, f"mount path already used by {seen[key]}")
        seen[key] = field

    # -- copies --------------------------------------------------------------------------------

    def replace(self, **changes: Any) -> PodSpec:
        """Return a re-validated copy with the given fields replaced (``attrs.evolve``).

        Args:
            **changes: Field names and their new values.

        Returns:
            The new spec.
        """
        return attrs.evolve(self, **changes)

    def with_image(self, image: str) -> PodSpec:
        """Return a copy running another image."""
        return attrs.evolve(self, image=image)

    def with_command(self, *argv: str) -> PodSpec:
        """Return a copy with another argv: ``with_command("sh", "-c", "echo hi")``."""
        return attrs.evolve(self, command=argv)

    def with_name(self, name: str | None = None, *, prefix: str | None = None) -> PodSpec:
        """Return a copy with an exact pod name, or a name prefix (one of the two)."""
        return attrs.evolve(self, name=name, name_prefix=prefix)

    def with_namespace(self, namespace: str | None) -> PodSpec:
        """Return a copy in another namespace."""
        return attrs.evolve(self, namespace=namespace)

    def with_labels(self, labels: Mapping[str, str] | None = None, **more: str) -> PodSpec:
        """Return a copy with these labels added (same keys replaced)."""
        return attrs.evolve(self, labels={**self.labels, **(labels or {}), **more})

    def with_annotations(
        self, annotations: Mapping[str, str] | None = None, **more: str
    ) -> PodSpec:
        """Return a copy with these annotations added (same keys replaced)."""
        return attrs.evolve(self, annotations={**self.annotations, **(annotations or {}), **more})

    def with_env(self, env: Mapping[str, str] | None = None, **more: str) -> PodSpec:
        """Return a copy with these plain variables set (an existing name takes the new value)."""
        updates = {**(env or {}), **more}
        kept = [e for e in self.env if e.name not in updates]
        return attrs.evolve(self, env=(*kept, *(EnvVar(k, x) for k, x in updates.items())))

    def with_env_vars(self, *env: EnvVar) -> PodSpec:
        """Return a copy with these :class:`EnvVar` entries set (replacing same names)."""
        names = {e.name for e in env}
        return attrs.evolve(self, env=(*(e for e in self.env if e.name not in names), *env))

    def with_blank_env(self, *names: str) -> PodSpec:
        """Return a copy that also blanks these variables."""
        return attrs.evolve(self, blank_env=(*self.blank_env, *names))

    def with_secret_env(
        self, secret_env: Mapping[str, str | SecretRef] | None = None, **more: str | SecretRef
    ) -> PodSpec:
        """Return a copy with these secret variables added (same names replaced)."""
        return attrs.evolve(self, secret_env={**self.secret_env, **(secret_env or {}), **more})

    def with_files(self, files: Mapping[str, str]) -> PodSpec:
        """Return a copy with ``files`` added (per-run ConfigMap, mounted read-only)."""
        return attrs.evolve(self, files={**self.files, **files})

    def with_secret_files(self, files: Mapping[str, str | SecretRef]) -> PodSpec:
        """Return a copy with these secret files added (same paths replaced)."""
        return attrs.evolve(self, secret_files={**self.secret_files, **files})

    def with_resources(self, resources: Resources | None = None, **changes: Any) -> PodSpec:
        """Return a copy with other resources: a whole :class:`Resources`, or fields of it.

        ``spec.with_resources(cpu_limit="500m")`` keeps the other values.
        """
        base = resources if resources is not None else self.resources
        return attrs.evolve(self, resources=attrs.evolve(base, **changes))

    def with_volumes(self, *volumes: Volume) -> PodSpec:
        """Return a copy with these volumes appended."""
        return attrs.evolve(self, volumes=(*self.volumes, *volumes))

    def with_tolerations(self, *tolerations: Toleration) -> PodSpec:
        """Return a copy with these tolerations appended."""
        return attrs.evolve(self, tolerations=(*self.tolerations, *tolerations))

    def with_node_selector(self, selector: Mapping[str, str] | None = None, **more: str) -> PodSpec:
        """Return a copy with these node-selector entries added."""
        return attrs.evolve(self, node_selector={**self.node_selector, **(selector or {}), **more})

    def with_node_affinity(self, affinity: NodeAffinity | None) -> PodSpec:
        """Return a copy with this node affinity (replacing any), or none."""
        return attrs.evolve(self, node_affinity=affinity)

    def with_image_pull_secrets(self, *names: str) -> PodSpec:
        """Return a copy with these registry Secrets appended."""
        return attrs.evolve(self, image_pull_secrets=(*self.image_pull_secrets, *names))

    def with_runtime_class(self, name: str | None) -> PodSpec:
        """Return a copy running with this RuntimeClass (``"gvisor"``), or the default."""
        return attrs.evolve(self, runtime_class_name=name)

    def with_egress(self, egress: EgressPolicy | None) -> PodSpec:
        """Return a copy with another egress policy (``None``: the runner's default)."""
        return attrs.evolve(self, egress=egress)

    def with_priority_class(self, name: str | None) -> PodSpec:
        """Return a copy with this PriorityClass, or none."""
        return attrs.evolve(self, priority_class_name=name)

    def with_security(self, security: SecurityProfile | str) -> PodSpec:
        """Return a copy built for another Pod Security Standard."""
        return attrs.evolve(self, security=security)
