"""The exceptions podrunner raises, all rooted at :class:`PodrunnerError`.

The tree::

    PodrunnerError
    ├── SpecError (ValueError)            bad input, raised before any API call
    ├── ConfigError                       unusable cluster configuration (kubeconfig, context)
    ├── BackendError                      an API call failed; .status, .reason, .causes
    │   ├── BadRequest                    400
    │   ├── Unauthorized                  401
    │   ├── Forbidden                     403
    │   ├── NotFound (LookupError)        404
    │   ├── AlreadyExists                 409, reason AlreadyExists
    │   ├── Conflict                      409, stale resourceVersion
    │   ├── Gone                          410, watch or list version too old
    │   ├── Invalid                       422, with per-field causes
    │   ├── TooManyRequests               429, with .retry_after
    │   ├── ServerError                   5xx
    │   └── BackendUnavailable (ConnectionError)   no answer at all
    └── RunError                          a run did not produce a result; .pod_name, .events
        ├── ImagePullError                the image could not be pulled
        ├── Unschedulable                 no node accepts the pod
        ├── ContainerConfigError          the container cannot be created (missing Secret key...)
        ├── InitContainerFailed           an init container or sidecar failed; .container
        ├── StartTimeout (TimeoutError)   scheduling or start budget exhausted
        ├── RunTimeout (TimeoutError)     total budget exhausted
        ├── PodLost                       deleted or evicted underneath the run
        ├── RunCancelled                  cancel() was called
        └── PodFailed                     check=True and the exit code was not 0; .result

Backends convert their client's exceptions in one place and keep the original as
``__cause__``, so callers only ever catch podrunner's types.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from podrunner.run.outcome import RunResult
    from podrunner.run.state import PodState

__all__ = [
    "AlreadyExists",
    "BackendError",
    "BackendUnavailable",
    "BadRequest",
    "CollectFailed",
    "ConfigError",
    "Conflict",
    "ContainerConfigError",
    "Forbidden",
    "Gone",
    "ImagePullError",
    "InitContainerFailed",
    "Invalid",
    "NotFound",
    "PodFailed",
    "PodLost",
    "PodrunnerError",
    "RunCancelled",
    "RunError",
    "RunTimeout",
    "ServerError",
    "SpecError",
    "StartTimeout",
    "StatusCause",
    "TooManyRequests",
    "Unauthorized",
    "Unschedulable",
    "error_for_status",
]


class PodrunnerError(Exception):
    """Root of every exception podrunner raises on purpose."""


class _Redacted(str):
    """The stand-in for a secret value in a :class:`SpecError` (equal to ``"<redacted>"``)."""

    __slots__ = ()

    def __reduce__(self) -> tuple[Any, ...]:
        return (_Redacted, (str(self),))


# Not in __all__ (podrunner re-exports every name of it, and its sorted __all__ would then
# disagree with ruff's ordering); import it from podrunner.errors.
REDACTED: str = _Redacted("<redacted>")
"""What :attr:`SpecError.value` holds, and its message shows, when the value is a secret."""

_SHOWN_CHARS = 80  # longer strings are cut in messages; the full length is given instead


def kind_of(value: object) -> str:
    """Name the type of ``value`` in words, for messages (``"a list"``, ``"None"``).

    Args:
        value: Any object.

    Returns:
        A short phrase such as ``"a string"``, ``"an integer"``, ``"bytes"`` or ``"None"``.
    """
    if value is None:
        return "None"
    for cls, words in _KINDS:
        if isinstance(value, cls):
            return words
    if isinstance(value, Mapping):
        return "a mapping"
    return f"a {type(value).__name__} object"


_KINDS: tuple[tuple[type, str], ...] = (
    (bool, "a boolean"),
    (int, "an integer"),
    (float, "a number"),
    (str, "a string"),
    (bytes, "bytes"),
    (bytearray, "bytes"),
    (list, "a list"),
    (tuple, "a tuple"),
    (dict, "a mapping"),
    (frozenset, "a set"),
    (set, "a set"),
)


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def describe_value(value: object) -> str:
    """Show a rejected value in a message, plainly and without a Python repr.

    Strings are shown double-quoted, with unprintable characters escaped and cut after 80
    characters; numbers, booleans and ``None`` as themselves; anything else only by its type
    and size, never its contents, so a secret of the wrong shape cannot leak through it.

    Args:
        value: The rejected value.

    Returns:
        The text to show.
    """
    if isinstance(value, _Redacted):
        return str(value)
    if isinstance(value, str):
        shown = value[:_SHOWN_CHARS]
        text = "".join('\\"' if c == '"' else c if c.isprintable() else _escape(c) for c in shown)
        if len(value) > _SHOWN_CHARS:
            return f'"{text}..." ({len(value)} characters)'
        return f'"{text}"'
    if value is None:
        return "None (no value)"
    if isinstance(value, (bool, int)):
        return str(value)
    if isinstance(value, float):
        return {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}.get(str(value), str(value))
    kind = kind_of(value)
    try:
        size = len(value)  # type: ignore[arg-type]  # probed: any sized object
    except Exception:  # an object without (or with a broken) len
        return kind
    if isinstance(value, (bytes, bytearray)):
        return f"{size} bytes"
    return f"{kind} of {size} item{'' if size == 1 else 's'}"


class SpecError(PodrunnerError, ValueError):
    """A spec value breaks a rule; raised before anything reaches a cluster.

    The message names the field, shows the value plainly (see
    :func:`podrunner.errors.describe_value`: a string in double quotes, a container only by its
    type and size) and states the rule. A
    secret value is never shown: the field holds ``REDACTED`` instead.

    Attributes:
        field: Dotted name of the offending field, e.g. ``"labels"`` or ``"resources.cpu_limit"``.
        value: The rejected value (``REDACTED`` for a secret).
        rule: The rule it breaks, in words.
    """

    def __init__(self, field: str, value: object, rule: str) -> None:
        self.field = field
        self.value = value
        self.rule = rule
        super().__init__(f"{field}: {describe_value(value)} is invalid: {rule}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.field, self.value, self.rule))


class ConfigError(PodrunnerError):
    """The cluster configuration cannot be used (missing file, bad YAML, unknown context)."""


class StatusCause:
    """One field-level cause of a 422 ``Invalid`` answer (``Status.details.causes[]``).

    Attributes:
        field: The JSON path of the field, e.g. ``metadata.name``.
        reason: The machine reason, e.g. ``FieldValueInvalid``.
        message: The human message.
    """

    __slots__ = ("field", "message", "reason")

    def __init__(self, field: str, reason: str, message: str) -> None:
        self.field = field
        self.reason = reason
        self.message = message

    def __repr__(self) -> str:
        return (
            f"StatusCause(field={self.field!r}, reason={self.reason!r}, message={self.message!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StatusCause):
            return NotImplemented
        return (self.field, self.reason, self.message) == (other.field, other.reason, other.message)

    def __hash__(self) -> int:
        return hash((self.field, self.reason, self.message))

    def to_dict(self) -> dict[str, str]:
        """Return the cause in the API server's JSON shape."""
        return {"field": self.field, "reason": self.reason, "message": self.message}


class BackendError(PodrunnerError):
    """An API call failed. Subclasses name the HTTP status the API server answered with.

    Attributes:
        status: HTTP status code (0 when there was no answer).
        reason: The Kubernetes ``Status.reason`` (``NotFound``, ``AlreadyExists``...).
        message: The server's message.
        kind: Kind of the object involved, when known.
        namespace: Namespace involved, when known.
        name: Name of the object involved, when known.
        causes: Field-level causes (422 answers).
    """

    default_status: int = 0
    default_reason: str = ""

    def __init__(
        self,
        message: str = "",
        *,
        status: int | None = None,
        reason: str | None = None,
        kind: str | None = None,
        namespace: str | None = None,
        name: str | None = None,
        causes: Sequence[StatusCause] = (),
    ) -> None:
        self.status = self.default_status if status is None else status
        self.reason = self.default_reason if reason is None else reason
        self.message = message
        self.kind = kind
        self.namespace = namespace
        self.name = name
        self.causes: tuple[StatusCause, ...] = tuple(causes)
        super().__init__(self._describe())

    def _describe(self) -> str:
        where = "/".join(p for p in (self.kind, self.namespace, self.name) if p)
        head = f"{self.status} {self.reason}".strip()
        text = f"{head}: {self.message}" if self.message else head
        if where:
            text = f"{text} [{where}]"
        if self.causes:
            text += "; " + "; ".join(f"{c.field}: {c.message}" for c in self.causes)
        return text

    def to_status(self) -> dict[str, Any]:
        """Return the error as a Kubernetes ``Status`` object (what the API server sends)."""
        details: dict[str, Any] = {}
        if self.name:
            details["name"] = self.name
        if self.kind:
            details["kind"] = self.kind.lower() + "s"
        if self.causes:
            details["causes"] = [c.to_dict() for c in self.causes]
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.status,
        }
        if details:
            status["details"] = details
        return status


class BadRequest(BackendError):
    """400: the request itself is malformed (for example an unsupported field selector)."""

    default_status = 400
    default_reason = "BadRequest"


class Unauthorized(BackendError):
    """401: the credentials were refused; the backend refreshes them once before this surfaces."""

    default_status = 401
    default_reason = "Unauthorized"


class Forbidden(BackendError):
    """403: RBAC or admission (for example Pod Security) refused the request."""

    default_status = 403
    default_reason = "Forbidden"


class NotFound(BackendError, LookupError):
    """404: the object or its namespace does not exist."""

    default_status = 404
    default_reason = "NotFound"


class AlreadyExists(BackendError):
    """409 AlreadyExists: an object with that name exists."""

    default_status = 409
    default_reason = "AlreadyExists"


class Conflict(BackendError):
    """409 Conflict: the update carried a stale ``resourceVersion``."""

    default_status = 409
    default_reason = "Conflict"


class Gone(BackendError):
    """410 Expired: the requested ``resourceVersion`` is older than the server's history."""

    default_status = 410
    default_reason = "Expired"


class Invalid(BackendError):
    """422 Invalid: the object failed server-side validation; ``causes`` lists each field."""

    default_status = 422
    default_reason = "Invalid"


class TooManyRequests(BackendError):
    """429: the server asks the client to slow down.

    Attributes:
        retry_after: Seconds the server asked to wait (``Retry-After``), when it said.
    """

    default_status = 429
    default_reason = "TooManyRequests"

    def __init__(self, message: str = "", *, retry_after: float | None = None, **kw: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kw)


class ServerError(BackendError):
    """5xx: the server failed (500 InternalError, 503 ServiceUnavailable, 504 Timeout...)."""

    default_status = 500
    default_reason = "InternalError"


class BackendUnavailable(BackendError, ConnectionError):
    """No answer: connection refused, reset, DNS failure or a client-side timeout."""

    default_status = 0
    default_reason = "Unavailable"


_BY_STATUS: dict[int, type[BackendError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    410: Gone,
    422: Invalid,
    429: TooManyRequests,
}


def error_for_status(
    status: int,
    reason: str = "",
    message: str = "",
    *,
    retry_after: float | None = None,
    kind: str | None = None,
    namespace: str | None = None,
    name: str | None = None,
    causes: Sequence[StatusCause] = (),
) -> BackendError:
    """Build the podrunner error for an HTTP status and Kubernetes reason.

    This is the one mapping every backend uses, so a 409 means the same on the fake and on a
    real cluster.

    Args:
        status: HTTP status code; 0 means there was no answer.
        reason: The ``Status.reason`` the server gave, if any.
        message: The server's message.
        retry_after: Seconds from a ``Retry-After`` header.
        kind: Kind involved.
        namespace: Namespace involved.
        name: Object name involved.
        causes: Field causes of a 422.

    Returns:
        An instance of the most specific :class:`BackendError` subclass.
    """
    kw: dict[str, Any] = {
        "status": status,
        "kind": kind,
        "namespace": namespace,
        "name": name,
        "causes": causes,
    }
    if reason:
        kw["reason"] = reason
    if status == 0:
        return BackendUnavailable(message, **kw)
    if status == 409:
        cls: type[BackendError] = AlreadyExists if reason == "AlreadyExists" else Conflict
        return cls(message, **kw)
    if status == 429:
        return TooManyRequests(message, retry_after=retry_after, **kw)
    if status >= 500:
        return ServerError(message, **kw)
    return _BY_STATUS.get(status, BackendError)(message, **kw)


class RunError(PodrunnerError):
    """A run did not produce a result: the container never ran, or the run was cut short.

    Attributes:
        message: What happened, in words.
        pod_name: Name of the run's pod, when it was created.
        namespace: Namespace of the run.
        run_id: The run's id (``podrunner.dev/run-id`` label).
        state: The last observed :class:`~podrunner.PodState`, if any.
        events: Recent Kubernetes events of the pod, oldest first, as ``"Reason: message"``.
        logs: Output captured before the run ended.
    """

    def __init__(
        self,
        message: str,
        *,
        pod_name: str | None = None,
        namespace: str | None = None,
        run_id: str | None = None,
        state: PodState | None = None,
        events: Sequence[str] = (),
        logs: str = "",
    ) -> None:
        self.message = message
        self.pod_name = pod_name
        self.namespace = namespace
        self.run_id = run_id
        self.state = state
        self.events: tuple[str, ...] = tuple(events)
        self.logs = logs
        text = message
        if pod_name:
            text = (
                f"{text} (pod {namespace}/{pod_name})" if namespace else f"{text} (pod {pod_name})"
            )
        if self.events:
            text += "\nevents:\n" + "\n".join(f"  {e}" for e in self.events[-10:])
        super().__init__(text)


class ImagePullError(RunError):
    """The image could not be pulled (ErrImagePull, ImagePullBackOff, InvalidImageName)."""


class Unschedulable(RunError):
    """No node can take the pod (FailedScheduling); raised without waiting out the timeout."""


class ContainerConfigError(RunError):
    """The container cannot be created: a missing Secret or ConfigMap key, a bad mount..."""


class InitContainerFailed(RunError):
    """An init container failed (or a sidecar crash-looped before the main container started).

    Raised as soon as the cluster reports it, not at a timeout: the main container never ran.
    ``logs`` holds the failed container's own output (its last 64 KiB).

    Attributes:
        container: The failed init container's (or sidecar's) name.
        exit_code: Its exit code, or ``None`` when the cluster did not report one.
    """

    def __init__(
        self, message: str, *, container: str, exit_code: int | None = None, **kw: Any
    ) -> None:
        self.container = container
        self.exit_code = exit_code
        super().__init__(message, **kw)


class StartTimeout(RunError, TimeoutError):
    """The pod was not running within the scheduling or start budget."""


class RunTimeout(RunError, TimeoutError):
    """The run exceeded its total budget; the pod was killed."""


class PodLost(RunError):
    """The pod disappeared underneath the run: deleted by someone else, or evicted."""


class RunCancelled(RunError):
    """The run was cancelled through :meth:`~podrunner.RunHandle.cancel`."""


class PodFailed(RunError):
    """Raised by ``run(check=True)`` when the container exited non-zero.

    Attributes:
        result: The full :class:`~podrunner.RunResult` (logs, exit code, reason).
    """

    def __init__(self, message: str, *, result: RunResult, **kw: Any) -> None:
        self.result = result
        super().__init__(message, **kw)


class CollectFailed(RunError):
    """The container ran, but the files asked for with ``collect=`` could not be copied out.

    The collect image has no ``tar``, the collector container is not running, or its tar
    stream could not be read. The run's pod is cleaned up as after any failure.

    Attributes:
        result: The run's :class:`~podrunner.RunResult` (exit code, logs), without files.
    """

    def __init__(self, message: str, *, result: RunResult, **kw: Any) -> None:
        self.result = result
        super().__init__(message, **kw)
