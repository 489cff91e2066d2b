"""OAuth credentials files whose refresh token rotates: one user at a time, and write-back.

The file ``/login`` writes (``~/.claude/.credentials.json``) holds a short-lived access token
and a refresh token. When the access token is about to expire, the CLI refreshes it and the
server **rotates** the refresh token: the old one stops working. A pod that refreshed leaves
every other copy stale, so a second pod started from the same copy fails to log in, and so do
later runs from the copy you gave (a frequent headless failure).

Two rules follow:

* **One run at a time.** :func:`claim` keeps a process-wide set of the refreshable credentials
  in use; a second run with the same one raises :class:`ClaudeCredentialsInUse` (unless the
  credentials were made with ``allow_concurrent=True``). Runs in *other* processes cannot be
  seen from here. A long-lived token from ``claude setup-token``
  (:meth:`ClaudeCredentials.oauth_token <podrunner.claude.ClaudeCredentials.oauth_token>`)
  has none of these problems and is the better choice for pods.
* **Write-back, when asked.** With ``write_back=``, the launcher runs the CLI as a child and,
  when the credentials file changed, prints :data:`REFRESHED_MARKER` (no secret in it) and
  waits up to :data:`COLLECT_SECONDS` for podrunner to collect the file: the runner sees the
  line, ``exec``-s ``cat`` of the file into the container (exec output is never stored by the
  API server, unlike logs, events or pod status), marks it collected so the launcher exits at
  once, and stores the new JSON: in the referenced Secret (``write_back=True``, a patch of its
  key) or through the callable. The runner's own credentials then hold the new value, so its
  next run starts from it. Write-back needs ``pods/exec`` (and ``patch`` on the Secret).
  A :class:`~podrunner.claude.ClaudeWorker` needs none of this for itself: its later tasks use
  the copy refreshed in its pod's ``HOME``; write-back applies to ``ClaudeRunner`` runs.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import threading
import warnings
from typing import TYPE_CHECKING

import attrs

from podrunner._threads import start_quiet
from podrunner.claude.errors import ClaudeError
from podrunner.spec import SecretRef

if TYPE_CHECKING:
    from collections.abc import Iterator

    from podrunner.claude.credentials import ClaudeCredentials
    from podrunner.run.retry import RetryingBackend

__all__ = [
    "COLLECT_SECONDS",
    "REFRESHED_MARKER",
    "ClaudeCredentialsInUse",
    "CredentialsCollector",
    "CredentialsNotWrittenBack",
    "claim",
]

log = logging.getLogger(__name__)

REFRESHED_MARKER = "podrunner-claude: credentials refreshed"
"""Start of the line the launcher prints when the CLI rewrote its credentials file."""

COLLECT_SECONDS = 60
"""How long the launcher waits for the refreshed file to be collected before it exits."""

COLLECTED_FLAG = ".claude/.podrunner-collected"
"""Under ``$HOME``: created by the collecting exec, so the launcher stops waiting."""

_COLLECT_SCRIPT = 'cat -- "$HOME/.claude/.credentials.json" && : > "$HOME/' + COLLECTED_FLAG + '"'

_claimed: set[str] = set()
_claimed_lock = threading.Lock()


class ClaudeCredentialsInUse(ClaudeError):
    """A refreshable OAuth credentials file is already used by another run of this process."""


class CredentialsNotWrittenBack(UserWarning):
    """The CLI refreshed its OAuth credentials but podrunner could not store the new file."""


def _key(credentials: ClaudeCredentials) -> str:
    return hashlib.sha256("\0".join(credentials.identity()).encode("utf-8")).hexdigest()


@contextlib.contextmanager
def claim(credentials: ClaudeCredentials | None) -> Iterator[None]:
    """Hold ``credentials`` for one run, if they are a refreshable OAuth file.

    Raises:
        ClaudeCredentialsInUse: Another run of this process holds them.
    """
    if credentials is None or not credentials.refreshable or credentials.allow_concurrent:
        yield
        return
    key = _key(credentials)
    with _claimed_lock:
        if key in _claimed:
            raise ClaudeCredentialsInUse(
                "these OAuth credentials (a /login credentials file) are in use by another run "
                "in this process; their refresh token rotates, so two runs would log each "
                "other out. Use a long-lived token from `claude setup-token` "
                "(ClaudeCredentials.oauth_token), wait for the other run, or pass "
                "allow_concurrent=True to accept the risk"
            )
        _claimed.add(key)
    try:
        yield
    finally:
        with _claimed_lock:
            _claimed.discard(key)


@attrs.define
class CredentialsCollector:
    """Collects a refreshed credentials file from a pod when the launcher says so.

    Attributes:
        api: The backend to ``exec`` through.
        namespace: The pod's namespace.
        pod: The pod's name (known once the run started).
        container: The CLI's container.
    """

    api: RetryingBackend
    namespace: str
    pod: str
    container: str
    collected: str | None = None
    problem: str | None = None
    _thread: threading.Thread | None = None

    def on_line(self, line: str) -> None:
        """Start collecting (once, in the background) when ``line`` is the launcher's marker."""
        if self._thread is None and line.startswith(REFRESHED_MARKER):
            self._thread = threading.Thread(target=self._collect, name="podrunner-claude-creds")
            self._thread.daemon = True
            start_quiet(self._thread)

    def _collect(self) -> None:
        try:
            done = self.api.exec(
                self.namespace, self.pod, self.container, ["sh", "-c", _COLLECT_SCRIPT], timeout=30
            )
        except Exception as exc:  # any failure is reported the same way
            self.problem = f"the exec failed: {type(exc).__name__}: {exc}"
            return
        text = done.stdout.decode("utf-8", "replace")
        try:
            ok = done.exit_code == 0 and isinstance(json.loads(text), dict)
        except ValueError:
            ok = False
        if ok:
            self.collected = text
        else:
            # Only the exit code: the output may hold part of a credential.
            self.problem = f"reading the file exited with code {done.exit_code}"

    def finish(self, timeout: float = 40.0) -> bool:
        """Wait for a started collection; return whether one was started at all."""
        if self._thread is None:
            return False
        self._thread.join(timeout)
        if self._thread.is_alive():
            self.problem = "the exec did not finish in time"
        return True


def write_back(
    credentials: ClaudeCredentials, text: str, api: RetryingBackend, namespace: str
) -> ClaudeCredentials:
    """Store the refreshed file ``text``; return the credentials to use from now on."""
    target = credentials.write_back
    if callable(target):
        target(text)
    if isinstance(credentials.value, SecretRef):
        if target is True:
            data = {credentials.value.key: base64.b64encode(text.encode("utf-8")).decode("ascii")}
            api.patch("Secret", namespace, credentials.value.name, {"data": data})
        return credentials
    return attrs.evolve(credentials, value=text)


def warn_not_written(pod: str, problem: str) -> None:
    """Say, without any credential in the message, that the stored copy is now stale."""
    message = (
        f"the Claude CLI in pod {pod} refreshed its OAuth credentials, but they could not be "
        f"written back ({problem}); the stored copy has a revoked refresh token now and will "
        "fail to log in once its access token expires. Prefer a long-lived token from "
        "`claude setup-token`"
    )
    log.warning(message)
    warnings.warn(message, CredentialsNotWrittenBack, stacklevel=3)
