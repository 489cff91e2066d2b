"""From a :class:`~podrunner.spec.PodSpec` to Kubernetes manifests: pure functions, no I/O.

The output is plain Kubernetes JSON (camelCase, no ``null``, no empty collections except the
``emptyDir: {}`` the API needs), built in a fixed key order, so the same spec, name and run id
always give byte-identical JSON.

Names are generated here, client-side, rather than with ``generateName``: a create retried
after an ambiguous failure targets the same name, and the ``podrunner.dev/run-id`` label lets
the runner recognise its own pod.

Secrets never enter the pod manifest. Values from ``secret_env`` and ``secret_files`` go into
a per-run Secret ``<pod>-secrets``; the pod references them with ``secretKeyRef`` and a
read-only secret volume. The runner makes the pod the Secret's owner once the pod exists, so
garbage collection removes the Secret with the pod.

A spec's ``egress`` becomes a NetworkPolicy ``<pod>-egress`` selecting the pod by its
``podrunner.dev/run-id`` and ``app.kubernetes.io/managed-by`` labels; it too is made owned by
the pod once the pod exists.
"""

from __future__ import annotations

import base64
import posixpath
from typing import TYPE_CHECKING, Any

import attrs

from podrunner import _validation as v
from podrunner.errors import REDACTED, SpecError
from podrunner.manifest.containers import init_container_manifests
from podrunner.manifest.naming import generate_pod_name, new_run_id
from podrunner.manifest.patch import patch_pod
from podrunner.manifest.workspace import add_workspace
from podrunner.spec import SecretRef, SecurityProfile
from podrunner.spec.patch import thaw_patch

if TYPE_CHECKING:
    from podrunner.spec import EgressPolicy, PodSpec

__all__ = [
    "COMPONENT_LABEL",
    "DEFAULT_NON_ROOT_ID",
    "FILES_VOLUME_NAME",
    "MANAGED_BY",
    "MANAGED_BY_LABEL",
    "MANAGED_SELECTOR",
    "RUN_ID_LABEL",
    "SECRET_VOLUME_NAME",
    "Manifests",
    "build_credentials_prefix",
    "build_manifests",
    "build_pod_manifest",
    "egress_name_for",
    "files_name_for",
    "owner_reference",
    "secret_name_for",
]

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
COMPONENT_LABEL = "app.kubernetes.io/component"
RUN_ID_LABEL = "podrunner.dev/run-id"
MANAGED_BY = "podrunner"
MANAGED_SELECTOR = f"{MANAGED_BY_LABEL}={MANAGED_BY}"
"""Label selector matching every object podrunner created."""

DEFAULT_NON_ROOT_ID = 65532
"""UID (and fsGroup) used under the restricted profile when ``run_as_user`` is not given.

``runAsNonRoot`` alone makes the kubelet refuse images whose user is root (busybox, most
distro images) with ``CreateContainerConfigError``. Giving a numeric non-root UID lets those
images start; 65532 is the conventional "nonroot" UID of distroless images.
"""

SECRET_VOLUME_NAME = "podrunner-secrets"  # noqa: S105  # a volume name, not a password
_SECRET_FILE_MODE = 0o400


FILES_VOLUME_NAME = "podrunner-files"


def files_name_for(pod_name: str) -> str:
    """Return the name of a run's per-run ConfigMap for ``PodSpec.files`` (``<pod>-files``)."""
    return f"{pod_name}-files"


def egress_name_for(pod_name: str) -> str:
    """Return the name of a run's NetworkPolicy for ``PodSpec.egress`` (``<pod>-egress``)."""
    return f"{pod_name}-egress"


def secret_name_for(pod_name: str) -> str:
    """Return the name of a run's per-run Secret (``<pod>-secrets``)."""
    return f"{pod_name}-secrets"


@attrs.frozen
class Manifests:
    """Everything one run creates, as Kubernetes JSON.

    Attributes:
        pod: The Pod.
        secret: The per-run Secret holding ``secret_env`` values and ``secret_files``
            contents, or ``None`` when the spec has none. It has no ``ownerReferences`` yet:
            the runner adds the pod as owner once the pod exists.
        config_map: The per-run ConfigMap holding ``files``, or ``None`` when the spec has
            none. Like the Secret, the runner makes the pod its owner once the pod exists.
        network_policy: The NetworkPolicy of ``egress`` (the spec's, else the one passed to
            :func:`build_manifests`), or ``None``; owned by the pod once the pod exists.
        run_id: The ``podrunner.dev/run-id`` label value on every object.
        pod_name: The pod's name.
    """

    pod: dict[str, Any] = attrs.field(repr=False)
    secret: dict[str, Any] | None = attrs.field(repr=False)
    config_map: dict[str, Any] | None
    run_id: str
    pod_name: str
    network_policy: dict[str, Any] | None = None

    @property
    def extras(self) -> list[dict[str, Any]]:
        """The objects created before the pod, in creation order, the NetworkPolicy first.

        The policy exists before the pod does, so no packet of the pod leaves unfiltered
        (as far as the CNI applies policies before a pod's first packet).
        """
        return [m for m in (self.network_policy, self.secret, self.config_map) if m is not None]

    @property
    def objects(self) -> list[dict[str, Any]]:
        """All manifests, in creation order: what the pod needs comes first."""
        return [*self.extras, self.pod]


def _labels(spec: PodSpec, run_id: str) -> dict[str, str]:
    labels = dict(spec.labels)
    labels[MANAGED_BY_LABEL] = MANAGED_BY
    labels[COMPONENT_LABEL] = spec.component
    labels[RUN_ID_LABEL] = run_id
    return dict(sorted(labels.items()))


def _metadata(spec: PodSpec, name: str, labels: dict[str, str]) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if spec.namespace:
        meta["namespace"] = spec.namespace
    meta["labels"] = labels
    return meta


def _secret_env_key(index: int, name: str) -> str:
    # Readable keys where the variable name allows it ("env.TOKEN"); relaxed env names may hold
    # characters a data key cannot, so those fall back to the index. The two forms cannot
    # collide: named keys start with "env.", indexed ones with "env-".
    key = f"env.{name}"
    return key if v.config_map_key_error(key) is None else f"env-{index}"


def _pod_security(spec: PodSpec, has_secret_files: bool) -> dict[str, Any]:
    ctx: dict[str, Any] = {}
    user = spec.run_as_user
    fs_group = spec.fs_group
    if spec.security is SecurityProfile.RESTRICTED:
        ctx["runAsNonRoot"] = True
        if user is None:
            user = DEFAULT_NON_ROOT_ID
        if fs_group is None and has_secret_files:
            # Secret files are root-owned; fsGroup makes the kubelet hand them to this group
            # (mode 0400 becomes 0440), so the non-root user can read its credentials.
            fs_group = spec.run_as_group if spec.run_as_group is not None else user
    if user is not None:
        ctx["runAsUser"] = user
    if spec.run_as_group is not None:
        ctx["runAsGroup"] = spec.run_as_group
    if fs_group is not None:
        ctx["fsGroup"] = fs_group
    if spec.security is SecurityProfile.RESTRICTED:
        ctx["seccompProfile"] = {"type": "RuntimeDefault"}
    return ctx


def _container_security(spec: PodSpec) -> dict[str, Any]:
    ctx: dict[str, Any] = {}
    if spec.security is not SecurityProfile.NONE:
        ctx["allowPrivilegeEscalation"] = False
    if spec.security is SecurityProfile.RESTRICTED:
        ctx["capabilities"] = {"drop": ["ALL"]}
    if spec.read_only_root_filesystem:
        ctx["readOnlyRootFilesystem"] = True
    return ctx


def _build(
    spec: PodSpec,
    pod_name: str,
    run_id: str,
    *,
    check_name: bool = True,
    check_id: bool = True,
    egress: EgressPolicy | None = None,
) -> Manifests:
    # The checks may be skipped for values valid by construction: a spec's own name (checked
    # by PodSpec), a generated name, a new run id.
    if check_name:
        _check_name("name", pod_name)
    if check_id:
        if not run_id:
            raise SpecError("run_id", run_id, "must be non-empty")
        _check_value("run_id", run_id, v.label_value_error(run_id))
    return _build_full(spec, pod_name, run_id, egress)


def _build_full(
    spec: PodSpec, pod_name: str, run_id: str, egress: EgressPolicy | None = None
) -> Manifests:
    labels = _labels(spec, run_id)
    secret_name = secret_name_for(pod_name)
    secret_data: dict[str, str] = {}
    env = _env(spec, secret_name, secret_data)
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    for index, volume in enumerate(spec.volumes):
        vol, mount = volume.to_manifest(f"vol-{index}")
        volumes.append(vol)
        mounts.append(mount)
    # Init containers and sidecars get the user volumes only, not the secrets and files below.
    init = init_container_manifests(spec, list(mounts), _container_security(spec))
    add_workspace(spec, volumes, mounts, init, _container_security(spec))
    _secret_files(spec, secret_name, secret_data, volumes, mounts)
    config_map = _files(spec, pod_name, labels, volumes, mounts)
    metadata = _metadata(spec, pod_name, labels)
    if spec.annotations:
        metadata["annotations"] = dict(spec.annotations)
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": _pod_spec(spec, _container(spec, env, mounts), volumes, init),
    }
    if spec.pod_patch is not None:
        managed = {k: labels[k] for k in (MANAGED_BY_LABEL, COMPONENT_LABEL, RUN_ID_LABEL)}
        pod = patch_pod(
            pod,
            thaw_patch(spec.pod_patch),
            managed_labels=managed,
            container=spec.container_name,
            wired=frozenset(
                vol["name"]
                for vol in volumes
                if vol["name"].startswith((SECRET_VOLUME_NAME, FILES_VOLUME_NAME))
            ),
        )
    secret: dict[str, Any] | None = None
    if secret_data:
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": _metadata(spec, secret_name, dict(labels)),
            "type": "Opaque",
            "data": dict(sorted(secret_data.items())),
        }
    return Manifests(
        pod=pod,
        secret=secret,
        config_map=config_map,
        run_id=run_id,
        pod_name=pod_name,
        network_policy=_network_policy(
            spec, pod_name, labels, egress if spec.egress is None else spec.egress
        ),
    )


def _network_policy(
    spec: PodSpec, pod_name: str, labels: dict[str, str], egress: EgressPolicy | None
) -> dict[str, Any] | None:
    """The NetworkPolicy of ``egress`` (the spec's own, else the default), for this pod only."""
    if egress is None:
        return None
    selector = {MANAGED_BY_LABEL: MANAGED_BY, RUN_ID_LABEL: labels[RUN_ID_LABEL]}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(spec, egress_name_for(pod_name), dict(labels)),
        "spec": egress.to_manifest(selector),
    }


def _env(spec: PodSpec, secret_name: str, secret_data: dict[str, str]) -> list[dict[str, Any]]:
    """The container's environment; puts secret values in ``secret_data``."""
    # Blanked names first, then plain values, then secrets. An explicit entry for a blanked
    # name wins, so no name appears twice.
    env: list[dict[str, Any]] = []
    if spec.blank_env:
        explicit = {e.name for e in spec.env} | set(spec.secret_env)
        env.extend({"name": name, "value": ""} for name in spec.blank_env if name not in explicit)
    env.extend(e.to_manifest() for e in spec.env)
    for index, (name, value) in enumerate(spec.secret_env.items()):
        if isinstance(value, SecretRef):
            ref = {"name": value.name, "key": value.key}
        else:
            key = _secret_env_key(index, name)
            secret_data[key] = _b64(value)
            ref = {"name": secret_name, "key": key}
        env.append({"name": name, "valueFrom": {"secretKeyRef": ref}})
    return env


def _secret_files(
    spec: PodSpec,
    secret_name: str,
    secret_data: dict[str, str],
    volumes: list[dict[str, Any]],
    mounts: list[dict[str, Any]],
) -> None:
    """Mount each secret file alone (``subPath``), from the run's Secret or a SecretRef."""
    items: list[dict[str, Any]] = []
    for index, (path, content) in enumerate(spec.secret_files.items()):
        if isinstance(content, SecretRef):
            # An existing Secret's key, projected alone so other keys do not leak into the pod.
            name = f"{SECRET_VOLUME_NAME}-ref-{index}"
            ref_items = [{"key": content.key, "path": "value", "mode": _SECRET_FILE_MODE}]
            volumes.append(
                {"name": name, "secret": {"secretName": content.name, "items": ref_items}}
            )
            mounts.append({"name": name, "mountPath": path, "readOnly": True, "subPath": "value"})
        else:
            key = f"file-{index}"
            secret_data[key] = _b64(content)
            items.append({"key": key, "path": key, "mode": _SECRET_FILE_MODE})
            mounts.append(
                {"name": SECRET_VOLUME_NAME, "mountPath": path, "readOnly": True, "subPath": key}
            )
    if items:
        volumes.append(
            {"name": SECRET_VOLUME_NAME, "secret": {"secretName": secret_name, "items": items}}
        )


def _container(
    spec: PodSpec, env: list[dict[str, Any]], mounts: list[dict[str, Any]]
) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": spec.container_name,
        "image": spec.image,
        "imagePullPolicy": spec.image_pull_policy.value,
        "command": list(spec.command),
    }
    # A workspace is where the command works unless the spec says otherwise.
    working_dir = spec.working_dir or (spec.workspace.mount_path if spec.workspace else None)
    if working_dir:
        container["workingDir"] = working_dir
    if env:
        container["env"] = env
    resources = spec.resources.to_manifest()
    if resources:
        container["resources"] = resources
    if mounts:
        container["volumeMounts"] = mounts
    container_security = _container_security(spec)
    if container_security:
        container["securityContext"] = container_security
    if spec.stdin:
        container["stdin"] = True
        container["stdinOnce"] = True
    return container


def _pod_spec(
    spec: PodSpec,
    container: dict[str, Any],
    volumes: list[dict[str, Any]],
    init: list[dict[str, Any]],
) -> dict[str, Any]:
    pod_spec: dict[str, Any] = {"restartPolicy": spec.restart_policy}
    if spec.active_deadline_seconds is not None:
        pod_spec["activeDeadlineSeconds"] = spec.active_deadline_seconds
    if spec.service_account:
        pod_spec["serviceAccountName"] = spec.service_account
    pod_spec["automountServiceAccountToken"] = spec.automount_service_account_token
    if spec.runtime_class_name is not None:
        pod_spec["runtimeClassName"] = spec.runtime_class_name
    if spec.priority_class_name is not None:
        pod_spec["priorityClassName"] = spec.priority_class_name
    # A claim is owned by whoever made it: fsGroup makes it writable by the run's user too.
    claim = spec.workspace is not None and spec.workspace.claim is not None
    pod_security = _pod_security(spec, has_secret_files=bool(spec.secret_files) or claim)
    if pod_security:
        pod_spec["securityContext"] = pod_security
    if spec.node_selector:
        pod_spec["nodeSelector"] = dict(spec.node_selector)
    if spec.node_affinity is not None:
        pod_spec["affinity"] = spec.node_affinity.to_manifest()
    if spec.tolerations:
        pod_spec["tolerations"] = [t.to_manifest() for t in spec.tolerations]
    if spec.image_pull_secrets:
        pod_spec["imagePullSecrets"] = [{"name": s} for s in spec.image_pull_secrets]
    if init:
        pod_spec["initContainers"] = init
    pod_spec["containers"] = [container]
    if volumes:
        pod_spec["volumes"] = volumes
    return pod_spec


def _files(
    spec: PodSpec,
    pod_name: str,
    labels: dict[str, str],
    volumes: list[dict[str, Any]],
    mounts: list[dict[str, Any]],
) -> dict[str, Any] | None:
    """The per-run ConfigMap of ``spec.files``; adds a volume and a mount per directory."""
    if not spec.files:
        return None
    name = files_name_for(pod_name)
    data: dict[str, str] = {}
    directories: dict[str, list[dict[str, str]]] = {}
    for index, (path, content) in enumerate(spec.files.items()):
        directory, base = posixpath.split(path)
        key = base if base not in data else f"{index}.{base}"
        data[key] = content
        directories.setdefault(directory, []).append({"key": key, "path": base})
    for index, (directory, items) in enumerate(directories.items()):
        volume = f"{FILES_VOLUME_NAME}-{index}"
        volumes.append({"name": volume, "configMap": {"name": name, "items": items}})
        mounts.append({"name": volume, "mountPath": directory, "readOnly": True})
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(spec, name, dict(labels)),
        "data": data,
    }


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _check_name(field: str, name: str) -> None:
    _check_value(field, name, v.dns1123_label_error(name))


def _check_value(field: str, value: str, error: str | None) -> None:
    if error is not None:
        raise SpecError(field, value, error)


def build_manifests(
    spec: PodSpec, *, run_id: str | None = None, egress: EgressPolicy | None = None
) -> Manifests:
    """Build every manifest one run of ``spec`` creates.

    Args:
        spec: The pod spec.
        run_id: The run's id (the ``podrunner.dev/run-id`` label); a new random one by default.
        egress: The egress policy when the spec has none (a runner's default).

    Returns:
        The pod, the per-run Secret, ConfigMap and NetworkPolicy (each ``None`` when the spec
        needs none), the run id and the pod name. The pod name is
        ``spec.name``, or :func:`~podrunner.manifest.naming.generate_pod_name` of
        ``spec.name_prefix`` (``"podrunner"`` by default).

    Raises:
        SpecError: ``run_id`` is not a valid label value.
    """
    name = spec.name or generate_pod_name(spec.name_prefix or "podrunner")
    if run_id is None:
        return _build(spec, name, new_run_id(), check_name=False, check_id=False, egress=egress)
    return _build(spec, name, run_id, check_name=False, egress=egress)


def build_pod_manifest(
    spec: PodSpec, *, run_id: str | None = None, name: str | None = None
) -> dict[str, Any]:
    """Build the Pod manifest of ``spec`` (without its per-run Secret).

    Use :func:`build_manifests` to run a spec with ``secret_env`` or ``secret_files``: the pod
    references a Secret that only that function returns.

    Args:
        spec: The pod spec.
        run_id: The run's id; a new random one by default.
        name: Pod name overriding ``spec.name`` and the generated one.

    Returns:
        The Pod as Kubernetes JSON.

    Raises:
        SpecError: ``name`` is not a DNS-1123 label, or ``run_id`` not a valid label value.
    """
    pod_name = name or spec.name or generate_pod_name(spec.name_prefix or "podrunner")
    return _build(spec, pod_name, new_run_id() if run_id is None else run_id).pod


def owner_reference(pod: dict[str, Any]) -> dict[str, Any]:
    """Return an ``ownerReferences`` entry pointing at ``pod`` (as the server returned it).

    Objects owned by the pod are garbage-collected with it. ``controller`` and
    ``blockOwnerDeletion`` are false: the pod does not manage them, and deleting it must not
    wait for them.

    Args:
        pod: The created Pod, with ``metadata.uid``.

    Returns:
        The owner reference.

    Raises:
        ValueError: The pod has no ``uid`` yet (it was not created).
    """
    meta = pod.get("metadata") or {}
    uid = meta.get("uid")
    if not uid:
        raise ValueError("the pod has no metadata.uid: pass the object the API server returned")
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "name": meta["name"],
        "uid": uid,
        "blockOwnerDeletion": False,
        "controller": False,
    }


def _sh_quote(text: str) -> str:
    # POSIX single quotes keep every byte literal; a quote itself is closed, escaped, reopened.
    return "'" + text.replace("'", "'\\''") + "'"


def build_credentials_prefix(oauth_json: str | None) -> str:
    """Return a shell prefix writing ``oauth_json`` to ``$HOME/.claude/.credentials.json``.

    Prepend it to a ``sh -c`` command. The JSON travels as a single-quoted
    ``printf '%s'`` *argument* (never the format), so quotes, ``%``, backslashes, newlines and
    any Unicode arrive byte for byte. The write runs in a subshell with ``umask 077``: the file
    is private to the user, and the main command keeps its own umask.

    Prefer ``secret_files`` in a :class:`~podrunner.spec.PodSpec`: this prefix puts the
    credentials in the pod manifest in clear text, which a per-run Secret avoids.

    Args:
        oauth_json: The credentials JSON, or ``None``.

    Returns:
        The prefix, ending with ``"&& "``; ``""`` when ``oauth_json`` is ``None``.

    Raises:
        SpecError: The text holds a NUL character, which no shell argument can carry.
    """
    if oauth_json is None:
        return ""
    if "\x00" in oauth_json:
        # The value is a credential: never echo it.
        raise SpecError("oauth_json", REDACTED, "must not contain NUL characters")
    return (
        "(umask 077 && mkdir -p \"$HOME/.claude\" && printf '%s' "
        f'{_sh_quote(oauth_json)} > "$HOME/.claude/.credentials.json") && '
    )
