"""A run's workspace: a directory filled by init containers before the main container starts.

A :class:`Workspace` names what goes into the directory (git checkouts, URL downloads, in
order) and where it lives: an ``emptyDir`` (default; ``size_limit`` caps it and the kubelet
evicts the pod above it) or an existing PersistentVolumeClaim (``claim``). The pod mounts it
at ``mount_path`` in the main container, in every init container and sidecar; one init
container per source fills it, before the spec's own init containers run.

Everything is checked on construction, with the field, the value and the rule in the error:
URL schemes (``https``, ``ssh``, ``git``, and ``file`` for repositories inside the init
container's image or the local runtime), no credentials embedded in a URL (the error shows the
URL with them redacted), git refs that cannot be taken for an option, depths, relative
destinations without ``..``, a ``sha256`` of 64 hex digits, the size limit as a quantity.

Credentials for a private repository are a :class:`~podrunner.SecretRef`: the init container
reads the token from the Secret (``secretKeyRef``), and a git credential helper scoped to the
repository's host hands it to git. The token never appears in the pod spec, in an argv, or in
an error. For an ssh URL, ``ssh_key`` is a Secret key holding a private key and
``known_hosts`` one holding the server's host keys (required with a key: podrunner never
trusts a host key on first use); both are mounted as files into that init container only.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import attrs

from podrunner import _validation as v
from podrunner.errors import REDACTED, SpecError, kind_of
from podrunner.spec._fields import (
    SecretRef,
    _absolute_path,
    _check,
    _optional_int,
    _quantity,
    _require_str,
    _text,
)
from podrunner.spec.values import Resources

__all__ = [
    "DEFAULT_WORKSPACE_IMAGE",
    "DEFAULT_WORKSPACE_PATH",
    "DownloadSource",
    "GitSource",
    "Workspace",
]

DEFAULT_WORKSPACE_IMAGE = "alpine/git:v2.47.2"
"""The image of the init containers that fill a workspace.

``alpine/git`` is Alpine Linux with git (>= 2.31 is needed for ``GIT_CONFIG_COUNT``), BusyBox
``sh``, ``wget`` and ``sha256sum``: everything the git and download steps run. A pinned tag,
so a run is reproducible; mirror it in your own registry with ``Workspace(image=...)``. The
image's tags carry a ``v`` (``v2.47.2``), the spelling public manifests that pull it use; no
registry is reachable from podrunner's test machines, so the tag is not pulled in tests.
"""

DEFAULT_WORKSPACE_PATH = "/workspace"
"""Where the workspace is mounted when no ``mount_path`` is given."""

_GIT_SCHEMES = ("https", "ssh", "git", "file")
_DOWNLOAD_SCHEMES = ("https",)
_SCP_LIKE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^/\\].*$")  # git@host:org/repo
_HEX = re.compile(r"^[0-9a-fA-F]+$")
_REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")
_MAX_REF = 255
_MAX_SOURCES = 16  # one init container each; more is surely a mistake


# --------------------------------------------------------------------------------------------
# URLs


def redact_url(url: str) -> str:
    """Return ``url`` with any ``user[:password]@`` part replaced, for error messages."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        _, at, tail = url.rpartition("@")
        return f"{REDACTED}@{tail}" if at else url
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority = rest[:end]
    if "@" not in authority:
        return url
    return f"{scheme}://{REDACTED}@{authority.rpartition('@')[2]}{rest[end:]}"


def _url(field: str, value: object, schemes: tuple[str, ...]) -> str:
    url = _require_str(field, value, secret=True)
    shown = redact_url(url)
    if not url or any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise SpecError(
            field, shown, "must be a non-empty URL without spaces or control characters"
        )
    if "ssh" in schemes and _SCP_LIKE.match(url) and "://" not in url:
        return url  # git@github.com:org/repo.git, ssh's own syntax
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in schemes:
        allowed = ", ".join(f"{s}://" for s in schemes)
        raise SpecError(field, shown, f"must be a URL starting with {allowed}")
    authority = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    user, at, host = authority.rpartition("@")
    if at and (scheme.lower() != "ssh" or ":" in user):
        raise SpecError(
            field,
            shown,
            "must not embed credentials (user:token@): pass credentials=SecretRef(...), "
            "which the init container reads from the Secret",
        )
    if scheme.lower() != "file" and not host:
        raise SpecError(field, shown, "must name a host")
    if scheme.lower() == "file" and not rest.startswith("/"):
        raise SpecError(field, shown, "file:// URLs take an absolute path (file:///srv/repo)")
    return url


def url_host(url: str) -> str:
    """Return ``scheme://host[:port]`` of an https URL: the scope of its credential helper."""
    scheme, _, rest = url.partition("://")
    authority = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    return f"{scheme.lower()}://{authority}"


# --------------------------------------------------------------------------------------------
# Source fields


def is_commit(ref: str) -> bool:
    """Whether ``ref`` is a full commit id (40 hex digits, or 64 for SHA-256 repositories)."""
    return len(ref) in (40, 64) and _HEX.match(ref) is not None


def _ref(value: object) -> str:
    ref = _text("git.ref", value)
    if is_commit(ref):
        return ref.lower()
    # git check-ref-format's rules, and no leading "-" (it would be read as an option).
    broken = (
        not ref
        or len(ref) > _MAX_REF
        or ref.startswith(("-", "/"))
        or ref.endswith(("/", ".", ".lock"))
        or ".." in ref
        or "@{" in ref
        or "//" in ref
        or ref == "@"
        or _REF_FORBIDDEN.search(ref) is not None
        or any(part.startswith(".") for part in ref.split("/"))
    )
    if broken:
        raise SpecError(
            "git.ref",
            ref,
            "must be a branch or tag name git accepts (no spaces, '..', '~^:?*[\\', leading "
            "'-' or '.'), 'HEAD', or a full commit id of 40 hex digits",
        )
    return ref


def _depth(value: object) -> int | None:
    return _optional_int("git.depth", value, minimum=1, maximum=2**31 - 1)


def _relative(field: str, value: object, *, allow_root: bool) -> str:
    path = _text(field, value)
    parts = [p for p in path.split("/") if p]
    if path.startswith("/") or any(p in ("..", ".") for p in parts):
        raise SpecError(field, path, "must be a relative path without '.' or '..' elements")
    if not parts and not allow_root:
        raise SpecError(field, path, "must name a file in the workspace")
    if path.endswith("/") and not allow_root:
        raise SpecError(field, path, "must be a file path, not a directory")
    return "/".join(parts)


def _git_url(value: object) -> str:
    return _url("git.url", value, _GIT_SCHEMES)


def _git_path(value: object) -> str:
    return _relative("git.path", value, allow_root=True)


def _download_url(value: object) -> str:
    return _url("download.url", value, _DOWNLOAD_SCHEMES)


def _download_path(value: object) -> str:
    return _relative("download.path", value, allow_root=False)


def _credentials(value: object) -> SecretRef | None:
    if value is None or isinstance(value, SecretRef):
        return value
    # A string here is most likely the token itself: never echo it.
    raise SpecError("git.credentials", REDACTED, f"must be a SecretRef, not {kind_of(value)}")


def _ssh_secret(field: str, value: object) -> SecretRef | None:
    if value is None or isinstance(value, SecretRef):
        return value
    # A string here may be the key itself: never echo it.
    raise SpecError(field, REDACTED, f"must be a SecretRef, not {kind_of(value)}")


def _ssh_key(value: object) -> SecretRef | None:
    return _ssh_secret("git.ssh_key", value)


def _known_hosts(value: object) -> SecretRef | None:
    return _ssh_secret("git.known_hosts", value)


def is_ssh_url(url: str) -> bool:
    """Whether git reaches ``url`` over ssh (``ssh://`` or ssh's ``user@host:path``)."""
    return url.lower().startswith("ssh://") or (
        "://" not in url and _SCP_LIKE.match(url) is not None
    )


def _username(value: object) -> str:
    name = _text("git.username", value)
    if not name or ":" in name or "\n" in name:
        raise SpecError("git.username", name, "must be non-empty, without ':' or newlines")
    return name


def _sha256(value: object) -> str | None:
    if value is None:
        return None
    digest = _text("download.sha256", value)
    if len(digest) != 64 or not _HEX.match(digest):
        raise SpecError("download.sha256", digest, "must be 64 hex digits (a SHA-256 digest)")
    return digest.lower()


@attrs.frozen
class GitSource:
    """A git checkout into the workspace (``git clone``, shallow by default).

    Attributes:
        url: ``https://``, ``ssh://`` (or ``git@host:path``), ``git://`` or ``file://``
            (a path inside the init container). Never with credentials in it.
        ref: A branch or tag, ``"HEAD"`` (the remote's default branch), or a full commit id
            (fetched by id: the server must allow it, as GitHub and GitLab do).
        depth: History depth (``--depth``); ``None`` clones the whole history.
        credentials: A Secret key holding a token or password for an ``https`` URL.
        username: The user name sent with ``credentials`` (``x-access-token`` suits GitHub
            tokens; GitLab takes ``oauth2``).
        ssh_key: A Secret key holding a private key (OpenSSH format) for an ssh URL.
        known_hosts: A Secret key holding ``known_hosts`` lines for the ssh server (as
            ``ssh-keyscan`` prints them, checked once by you); required with ``ssh_key``.
        path: Directory in the workspace, relative; ``""`` is the workspace itself. It must
            be empty or missing when the clone starts.
    """

    url: str = attrs.field(converter=_git_url)
    ref: str = attrs.field(default="HEAD", converter=_ref)
    depth: int | None = attrs.field(default=1, kw_only=True, converter=_depth)
    credentials: SecretRef | None = attrs.field(default=None, kw_only=True, converter=_credentials)
    username: str = attrs.field(default="x-access-token", kw_only=True, converter=_username)
    path: str = attrs.field(default="", kw_only=True, converter=_git_path)
    ssh_key: SecretRef | None = attrs.field(default=None, kw_only=True, converter=_ssh_key)
    known_hosts: SecretRef | None = attrs.field(default=None, kw_only=True, converter=_known_hosts)

    def __attrs_post_init__(self) -> None:
        if self.credentials is not None and not self.url.lower().startswith("https://"):
            raise SpecError(
                "git.credentials",
                self.credentials,
                "is sent to https:// URLs only (for an ssh URL give ssh_key and known_hosts)",
            )
        ssh = is_ssh_url(self.url)
        for field, ref in (("git.ssh_key", self.ssh_key), ("git.known_hosts", self.known_hosts)):
            if ref is not None and not ssh:
                raise SpecError(
                    field, ref, "is for ssh URLs only (ssh://host/path or user@host:path)"
                )
        if self.ssh_key is not None and self.known_hosts is None:
            raise SpecError(
                "git.known_hosts",
                None,
                "is required with ssh_key: the server's host key is checked, never trusted on "
                "first use (ssh-keyscan HOST, checked once, into a Secret)",
            )


@attrs.frozen
class DownloadSource:
    """A file downloaded into the workspace (``wget``), checked against a digest if given.

    Attributes:
        url: An ``https://`` URL, without credentials (it is visible in the pod spec).
        path: File path in the workspace, relative; parent directories are created.
        sha256: Expected SHA-256 of the file (64 hex digits); a mismatch fails the run.
    """

    url: str = attrs.field(converter=_download_url)
    path: str = attrs.field(converter=_download_path)
    sha256: str | None = attrs.field(default=None, kw_only=True, converter=_sha256)


Source = GitSource | DownloadSource


# --------------------------------------------------------------------------------------------
# The workspace


def _sources(value: object) -> tuple[Source, ...]:
    if isinstance(value, (GitSource, DownloadSource)):
        value = (value,)
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise SpecError(
            "workspace.sources", value, "must be a sequence of GitSource/DownloadSource"
        )
    items = tuple(value)
    for i, item in enumerate(items):
        if not isinstance(item, (GitSource, DownloadSource)):
            raise SpecError(
                f"workspace.sources[{i}]",
                item,
                f"must be a GitSource or a DownloadSource, not {kind_of(item)}",
            )
    if len(items) > _MAX_SOURCES:
        raise SpecError(
            "workspace.sources",
            len(items),
            f"at most {_MAX_SOURCES} sources (one init container each)",
        )
    return items


def _mount_path(value: object) -> str:
    path = _absolute_path("workspace.mount_path", value)
    if posixpath.normpath(path) == "/":
        raise SpecError("workspace.mount_path", path, "must not be / (the image's root)")
    return path


def _size_limit(value: object) -> str | None:
    limit = _quantity("workspace.size_limit", value)
    if limit is not None and v.parse_quantity(limit) <= 0:
        raise SpecError("workspace.size_limit", limit, "must be greater than 0")
    return limit


def _claim(value: object) -> str | None:
    if value is None:
        return None
    name = _require_str("workspace.claim", value)
    _check("workspace.claim", name, v.dns1123_subdomain_error(name))
    return name


def _image(value: object) -> str:
    image = _text("workspace.image", value)
    _check("workspace.image", image, v.image_error(image))
    return image


def _resources(value: object) -> Resources:
    if value is None:
        return Resources()
    if not isinstance(value, Resources):
        raise SpecError("workspace.resources", value, f"must be a Resources, not {kind_of(value)}")
    return value


@attrs.frozen
class Workspace:
    """A directory of the pod, filled by init containers before the main container starts.

    ``Workspace.git("https://github.com/org/repo", "main")`` clones one repository;
    ``.with_download(url, "data/x.csv", sha256=...)`` adds a file; sources run in order. Give
    it to ``PodSpec(workspace=...)``. The main container's working directory is the mount
    path unless the spec sets ``working_dir``.

    Attributes:
        sources: :class:`GitSource` and :class:`DownloadSource` items, run in order.
        mount_path: Absolute path of the workspace in every container of the pod.
        size_limit: ``emptyDir`` cap (a quantity, ``"2Gi"``); the kubelet evicts the pod
            when the directory grows past it. Not with ``claim``.
        claim: Name of an existing PersistentVolumeClaim to use instead of an ``emptyDir``;
            it outlives the run (the checkout directory must be empty when it starts).
        image: Image of the init containers (default ``alpine/git:v2.47.2``).
        resources: CPU and memory of the init containers (for namespaces with quotas).
    """

    sources: tuple[Source, ...] = attrs.field(default=(), converter=_sources)
    mount_path: str = attrs.field(
        default=DEFAULT_WORKSPACE_PATH, kw_only=True, converter=_mount_path
    )
    size_limit: str | None = attrs.field(default=None, kw_only=True, converter=_size_limit)
    claim: str | None = attrs.field(default=None, kw_only=True, converter=_claim)
    image: str = attrs.field(default=DEFAULT_WORKSPACE_IMAGE, kw_only=True, converter=_image)
    resources: Resources = attrs.field(factory=Resources, kw_only=True, converter=_resources)

    def __attrs_post_init__(self) -> None:
        if self.claim is not None and self.size_limit is not None:
            raise SpecError(
                "workspace.size_limit",
                self.size_limit,
                "applies to an emptyDir only; a claim's size is its PersistentVolume's",
            )
        seen: dict[str, int] = {}
        for i, source in enumerate(self.sources):
            kind = "git" if isinstance(source, GitSource) else "download"
            if source.path in seen:
                raise SpecError(
                    f"workspace.sources[{i}].path",
                    source.path or ".",
                    f"is also the destination of sources[{seen[source.path]}] ({kind})",
                )
            seen[source.path] = i

    @classmethod
    def git(
        cls,
        url: str,
        ref: str = "HEAD",
        *,
        depth: int | None = 1,
        credentials: SecretRef | None = None,
        username: str = "x-access-token",
        path: str = "",
        ssh_key: SecretRef | None = None,
        known_hosts: SecretRef | None = None,
        **workspace: Any,
    ) -> Workspace:
        """A workspace holding one git checkout (see :class:`GitSource`).

        Args:
            url: Repository URL, without credentials.
            ref: Branch, tag, ``"HEAD"`` or full commit id.
            depth: History depth; ``None`` for all of it.
            credentials: Secret key with a token for an https URL.
            username: User name sent with the token.
            path: Relative directory of the checkout in the workspace.
            ssh_key: Secret key with a private key for an ssh URL.
            known_hosts: Secret key with the ssh server's host keys (required with a key).
            **workspace: :class:`Workspace` fields (``mount_path``, ``size_limit``...).

        Returns:
            The workspace.
        """
        source = GitSource(
            url,
            ref,
            depth=depth,
            credentials=credentials,
            username=username,
            path=path,
            ssh_key=ssh_key,
            known_hosts=known_hosts,
        )
        return cls((source,), **workspace)

    @classmethod
    def download(
        cls, url: str, path: str, *, sha256: str | None = None, **workspace: Any
    ) -> Workspace:
        """A workspace holding one downloaded file (see :class:`DownloadSource`).

        Args:
            url: An https URL, without credentials.
            path: Relative file path in the workspace.
            sha256: Expected SHA-256 digest.
            **workspace: :class:`Workspace` fields (``mount_path``, ``size_limit``...).

        Returns:
            The workspace.
        """
        return cls((DownloadSource(url, path, sha256=sha256),), **workspace)

    def with_git(self, url: str, ref: str = "HEAD", **options: Any) -> Workspace:
        """Return a copy that also checks out this repository (``options``: GitSource's)."""
        return attrs.evolve(self, sources=(*self.sources, GitSource(url, ref, **options)))

    def with_download(self, url: str, path: str, *, sha256: str | None = None) -> Workspace:
        """Return a copy that also downloads this file."""
        source = DownloadSource(url, path, sha256=sha256)
        return attrs.evolve(self, sources=(*self.sources, source))


def workspace(value: Workspace | None) -> Workspace | None:
    """The ``PodSpec.workspace`` converter: a :class:`Workspace` or ``None``."""
    if value is None or isinstance(value, Workspace):
        return value
    raise SpecError("workspace", value, f"must be a Workspace, not {kind_of(value)}")


def container_name(index: int) -> str:
    """The name of the init container filling source ``index`` (``workspace-0``...)."""
    return f"workspace-{index}"


class _Pod(Protocol):
    """What :func:`check_workspace` reads of a ``PodSpec`` (this module cannot import it)."""

    @property
    def container_name(self) -> str: ...
    @property
    def init_containers(self) -> tuple[Any, ...]: ...
    @property
    def sidecars(self) -> tuple[Any, ...]: ...
    @property
    def volumes(self) -> tuple[Any, ...]: ...
    @property
    def secret_files(self) -> Mapping[str, Any]: ...
    @property
    def files(self) -> Mapping[str, str]: ...


def check_workspace(spec: _Pod, _attribute: object, value: Workspace | None) -> None:
    """Validate what needs the whole pod (an attrs validator of ``PodSpec.workspace``).

    The mount path is the workspace's alone, and the init containers' names are free.
    """
    if value is None:
        return
    mount = posixpath.normpath(value.mount_path)
    taken = [(f"volumes[{i}].mount_path", vol.mount_path) for i, vol in enumerate(spec.volumes)]
    taken += [("secret_files", path) for path in spec.secret_files]
    taken += [("files", posixpath.dirname(path)) for path in spec.files]
    for field, path in taken:
        if posixpath.normpath(path) == mount:
            raise SpecError("workspace.mount_path", value.mount_path, f"is also used by {field}")
    names = {spec.container_name, *(c.name for c in (*spec.init_containers, *spec.sidecars))}
    for index in range(len(value.sources)):
        if container_name(index) in names:
            raise SpecError(
                f"workspace.sources[{index}]",
                container_name(index),
                "the init container filling it takes this name, which another container has",
            )
