"""The pod parts of a :class:`~podrunner.spec.Workspace`: a volume, a mount, init containers.

One init container per source, named ``workspace-0``, ``workspace-1``..., placed after the
sidecars and before the spec's own init containers (so those find the workspace filled). Each
runs a fixed program whose inputs (URL, ref, destination, digest) are separate arguments,
never spliced into shell text.

Credentials for a private https repository: the token comes from the Secret through
``secretKeyRef`` into ``PODRUNNER_GIT_PASSWORD``, and git is configured through its
``GIT_CONFIG_COUNT`` environment variables with a credential helper scoped to the repository's
``scheme://host`` that prints it. The helper's text names the variable, not its value, and
``echo`` is a shell builtin, so the token is in no pod field and no process's argv; it is not
sent to any other host (a redirect elsewhere gets no credentials).

An ssh key and ``known_hosts``: each is a Secret volume with one item, mounted read-only into
that one init container, next to a memory-backed scratch ``emptyDir``. ssh refuses a private
key others can read, and the kubelet makes Secret files group-readable for ``fsGroup``, so a
wrapper copies the key into the scratch directory with mode 0600 and points
``GIT_SSH_COMMAND`` at it, with strict host key checking against the given hosts only.
"""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING, Any

from podrunner.spec.workspace import GitSource, container_name, is_commit, url_host

if TYPE_CHECKING:
    from podrunner.spec._fields import SecretRef

if TYPE_CHECKING:
    from podrunner.spec import PodSpec
    from podrunner.spec.workspace import DownloadSource, Workspace

__all__ = ["WORKSPACE_VOLUME_NAME", "add_workspace"]

WORKSPACE_VOLUME_NAME = "podrunner-workspace"

# The helper git runs for "get" (git appends the operation as $1): it prints the user name and
# the token from the environment; for "store"/"erase" it does nothing.
_HELPER = (
    '!f() { test "$1" = get || return 0; echo "username=$PODRUNNER_GIT_USERNAME"; '
    'echo "password=$PODRUNNER_GIT_PASSWORD"; }; f'
)

# Checkout of a commit id: "git clone --branch" takes names only. $1 url, $2 commit, $3 dest,
# $4 depth ("" for the whole history).
_FETCH_COMMIT = (
    'set -eu; git init --quiet "$3"; cd "$3"; git remote add origin "$1"; '
    'if [ -n "$4" ]; then git fetch --depth "$4" origin "$2"; '
    'else git fetch origin "$2"; fi; git checkout --quiet --detach FETCH_HEAD'
)

# $1 key file ("" for none), $2 known_hosts file, $3 private scratch directory; then the git
# command to run. BatchMode: a missing key or host fails at once instead of prompting.
_SSH = (
    "set -eu; key=$1; hosts=$2; tmp=$3; shift 3; "
    'opts="-o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=\\"$hosts\\""; '
    'if [ -n "$key" ]; then cp "$key" "$tmp/identity"; chmod 600 "$tmp/identity"; '
    'opts="$opts -o IdentitiesOnly=yes -i \\"$tmp/identity\\""; fi; '
    'GIT_SSH_COMMAND="ssh $opts"; export GIT_SSH_COMMAND; exec "$@"'
)
_SSH_DIR = "/var/run/podrunner/git-ssh-{index}"

# $1 url, $2 destination file, $3 expected SHA-256 ("" for none).
_DOWNLOAD = (
    'set -eu; mkdir -p "$(dirname "$2")"; wget -q -O "$2" "$1"; '
    'if [ -n "$3" ] && ! echo "$3  $2" | sha256sum -c - >/dev/null; then '
    'echo "podrunner: $1: SHA-256 mismatch, expected $3" >&2; exit 1; fi'
)


def _destination(workspace: Workspace, path: str) -> str:
    return posixpath.join(workspace.mount_path, path) if path else workspace.mount_path


def _git_command(source: GitSource, dest: str) -> list[str]:
    if is_commit(source.ref):
        depth = "" if source.depth is None else str(source.depth)
        return ["sh", "-c", _FETCH_COMMIT, "sh", source.url, source.ref, dest, depth]
    argv = ["git", "clone"]
    if source.depth is not None:
        argv += ["--depth", str(source.depth)]
    if source.ref != "HEAD":
        argv += ["--branch", source.ref]
    return [*argv, "--", source.url, dest]


def _git_env(source: GitSource) -> list[dict[str, Any]]:
    # No terminal prompt: a missing or wrong credential fails at once instead of waiting.
    env: list[dict[str, Any]] = [{"name": "GIT_TERMINAL_PROMPT", "value": "0"}]
    if source.credentials is None:
        return env
    ref = {"name": source.credentials.name, "key": source.credentials.key}
    return [
        *env,
        {"name": "PODRUNNER_GIT_USERNAME", "value": source.username},
        {"name": "PODRUNNER_GIT_PASSWORD", "valueFrom": {"secretKeyRef": ref}},
        {"name": "GIT_CONFIG_COUNT", "value": "2"},
        # An empty helper first resets any helper the image configures.
        {"name": "GIT_CONFIG_KEY_0", "value": "credential.helper"},
        {"name": "GIT_CONFIG_VALUE_0", "value": ""},
        {"name": "GIT_CONFIG_KEY_1", "value": f"credential.{url_host(source.url)}.helper"},
        {"name": "GIT_CONFIG_VALUE_1", "value": _HELPER},
    ]


def _ssh_secret_volume(name: str, ref: SecretRef, path: str, mode: int) -> dict[str, Any]:
    items = [{"key": ref.key, "path": path}]
    return {"name": name, "secret": {"secretName": ref.name, "items": items, "defaultMode": mode}}


def _ssh(
    source: GitSource, index: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    """The volumes, mounts and wrapper argv of an ssh source's key and hosts (none without)."""
    if source.known_hosts is None:
        return [], [], []
    where = _SSH_DIR.format(index=index)
    volumes: list[dict[str, Any]] = [
        _ssh_secret_volume(
            f"podrunner-git-hosts-{index}", source.known_hosts, "known_hosts", 0o444
        ),
        {"name": f"podrunner-git-scratch-{index}", "emptyDir": {"medium": "Memory"}},
    ]
    mounts: list[dict[str, Any]] = [
        {"name": f"podrunner-git-hosts-{index}", "mountPath": f"{where}/hosts", "readOnly": True},
        {"name": f"podrunner-git-scratch-{index}", "mountPath": f"{where}/scratch"},
    ]
    key = ""
    if source.ssh_key is not None:
        # 0440: readable by the fsGroup the restricted profile sets, copied to 0600 before use.
        name = f"podrunner-git-key-{index}"
        volumes.append(_ssh_secret_volume(name, source.ssh_key, "identity", 0o440))
        mounts.append({"name": name, "mountPath": f"{where}/key", "readOnly": True})
        key = f"{where}/key/identity"
    return (
        volumes,
        mounts,
        ["sh", "-c", _SSH, "sh", key, f"{where}/hosts/known_hosts", f"{where}/scratch"],
    )


def _download_command(source: DownloadSource, dest: str) -> list[str]:
    return ["sh", "-c", _DOWNLOAD, "sh", source.url, dest, source.sha256 or ""]


def _init_container(
    spec: PodSpec,
    workspace: Workspace,
    index: int,
    mount: dict[str, Any],
    security: dict[str, Any],
    volumes: list[dict[str, Any]],
) -> dict[str, Any]:
    source = workspace.sources[index]
    mounts = [dict(mount)]
    dest = _destination(workspace, source.path)
    container: dict[str, Any] = {
        "name": container_name(index),
        "image": workspace.image,
        "imagePullPolicy": spec.image_pull_policy.value,
    }
    if isinstance(source, GitSource):
        ssh_volumes, ssh_mounts, wrapper = _ssh(source, index)
        volumes += ssh_volumes
        mounts += ssh_mounts
        container["command"] = [*wrapper, *_git_command(source, dest)]
        container["env"] = _git_env(source)
    else:
        container["command"] = _download_command(source, dest)
    resources = workspace.resources.to_manifest()
    if resources:
        container["resources"] = resources
    container["volumeMounts"] = mounts
    if security:
        container["securityContext"] = dict(security)
    return container


def add_workspace(
    spec: PodSpec,
    volumes: list[dict[str, Any]],
    mounts: list[dict[str, Any]],
    init: list[dict[str, Any]],
    security: dict[str, Any],
) -> None:
    """Add the spec's workspace to a pod being built (nothing when it has none).

    Args:
        spec: The pod spec.
        volumes: The pod's volumes: the workspace volume is appended.
        mounts: The main container's mounts: the workspace mount is appended.
        init: The ``initContainers`` built so far (sidecars, then the spec's init
            containers): each gets the mount, and the workspace's containers go in between.
        security: The container ``securityContext`` the main container gets.
    """
    workspace = spec.workspace
    if workspace is None:
        return
    source: dict[str, Any]
    if workspace.claim is not None:
        source = {"persistentVolumeClaim": {"claimName": workspace.claim}}
    else:
        source = {"emptyDir": {"sizeLimit": workspace.size_limit} if workspace.size_limit else {}}
    volumes.append({"name": WORKSPACE_VOLUME_NAME, **source})
    mount = {"name": WORKSPACE_VOLUME_NAME, "mountPath": workspace.mount_path}
    mounts.append(mount)
    for container in init:
        container.setdefault("volumeMounts", []).append(dict(mount))
    steps = [
        _init_container(spec, workspace, i, mount, security, volumes)
        for i in range(len(workspace.sources))
    ]
    at = len(spec.sidecars)
    init[at:at] = steps
