"""Claude Code credentials for a pod, kept out of every pod manifest.

Claude Code authenticates with (Claude Code's authentication docs):

* an **API key** in ``ANTHROPIC_API_KEY`` (Console billing);
* a long-lived **OAuth token** in ``CLAUDE_CODE_OAUTH_TOKEN``, made by ``claude setup-token``
  (subscription billing, inference only);
* the **OAuth credentials file** ``~/.claude/.credentials.json`` that ``/login`` writes
  (subscription billing; the CLI refreshes and rewrites it).

Each can be given as a value or as a :class:`~podrunner.SecretRef` to an existing Secret:

* a **value** goes into the run's per-run Secret (``PodSpec.secret_env`` /
  ``PodSpec.secret_files``), which the pod owns, so the cluster deletes it with the pod; the pod
  manifest only names the Secret key (``secretKeyRef`` or a secret volume);
* a **SecretRef** points at a Secret you manage; nothing is copied.

The credentials file is mounted read-only at :data:`CREDENTIALS_MOUNT` and copied by the
launcher to ``$HOME/.claude/.credentials.json`` (mode 0600) before the CLI starts, because the
CLI must be able to rewrite the file when it refreshes the token; a read-only mount at that path
would break the refresh.

The seed's inline mode (the JSON written by a shell prefix inside the pod's command, so in clear
text in the pod manifest) is kept for parity behind ``inline=True`` and warns.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import attrs

from podrunner.errors import REDACTED, SpecError, kind_of
from podrunner.spec import SecretMap, SecretRef

if TYPE_CHECKING:
    from collections.abc import Mapping

    from podrunner.claude.task import ClaudeTask

__all__ = [
    "API_KEY_ENV",
    "CREDENTIALS_MOUNT",
    "OAUTH_TOKEN_ENV",
    "ClaudeCredentials",
    "CredentialPlan",
    "InlineCredentialsWarning",
]

API_KEY_ENV = "ANTHROPIC_API_KEY"
OAUTH_TOKEN_ENV = "CLAUDE_CODE_OAUTH_TOKEN"  # noqa: S105  # a variable name, not a token
CREDENTIALS_MOUNT = "/var/run/podrunner/claude/credentials.json"
"""Where the OAuth credentials file is mounted (read-only) before the launcher copies it."""

CredentialKind = Literal["oauth_json", "oauth_token", "api_key"]
_REDACTED = REDACTED


class InlineCredentialsWarning(UserWarning):
    """Credentials were put in the pod's command line, in clear text in the pod manifest."""


def _secrets(value: Mapping[str, str | SecretRef]) -> SecretMap[str | SecretRef]:
    # A map whose repr shows names only, so printing a plan never shows a credential.
    return SecretMap(value)


@attrs.frozen
class CredentialPlan:
    """How credentials reach the container.

    Attributes:
        secret_env: Variables for ``PodSpec.secret_env`` (name -> value or SecretRef).
        secret_files: Files for ``PodSpec.secret_files`` (path -> content or SecretRef).
        credentials_file: Path the launcher copies to ``$HOME/.claude/.credentials.json``
            (``""`` for none).
        shell_prefix: Shell text run before the launcher (inline mode only, else ``""``).
    """

    secret_env: Mapping[str, str | SecretRef] = attrs.field(factory=SecretMap, converter=_secrets)
    secret_files: Mapping[str, str | SecretRef] = attrs.field(factory=SecretMap, converter=_secrets)
    credentials_file: str = ""
    shell_prefix: str = attrs.field(default="", repr=False)


def _check_value(kind: CredentialKind, value: object) -> str | SecretRef:
    if isinstance(value, SecretRef):
        return value
    if not isinstance(value, str):
        # Never echo the value: it may be a credential of the wrong type.
        raise SpecError(kind, _REDACTED, f"must be a str or a SecretRef, not {kind_of(value)}")
    if not value.strip():
        raise SpecError(kind, _REDACTED, "must not be empty")
    if "\x00" in value:
        raise SpecError(kind, _REDACTED, "must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise SpecError(kind, _REDACTED, "must be valid Unicode (no lone surrogates)") from None
    if kind == "oauth_json":
        try:
            parsed = json.loads(value)
        except ValueError:
            raise SpecError(kind, _REDACTED, "must be the JSON of .credentials.json") from None
        if not isinstance(parsed, dict):
            raise SpecError(kind, _REDACTED, "must be a JSON object")
    elif "\n" in value.strip():
        raise SpecError(kind, _REDACTED, "must be a single line")
    return value


@attrs.frozen(repr=False)
class ClaudeCredentials:
    """One way for Claude Code to authenticate. Build it with the class methods.

    The value never shows in ``repr``, in error messages or in a pod manifest.

    Attributes:
        kind: ``"oauth_json"``, ``"oauth_token"`` or ``"api_key"``.
        value: The credential, or a :class:`~podrunner.SecretRef` to it.
        inline: Seed mode: the OAuth JSON is written by a shell prefix in the pod's command.
    """

    kind: CredentialKind
    value: str | SecretRef = attrs.field(eq=False)
    inline: bool = False

    def __attrs_post_init__(self) -> None:
        if self.kind not in ("oauth_json", "oauth_token", "api_key"):
            raise SpecError("kind", self.kind, "must be oauth_json, oauth_token or api_key")
        _check_value(self.kind, self.value)
        if not isinstance(self.inline, bool):
            raise SpecError(
                "inline", self.inline, f"must be True or False, not {kind_of(self.inline)}"
            )
        if self.inline:
            if self.kind != "oauth_json" or isinstance(self.value, SecretRef):
                raise SpecError("inline", True, "only applies to an OAuth JSON value")
            warnings.warn(
                "inline OAuth credentials are written into the pod's command, so they sit in "
                "clear text in the pod manifest (kubectl get pod -o yaml shows them); prefer "
                "the default per-run Secret",
                InlineCredentialsWarning,
                stacklevel=3,
            )

    def __repr__(self) -> str:
        shown = repr(self.value) if isinstance(self.value, SecretRef) else _REDACTED
        extra = ", inline=True" if self.inline else ""
        return f"ClaudeCredentials(kind={self.kind!r}, value={shown}{extra})"

    # -- constructors ----------------------------------------------------------------------

    @classmethod
    def oauth_json(cls, value: str | SecretRef, *, inline: bool = False) -> ClaudeCredentials:
        """OAuth credentials JSON (the content of ``~/.claude/.credentials.json``).

        Args:
            value: The JSON text, or a SecretRef to a key holding it.
            inline: Seed parity: write the JSON with a shell prefix in the pod's command
                (clear text in the manifest). Emits :class:`InlineCredentialsWarning`.
        """
        return cls("oauth_json", value, inline)

    @classmethod
    def oauth_token(cls, value: str | SecretRef) -> ClaudeCredentials:
        """A long-lived OAuth token from ``claude setup-token`` (``CLAUDE_CODE_OAUTH_TOKEN``)."""
        return cls("oauth_token", value)

    @classmethod
    def api_key(cls, value: str | SecretRef) -> ClaudeCredentials:
        """An Anthropic API key (``ANTHROPIC_API_KEY``)."""
        return cls("api_key", value)

    @classmethod
    def from_environment(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        credentials_file: str | os.PathLike[str] | None = None,
    ) -> ClaudeCredentials | None:
        """Pick the launcher's own credentials, for CLI use.

        Order: ``ANTHROPIC_API_KEY``, then ``CLAUDE_CODE_OAUTH_TOKEN``, then (only when
        ``credentials_file`` is given) that OAuth credentials file. This is the order the
        CLI itself gives an API key and a token.

        Args:
            environ: The environment to read; :data:`os.environ` by default.
            credentials_file: An OAuth credentials file to fall back on, e.g.
                ``~/.claude/.credentials.json``. Never read unless given.

        Returns:
            The credentials, or ``None`` when there are none.
        """
        env = os.environ if environ is None else environ
        key = env.get(API_KEY_ENV, "").strip()
        if key:
            return cls.api_key(key)
        token = env.get(OAUTH_TOKEN_ENV, "").strip()
        if token:
            return cls.oauth_token(token)
        if credentials_file is not None:
            path = Path(credentials_file).expanduser()
            if path.is_file():
                return cls.oauth_json(path.read_text(encoding="utf-8"))
        return None

    # -- use -------------------------------------------------------------------------------

    @property
    def env_name(self) -> str | None:
        """The variable the CLI reads this credential from (``None`` for the JSON file)."""
        if self.kind == "api_key":
            return API_KEY_ENV
        if self.kind == "oauth_token":
            return OAUTH_TOKEN_ENV
        return None

    @property
    def secret_values(self) -> tuple[str, ...]:
        """The plain values this object holds (for leak scans); empty for a SecretRef."""
        return () if isinstance(self.value, SecretRef) else (self.value,)

    def check_task(self, task: ClaudeTask) -> None:
        """Refuse a task these credentials cannot run, before anything is created.

        Raises:
            SpecError: ``task.bare`` with OAuth credentials: under ``--bare`` Claude Code reads
                no OAuth token or credentials file, so the task would fail to log in.
        """
        if task.bare and self.kind in ("oauth_json", "oauth_token"):
            raise SpecError(
                "bare",
                True,
                f"Claude Code reads no OAuth credentials under --bare, and these are {self.kind}; "
                "use an API key (ClaudeCredentials.api_key) or drop bare",
            )

    def plan(self) -> CredentialPlan:
        """Return how the credential reaches the container."""
        name = self.env_name
        if name is not None:
            return CredentialPlan(secret_env={name: self.value})
        if self.inline:
            from podrunner.manifest import build_credentials_prefix

            assert isinstance(self.value, str)  # checked in __attrs_post_init__
            return CredentialPlan(shell_prefix=build_credentials_prefix(self.value))
        return CredentialPlan(
            secret_files={CREDENTIALS_MOUNT: self.value}, credentials_file=CREDENTIALS_MOUNT
        )
