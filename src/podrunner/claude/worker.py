"""ClaudeWorker: one long-running pod, one ``exec`` per task.

The pod runs a sleep loop (``trap 'exit 0' TERM; while :; do sleep 3600 & wait; done``) with
``restartPolicy: Always``: the loop keeps it alive, and the trap makes a delete end it at once
instead of waiting out the grace period. It is built like a :class:`ClaudeRunner` pod
(restricted security, read-only root, ``HOME`` and ``/tmp`` emptyDirs, blanked ``CLAUDE*``
variables, credentials from a Secret).

Ownership: every worker has a ``worker_id`` (by default derived from its credentials, see
:func:`default_worker_id`), written in the ``podrunner.dev/worker-id`` label of its pod and
Secret, and the pod's default name is derived from it, so two users' workers never share a name.
A worker only uses, deletes or replaces a pod it created, or one it proved its own: a pod a
podrunner run started (it has a run-id label) with its worker id, reading its credentials from
exactly the Secrets this worker would reference, and, when that is a per-run Secret, a Secret
owned by that pod, with the same worker id and holding this worker's credentials. Anything else
under its name raises :class:`WorkerOwnershipError` and is left alone, also by
:meth:`ClaudeWorker.stop`.

The worker is a :class:`~podrunner.PodPool` of one pod under that fixed name, given back after
each task (``recycle``), with the ownership proof above as the pool's ``adopt`` check. The pool
keeps the pod: one that is gone, ended or being deleted is made again (after the old one is
gone: the name is taken until then), its reap expiry (``podrunner.dev/expires-at``) is renewed
a TTL ahead while the worker lives, and one that will not start raises the run engine's error
for it (:class:`~podrunner.errors.ImagePullError`, :class:`~podrunner.errors.ContainerConfigError`,
and :class:`~podrunner.errors.Unschedulable` once ``start_timeout`` passed) instead of
:class:`~podrunner.errors.StartTimeout`. Everything is followed on a watch; nothing polls.

A task claims the pod (a ``replace`` conditional on its ``resourceVersion``, as every pool
claim), so two tasks never share its ``HOME``, whether they come from this process or another;
a second waits up to ``start_timeout`` for the first to give the pod back. The claim carries
the task's deadline as the pod's reap expiry. A task that runs out of time or is interrupted
(Ctrl-C, a signal, an error while it runs) takes the pod with it, as the CLI may still be
running in it; the next task gets a new pod. A task the CLI itself failed keeps the pod.

Each task is one ``exec`` of the launcher with the prompt on standard input, so no prompt size
limit applies and the prompt never shows in any manifest. The exit code comes from the exec
status (the backend reads the API's ``Status`` object). Tasks of one worker object also queue
on a lock: the CLI's ``HOME`` (settings, sessions, credentials) is shared by everything running
in the pod.

Trade-offs against one pod per task: no pod start per task (seconds to tens of seconds saved),
and sessions can be resumed; but state leaks between tasks (files in ``HOME`` and the working
directory), the pod's settings are fixed when it is created (a new image or env needs
:meth:`ClaudeWorker.recreate`), and a stuck task blocks the next ones.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import secrets
import threading
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from podrunner import _validation as v
from podrunner.claude.errors import ClaudeTimeout
from podrunner.claude.launch import launcher_command
from podrunner.claude.parse import parse_output
from podrunner.claude.refresh import claim
from podrunner.claude.runner import ClaudePods, ClaudeRunner
from podrunner.claude.sessions import claim_session
from podrunner.claude.task import ClaudeTask
from podrunner.errors import NotFound, RunError, RunTimeout, SpecError
from podrunner.manifest import MANAGED_BY, MANAGED_BY_LABEL, RUN_ID_LABEL, build_manifests
from podrunner.run.pool import PodPool

if TYPE_CHECKING:
    from collections.abc import Mapping

    from podrunner.backends.base import ExecResult
    from podrunner.claude.credentials import ClaudeCredentials
    from podrunner.claude.result import ClaudeResult
    from podrunner.run import PodRunner

__all__ = [
    "DEFAULT_NAME_PREFIX",
    "SLEEP_LOOP",
    "WORKER_ID_LABEL",
    "ClaudeWorker",
    "WorkerOwnershipError",
    "default_worker_id",
]

SLEEP_LOOP = "trap 'exit 0' TERM; while :; do sleep 3600 & wait; done"
"""The worker container's script: idle forever, exit 0 at once on SIGTERM."""

WORKER_ID_LABEL = "podrunner.dev/worker-id"
"""Label on a worker's pod and Secret naming the worker they belong to."""


class _Runner(Protocol):
    namespace: str
    default_ttl: float


_R = TypeVar("_R", bound=_Runner)  # a PodRunner or an AsyncPodRunner

DEFAULT_NAME_PREFIX = "claude-code-worker"
"""Start of a worker pod's default name; a digest of the worker id follows."""

_DIGEST_DOMAIN = "podrunner.dev/worker-id/v1"


def _digest(*parts: str) -> str:
    text = "\0".join((_DIGEST_DOMAIN, *parts))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


def default_worker_id(credentials: ClaudeCredentials | None) -> str:
    """Return the worker id a :class:`ClaudeWorker` uses when none is given.

    With credentials, a digest of them (20 hex digits): of the values, or of the Secret names
    and keys of :class:`~podrunner.SecretRef` (:meth:`ClaudeCredentials.identity
    <podrunner.claude.ClaudeCredentials.identity>`), and of their settings (region...). It
    is stable, so the same credentials find their worker pod again from another process,
    and different credentials (different users) get different ids and pod names. The digest
    is one-way; the value never leaves the process.
    Without credentials there is nothing per-user to derive from: a new random id each call.

    Args:
        credentials: The worker's credentials, or ``None``.

    Returns:
        A valid label value.
    """
    if credentials is None:
        return secrets.token_hex(10)
    return _digest(*credentials.identity())


class WorkerOwnershipError(RunError):
    """A pod or Secret under the worker's name is not provably this worker's; it was left alone.

    Attributes:
        reason: Why the object is not this worker's, in words (never a credential value).
    """

    def __init__(self, message: str, *, reason: str, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.reason = reason


def _secret_refs(pod: Mapping[str, Any]) -> frozenset[tuple[str, str]]:
    """Every ``(Secret name, key)`` the pod reads; ``*`` for a whole Secret."""
    spec = pod.get("spec") or {}
    refs: set[tuple[str, str]] = set()

    def add(source: Mapping[str, Any] | None, name_field: str) -> None:
        if not isinstance(source, dict):
            return
        name = str(source.get(name_field))
        items = source.get("items") or []
        if not items:
            refs.add((name, "*"))
        for item in items:
            refs.add((name, str(item.get("key"))))

    containers = [
        *(spec.get("initContainers") or []),
        *(spec.get("containers") or []),
        *(spec.get("ephemeralContainers") or []),
    ]
    for container in containers:
        for env in container.get("env") or []:
            ref = (env.get("valueFrom") or {}).get("secretKeyRef")
            if isinstance(ref, dict):
                refs.add((str(ref.get("name")), str(ref.get("key"))))
        for source in container.get("envFrom") or []:
            add(source.get("secretRef"), "name")
    for volume in spec.get("volumes") or []:
        add(volume.get("secret"), "secretName")
        for source in (volume.get("projected") or {}).get("sources") or []:
            add(source.get("secret"), "name")
    return frozenset(refs)


def _check_worker_id(value: object) -> None:
    if not isinstance(value, str) or not value:
        shown = value if isinstance(value, str) else type(value).__name__
        raise SpecError("worker_id", shown, "must be a non-empty str")
    error = v.label_value_error(value)
    if error is not None:
        raise SpecError("worker_id", value, error)


def _canonical(data: object) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode("utf-8")


class _WorkerParts(Generic[_R]):
    """What :class:`ClaudeWorker` and :class:`~podrunner.claude.AsyncClaudeWorker` share.

    The worker's identity, its pod, how it recognises its own objects, its commands and
    results: everything but I/O.
    """

    def __init__(
        self,
        pod_runner: _R,
        pods_type: type[ClaudePods[_R]],
        *,
        image: str,
        credentials: ClaudeCredentials | None,
        name: str | None,
        worker_id: str | None,
        start_timeout: float,
        exec_timeout: float | None,
        pod_options: dict[str, Any],
    ) -> None:
        if worker_id is None:
            worker_id = default_worker_id(credentials)
        else:
            _check_worker_id(worker_id)
        labels = dict(pod_options.pop("labels", None) or {})
        if labels.get(WORKER_ID_LABEL, worker_id) != worker_id:
            raise SpecError(
                "labels", WORKER_ID_LABEL, "is set by the worker: pass worker_id= instead"
            )
        labels[WORKER_ID_LABEL] = worker_id
        self.pod_runner = pod_runner
        self.worker_id = worker_id
        self.name = name if name is not None else f"{DEFAULT_NAME_PREFIX}-{_digest(worker_id)[:10]}"
        self.start_timeout = start_timeout
        self.exec_timeout = exec_timeout
        self._pods = pods_type(
            pod_runner,
            image=image,
            credentials=credentials,
            timeout=exec_timeout,
            labels=labels,
            **pod_options,
        )
        self.spec = self._pods.base_spec(
            ["sh", "-c", SLEEP_LOOP], pod_name=self.name, restart_policy="Always"
        )
        self.namespace = self.spec.namespace or pod_runner.namespace
        # What this worker's own pod references and holds, to recognise it later.
        expected = build_manifests(self.spec)
        self._expected_refs = _secret_refs(expected.pod)
        self._secret_name: str | None = None
        self._secret_data = b""
        if expected.secret is not None:
            self._secret_name = expected.secret["metadata"]["name"]
            self._secret_data = _canonical(expected.secret.get("data") or {})
        self._retired = 0  # pods made by pools this worker let go of (stop, detach)

    def _pool_settings(self) -> dict[str, Any]:
        """The settings of the worker's pool of one pod."""
        return {
            "name": f"claude-worker-{_digest(self.name)[:10]}",
            "holder": ("sh", "-c", SLEEP_LOOP),
            "recycle": True,
            # A worker outlives runs: its pod's reap expiry reaches a TTL ahead and is
            # renewed while the worker lives; it has no age limit.
            "lease": self.pod_runner.default_ttl,
            "max_age": None,
            "start_timeout": self.start_timeout,
            "pod_name": self.name,
        }

    # -- whose objects --------------------------------------------------------------------------

    def _refuse(self, what: str, reason: str) -> WorkerOwnershipError:
        return WorkerOwnershipError(
            f"{what} is not this worker's ({reason}); it was left untouched. Pick another "
            f"name= for this worker, or pass the worker_id= and credentials that made it",
            reason=reason,
            pod_name=self.name,
            namespace=self.namespace,
        )

    def _check_in_the_way(self, obj: Mapping[str, Any]) -> None:
        """Raise unless a Secret or ConfigMap in the way of the worker's pod is its own."""
        meta = obj.get("metadata") or {}
        mine = (meta.get("labels") or {}).get(WORKER_ID_LABEL) == self.worker_id
        if obj.get("kind") == "Secret":
            mine = mine and hmac.compare_digest(
                _canonical(obj.get("data") or {}), self._secret_data
            )
        if not mine:
            raise self._refuse(
                f"{obj.get('kind')} {self.namespace}/{meta.get('name')}",
                "it is in the way of the worker's own and carries other credentials or "
                "another worker id",
            )

    def _check_pod(self, pod: Mapping[str, Any], secret: Mapping[str, Any] | None) -> None:
        """Raise unless ``pod`` is provably this worker's (see the module documentation).

        ``secret`` is the worker's Secret as read (``None``: there is none).
        """
        meta = pod.get("metadata") or {}
        what = f"pod {self.namespace}/{self.name}"
        labels = meta.get("labels") or {}
        if labels.get(MANAGED_BY_LABEL) != MANAGED_BY:
            raise self._refuse(what, "it was not made by podrunner")
        found = labels.get(WORKER_ID_LABEL)
        if found is None:
            raise self._refuse(what, f"it has no {WORKER_ID_LABEL} label")
        if found != self.worker_id:
            raise self._refuse(what, f"its {WORKER_ID_LABEL} label names another worker")
        refs = _secret_refs(pod)
        if refs != self._expected_refs:
            theirs = ", ".join(sorted({n for n, _ in refs})) or "none"
            ours = ", ".join(sorted({n for n, _ in self._expected_refs})) or "none"
            raise self._refuse(
                what, f"it reads credentials from Secrets [{theirs}], this worker from [{ours}]"
            )
        if self._secret_name is not None:
            self._check_secret(what, meta.get("uid"), secret)
        if not labels.get(RUN_ID_LABEL):
            raise self._refuse(what, f"it has no {RUN_ID_LABEL} label")

    def _check_secret(self, what: str, pod_uid: object, secret: Mapping[str, Any] | None) -> None:
        """Raise unless the pod's Secret is owned by it and holds this worker's values."""
        name = self._secret_name
        if secret is None:
            raise self._refuse(
                what, f"its Secret {name} is missing, so its credentials are unknown"
            )
        smeta = secret.get("metadata") or {}
        if pod_uid not in _owners(smeta):
            raise self._refuse(what, f"Secret {name} is not owned by the pod")
        if (smeta.get("labels") or {}).get(WORKER_ID_LABEL) != self.worker_id:
            raise self._refuse(what, f"Secret {name} does not carry this worker's id")
        if not hmac.compare_digest(_canonical(secret.get("data") or {}), self._secret_data):
            raise self._refuse(what, f"Secret {name} holds other credentials than this worker's")

    # -- tasks ---------------------------------------------------------------------------------

    def command(self, task: ClaudeTask) -> list[str]:
        """Return the exec argv for ``task`` (the prompt itself goes on stdin)."""
        credentials = self._pods.credentials
        if credentials is not None:
            credentials.check_task(task)
        plan = credentials.plan() if credentials is not None else None
        return launcher_command(
            task.argv(self._pods.claude_path, prompt_on_stdin=True),
            working_dir=task.working_dir,
            credentials_file=plan.credentials_file if plan else "",
            prompt_file=f"stdin:{len(task.stdin().encode('utf-8'))}",
            shell_prefix=plan.shell_prefix if plan else "",
        )

    def _prepared(
        self, task: ClaudeTask | str, timeout: float | None
    ) -> tuple[ClaudeTask, float | None, list[str]]:
        """The task, its time limit and its command.

        A task the credentials cannot run is refused here, before any call.
        """
        if isinstance(task, str):
            task = ClaudeTask(task)
        limit = self.exec_timeout if timeout is None else timeout
        return task, limit, self.command(task)

    @staticmethod
    def _timed_out(limit: float | None) -> ClaudeTimeout:
        return ClaudeTimeout(f"the Claude task did not finish within {limit}s in the worker")

    @staticmethod
    def _result(done: ExecResult, task: ClaudeTask, check: bool) -> ClaudeResult:
        result = parse_output(
            done.stdout,
            exit_code=done.exit_code,
            stderr=done.stderr,
            keep_events=task.output_format == "stream-json",
            expect_structured=task.structured_expected,
            max_turns=task.max_turns,
            max_budget_usd=task.max_budget_usd,
        )
        if check and result.error is not None:
            raise result.error
        return result


def _owners(meta: Mapping[str, Any]) -> set[object]:
    return {r.get("uid") for r in meta.get("ownerReferences") or () if isinstance(r, dict)}


def _spent(secret: Mapping[str, Any], used: frozenset[str]) -> bool:
    """Whether the worker's Secret belongs only to pods its pool used (and let go).

    The worker then deletes it at once rather than wait for the garbage collector.
    """
    owners = _owners(secret.get("metadata") or {})
    return bool(owners) and owners <= used


class ClaudeWorker(_WorkerParts["PodRunner"]):
    """A persistent Claude Code pod that runs tasks one at a time with ``exec``.

    The worker is a :class:`~podrunner.PodPool` of one pod under a fixed name, given back
    after every task (``recycle``): a task claims the pod, so two tasks (of this process or
    another) never share it, and the pool renews the pod's reap expiry while the worker lives.

    Args:
        pod_runner: The runner whose backend and namespace are used.
        image: An image with the ``claude`` CLI and ``sh``.
        credentials: How the CLI authenticates.
        name: The worker pod's name; default ``claude-code-worker-<digest of worker_id>``.
        worker_id: Who the pod belongs to (a label value); default
            :func:`default_worker_id` of ``credentials``. Give the same id (and credentials)
            to find the pod again from another process when there are no credentials.
        start_timeout: Seconds to wait for the pod to be ready (and for a task of another
            process to give it back).
        exec_timeout: Default seconds per task (``None``: no limit).
        **pod_options: Further :class:`ClaudeRunner` options (resources, namespace, env,
            volumes, labels, annotations, node_selector, claude_path, home...).

    Raises:
        SpecError: ``worker_id`` is not a label value, or ``labels`` sets another worker id.

    Example:
        >>> with ClaudeWorker(runner, image="my/claude:1") as worker:  # doctest: +SKIP
        ...     print(worker.run("Summarise README.md").text)
    """

    def __init__(
        self,
        pod_runner: PodRunner,
        *,
        image: str,
        credentials: ClaudeCredentials | None = None,
        name: str | None = None,
        worker_id: str | None = None,
        start_timeout: float = 120.0,
        exec_timeout: float | None = 600.0,
        **pod_options: Any,
    ) -> None:
        super().__init__(
            pod_runner,
            ClaudeRunner,
            image=image,
            credentials=credentials,
            name=name,
            worker_id=worker_id,
            start_timeout=start_timeout,
            exec_timeout=exec_timeout,
            pod_options=pod_options,
        )
        self._lock = threading.Lock()
        self.pool = self._new_pool()
        """The pool of one pod behind the worker."""

    def _new_pool(self) -> PodPool:
        return PodPool(self.pod_runner, self.spec, 1, adopt=self._adopt, **self._pool_settings())

    @property
    def recreated(self) -> int:
        """How many times the pod was (re)created by this object."""
        return self._retired + int(self.pool.created)

    # -- the pod -------------------------------------------------------------------------------

    def ensure_running(self) -> dict[str, Any]:
        """Make sure the worker pod exists and is ready; return it.

        A pod already under the worker's name is used only when it is this worker's own
        (see the module documentation).

        Raises:
            WorkerOwnershipError: The pod (or its Secret) under this name is not this worker's.
            StartTimeout: Not ready within ``start_timeout``.
            ImagePullError: The image cannot be pulled.
            Unschedulable: No node accepts the pod.
            ContainerConfigError: The container cannot be created (a missing Secret key...).
        """
        with self._lock:
            return self._ensure_running()

    def _ensure_running(self) -> dict[str, Any]:
        while True:
            self.pool.wait_ready()
            with contextlib.suppress(NotFound):  # gone since: wait for the next one
                return self.pod_runner.api.get("Pod", self.namespace, self.name)

    def _adopt(self, obj: Mapping[str, Any]) -> None:
        """The pool's check of an object under the worker's names.

        Its pod, or its Secret in the way of a new pod. Raises
        :class:`WorkerOwnershipError` unless it is this worker's.
        """
        if obj.get("kind", "Pod") != "Pod":
            self._check_in_the_way(obj)
            return
        secret = None
        if self._secret_name is not None:
            with contextlib.suppress(NotFound):
                secret = self.pod_runner.api.get("Secret", self.namespace, self._secret_name)
        self._check_pod(obj, secret)

    def recreate(self) -> None:
        """Delete the pod and start a new one (picks up changed settings).

        A task running in the pod (from another process) finishes first.

        Raises:
            WorkerOwnershipError: The pod under this name is not this worker's.
            RunError: The new pod did not start, as :meth:`ensure_running` raises.
        """
        with self._lock:
            self.pool.refresh()
            self._ensure_running()

    def stop(self) -> None:
        """Delete the worker pod (its Secret goes with it), if this object used it.

        Idempotent. A pod this worker never used (another worker's, or one left by an earlier
        process that this object has not adopted with :meth:`ensure_running` or :meth:`run`)
        is left alone. The worker may be used again: it starts a new pod.
        """
        with self._lock:
            pool = self.pool
            pool.close()
            self._retired += pool.created
            self.pool = self._new_pool()
            self._delete_secret(pool.used_uids)

    def _delete_secret(self, used: frozenset[str]) -> None:
        """Delete the Secret of the pod the pool used, now.

        It is owned by that pod, which is gone: this does not wait for the cluster's garbage
        collector.
        """
        if self._secret_name is None:
            return
        try:
            secret = self.pod_runner.api.get("Secret", self.namespace, self._secret_name)
        except NotFound:
            return
        if _spent(secret, used):
            self.pod_runner.api.delete_quietly("Secret", self.namespace, self._secret_name)

    def detach(self) -> None:
        """Let go of the pod without deleting it, for a later worker to adopt.

        What a process that ends without :meth:`stop` does: the pod keeps its ``HOME`` and
        sessions, nothing renews its expiry (``reap`` takes it a day after its last renewal),
        and a worker with the same identity, here or in another process, adopts it. This
        object may be used again (it adopts the pod anew).
        """
        with self._lock:
            pool = self.pool
            pool.detach()
            self._retired += pool.created
            self.pool = self._new_pool()

    def __enter__(self) -> ClaudeWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- tasks ---------------------------------------------------------------------------------

    def run(
        self, task: ClaudeTask | str, *, timeout: float | None = None, check: bool = True
    ) -> ClaudeResult:
        """Run ``task`` in the worker pod and return the parsed result.

        Tasks are serialised: a second caller waits for the first to finish.

        Args:
            task: The task, or just a prompt.
            timeout: Seconds for the exec; default ``exec_timeout``.
            check: Raise the classified error when the task failed.

        Raises:
            ClaudeTimeout: The exec did not finish in time.
            ClaudeError: With ``check=True``, how the task failed.
            RunError: The worker pod could not be started.
        """
        task, limit, command = self._prepared(task, timeout)
        with (
            self._lock,
            claim(self._pods.credentials),
            claim_session(self._pods.sessions, task),
        ):
            try:
                # The claim holds the pod for this task alone, whichever process asks; a
                # task that ran out of time or was interrupted takes its pod with it (the CLI
                # may still run); a failed answer (parsed below) keeps it.
                with self.pool.claim(timeout=limit) as pod:
                    done = self.pool.exec_in(
                        pod, command, stdin=task.stdin().encode("utf-8"), timeout=limit
                    )
            except RunTimeout as exc:
                raise self._timed_out(limit) from exc
        return self._result(done, task, check)
