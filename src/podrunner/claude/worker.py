"""ClaudeWorker: one long-running pod, one ``exec`` per task (the seed's persistent provider).

The pod runs a sleep loop (``trap 'exit 0' TERM; while :; do sleep 3600 & wait; done``) with
``restartPolicy: Always``: the loop keeps it alive, and the trap makes a delete end it at once
instead of waiting out the grace period. It is built like a :class:`ClaudeRunner` pod
(restricted security, read-only root, ``HOME`` and ``/tmp`` emptyDirs, blanked ``CLAUDE*``
variables, credentials from a Secret) and has a fixed name.

Before each task the worker checks the pod: missing, terminal or being deleted means it is
deleted (with its per-run Secret) and created again; then it waits for ``Running`` up to
``start_timeout``. Each task is one ``exec`` of the launcher with the prompt on standard input,
so no prompt size limit applies and the prompt never shows in any manifest. The exit code comes
from the exec status (the backend reads the API's ``Status`` object). A lock serialises tasks:
the CLI's ``HOME`` (settings, sessions, credentials) is shared by everything running in the pod.

Trade-offs against one pod per task: no pod start per task (seconds to tens of seconds saved),
and sessions can be resumed; but state leaks between tasks (files in ``HOME`` and the working
directory), the pod's settings are fixed when it is created (a new image or env needs
:meth:`ClaudeWorker.recreate`), and a stuck task blocks the next ones.
"""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING, Any

from podrunner.claude.errors import ClaudeTimeout
from podrunner.claude.launch import launcher_command
from podrunner.claude.parse import parse_output
from podrunner.claude.runner import CLAUDE_CONTAINER, ClaudeRunner
from podrunner.claude.task import ClaudeTask
from podrunner.errors import (
    BackendUnavailable,
    ContainerConfigError,
    ImagePullError,
    NotFound,
    StartTimeout,
    Unschedulable,
)
from podrunner.sdk.lifecycle import Phase, Reason, reduce
from podrunner.sdk.manifest import secret_name_for
from podrunner.sdk.spec import CleanupPolicy

if TYPE_CHECKING:
    from collections.abc import Mapping

    from podrunner.backends.base import Kind
    from podrunner.claude.credentials import ClaudeCredentials
    from podrunner.claude.result import ClaudeResult
    from podrunner.sdk.runner import PodRunner

__all__ = ["SLEEP_LOOP", "ClaudeWorker"]

SLEEP_LOOP = "trap 'exit 0' TERM; while :; do sleep 3600 & wait; done"
"""The worker container's script: idle forever, exit 0 at once on SIGTERM."""

_POLL = 0.5


class ClaudeWorker:
    """A persistent Claude Code pod that runs tasks one at a time with ``exec``.

    Args:
        pod_runner: The runner whose backend and namespace are used.
        image: An image with the ``claude`` CLI and ``sh``.
        credentials: How the CLI authenticates.
        name: The worker pod's fixed name.
        start_timeout: Seconds to wait for the pod to be ``Running``.
        exec_timeout: Default seconds per task (``None``: no limit).
        **pod_options: Further :class:`ClaudeRunner` options (resources, namespace, env,
            volumes, labels, annotations, node_selector, claude_path, home...).

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
        name: str = "claude-code-worker",
        start_timeout: float = 120.0,
        exec_timeout: float | None = 600.0,
        **pod_options: Any,
    ) -> None:
        self.pod_runner = pod_runner
        self.name = name
        self.start_timeout = start_timeout
        self.exec_timeout = exec_timeout
        self._pods = ClaudeRunner(
            pod_runner, image=image, credentials=credentials, timeout=exec_timeout, **pod_options
        )
        self.spec = self._pods.base_spec(
            ["sh", "-c", SLEEP_LOOP], pod_name=name, restart_policy="Always"
        )
        self.namespace = self.spec.namespace or pod_runner.namespace
        self._lock = threading.Lock()
        self.recreated = 0
        """How many times the pod was (re)created by this object."""

    # -- the pod -------------------------------------------------------------------------------

    def ensure_running(self) -> dict[str, Any]:
        """Make sure the worker pod exists and is ``Running``; return it.

        Raises:
            StartTimeout: Not running within ``start_timeout``.
            ImagePullError: The image cannot be pulled.
            Unschedulable: No node accepts the pod.
            ContainerConfigError: The container cannot be created (a missing Secret key...).
        """
        with self._lock:
            return self._ensure_running()

    def _ensure_running(self) -> dict[str, Any]:
        backend = self.pod_runner.backend
        try:
            pod: dict[str, Any] | None = backend.get("Pod", self.namespace, self.name)
        except NotFound:
            pod = None
        if pod is not None and self._unusable(pod):
            self._delete_and_wait()
            pod = None
        if pod is None:
            self._create()
        return self._wait_running()

    @staticmethod
    def _unusable(pod: Mapping[str, Any]) -> bool:
        if pod.get("metadata", {}).get("deletionTimestamp"):
            return True
        phase = (pod.get("status") or {}).get("phase")
        return phase in ("Succeeded", "Failed", "Unknown")

    def _objects(self) -> tuple[tuple[Kind, str], ...]:
        return (("Pod", self.name), ("Secret", secret_name_for(self.name)))

    def _create(self) -> None:
        # start() creates the Secret and the pod and makes the pod own the Secret; NEVER cleanup
        # because the pod must outlive this call. Closing the handle only ends its watch.
        handle = self.pod_runner.start(self.spec, cleanup=CleanupPolicy.NEVER)
        handle.close()
        self.recreated += 1

    def _delete_and_wait(self) -> None:
        backend = self.pod_runner.backend
        clock = self.pod_runner.clock
        for kind, name in self._objects():
            with contextlib.suppress(NotFound):
                backend.delete(kind, self.namespace, name, grace_period_seconds=0)
        deadline = clock.monotonic() + 30.0
        while clock.monotonic() < deadline:
            try:
                backend.get("Pod", self.namespace, self.name)
            except NotFound:
                return
            clock.sleep(_POLL)
        raise StartTimeout(
            "the old worker pod was still terminating after 30s",
            pod_name=self.name,
            namespace=self.namespace,
        )

    def _wait_running(self) -> dict[str, Any]:
        backend = self.pod_runner.backend
        clock = self.pod_runner.clock
        deadline = clock.monotonic() + self.start_timeout
        while True:
            try:
                pod = backend.get("Pod", self.namespace, self.name)
            except NotFound:
                pod = None
            if pod is not None:
                state = reduce(pod, CLAUDE_CONTAINER)
                context: dict[str, Any] = {
                    "pod_name": self.name,
                    "namespace": self.namespace,
                    "state": state,
                }
                if state.phase is Phase.RUNNING and not state.deleting:
                    return pod
                if state.reason is Reason.IMAGE_PULL_ERROR:
                    raise ImagePullError(
                        f"the worker image could not be pulled: {state.message}", **context
                    )
                if state.reason is Reason.UNSCHEDULABLE:
                    raise Unschedulable(f"no node can run the worker: {state.message}", **context)
                if state.reason is Reason.CONFIG_ERROR:
                    raise ContainerConfigError(
                        f"the worker container could not be created: {state.message}", **context
                    )
                if state.terminal:
                    # Ended between our check and now (e.g. evicted): start over once more.
                    self._delete_and_wait()
                    self._create()
            if clock.monotonic() >= deadline:
                raise StartTimeout(
                    f"the worker pod was not running within {self.start_timeout:g}s",
                    pod_name=self.name,
                    namespace=self.namespace,
                )
            clock.sleep(_POLL)

    def recreate(self) -> None:
        """Delete the pod and start a new one (picks up changed settings)."""
        with self._lock:
            self._delete_and_wait()
            self._create()
            self._wait_running()

    def stop(self) -> None:
        """Delete the worker pod and its Secret (idempotent)."""
        with self._lock:
            for kind, name in self._objects():
                with contextlib.suppress(NotFound):
                    self.pod_runner.backend.delete(
                        kind, self.namespace, name, grace_period_seconds=0
                    )

    def __enter__(self) -> ClaudeWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- tasks ---------------------------------------------------------------------------------

    def command(self, task: ClaudeTask) -> list[str]:
        """Return the exec argv for ``task`` (the prompt itself goes on stdin)."""
        plan = self._pods.credentials.plan() if self._pods.credentials is not None else None
        return launcher_command(
            task.argv(self._pods.claude_path, prompt_on_stdin=True),
            working_dir=task.working_dir,
            credentials_file=plan.credentials_file if plan else "",
            prompt_file=f"stdin:{task.prompt_bytes}",
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
        with self._lock:
            self._ensure_running()
            try:
                done = self.pod_runner.backend.exec(
                    self.namespace,
                    self.name,
                    CLAUDE_CONTAINER,
                    self.command(task),
                    stdin=task.prompt.encode("utf-8"),
                    timeout=limit,
                )
            except (TimeoutError, BackendUnavailable) as exc:
                if isinstance(exc, TimeoutError) or "timed out" in str(exc).lower():
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
