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

Before each task the worker reads the pod: missing, ended or being deleted means it is deleted
(with its per-run Secret) and created again. A pod that is not running yet is waited for through
the run engine, up to ``start_timeout``: :meth:`RunHandle.wait_running
<podrunner.RunHandle.wait_running>` follows it on the runner's shared watch, and the engine's
rules turn what it sees into :class:`~podrunner.errors.ImagePullError`,
:class:`~podrunner.errors.Unschedulable`, :class:`~podrunner.errors.ContainerConfigError` or
:class:`~podrunner.errors.StartTimeout`. An old pod's delete is followed on a watch until the pod
is gone (a new one cannot take the name before). Nothing polls.

Each task is one ``exec`` of the launcher with the prompt on standard input, so no prompt size
limit applies and the prompt never shows in any manifest. The exit code comes from the exec
status (the backend reads the API's ``Status`` object). A lock serialises tasks: the CLI's
``HOME`` (settings, sessions, credentials) is shared by everything running in the pod.

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
import time
from typing import TYPE_CHECKING, Any

from podrunner import _validation as v
from podrunner._time import format_rfc3339, parse_rfc3339
from podrunner.claude.errors import ClaudeTimeout
from podrunner.claude.launch import launcher_command
from podrunner.claude.parse import parse_output
from podrunner.claude.refresh import claim
from podrunner.claude.runner import CLAUDE_CONTAINER, ClaudeRunner
from podrunner.claude.sessions import claim_session
from podrunner.claude.task import ClaudeTask
from podrunner.errors import (
    AlreadyExists,
    BackendError,
    BackendUnavailable,
    NotFound,
    PodLost,
    RunError,
    SpecError,
    StartTimeout,
)
from podrunner.manifest import MANAGED_BY, MANAGED_BY_LABEL, RUN_ID_LABEL, build_manifests
from podrunner.run import EXPIRES_ANNOTATION
from podrunner.run.state import Phase, PodState, reduce
from podrunner.run.watch import SharedWatch
from podrunner.spec import CleanupPolicy

if TYPE_CHECKING:
    from collections.abc import Mapping

    from podrunner.backends.base import Kind
    from podrunner.claude.credentials import ClaudeCredentials
    from podrunner.claude.result import ClaudeResult
    from podrunner.run import PodRunner, RunHandle

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

DEFAULT_NAME_PREFIX = "claude-code-worker"
"""Start of a worker pod's default name; a digest of the worker id follows."""

# How long an old pod may take to go away after its delete (it ends at once on SIGTERM).
_GONE_TIMEOUT = 30.0
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


class ClaudeWorker:
    """A persistent Claude Code pod that runs tasks one at a time with ``exec``.

    Args:
        pod_runner: The runner whose backend and namespace are used.
        image: An image with the ``claude`` CLI and ``sh``.
        credentials: How the CLI authenticates.
        name: The worker pod's name; default ``claude-code-worker-<digest of worker_id>``.
        worker_id: Who the pod belongs to (a label value); default
            :func:`default_worker_id` of ``credentials``. Give the same id (and credentials)
            to find the pod again from another process when there are no credentials.
        start_timeout: Seconds to wait for the pod to be ``Running``.
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
        self._pods = ClaudeRunner(
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
        # The uids of the pod and Secret this object created or proved its own: the only
        # objects it ever deletes.
        self._pod_uid: str | None = None
        self._secret_uid: str | None = None
        self._lock = threading.Lock()
        self.recreated = 0
        """How many times the pod was (re)created by this object."""

    # -- the pod -------------------------------------------------------------------------------

    def ensure_running(self) -> dict[str, Any]:
        """Make sure the worker pod exists and is ``Running``; return it.

        A pod already under the worker's name is used only when it is this worker's own
        (see the module documentation).

        Raises:
            WorkerOwnershipError: The pod (or its Secret) under this name is not this worker's.
            StartTimeout: Not running within ``start_timeout``.
            ImagePullError: The image cannot be pulled.
            Unschedulable: No node accepts the pod.
            ContainerConfigError: The container cannot be created (a missing Secret key...).
        """
        with self._lock:
            return self._ensure_running()

    def _ensure_running(self, *, fresh: bool = False) -> dict[str, Any]:
        """Use the pod under the name, or make one (``fresh``: make one); wait until it runs.

        Within ``start_timeout``, a pod that ended or is being deleted is replaced, and a pod
        that went away while it started is looked up again.
        """
        clock = self.pod_runner.clock
        deadline = clock.monotonic() + self.start_timeout
        pod = None if fresh else self._get("Pod", self.name)
        while True:
            if pod is not None:
                self._claim(pod)  # a pod swapped in under our name is checked like any other
                state = reduce(pod, CLAUDE_CONTAINER)
                if state.phase is Phase.RUNNING and not state.deleting:
                    self._renew_expiry(pod)
                    return pod
                if self._unusable(pod, state):
                    self._delete_and_wait()
                    pod = None
            pod = self._wait_running(pod, max(0.0, deadline - clock.monotonic()))

    def _renew_expiry(self, pod: Mapping[str, Any]) -> None:
        """Push the reap expiry of a pod in use forward, so ``reap`` only takes idle workers.

        The runner stamps ``podrunner.dev/expires-at`` (``default_ttl``, a day) on the pod and
        its Secret; a worker lives longer than that. Renewed when under half the TTL is left.
        """
        clock = self.pod_runner.clock
        ttl = self.pod_runner.default_ttl
        now = clock.now()
        text = ((pod.get("metadata") or {}).get("annotations") or {}).get(EXPIRES_ANNOTATION)
        stamp = parse_rfc3339(text) if isinstance(text, str) else None
        if stamp is not None and stamp[0] - now > ttl / 2:
            return
        annotations = {EXPIRES_ANNOTATION: format_rfc3339(now + ttl)}
        targets: list[tuple[Kind, str, str | None]] = [("Pod", self.name, self._pod_uid)]
        if self._secret_name is not None:
            targets.append(("Secret", self._secret_name, self._secret_uid))
        for kind, name, uid in targets:
            if uid is None:
                continue
            # Best effort: a failed renewal only means reap may take the pod after the old
            # expiry, and the worker then makes a new one. The uid makes the patch conditional
            # on still being our object (a 422 otherwise).
            patch = {"metadata": {"uid": uid, "annotations": annotations}}
            with contextlib.suppress(BackendError):
                self.pod_runner.api.patch(kind, self.namespace, name, patch)

    @staticmethod
    def _unusable(pod: Mapping[str, Any], state: PodState) -> bool:
        """Whether the pod must be replaced: being deleted, ended, or its container ended.

        A pod that will not start (image, scheduling, config) is not replaced: waiting for it
        raises the engine's error for it.
        """
        phase = (pod.get("status") or {}).get("phase")
        return state.deleting or state.container_ran or phase in ("Succeeded", "Failed", "Unknown")

    def _get(self, kind: Kind, name: str) -> dict[str, Any] | None:
        try:
            return self.pod_runner.api.get(kind, self.namespace, name)
        except NotFound:
            return None

    def _refuse(self, what: str, reason: str) -> WorkerOwnershipError:
        return WorkerOwnershipError(
            f"{what} is not this worker's ({reason}); it was left untouched. Pick another "
            f"name= for this worker, or pass the worker_id= and credentials that made it",
            reason=reason,
            pod_name=self.name,
            namespace=self.namespace,
        )

    def _claim(self, pod: Mapping[str, Any]) -> None:
        """Record ``pod`` as this worker's, or raise if it cannot be proved so."""
        meta = pod.get("metadata") or {}
        uid = meta.get("uid")
        if uid is not None and uid == self._pod_uid:
            return
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
        secret_uid = None
        if self._secret_name is not None:
            secret = self._get("Secret", self._secret_name)
            if secret is None:
                raise self._refuse(
                    what,
                    f"its Secret {self._secret_name} is missing, so its credentials are unknown",
                )
            smeta = secret.get("metadata") or {}
            owners = {
                r.get("uid") for r in smeta.get("ownerReferences") or [] if isinstance(r, dict)
            }
            if uid not in owners:
                raise self._refuse(what, f"Secret {self._secret_name} is not owned by the pod")
            if (smeta.get("labels") or {}).get(WORKER_ID_LABEL) != self.worker_id:
                raise self._refuse(
                    what, f"Secret {self._secret_name} does not carry this worker's id"
                )
            if not hmac.compare_digest(_canonical(secret.get("data") or {}), self._secret_data):
                raise self._refuse(
                    what, f"Secret {self._secret_name} holds other credentials than this worker's"
                )
            secret_uid = smeta.get("uid")
        if not labels.get(RUN_ID_LABEL):
            raise self._refuse(what, f"it has no {RUN_ID_LABEL} label")
        self._pod_uid = uid
        self._secret_uid = secret_uid

    def _clear_leftover_secret(self) -> None:
        """Delete a Secret left under this worker's name with no pod, when it is this worker's."""
        if self._secret_name is None:
            return
        secret = self._get("Secret", self._secret_name)
        if secret is None:
            return
        meta = secret.get("metadata") or {}
        mine = (meta.get("labels") or {}).get(WORKER_ID_LABEL) == self.worker_id and (
            hmac.compare_digest(_canonical(secret.get("data") or {}), self._secret_data)
        )
        if not mine:
            raise self._refuse(
                f"Secret {self.namespace}/{self._secret_name}",
                "it is in the way of the worker's own Secret and carries other credentials or "
                "another worker id",
            )
        # Its pod is gone (the cluster would collect it soon): it holds only our own values.
        self._delete_owned("Secret", self._secret_name, meta.get("uid"))

    def _wait_running(self, pod: dict[str, Any] | None, timeout: float) -> dict[str, Any] | None:
        """Start a pod (``pod`` is ``None``) or follow ``pod`` until it runs or ends.

        Returns:
            The pod as last seen, or as found under the name again when it went away
            (``None``: none is there now).
        """
        if pod is None:
            try:
                handle = self._create()
            except AlreadyExists:
                # Someone made an object under this name meanwhile: use it only if it is ours
                # (the caller claims it).
                found = self._get("Pod", self.name)
                if found is None:
                    raise
                return found
        else:
            handle = self._attach(pod)
        # The pod must outlive the handle: it was started, or attached, with cleanup NEVER, so
        # closing the handle only ends its place on the shared watch.
        with handle:
            try:
                return handle.wait_running(timeout)
            except PodLost:
                # Deleted or evicted before it ran: look again.
                return self._get("Pod", self.name)

    def _attach(self, pod: Mapping[str, Any]) -> RunHandle:
        """A handle on ``pod`` (already claimed), found by its run id."""
        run_id = pod["metadata"]["labels"][RUN_ID_LABEL]
        handle = self.pod_runner.attach(
            run_id, namespace=self.namespace, cleanup=CleanupPolicy.NEVER
        )
        if handle.pod_name != self.name:
            handle.close()
            raise self._refuse(
                f"pod {self.namespace}/{self.name}",
                f"another pod, {handle.pod_name}, carries its run id",
            )
        return handle

    def _create(self) -> RunHandle:
        """Start the worker pod (and its Secret) and remember their uids: they are ours."""
        self._clear_leftover_secret()
        # start() creates the Secret and the pod and makes the pod own the Secret; NEVER cleanup
        # because the pod must outlive the handle.
        handle = self.pod_runner.start(self.spec, cleanup=CleanupPolicy.NEVER)
        self.recreated += 1
        try:
            self._record_created(handle.run_id)
        except BaseException:
            handle.close()
            raise
        return handle

    def _record_created(self, run_id: str) -> None:
        """Record the uids of the pod and Secret carrying ``run_id`` (the ones just created)."""
        pod = self._get("Pod", self.name)
        if pod is not None and (pod["metadata"].get("labels") or {}).get(RUN_ID_LABEL) == run_id:
            self._pod_uid = pod["metadata"].get("uid")
        if self._secret_name is not None:
            secret = self._get("Secret", self._secret_name)
            if (
                secret is not None
                and (secret["metadata"].get("labels") or {}).get(RUN_ID_LABEL) == run_id
            ):
                self._secret_uid = secret["metadata"].get("uid")

    def _delete_owned(self, kind: Kind, name: str, uid: object) -> dict[str, Any] | None:
        """Delete ``kind/name`` if it is still the object with ``uid``; return it as it was read.

        The backend's delete takes no uid precondition, so this re-reads first: an object
        made again under the name by someone else is left alone (``None`` is returned).
        """
        current = self._get(kind, name)
        if current is None or uid is None or current["metadata"].get("uid") != uid:
            return None
        self.pod_runner.api.delete_quietly(kind, self.namespace, name, grace=0)
        return current

    def _delete_own_objects(self) -> dict[str, Any] | None:
        """Delete this worker's pod and Secret; return the pod as read before its delete."""
        pod = None
        if self._pod_uid is not None:
            pod = self._delete_owned("Pod", self.name, self._pod_uid)
        if self._secret_name is not None and self._secret_uid is not None:
            self._delete_owned("Secret", self._secret_name, self._secret_uid)
        return pod

    def _delete_and_wait(self) -> None:
        """Delete this worker's pod and Secret, then wait on a watch until the pod is gone."""
        uid = self._pod_uid
        deleted = self._delete_own_objects()
        self._pod_uid = self._secret_uid = None
        if deleted is None:
            return  # gone already, or no longer ours
        # The engine's watch (resumes, relists on 410, rides out an outage), from the version
        # read just before the delete, so the pod's DELETED event cannot be missed.
        watch = SharedWatch(self.pod_runner.api, self.namespace)
        sub = watch.subscribe(self.name, deleted["metadata"].get("resourceVersion"))
        deadline = self.pod_runner.clock.monotonic() + _GONE_TIMEOUT
        never = threading.Event()  # nothing cancels this wait but its deadline
        try:
            while events := watch.wait(sub, deadline, never):
                for event in events:
                    meta = event.object.get("metadata") or {}
                    if event.type == "DELETED" or meta.get("uid") != uid:
                        return  # gone (another pod under the name is claimed later)
        finally:
            watch.unsubscribe(sub)
            watch.close()
        raise StartTimeout(
            f"the old worker pod was still terminating after {_GONE_TIMEOUT:g}s",
            pod_name=self.name,
            namespace=self.namespace,
        )

    def recreate(self) -> None:
        """Delete the pod and start a new one (picks up changed settings).

        Raises:
            WorkerOwnershipError: The pod under this name is not this worker's.
            RunError: The new pod did not start, as :meth:`ensure_running` raises.
        """
        with self._lock:
            pod = self._get("Pod", self.name)
            if pod is not None:
                self._claim(pod)
                self._delete_and_wait()
            self._ensure_running(fresh=True)

    def stop(self) -> None:
        """Delete the worker pod and its Secret, if this object created or adopted them.

        Idempotent. A pod this worker never used (another worker's, or one left by an earlier
        process that this object has not adopted with :meth:`ensure_running` or :meth:`run`)
        is left alone.
        """
        with self._lock:
            self._delete_own_objects()
            self._pod_uid = self._secret_uid = None

    def __enter__(self) -> ClaudeWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

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
        if isinstance(task, str):
            task = ClaudeTask(task)
        limit = self.exec_timeout if timeout is None else timeout
        command = self.command(task)  # refuses a task the credentials cannot run, first
        with (
            self._lock,
            claim(self._pods.credentials),
            claim_session(self._pods.sessions, task),
        ):
            self._ensure_running()
            # Timed by the exec's own (real) clock: an exec that failed for lack of an answer
            # once its time was up ran out of time, whatever the backend's words.
            started = time.monotonic()
            try:
                done = self.pod_runner.api.exec(
                    self.namespace,
                    self.name,
                    CLAUDE_CONTAINER,
                    command,
                    stdin=task.stdin().encode("utf-8"),
                    timeout=limit,
                )
            except (TimeoutError, BackendUnavailable) as exc:
                if isinstance(exc, TimeoutError) or (
                    limit is not None and time.monotonic() - started >= limit
                ):
                    raise ClaudeTimeout(
                        f"the Claude task did not finish within {limit}s in the worker"
                    ) from exc
                raise
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
