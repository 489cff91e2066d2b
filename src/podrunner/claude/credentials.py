"""Claude Code credentials for a pod, kept out of every pod manifest.

Claude Code authenticates with (its authentication, Bedrock and Vertex docs, checked against
CLI 2.1.332):

* an **API key** in ``ANTHROPIC_API_KEY`` (Console billing);
* a **bearer token** in ``ANTHROPIC_AUTH_TOKEN`` (sent as ``Authorization: Bearer``), usually
  for an LLM gateway at ``ANTHROPIC_BASE_URL``;
* a long-lived **OAuth token** in ``CLAUDE_CODE_OAUTH_TOKEN``, made by ``claude setup-token``
  (subscription billing, inference only);
* the **OAuth credentials file** ``~/.claude/.credentials.json`` that ``/login`` writes
  (subscription billing; the CLI refreshes it, and the refresh token **rotates**: see below);
* **Amazon Bedrock**: ``CLAUDE_CODE_USE_BEDROCK=1``, ``AWS_REGION`` and AWS credentials
  (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN``, a Bedrock API key in
  ``AWS_BEARER_TOKEN_BEDROCK``, or the pod's own identity: IRSA, EKS Pod Identity);
* **Google Vertex AI**: ``CLAUDE_CODE_USE_VERTEX=1``, ``CLOUD_ML_REGION``,
  ``ANTHROPIC_VERTEX_PROJECT_ID`` and a service-account key file named by
  ``GOOGLE_APPLICATION_CREDENTIALS`` (or the pod's identity: GKE Workload Identity).

A **credential-injecting proxy** (:meth:`ClaudeCredentials.proxy`) gives the pod no key at
all: ``ANTHROPIC_BASE_URL`` points at the proxy, which adds the real credential. The CLI
refuses to start without some credential, so the pod gets a token the proxy recognises (by
reference) or the fixed, public placeholder :data:`PROXY_PLACEHOLDER`.

Each secret can be given as a value or as a :class:`~podrunner.SecretRef` to an existing Secret:

* a **value** goes into the run's per-run Secret (``PodSpec.secret_env`` /
  ``PodSpec.secret_files``), which the pod owns, so the cluster deletes it with the pod; the pod
  manifest only names the Secret key (``secretKeyRef`` or a secret volume);
* a **SecretRef** points at a Secret you manage; nothing is copied.

Settings that are not secret (base URL, region, project) are plain variables.

The credentials file is mounted read-only at :data:`CREDENTIALS_MOUNT` and copied by the
launcher to ``$HOME/.claude/.credentials.json`` (mode 0600) before the CLI starts, because the
CLI must be able to rewrite the file when it refreshes the token; a read-only mount at that path
would break the refresh. The refresh rotates the refresh token: the copy you gave goes stale as
soon as one pod refreshed it, and a second pod started from it fails to log in. So one
refreshable credential is not used by two runs of this process at once (see
:mod:`podrunner.claude.refresh`), and ``write_back=`` stores the refreshed file after a run.

The seed's inline mode (the JSON written by a shell prefix inside the pod's command, so in clear
text in the pod manifest) is kept for parity behind ``inline=True`` and warns.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

import attrs

from podrunner.claude._checks import flag
from podrunner.errors import REDACTED, SpecError, kind_of
from podrunner.spec import FrozenMap, SecretMap, SecretRef

if TYPE_CHECKING:
    from podrunner.claude.task import ClaudeTask

__all__ = [
    "API_KEY_ENV",
    "AUTH_TOKEN_ENV",
    "CREDENTIALS_MOUNT",
    "OAUTH_TOKEN_ENV",
    "PROXY_PLACEHOLDER",
    "VERTEX_CREDENTIALS_MOUNT",
    "ClaudeCredentials",
    "CredentialPlan",
    "InlineCredentialsWarning",
]

API_KEY_ENV = "ANTHROPIC_API_KEY"
AUTH_TOKEN_ENV = "ANTHROPIC_AUTH_TOKEN"  # noqa: S105  # a variable name, not a token
OAUTH_TOKEN_ENV = "CLAUDE_CODE_OAUTH_TOKEN"  # noqa: S105  # a variable name, not a token
BASE_URL_ENV = "ANTHROPIC_BASE_URL"
CREDENTIALS_MOUNT = "/var/run/podrunner/claude/credentials.json"
"""Where the OAuth credentials file is mounted (read-only) before the launcher copies it."""
VERTEX_CREDENTIALS_MOUNT = "/var/run/podrunner/claude/gcp-service-account.json"
"""Where a Vertex service-account key file is mounted (``GOOGLE_APPLICATION_CREDENTIALS``)."""
PROXY_PLACEHOLDER = "podrunner-credential-proxy"  # public by design
"""What the pod sends as its bearer token behind a proxy given no token: not a secret."""

CredentialKind = Literal[
    "oauth_json", "oauth_token", "api_key", "auth_token", "proxy", "bedrock", "vertex"
]
_KINDS = ("oauth_json", "oauth_token", "api_key", "auth_token", "proxy", "bedrock", "vertex")
# The AWS variables Bedrock credentials may set (the AWS SDK's default chain reads them).
_AWS_SECRETS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_BEARER_TOKEN_BEDROCK",
)
_REGION_RE = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
_PROJECT_RE = re.compile(r"[a-z][a-z0-9-]{4,28}[a-z0-9]")

WriteBack = Callable[[str], None]
"""Called with the refreshed ``.credentials.json`` text after a run that refreshed it."""


class InlineCredentialsWarning(UserWarning):
    """Credentials were put in the pod's command line, in clear text in the pod manifest."""


def _secrets(value: Mapping[str, str | SecretRef]) -> SecretMap[str | SecretRef]:
    # A map whose repr shows names only, so printing a plan never shows a credential.
    return SecretMap(value)


def _plain(value: Mapping[str, str]) -> FrozenMap[str]:
    return FrozenMap(value)


@attrs.frozen
class CredentialPlan:
    """How credentials reach the container.

    Attributes:
        env: Plain variables (base URL, region, project: nothing secret).
        secret_env: Variables for ``PodSpec.secret_env`` (name -> value or SecretRef).
        secret_files: Files for ``PodSpec.secret_files`` (path -> content or SecretRef).
        credentials_file: Path the launcher copies to ``$HOME/.claude/.credentials.json``
            (``""`` for none).
        shell_prefix: Shell text run before the launcher (inline mode only, else ``""``).
    """

    env: Mapping[str, str] = attrs.field(factory=FrozenMap, converter=_plain)
    secret_env: Mapping[str, str | SecretRef] = attrs.field(factory=SecretMap, converter=_secrets)
    secret_files: Mapping[str, str | SecretRef] = attrs.field(factory=SecretMap, converter=_secrets)
    credentials_file: str = ""
    shell_prefix: str = attrs.field(default="", repr=False)


def _check_secret(field: str, value: object, *, json_file: bool = False) -> str | SecretRef:
    """A credential value (never echoed) or a SecretRef."""
    if isinstance(value, SecretRef):
        return value
    if not isinstance(value, str):
        # Never echo the value: it may be a credential of the wrong type.
        raise SpecError(field, REDACTED, f"must be a str or a SecretRef, not {kind_of(value)}")
    if not value.strip():
        raise SpecError(field, REDACTED, "must not be empty")
    if "\x00" in value:
        raise SpecError(field, REDACTED, "must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise SpecError(field, REDACTED, "must be valid Unicode (no lone surrogates)") from None
    if json_file:
        try:
            parsed = json.loads(value)
        except ValueError:
            raise SpecError(field, REDACTED, "must be the JSON text of the file") from None
        if not isinstance(parsed, dict):
            raise SpecError(field, REDACTED, "must be a JSON object")
    elif "\n" in value.strip():
        raise SpecError(field, REDACTED, "must be a single line")
    return value


def _check_url(field: str, value: object) -> str:
    if not isinstance(value, str):
        raise SpecError(field, kind_of(value), "must be a URL string")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SpecError(field, value, "must be an http:// or https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        # The URL is a plain variable in the pod manifest: no credentials in it.
        raise SpecError(field, REDACTED, "must not carry credentials (they would be in the pod)")
    if any(c.isspace() or c == "\x00" for c in value):
        raise SpecError(field, value, "must not contain spaces")
    return value


def _check_name(field: str, value: object, pattern: re.Pattern[str], example: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise SpecError(field, value, f"must look like {example!r}")
    return value


def _is_refreshable(value: str | SecretRef | None) -> bool:
    """Whether an OAuth credentials file holds a refresh token (a SecretRef: assume so)."""
    if isinstance(value, SecretRef):
        return True
    if value is None:
        return False
    oauth = json.loads(value).get("claudeAiOauth")
    return isinstance(oauth, dict) and bool(oauth.get("refreshToken"))


@attrs.frozen(repr=False)
class ClaudeCredentials:
    """One way for Claude Code to authenticate. Build it with the class methods.

    No secret value ever shows in ``repr``, in error messages or in a pod manifest.

    Attributes:
        kind: ``"oauth_json"``, ``"oauth_token"``, ``"api_key"``, ``"auth_token"``,
            ``"proxy"``, ``"bedrock"`` or ``"vertex"``.
        value: The credential, or a :class:`~podrunner.SecretRef` to it (``None`` where the
            pod needs none: a proxy without a token, Bedrock (see ``secrets``), Vertex with the
            pod's own identity).
        inline: Seed mode: the OAuth JSON is written by a shell prefix in the pod's command.
        base_url: ``ANTHROPIC_BASE_URL``: a gateway or credential-injecting proxy.
        region: The Bedrock (``AWS_REGION``) or Vertex (``CLOUD_ML_REGION``) region.
        project: The Vertex project (``ANTHROPIC_VERTEX_PROJECT_ID``).
        secrets: Bedrock's AWS variables (name -> value or SecretRef).
        allow_concurrent: For a refreshable OAuth file: allow two runs of this process to use
            it at once (they will invalidate each other's login when one refreshes).
        write_back: For an OAuth file: after a run that refreshed it, store the new file:
            ``True`` patches the referenced Secret's key, a callable gets the new JSON text.
    """

    kind: CredentialKind
    value: str | SecretRef | None = attrs.field(eq=False)
    inline: bool = False
    base_url: str | None = attrs.field(default=None, kw_only=True)
    region: str | None = attrs.field(default=None, kw_only=True)
    project: str | None = attrs.field(default=None, kw_only=True)
    secrets: SecretMap[str | SecretRef] = attrs.field(
        factory=SecretMap, kw_only=True, converter=_secrets, eq=False
    )
    allow_concurrent: bool = attrs.field(default=False, kw_only=True)
    write_back: bool | WriteBack = attrs.field(default=False, kw_only=True, eq=False)

    def __attrs_post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise SpecError("kind", self.kind, f"must be one of {', '.join(_KINDS)}")
        self._check_value()
        flag("inline", self.inline)
        flag("allow_concurrent", self.allow_concurrent)
        self._check_settings()
        self._check_oauth_options()
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

    def _check_value(self) -> None:
        optional = self.kind in ("proxy", "bedrock", "vertex")
        if self.value is not None or not optional:
            field = "service_account_json" if self.kind == "vertex" else self.kind
            json_file = self.kind in ("oauth_json", "vertex")
            _check_secret(field, self.value, json_file=json_file)
        for name, secret in self.secrets.items():
            if self.kind != "bedrock" or name not in _AWS_SECRETS:
                raise SpecError("secrets", name, "only Bedrock's AWS variables go here")
            _check_secret(name, secret)

    def _check_settings(self) -> None:
        if self.base_url is not None:
            _check_url("base_url", self.base_url)
        elif self.kind == "proxy":
            raise SpecError("base_url", None, "a proxy needs its URL")
        wanted = {"bedrock": ("region",), "vertex": ("region", "project")}.get(self.kind, ())
        for name in ("region", "project"):
            value = getattr(self, name)
            if name not in wanted:
                if value is not None:
                    raise SpecError(name, value, f"does not apply to {self.kind} credentials")
            elif name == "region":
                _check_name(name, value, _REGION_RE, "us-east-1")
            else:
                _check_name(name, value, _PROJECT_RE, "my-project-123")
        if self.kind in ("bedrock", "vertex") and self.base_url is not None:
            raise SpecError("base_url", self.base_url, f"does not apply to {self.kind}")

    def _check_oauth_options(self) -> None:
        if self.kind == "oauth_json":
            if self.write_back is True and not isinstance(self.value, SecretRef):
                raise SpecError(
                    "write_back",
                    True,
                    "True stores the refreshed file in the referenced Secret; with a value, "
                    "give a callable that stores the new JSON text",
                )
            if not isinstance(self.write_back, bool) and not callable(self.write_back):
                raise SpecError(
                    "write_back", kind_of(self.write_back), "must be a bool or callable"
                )
        elif self.write_back is not False or self.allow_concurrent:
            field = "write_back" if self.write_back is not False else "allow_concurrent"
            raise SpecError(field, True, "only applies to an OAuth credentials file (oauth_json)")

    def __repr__(self) -> str:
        shown = repr(self.value) if isinstance(self.value, (SecretRef, type(None))) else REDACTED
        extra = ", inline=True" if self.inline else ""
        for name in ("base_url", "region", "project"):
            if getattr(self, name) is not None:
                extra += f", {name}={getattr(self, name)!r}"
        if self.secrets:
            extra += f", secrets={self.secrets!r}"
        return f"ClaudeCredentials(kind={self.kind!r}, value={shown}{extra})"

    # -- constructors ----------------------------------------------------------------------

    @classmethod
    def oauth_json(
        cls,
        value: str | SecretRef,
        *,
        inline: bool = False,
        allow_concurrent: bool = False,
        write_back: bool | WriteBack = False,
    ) -> ClaudeCredentials:
        """OAuth credentials JSON (the content of ``~/.claude/.credentials.json``).

        Its refresh token rotates whenever the CLI refreshes it, so two runs must not use one
        file at once; prefer :meth:`oauth_token` (``claude setup-token``) for pods.

        Args:
            value: The JSON text, or a SecretRef to a key holding it.
            inline: Seed parity: write the JSON with a shell prefix in the pod's command
                (clear text in the manifest). Emits :class:`InlineCredentialsWarning`.
            allow_concurrent: Let two runs of this process use it at the same time anyway.
            write_back: Store the refreshed file after a run: ``True`` (with a SecretRef)
                patches that Secret's key; a callable receives the new JSON text.
        """
        return cls(
            "oauth_json",
            value,
            inline,
            allow_concurrent=allow_concurrent,
            write_back=write_back,
        )

    @classmethod
    def oauth_token(cls, value: str | SecretRef) -> ClaudeCredentials:
        """A long-lived OAuth token from ``claude setup-token`` (``CLAUDE_CODE_OAUTH_TOKEN``)."""
        return cls("oauth_token", value)

    @classmethod
    def api_key(cls, value: str | SecretRef, *, base_url: str | None = None) -> ClaudeCredentials:
        """An Anthropic API key (``ANTHROPIC_API_KEY``), optionally for a gateway URL."""
        return cls("api_key", value, base_url=base_url)

    @classmethod
    def auth_token(
        cls, value: str | SecretRef, *, base_url: str | None = None
    ) -> ClaudeCredentials:
        """A bearer token (``ANTHROPIC_AUTH_TOKEN``), usually for an LLM gateway at ``base_url``."""
        return cls("auth_token", value, base_url=base_url)

    @classmethod
    def proxy(cls, base_url: str, *, token: str | SecretRef | None = None) -> ClaudeCredentials:
        """A credential-injecting proxy at ``base_url``: the pod holds no Anthropic credential.

        Args:
            base_url: The proxy (``ANTHROPIC_BASE_URL``); it must add the real credential and
                drop the ``Authorization`` header the CLI sends.
            token: A token the proxy recognises the pod by (``ANTHROPIC_AUTH_TOKEN``, through
                a Secret). Without one the pod sends :data:`PROXY_PLACEHOLDER`.
        """
        return cls("proxy", token, base_url=base_url)

    @classmethod
    def bedrock(
        cls,
        region: str,
        *,
        access_key_id: str | SecretRef | None = None,
        secret_access_key: str | SecretRef | None = None,
        session_token: str | SecretRef | None = None,
        api_key: str | SecretRef | None = None,
    ) -> ClaudeCredentials:
        """Amazon Bedrock (``CLAUDE_CODE_USE_BEDROCK=1``) in ``region`` (``AWS_REGION``).

        Give an access key pair (and a session token for temporary keys), or a Bedrock API
        key (``AWS_BEARER_TOKEN_BEDROCK``), or nothing: the AWS SDK then uses the pod's own
        identity (IRSA or EKS Pod Identity through the runner's ``service_account``).
        """
        given = {
            "AWS_ACCESS_KEY_ID": access_key_id,
            "AWS_SECRET_ACCESS_KEY": secret_access_key,
            "AWS_SESSION_TOKEN": session_token,
            "AWS_BEARER_TOKEN_BEDROCK": api_key,
        }
        secrets = {name: value for name, value in given.items() if value is not None}
        if (access_key_id is None) != (secret_access_key is None):
            raise SpecError(
                "secret_access_key" if secret_access_key is None else "access_key_id",
                None,
                "give access_key_id and secret_access_key together",
            )
        if session_token is not None and access_key_id is None:
            raise SpecError("session_token", REDACTED, "needs access_key_id and secret_access_key")
        if api_key is not None and access_key_id is not None:
            raise SpecError("api_key", REDACTED, "give an API key or an access key pair, not both")
        return cls("bedrock", None, region=region, secrets=secrets)

    @classmethod
    def vertex(
        cls,
        region: str,
        project: str,
        *,
        service_account_json: str | SecretRef | None = None,
    ) -> ClaudeCredentials:
        """Google Vertex AI (``CLAUDE_CODE_USE_VERTEX=1``).

        Args:
            region: ``CLOUD_ML_REGION`` (``us-east5``, ``europe-west1``, or ``global``).
            project: ``ANTHROPIC_VERTEX_PROJECT_ID``.
            service_account_json: A service-account key file (its JSON text, or a SecretRef),
                mounted from a Secret and named by ``GOOGLE_APPLICATION_CREDENTIALS``. Without
                it, the pod's own identity is used (GKE Workload Identity).
        """
        return cls("vertex", service_account_json, region=region, project=project)

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
        """The variable the CLI reads ``value`` from (``None`` for a file or no value)."""
        if self.kind == "api_key":
            return API_KEY_ENV
        if self.kind == "oauth_token":
            return OAUTH_TOKEN_ENV
        if self.kind in ("auth_token", "proxy") and self.value is not None:
            return AUTH_TOKEN_ENV
        return None

    @property
    def refreshable(self) -> bool:
        """Whether this is an OAuth file with a rotating refresh token (a SecretRef: assumed)."""
        return self.kind == "oauth_json" and _is_refreshable(self.value)

    @property
    def secret_values(self) -> tuple[str, ...]:
        """The plain values this object holds (for leak scans); empty for SecretRefs."""
        values = [self.value, *self.secrets.values()]
        return tuple(v for v in values if isinstance(v, str))

    def identity(self) -> tuple[str, ...]:
        """What tells these credentials apart from others (values included: hash it first).

        The same credentials give the same identity in every process; for the four original
        kinds it is ``("value", kind, value)`` or ``("ref", kind, name, key)``.
        """
        settings = tuple(str(getattr(self, n) or "") for n in ("base_url", "region", "project"))
        head: tuple[str, ...]
        if isinstance(self.value, SecretRef):
            head = ("ref", self.kind, self.value.name, self.value.key)
        else:
            head = ("value", self.kind, self.value or "")
        if not any(settings) and not self.secrets:
            return head
        parts = [*head, *settings]
        for name, secret in sorted(self.secrets.items()):
            if isinstance(secret, SecretRef):
                parts += ["ref", name, secret.name, secret.key]
            else:
                parts += ["value", name, secret]
        return tuple(parts)

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
        """Return how the credentials reach the container."""
        env = self._plain_env()
        name = self.env_name
        if name is not None:
            assert self.value is not None  # env_name is None without a value
            return CredentialPlan(env=env, secret_env={name: self.value})
        if self.kind == "bedrock":
            return CredentialPlan(env=env, secret_env=self.secrets)
        if self.kind == "vertex":
            if self.value is None:
                return CredentialPlan(env=env)
            env["GOOGLE_APPLICATION_CREDENTIALS"] = VERTEX_CREDENTIALS_MOUNT
            return CredentialPlan(env=env, secret_files={VERTEX_CREDENTIALS_MOUNT: self.value})
        if self.kind == "proxy":
            return CredentialPlan(env={**env, AUTH_TOKEN_ENV: PROXY_PLACEHOLDER})
        assert self.value is not None  # oauth_json always has one
        if self.inline:
            from podrunner.manifest import build_credentials_prefix

            assert isinstance(self.value, str)  # checked in __attrs_post_init__
            return CredentialPlan(shell_prefix=build_credentials_prefix(self.value))
        return CredentialPlan(
            secret_files={CREDENTIALS_MOUNT: self.value}, credentials_file=CREDENTIALS_MOUNT
        )

    def _plain_env(self) -> dict[str, str]:
        env: dict[str, str] = {}
        if self.base_url is not None:
            env[BASE_URL_ENV] = self.base_url
        if self.kind == "bedrock":
            env["CLAUDE_CODE_USE_BEDROCK"] = "1"
            env["AWS_REGION"] = str(self.region)
        if self.kind == "vertex":
            env["CLAUDE_CODE_USE_VERTEX"] = "1"
            env["CLOUD_ML_REGION"] = str(self.region)
            env["ANTHROPIC_VERTEX_PROJECT_ID"] = str(self.project)
        return env
