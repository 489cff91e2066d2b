"""The files and environment of a container that the local runtime runs as a process.

Each pod gets a private directory (under one per-process directory in the system temp dir) holding
``home/``, ``tmp/``, ``work/`` (the default working directory) and ``volumes/<name>/``: Secret and
ConfigMap volumes are written there (``items``, modes and ``subPath`` honoured), emptyDirs are
empty directories, a ``hostPath`` is the host path itself, a PVC is one directory per claim and
namespace that outlives the pods using it (as a bound volume does; it goes when the process exits),
and any other volume is an empty directory. A local process cannot see a mount at its
``mountPath``, so paths are mapped, by one rule: **an argv element, an env value or the
``workingDir`` that is a mount path, or starts with one followed by** ``/``, **is rewritten to the
local directory** (the longest mount path wins). Paths inside longer strings (a shell script's
body) are not rewritten. ``HOME`` is always a per-run directory: the mapped mount when the spec's
``HOME`` is one, else ``home/``. ``TMPDIR`` defaults to ``tmp/``. The local runtime removes the
directory when the pod goes.
"""

from __future__ import annotations

import base64
import os
import stat
import tempfile
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from podrunner.backends.fake.podsim import HOST_IP, NODE_NAME

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from podrunner.backends.fake.podsim import ContainerSim, PodSim

__all__ = ["prepare_files", "run_directory"]

_Objects = dict[str, dict[tuple["str | None", str], dict[str, Any]]]


def run_directory(sim: PodSim, parent: Callable[[], str]) -> Path:
    """Return the pod's private directory, made under ``parent()`` on first use."""
    if sim.tempdir is None:
        root = Path(tempfile.mkdtemp(prefix=f"{sim.name[:40]}-", dir=parent()))
        sim.tempdir = str(root)
        for sub in ("home", "tmp", "work", "volumes"):
            (root / sub).mkdir()
    return Path(sim.tempdir)


def prepare_files(
    objects: _Objects,
    pod: dict[str, Any],
    sim: PodSim,
    c: ContainerSim,
    root: Path,
    uid: int | None,
    gid: int | None,
    groups: list[int] | None,
    claims: Callable[[str, str], Path] | None = None,
) -> tuple[list[str], dict[str, str], Path, Callable[[str], str]]:
    """Write the pod's volumes under ``root``; return the container's argv, env and cwd.

    The fourth value maps a path in the container to the local one (for exec's argv).

    ``uid``, ``gid`` and ``groups`` are who the process runs as (``None``: the caller): the
    directory is given to that user, and ``PATH`` keeps only what it can search. ``claims``
    gives the directory of a PVC (namespace, claim name); without it a PVC is empty per pod.
    """
    pod_spec = pod.get("spec") or {}
    every = [*(pod_spec.get("initContainers") or ()), *(pod_spec.get("containers") or ())]
    spec: dict[str, Any] = next((x for x in every if x.get("name") == c.name), {})
    mounts = _write_volumes(objects, sim, pod, spec, root, claims)
    local = partial(_local_path, mounts)
    env = {"PATH": _search_path(uid, gid, groups), "HOSTNAME": sim.name}
    mapped = _environment(env, objects, sim, spec, local)
    # HOME outside every mount would be a directory of the host: use the run's own.
    if "HOME" not in mapped:
        env["HOME"] = str(root / "home")
    env.setdefault("TMPDIR", str(root / "tmp"))
    argv = [local(a) for a in c.argv]
    workdir = spec.get("workingDir")
    cwd = Path(local(workdir)) if workdir and local(workdir) != workdir else root / "work"
    if uid is not None and uid != os.geteuid():
        _chown_tree(root, uid, gid if gid is not None else -1)
    return argv, env, cwd, local


def _write_volumes(
    objects: _Objects,
    sim: PodSim,
    pod: dict[str, Any],
    spec: dict[str, Any],
    root: Path,
    claims: Callable[[str, str], Path] | None = None,
) -> dict[str, str]:
    """Materialise the pod's volumes; return ``{mountPath: local path}`` for ``spec``."""
    places: dict[str, Path] = {}
    for index, volume in enumerate((pod.get("spec") or {}).get("volumes") or []):
        name = str(volume.get("name", ""))
        target = root / "volumes" / str(index)
        host = (volume.get("hostPath") or {}).get("path")
        if host:
            places[name] = Path(host)
            continue
        claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
        if claim and claims is not None:
            places[name] = claims(sim.namespace, str(claim))
            continue
        target.mkdir(exist_ok=True)
        places[name] = target
        for kind, field, key in (
            ("Secret", "secret", "secretName"),
            ("ConfigMap", "configMap", "name"),
        ):
            ref = volume.get(field)
            if ref:
                obj = objects[kind].get((sim.namespace, ref.get(key, ""))) or {}
                _write_files(target, kind, obj, ref)
    mounts: dict[str, str] = {}
    for mount in spec.get("volumeMounts") or []:
        place = places.get(str(mount.get("name", "")))
        path = str(mount.get("mountPath", "")).rstrip("/")
        if place is None or not path:
            continue
        sub = str(mount.get("subPath") or "")
        local = _inside(place, sub) if sub else place
        if local is not None:
            mounts[path] = str(local)
    return mounts


def _local_path(mounts: Mapping[str, str], value: str) -> str:
    # A path that exists on this machine names the user's own file (a program under /tmp
    # while the pod mounts an emptyDir there): only a path the pod alone would have is
    # moved into the run's directory.
    if os.path.lexists(value):
        return value
    return _map_path(value, mounts)


def _search_path(uid: int | None, gid: int | None, groups: list[int] | None) -> str:
    path = os.environ.get("PATH", "/usr/bin:/bin")
    if uid is not None and uid != os.geteuid():
        # The caller's PATH may list directories the command's user cannot search (under
        # /root...): a command found there would fail with EACCES instead of running.
        gids = {gid if gid is not None else uid, *(groups or [])}
        path = ":".join(d for d in path.split(":") if _searchable(d, uid, gids))
    return path


def _environment(
    env: dict[str, str],
    objects: _Objects,
    sim: PodSim,
    spec: Mapping[str, Any],
    local: Callable[[str], str],
) -> set[str]:
    """Add the container's ``envFrom`` and ``env`` to ``env``; return the mapped names."""
    mapped: set[str] = set()
    for source in spec.get("envFrom") or []:
        prefix = source.get("prefix", "")
        for kind, field in (("Secret", "secretRef"), ("ConfigMap", "configMapRef")):
            ref = source.get(field)
            if ref:
                for key, value in _data_of(objects, sim, kind, ref.get("name", "")).items():
                    env[prefix + key] = value
    for var in spec.get("env") or []:
        name = str(var.get("name"))
        if "value" in var:
            value = str(var.get("value") or "")
            env[name] = local(value)
            if env[name] != value:
                mapped.add(name)
            continue
        found = _value_from(objects, sim, var.get("valueFrom") or {})
        if found is not None:
            env[name] = found
    return mapped


def _data_of(objects: _Objects, sim: PodSim, kind: str, name: str) -> dict[str, str]:
    obj = objects[kind].get((sim.namespace, name)) or {}
    raw = obj.get("data") or {}
    if kind == "Secret":
        return {k: base64.b64decode(v).decode("utf-8", "replace") for k, v in raw.items()}
    return dict(raw)


def _value_from(objects: _Objects, sim: PodSim, source: Mapping[str, Any]) -> str | None:
    """An ``env[].valueFrom``'s value (``None``: a key that does not exist)."""
    value = None
    for kind, field in (("Secret", "secretKeyRef"), ("ConfigMap", "configMapKeyRef")):
        ref = source.get(field)
        if ref:
            found = _data_of(objects, sim, kind, ref.get("name", "")).get(ref.get("key", ""))
            if found is not None:
                value = found
    field_ref = source.get("fieldRef")
    if field_ref:
        values = {
            "metadata.name": sim.name,
            "metadata.namespace": sim.namespace,
            "metadata.uid": sim.uid,
            "spec.nodeName": NODE_NAME,
            "status.podIP": sim.pod_ip or "",
            "status.hostIP": HOST_IP,
        }
        value = values.get(field_ref.get("fieldPath", ""), "")
    return value


# -- helpers -------------------------------------------------------------------------------------


def _map_path(value: str, mounts: Mapping[str, str]) -> str:
    """Rewrite ``value`` if it is a mount path or lies under one (the longest wins)."""
    best = ""
    for path in mounts:
        if len(path) > len(best) and (value == path or value.startswith(path + "/")):
            best = path
    return mounts[best] + value[len(best) :] if best else value


def _inside(base: Path, relative: str) -> Path | None:
    """``base / relative`` if it stays inside ``base`` (no ``..`` escape), else ``None``."""
    target = (base / relative).resolve()
    return target if target == base.resolve() or base.resolve() in target.parents else None


def _write_files(target: Path, kind: str, obj: Mapping[str, Any], ref: Mapping[str, Any]) -> None:
    data: dict[str, bytes] = {}
    for key, value in (obj.get("data") or {}).items():
        data[key] = base64.b64decode(value) if kind == "Secret" else str(value).encode()
    for key, value in (obj.get("binaryData") or {}).items():
        data[key] = base64.b64decode(value)
    default_mode = ref.get("defaultMode", 0o644)
    items = ref.get("items")
    chosen = (
        [(i.get("key", ""), i.get("path", ""), i.get("mode", default_mode)) for i in items]
        if items
        else [(k, k, default_mode) for k in data]
    )
    for key, path, mode in chosen:
        if key not in data:
            continue
        file = _inside(target, str(path))
        if file is None or file == target.resolve():
            continue
        file.parent.mkdir(parents=True, exist_ok=True)
        file.unlink(missing_ok=True)  # a restart rewrites it; a 0400 file cannot be opened
        file.write_bytes(data[key])
        os.chmod(file, int(mode) & 0o777)


def _searchable(directory: str, uid: int, gids: set[int]) -> bool:
    """Whether ``uid`` (in groups ``gids``) can search ``directory`` and each of its parents."""
    path = Path(directory)
    if not path.is_absolute():
        return False
    for part in (path, *path.parents):
        try:
            st = part.stat()
        except OSError:
            return False
        if st.st_uid == uid:
            bit = stat.S_IXUSR
        elif st.st_gid in gids:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            return False
    return True


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    os.chown(root, uid, gid)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.chown(os.path.join(dirpath, name), uid, gid, follow_symlinks=False)
