"""Results out: copy files out of a run's pod before it is deleted (``run(collect=...)``).

How it works (as ``kubectl cp`` does): the run's pod gets one more container, the collector,
which mounts the collected directory (an ``emptyDir`` shared with the main container, unless
the spec already mounts a volume there) and only sleeps. It is a plain container, not a
native sidecar: the kubelet stops native sidecars once the main container ends, and the
collector must outlive it. When the main container has terminated, the run execs
``tar -cf - -C ROOT .`` in the collector and extracts the stream here, before cleanup deletes
the pod.

Extraction is safe against a hostile stream (the pod's code chose what is in the directory,
and the image chose what ``tar`` is): member names that are absolute or climb with ``..``,
symbolic links that point outside the collected tree, hard links to unknown members, devices
and FIFOs are never written; each is listed in :attr:`CollectedFiles.skipped` with the reason.
Regular files keep their exact bytes and permission bits (set-user-ID, set-group-ID and
sticky bits are dropped). Symbolic links that stay inside are kept as links, never followed.

The stream is read through the backend's streamed exec (``open_exec``) and extracted as it
arrives: with a directory, memory stays flat whatever the size; in memory, the files kept are
what is held (``docs/results.md`` gives the figures). Because the extraction runs before tar's
exit code is known, a copy that fails late removes the files it wrote to the directory.
"""

from __future__ import annotations

import copy
import fnmatch
import io
import os
import pathlib
import posixpath
import re
import shutil
import tarfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any

import attrs

from podrunner import _validation as v
from podrunner.backends.base import ExecChunk
from podrunner.errors import BackendError, SpecError, kind_of

if TYPE_CHECKING:
    from podrunner.backends.base import ExecResult
    from podrunner.manifest import Manifests
    from podrunner.run.retry import RetryingBackend

__all__ = [
    "COLLECTOR_NAME",
    "DEFAULT_COLLECT_IMAGE",
    "DEFAULT_COLLECT_LIMIT",
    "Collect",
    "CollectProblem",
    "CollectedFiles",
    "collect_files",
    "collect_option",
    "container_words",
    "extract",
    "files_of_exec",
    "files_of_stream",
    "tar_argv",
    "tar_source",
    "with_collector",
]

COLLECTOR_NAME = "podrunner-collect"
"""The collector container's name (a spec may not use it)."""

DEFAULT_COLLECT_IMAGE = "busybox:1.36.1"
"""The collector's image unless :attr:`~podrunner.Collect.image` says otherwise: with ``tar``."""

DEFAULT_COLLECT_LIMIT = 64 * 1024 * 1024
"""Bytes of regular files kept unless :attr:`~podrunner.Collect.max_bytes` says otherwise."""

VOLUME_NAME = "podrunner-collect"
"""The ``emptyDir`` volume added when the spec mounts nothing at the collected directory."""

# The collector sleeps this long past the run's total deadline (or this long without one):
# the pod is normally deleted long before, and a kept pod does not keep it forever.
_SLEEP_MARGIN_SECONDS = 3600
_GLOB_CHARS = re.compile(r"[*?\[]")
_STDERR_TAIL = 2000


def _patterns(value: object) -> tuple[str, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise SpecError("collect", value, "must be a list of absolute paths or globs")
    items = tuple(value)
    if not items:
        raise SpecError("collect", value, "must name at least one path")
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise SpecError(f"collect[{i}]", item, f"must be a string, not {kind_of(item)}")
        _check_pattern(f"collect[{i}]", item)
    if not _root_parts(items):
        raise SpecError(
            "collect",
            value,
            "the paths must lie under one directory other than / (for a directory, name what "
            "is under it: /out/**)",
        )
    return items


def _check_pattern(field: str, value: str) -> None:
    if not value.startswith("/") or value == "/":
        raise SpecError(field, value, "must be an absolute path under a directory, like /out/**")
    parts = value.strip("/").split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise SpecError(field, value, "must be a normalized path (no '//', '.' or '..')")
    if "\0" in value:
        raise SpecError(field, value, "must not contain NUL")


def _static_dir(pattern: str) -> list[str]:
    """The directory a pattern's files lie under: its components before the first glob."""
    parts = pattern.strip("/").split("/")
    static: list[str] = []
    for part in parts:
        if _GLOB_CHARS.search(part):
            return static
        static.append(part)
    return static[:-1]  # a plain path names a file (or a directory) in its parent


def _root_parts(patterns: Sequence[str]) -> list[str]:
    """The deepest directory every pattern lies under, as components (``[]``: ``/``)."""
    dirs = [_static_dir(p) for p in patterns]
    common: list[str] = []
    for parts in zip(*dirs, strict=False):  # up to the shortest
        if len(set(parts)) > 1:
            break
        common.append(parts[0])
    return common


def _directory(value: str | os.PathLike[str] | None) -> pathlib.Path | None:
    if value is None:
        return None
    path = pathlib.Path(value)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise SpecError("collect.directory", str(path), "must be an empty directory or not exist")
    return path


def _max_bytes(value: int | None) -> int | None:
    raw: object = value  # typed loosely on purpose: callers may pass anything at run time
    if raw is not None and (not isinstance(raw, int) or isinstance(raw, bool) or raw < 0):
        raise SpecError("collect.max_bytes", value, "must be None or an integer >= 0")
    return value


def _image(value: str) -> str:
    raw: object = value  # typed loosely on purpose: callers may pass anything at run time
    if not isinstance(raw, str):
        raise SpecError("collect.image", raw, f"must be a string, not {kind_of(raw)}")
    error = v.image_error(raw)
    if error:
        raise SpecError("collect.image", raw, error)
    return raw


@attrs.frozen
class Collect:
    """Which files a run copies out of its pod, and where they go.

    ``runner.run(spec, collect=["/out/**"])`` is short for
    ``collect=Collect(["/out/**"])``.

    Attributes:
        paths: Absolute paths or globs under one directory other than ``/`` (``/out/**``,
            ``/out/*.json``, ``/out/report.txt``). ``*`` and ``?`` stay within one path
            component, ``**`` spans any number; a pattern that names a directory takes
            everything under it. The deepest directory they all lie under (:attr:`root`, here
            ``/out``) is shared by the main container and the collector: the spec's volume
            mounted there or above it, else a new ``emptyDir`` mounted there.
        directory: Write the files under this directory (empty or not existing) instead of
            keeping them in memory.
        max_bytes: Keep at most this many bytes of regular files (``None``: no limit). A file
            that would go over is left out whole and listed in
            :attr:`CollectedFiles.skipped`; :attr:`CollectedFiles.truncated` is then set.
        image: The collector's image; it needs ``tar`` and ``sleep``. It runs with the main
            container's security context, so as the same user.
        timeout: Seconds the copy may take.
    """

    paths: tuple[str, ...] = attrs.field(converter=_patterns)
    directory: pathlib.Path | None = attrs.field(default=None, kw_only=True, converter=_directory)
    max_bytes: int | None = attrs.field(
        default=DEFAULT_COLLECT_LIMIT, kw_only=True, converter=_max_bytes
    )
    image: str = attrs.field(default=DEFAULT_COLLECT_IMAGE, kw_only=True, converter=_image)
    timeout: float = attrs.field(default=300.0, kw_only=True)

    @property
    def root(self) -> str:
        """The deepest directory every path lies under (``/out``); ``tar`` streams it whole."""
        return "/" + "/".join(_root_parts(self.paths))

    def selects(self, relative: str) -> bool:
        """Whether the file at ``relative`` (to :attr:`root`) is collected."""
        parts = relative.split("/")
        depth = len(_root_parts(self.paths))
        for pattern in self.paths:
            wanted = pattern.strip("/").split("/")[depth:]
            # A pattern that matches a directory takes everything under it.
            if any(_match(wanted, parts[:n]) for n in range(len(parts) + 1)):
                return True
        return False


def _match(pattern: list[str], parts: list[str]) -> bool:
    """Match path components against pattern components (``**`` spans any number)."""
    if not pattern:
        return not parts
    head = pattern[0]
    if head == "**":
        return any(_match(pattern[1:], parts[n:]) for n in range(len(parts) + 1))
    return bool(parts) and fnmatch.fnmatchcase(parts[0], head) and _match(pattern[1:], parts[1:])


def collect_option(value: Collect | Sequence[str] | None) -> Collect | None:
    """The ``collect`` argument of a run, checked (before any API call)."""
    if value is None or isinstance(value, Collect):
        return value
    return Collect(value)


# -- the pod --------------------------------------------------------------------------------


def with_collector(manifests: Manifests, collect: Collect, *, total: float | None) -> Manifests:
    """Return ``manifests`` whose pod has the collector container and the shared volume.

    Raises:
        SpecError: The spec already has a container named :data:`COLLECTOR_NAME`.
    """
    pod = copy.deepcopy(manifests.pod)
    spec = pod["spec"]
    every = [*spec.get("initContainers", ()), *spec["containers"]]
    if any(c.get("name") == COLLECTOR_NAME for c in every):
        raise SpecError("container_name", COLLECTOR_NAME, "is the collector's name, taken")
    main = spec["containers"][0]
    root = collect.root
    # The spec's volume mounted at the root or above it (the deepest), else a new emptyDir.
    covering = [
        m
        for m in main.get("volumeMounts", ())
        if root == m["mountPath"] or root.startswith(m["mountPath"].rstrip("/") + "/")
    ]
    mount = max(covering, key=lambda m: len(m["mountPath"]), default=None)
    if mount is None:
        spec.setdefault("volumes", []).append({"name": VOLUME_NAME, "emptyDir": {}})
        mount = {"name": VOLUME_NAME, "mountPath": root}
        main.setdefault("volumeMounts", []).append(mount)
    sleep = _SLEEP_MARGIN_SECONDS * 24 if total is None else int(total) + _SLEEP_MARGIN_SECONDS
    collector: dict[str, Any] = {
        "name": COLLECTOR_NAME,
        "image": collect.image,
        "command": ["sleep", str(sleep)],
        "volumeMounts": [{**mount, "readOnly": True}],
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
    }
    for key in ("securityContext", "imagePullPolicy"):
        if key in main:
            collector[key] = copy.deepcopy(main[key])
    spec["containers"].append(collector)
    return attrs.evolve(manifests, pod=pod)


def tar_argv(collect: Collect) -> list[str]:
    """The command run in the collector: the whole directory, as a tar stream on stdout."""
    return ["tar", "-cf", "-", "-C", collect.root, "."]


# -- the files ------------------------------------------------------------------------------


class CollectProblem(Exception):
    """Why files could not be collected (the run makes it a ``CollectFailed``)."""


class CollectedFiles(Mapping[str, bytes]):
    """The files a run collected: ``{path relative to the directory: bytes}``.

    With :attr:`Collect.directory`, the bytes are read from that directory when asked for.

    Attributes:
        root: The collected directory in the pod (``/out``).
        directory: Where the files were written, or ``None`` (kept in memory).
        modes: Permission bits of each file (``0o644``).
        symlinks: Symbolic links kept (they point inside the tree): ``{path: target}``.
        skipped: What was not collected and why: ``{name: reason}``.
        truncated: Whether files were left out to respect :attr:`Collect.max_bytes`.
        total_bytes: Bytes of the files collected.
        note: What ``tar`` said when it exited 1 with output (a file changed or unreadable).
    """

    def __init__(self, root: str, directory: pathlib.Path | None) -> None:
        self.root = root
        self.directory = directory
        self.modes: dict[str, int] = {}
        self.symlinks: dict[str, str] = {}
        self.skipped: dict[str, str] = {}
        self.truncated = False
        self.total_bytes = 0
        self.note = ""
        self._data: dict[str, bytes] = {}

    def __getitem__(self, path: str) -> bytes:
        if path not in self.modes:
            raise KeyError(path)
        if self.directory is None:
            return self._data[path]
        return (self.directory / path).read_bytes()

    def __iter__(self) -> Iterator[str]:
        return iter(self.modes)

    def __len__(self) -> int:
        return len(self.modes)

    def __repr__(self) -> str:
        where = "in memory" if self.directory is None else f"in {self.directory}"
        return f"<CollectedFiles {len(self)} files, {self.total_bytes} bytes {where}>"


def _safe_name(name: str) -> str | None:
    """The member's path relative to the tree, or ``None`` when it would leave it."""
    if name.startswith("/") or "\0" in name or "\\" in name:
        return None
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        return None
    return "/".join(parts)


def _link_stays_inside(name: str, target: str) -> bool:
    if not target or target.startswith("/"):
        return False
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
    # Every step must stay inside too: "a/../../x" leaves even if it comes back.
    depth = len([p for p in posixpath.dirname(name).split("/") if p])
    for part in target.split("/"):
        depth += -1 if part == ".." else 0 if part in ("", ".") else 1
        if depth < 0:
            return False
    return joined != ".." and not joined.startswith("../")


class _Extraction:
    """One extraction into memory or a directory (see :func:`extract`)."""

    def __init__(self, collect: Collect) -> None:
        self.collect = collect
        self.files = CollectedFiles(collect.root, collect.directory)
        self.dest = collect.directory
        self.dirs: dict[str, int] = {}
        self.links: list[tuple[str, str]] = []

    def member(self, tar: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        files = self.files
        name = _safe_name(m.name)
        if name is None:
            files.skipped[m.name] = "refused: an absolute path or one that climbs with '..'"
            return
        if not name or not self.collect.selects(name):
            return
        if m.isdir():
            self.dirs[name] = m.mode
        elif m.issym():
            if _link_stays_inside(name, m.linkname):
                self.links.append((name, m.linkname))
            else:
                files.skipped[name] = f"refused: a symbolic link out of the tree ({m.linkname})"
        elif m.islnk():
            self.hard_link(name, m)
        elif m.isreg():
            if self.over_limit(name, m.size):
                return
            source = tar.extractfile(m)
            assert source is not None  # a regular member always has data
            self.write(name, source, m.mode)
            files.total_bytes += m.size
        else:
            files.skipped[name] = "not copied: a device, FIFO or other special file"

    def over_limit(self, name: str, size: int) -> bool:
        limit = self.collect.max_bytes
        if limit is None or self.files.total_bytes + size <= limit:
            return False
        self.files.truncated = True
        self.files.skipped[name] = f"left out: {size} bytes would go over max_bytes={limit}"
        return True

    def hard_link(self, name: str, m: tarfile.TarInfo) -> None:
        files = self.files
        target = _safe_name(m.linkname)
        if target is None or target not in files.modes:
            files.skipped[name] = f"refused: a hard link to an unknown file ({m.linkname})"
            return
        size = len(files[target]) if self.dest is None else (self.dest / target).stat().st_size
        if self.over_limit(name, size):
            return
        if self.dest is None:
            files._data[name] = files._data[target]
            files.modes[name] = files.modes[target]
        else:
            with (self.dest / target).open("rb") as source:
                self.write(name, source, files.modes[target])
        files.total_bytes += size

    def write(self, name: str, source: IO[bytes], mode: int) -> None:
        files = self.files
        mode &= 0o777  # never set-user-ID, set-group-ID or sticky
        if self.dest is None:
            files._data[name] = source.read()
            files.modes[name] = mode
            return
        path = self.place(name)
        if path is None:
            return
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(path, flags, 0o600)
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(source, out, 1 << 20)
        os.chmod(path, mode)
        files.modes[name] = mode

    def place(self, name: str) -> pathlib.Path | None:
        """Where ``name`` goes under the directory, its parents made; ``None`` if it cannot."""
        assert self.dest is not None
        path = self.dest / name
        path.parent.mkdir(parents=True, exist_ok=True)
        real_dest = self.dest.resolve()
        real_parent = path.parent.resolve()
        if real_parent != real_dest and real_dest not in real_parent.parents:
            self.files.skipped[name] = "refused: its directory leads out of the tree"
            return None
        if path.is_dir() or path.is_symlink():
            self.files.skipped[name] = "refused: the path is taken by a directory or link"
            return None
        return path

    def finish(self) -> CollectedFiles:
        files = self.files
        if self.dest is not None:
            for name in self.dirs:  # empty ones too, before any link exists
                if not os.path.lexists(self.dest / name):
                    (self.dest / name).mkdir(parents=True, exist_ok=True)
        # Links last, so no file is ever written through one.
        for name, target in self.links:
            if self.dest is None:
                files.symlinks[name] = target
                continue
            path = self.dest / name
            if os.path.lexists(path):
                files.skipped[name] = "refused: the path is taken by a file or directory"
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(target, path)
            files.symlinks[name] = target
        if self.dest is not None:
            # Deepest first; the owner keeps rwx so the tree can always be removed.
            for name in sorted(self.dirs, key=len, reverse=True):
                if (self.dest / name).is_dir() and not (self.dest / name).is_symlink():
                    os.chmod(self.dest / name, (self.dirs[name] & 0o777) | 0o700)
        return files


def extract(stream: IO[bytes], collect: Collect) -> CollectedFiles:
    """Extract a tar stream safely (see the module docstring).

    Raises:
        CollectProblem: The stream is not a tar archive, or it is cut short.
    """
    job = _Extraction(collect)
    if job.dest is not None:
        if job.dest.exists() and any(job.dest.iterdir()):
            # Checked again here: one Collect with a directory may be given to several runs.
            raise CollectProblem(f"the directory {job.dest} is not empty (one per run)")
        job.dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for m in tar:
                job.member(tar, m)
    except (tarfile.TarError, EOFError) as exc:
        raise CollectProblem(f"the collector's tar stream could not be read: {exc}") from None
    return job.finish()


class _TarStdout(io.RawIOBase):
    """An exec's stdout as a file for :mod:`tarfile`, read as it arrives.

    Only what ``tar`` reads is held, never the stream: a chunk at a time. It counts the bytes and
    keeps the last 1024 (the end-of-archive check) and the tail of stderr.
    """

    def __init__(self, chunks: Iterator[ExecChunk]) -> None:
        super().__init__()
        self._chunks = chunks
        self._pending = memoryview(b"")
        self.total = 0
        self.tail = b""
        self.stderr = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            if chunk.stream == "stderr":
                self.stderr = (self.stderr + chunk.data)[-2 * _STDERR_TAIL :]
                continue
            self._pending = memoryview(chunk.data)
            self.total += len(chunk.data)
            self.tail = (self.tail + chunk.data[-1024:])[-1024:]
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def drain(self) -> None:
        """Read what ``tar`` wrote after the end of the archive (padding), to the end."""
        scratch = bytearray(64 * 1024)
        while self.readinto(scratch):
            pass


def files_of_stream(
    chunks: Iterator[ExecChunk],
    wait: Callable[[], int],
    collect: Collect,
    container: str = COLLECTOR_NAME,
) -> CollectedFiles:
    """Extract a ``tar`` exec's output as it arrives; then check how ``tar`` ended.

    Args:
        chunks: The exec's output.
        wait: Returns the exec's exit code once its output has ended.
        collect: What to keep, and where.
        container: The container ``tar`` ran in (the collector, or a pool pod's own).

    Raises:
        CollectProblem: ``tar`` is missing or failed, or its stream is unreadable (files
            already written to :attr:`Collect.directory` are then removed).
    """
    dest = collect.directory
    fresh = dest is not None and not (dest.exists() and any(dest.iterdir()))
    out = _TarStdout(chunks)
    try:
        try:
            files: CollectedFiles | None = extract(io.BufferedReader(out, 64 * 1024), collect)
            problem: CollectProblem | None = None
        except CollectProblem as exc:
            files, problem = None, exc
        out.drain()
        err = out.stderr.decode("utf-8", "replace")[-_STDERR_TAIL:].strip()
        code = wait()
        _check_tar(code, err, out, collect, container)
        if problem is not None or files is None:
            raise problem or CollectProblem(
                f"the {tar_source(container)}'s tar stream could not be read"
            )
    except BaseException:
        if fresh and dest is not None and dest.exists():
            shutil.rmtree(dest, ignore_errors=True)  # a partial copy is no copy
        raise
    if code == 1:
        files.note = err
    return files


def tar_source(container: str) -> str:
    """How errors name where ``tar`` ran: ``collector``, or ``container NAME``."""
    return "collector" if container == COLLECTOR_NAME else f"container {container}"


def container_words(container: str) -> str:
    """How errors name the container ``tar`` runs in."""
    return "collector container" if container == COLLECTOR_NAME else f"container {container}"


def _check_tar(code: int, err: str, out: _TarStdout, collect: Collect, container: str) -> None:
    """Raise when ``tar`` is missing or failed, or its stream was cut short."""
    if code in (126, 127) or (code != 0 and "not found" in err and not out.total):
        if container != COLLECTOR_NAME:
            raise CollectProblem(
                f"the image of container {container} has no usable tar (exit {code}: {err}); "
                "a pool's pods copy files out with their own image's tar"
            )
        raise CollectProblem(
            f"the collect image {collect.image} has no usable tar (exit {code}: {err}); "
            "pass Collect(..., image=...) with an image that has tar and sleep, such as "
            f"{DEFAULT_COLLECT_IMAGE}"
        )
    # tar exits 1 when a file changed or could not be read, and still writes the rest.
    if code not in (0, 1) or (code == 1 and not out.total):
        where = "the collector" if container == COLLECTOR_NAME else f"container {container}"
        raise CollectProblem(f"tar in {where} exited {code}: {err}")
    # tar ends its stream with two zero blocks: a stream cut short (a dropped connection, a
    # killed exec) would otherwise pass for a shorter archive.
    if out.total % 512 or out.total < 1024 or out.tail.count(0) != 1024:
        raise CollectProblem(
            f"the {tar_source(container)}'s tar stream was cut short or is not a tar archive "
            f"({out.total} bytes)"
        )


def files_of_exec(result: ExecResult, collect: Collect) -> CollectedFiles:
    """The files of a finished ``tar`` exec, or why there are none (:func:`files_of_stream`).

    Raises:
        CollectProblem: ``tar`` is missing or failed, or its stream is unreadable.
    """
    chunks = [ExecChunk("stdout", result.stdout), ExecChunk("stderr", result.stderr)]
    return files_of_stream(iter(chunks), lambda: result.exit_code, collect)


def collect_files(
    api: RetryingBackend,
    namespace: str,
    pod: str,
    collect: Collect,
    container: str = COLLECTOR_NAME,
) -> CollectedFiles:
    """Copy the files out of the pod's collector container (the threaded drivers' step).

    A pool's pod, whose main container outlives each run, is copied from that container.

    ``tar``'s output is extracted as it arrives; past :attr:`Collect.timeout` the exec is
    closed (from a timer thread, which ends the read).

    Raises:
        CollectProblem: The collector cannot be reached, the copy broke or took too long, or
            see :func:`files_of_stream`.
    """
    try:
        stream = api.open_exec(namespace, pod, container, tar_argv(collect))
    except BackendError as exc:
        raise CollectProblem(
            f"could not exec tar in the {container_words(container)}: {exc}"
        ) from None
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        stream.close()

    timer = threading.Timer(collect.timeout, expire)
    timer.daemon = True
    timer.start()
    try:
        with stream:
            return files_of_stream(iter(stream), stream.wait, collect, container)
    except (BackendError, CollectProblem) as exc:
        if expired.is_set():
            raise CollectProblem(f"the copy did not end within {collect.timeout}s") from None
        if isinstance(exc, CollectProblem):
            raise
        raise CollectProblem(
            f"the copy from the {container_words(container)} broke: {exc}"
        ) from None
    finally:
        timer.cancel()
