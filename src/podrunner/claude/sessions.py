"""Claude Code sessions that outlive the pod: a volume for the transcripts, one writer each.

Claude Code keeps every conversation as a transcript,
``${CLAUDE_CONFIG_DIR:-~/.claude}/projects/<working directory>/<session id>.jsonl`` (one JSON
object per line), and ``--resume <id>`` reads it back (2.1.332 finds it whatever the working
directory). In a :class:`~podrunner.claude.ClaudeRunner` pod ``HOME`` is an emptyDir, so the
transcript dies with the pod and the next pod cannot resume it. A :class:`SessionStore` is a
volume (a PVC, usually ``ReadWriteMany`` when pods run on several nodes) mounted at its
``mount_path``; the launcher links ``$HOME/.claude/projects`` to it (through the
:data:`SESSIONS_ENV` variable), so transcripts, and only they, persist: credentials and
settings stay in the pod's own ``HOME``.

What Claude Code allows on one store (checked against CLI 2.1.332):

* many sessions at once: each is its own file;
* resuming a session from any later pod, on any node that mounts the volume;
* ``--fork-session``: a new session that starts from a copy; safe next to other runs;
* two runs resuming the **same** session at once: the CLI does not prevent it; both append to
  one file and the conversation forks in place. podrunner refuses it within a process
  (:class:`SessionInUse`): a run that writes a session (``resume`` without ``fork_session``,
  or ``session_id``) holds it until it ends. Runs in other processes cannot be seen from here;
* ``--session-id`` of a transcript that exists in the same working directory: the CLI refuses
  it ("Session ID ... is already in use").
"""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING

import attrs

from podrunner.claude.errors import ClaudeError
from podrunner.errors import SpecError
from podrunner.spec import Volume

if TYPE_CHECKING:
    from collections.abc import Iterator

    from podrunner.claude.task import ClaudeTask

__all__ = [
    "DEFAULT_SESSIONS_MOUNT",
    "SESSIONS_ENV",
    "SessionInUse",
    "SessionStore",
    "claim_session",
    "written_session",
]

SESSIONS_ENV = "PODRUNNER_CLAUDE_SESSIONS"
"""The container variable naming the store's mount path; the launcher links to it."""

DEFAULT_SESSIONS_MOUNT = "/var/lib/podrunner/claude-sessions"
"""Where a store is mounted unless told otherwise (outside ``HOME``, which is an emptyDir)."""


class SessionInUse(ClaudeError):
    """Another run of this process is writing the session this task would write."""


def _volume(value: object) -> Volume:
    if not isinstance(value, Volume):
        raise SpecError("sessions.volume", type(value).__name__, "must be a Volume")
    if value.read_only:
        raise SpecError("sessions.volume", value.mount_path, "must be writable: transcripts grow")
    if value.kind in ("emptyDir", "configMap", "secret"):
        raise SpecError(
            "sessions.volume",
            value.kind,
            "must outlive the pod and be writable: a PVC (or a hostPath)",
        )
    return value


@attrs.frozen
class SessionStore:
    """A volume where Claude Code session transcripts outlive the pods that wrote them.

    Give it to :class:`~podrunner.claude.ClaudeRunner` (or
    :class:`~podrunner.claude.ClaudeWorker`) as ``sessions=``; then
    ``runner.run(ClaudeTask(prompt, resume=earlier.session_id))`` works in a new pod.

    Attributes:
        volume: The volume, mounted writable at ``volume.mount_path``.
    """

    volume: Volume = attrs.field(converter=_volume)

    @classmethod
    def pvc(
        cls, claim: str, *, mount_path: str = DEFAULT_SESSIONS_MOUNT, sub_path: str | None = None
    ) -> SessionStore:
        """A PersistentVolumeClaim (``ReadWriteMany`` if pods may land on several nodes).

        Args:
            claim: The claim's name, in the runner's namespace.
            mount_path: Where it is mounted in the container.
            sub_path: A directory of the volume to use instead of its root (one store per
                tenant on a shared volume).
        """
        return cls(Volume.pvc(claim, mount_path, sub_path=sub_path))

    @property
    def mount_path(self) -> str:
        """Where the transcripts are in the container."""
        return self.volume.mount_path

    def identity(self) -> tuple[str, ...]:
        """What tells two stores apart (the same claim and sub-path is the same store)."""
        return (self.volume.kind, self.volume.source or "", self.volume.sub_path or "")


def written_session(task: ClaudeTask) -> str | None:
    """The session id ``task`` appends to, when it is known before the run."""
    if task.resume is not None and not task.fork_session:
        return task.resume
    return task.session_id


_claimed: set[tuple[str, ...]] = set()
_claimed_lock = threading.Lock()


@contextlib.contextmanager
def claim_session(store: SessionStore | None, task: ClaudeTask) -> Iterator[None]:
    """Hold the session ``task`` writes in ``store`` for one run.

    Raises:
        SessionInUse: Another run of this process is writing it.
    """
    session = None if store is None else written_session(task)
    if store is None or session is None:
        yield
        return
    key = (*store.identity(), session)
    with _claimed_lock:
        if key in _claimed:
            raise SessionInUse(
                f"session {session} is being written by another run in this process; two "
                "runs on one session would interleave in one transcript (Claude Code does not "
                "lock it). Wait for it, or pass fork_session=True to branch off a copy"
            )
        _claimed.add(key)
    try:
        yield
    finally:
        with _claimed_lock:
            _claimed.discard(key)
