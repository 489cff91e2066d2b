"""ClaudeRunner: one Claude Code task per ephemeral pod.

The pod (what :meth:`ClaudeRunner.build_spec` returns):

* container ``claude-code``, label ``app.kubernetes.io/component=claude-runner``;
* the restricted Pod Security Standard: non-root user (10001 by default), no privilege
  escalation, all capabilities dropped, seccomp ``RuntimeDefault``, no service-account token;
* a read-only root filesystem, with ``HOME`` (``/home/claude``) and ``/tmp`` on size-capped
  emptyDirs, since the CLI writes its settings, sessions and credentials under ``HOME``;
* every variable of the launcher's environment whose name starts with ``CLAUDE`` set to ``""``
  (blanking): when podrunner itself runs inside Claude Code, variables such as
  ``CLAUDECODE`` or ``CLAUDE_CODE_ENTRYPOINT`` would otherwise leak in through an image or a
  namespace default and switch the CLI into sub-agent behaviour. Only the names are read; no
  value of the launcher's environment reaches the pod;
* credentials from :class:`~podrunner.claude.ClaudeCredentials`: a per-run Secret owned by the
  pod, or a reference to an existing Secret; never a value in the pod manifest;
* the command from :func:`~podrunner.claude.launch.launcher_command`: a constant script and the
  CLI's argv, so the prompt never passes through a shell.

A prompt over ``prompt_stdin_threshold`` bytes (100 KB) goes into the spec's ``files`` (the
run's ConfigMap, which the runner creates, owns by the pod and cleans up like the Secret),
mounted read-only and piped to the CLI's stdin.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import attrs

from podrunner.claude._checks import json_text
from podrunner.claude.credentials import ClaudeCredentials
from podrunner.claude.errors import ClaudeExecutionError, ClaudeTimeout
from podrunner.claude.launch import launcher_command
from podrunner.claude.parse import parse_output
from podrunner.claude.refresh import (
    COLLECT_SECONDS,
    CredentialsCollector,
    claim,
    warn_not_written,
    write_back,
)
from podrunner.claude.sessions import SESSIONS_ENV, SessionStore, claim_session
from podrunner.claude.task import PROMPT_STDIN_THRESHOLD, ClaudeTask
from podrunner.claude.telemetry import Telemetry
from podrunner.errors import REDACTED, RunTimeout, SpecError
from podrunner.manifest import generate_pod_name
from podrunner.run import PodRunner, RunResult
from podrunner.run.state import Reason
from podrunner.spec import (
    CleanupPolicy,
    EnvVar,
    ImagePullPolicy,
    PodSpec,
    Resources,
    SecurityProfile,
    Toleration,
    Volume,
)

if TYPE_CHECKING:
    from podrunner.claude.result import ClaudeResult
    from podrunner.run.handle import RunHandle

__all__ = [
    "CLAUDE_COMPONENT",
    "CLAUDE_CONTAINER",
    "DEFAULT_HOME",
    "DEFAULT_USER",
    "MANAGED_SETTINGS_PATH",
    "PROMPT_MOUNT",
    "ClaudePods",
    "ClaudeRunner",
    "EventCallback",
    "blanked_names",
    "claude_result",
    "json_event",
    "line_events",
    "timeout_error",
]

CLAUDE_CONTAINER = "claude-code"
CLAUDE_COMPONENT = "claude-runner"
DEFAULT_HOME = "/home/claude"
DEFAULT_USER = 10001
PROMPT_MOUNT = "/var/run/podrunner/claude-prompt"
MANAGED_SETTINGS_PATH = "/etc/claude-code/managed-settings.json"
"""Where Claude Code on Linux reads managed (policy) settings, which nothing can override."""
PROMPT_KEY = "prompt"
_MAX_CONFIG_MAP_PROMPT = 1_000_000  # a ConfigMap holds at most 1 MiB, metadata included
_DEFAULT_ENV = {
    # The CLI must not try to update itself (read-only root) or phone home from a sandbox.
    "DISABLE_AUTOUPDATER": "1",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
}

EventCallback = Callable[[Mapping[str, Any]], None]
"""Called with each stream-json event as it arrives."""


def blanked_names(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """Return the launcher variables to blank in the pod: every name starting with ``CLAUDE``.

    Args:
        environ: The launcher's environment; :data:`os.environ` by default.
    """
    env = os.environ if environ is None else environ
    return tuple(sorted(name for name in env if name.startswith("CLAUDE")))


def json_event(line: str) -> dict[str, Any] | None:
    """Return the JSON object on an output line (a stream-json event), or ``None``."""
    text = line.strip()
    if not text.startswith("{"):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def line_events(on_event: Callable[[dict[str, Any]], object]) -> Callable[[str], None]:
    """Return an ``on_log`` callback handing each JSON object line to ``on_event``."""

    def on_line(line: str) -> None:
        event = json_event(line)
        if event is not None:
            on_event(event)

    return on_line


# Variable names that hold credentials: they do not belong in a ConfigMap.
_SECRET_NAME_RE = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL", re.IGNORECASE)


def _managed_settings(value: Mapping[str, Any] | str | None) -> str | None:
    if value is None:
        return None
    text, parsed = json_text("managed_settings", value, must_be_object=True, secret=False)
    assert parsed is not None  # must_be_object
    env = parsed.get("env")
    for name in env if isinstance(env, dict) else ():
        if _SECRET_NAME_RE.search(name):
            raise SpecError(
                f"managed_settings.env[{name}]",
                REDACTED,
                "looks like a credential; managed settings go into a ConfigMap, which is not "
                "secret: pass credentials as ClaudeCredentials",
            )
    return text


def _check_options(
    credentials: object,
    telemetry: object,
    env: Mapping[str, str] | None,
    home: str,
    sessions: object,
) -> None:
    """Refuse runner options of the wrong type or in conflict, before anything else."""
    if sessions is not None and not isinstance(sessions, SessionStore):
        raise SpecError("sessions", type(sessions).__name__, "must be a SessionStore")
    if credentials is not None and not isinstance(credentials, ClaudeCredentials):
        raise SpecError("credentials", type(credentials).__name__, "must be ClaudeCredentials")
    if telemetry is not None and not isinstance(telemetry, Telemetry):
        raise SpecError("telemetry", type(telemetry).__name__, "must be a Telemetry")
    sources = {
        "credentials": credentials.plan().env if credentials is not None else {},
        "telemetry": telemetry.env() if telemetry is not None else {},
    }
    for source, names in sources.items():
        for name in names:
            if name in (env or {}):
                raise SpecError(
                    f"env[{name}]", (env or {})[name], f"is set by {source}; set it once"
                )
    if not home.startswith("/"):
        raise SpecError("home", home, "must be an absolute path")


_R = TypeVar("_R")


class ClaudePods(Generic[_R]):
    """The settings of a Claude runner and the pods they make (no running).

    :class:`ClaudeRunner` and :class:`~podrunner.claude.AsyncClaudeRunner` share it, so a
    task gets the same pod whichever runs it. ``pod_runner`` is the runner that runs them;
    the other arguments are :class:`ClaudeRunner`'s.
    """

    collect_seconds: int = COLLECT_SECONDS
    """With ``write_back`` credentials: how long a pod waits for its refreshed file."""

    def __init__(
        self,
        pod_runner: _R,
        *,
        image: str,
        credentials: ClaudeCredentials | None = None,
        resources: Resources | None = None,
        namespace: str | None = None,
        claude_path: str = "claude",
        home: str = DEFAULT_HOME,
        home_size_limit: str | None = "1Gi",
        tmp_size_limit: str | None = "512Mi",
        run_as_user: int = DEFAULT_USER,
        image_pull_policy: ImagePullPolicy | str = ImagePullPolicy.IF_NOT_PRESENT,
        image_pull_secrets: Iterable[str] = (),
        service_account: str | None = None,
        node_selector: Mapping[str, str] | None = None,
        tolerations: Iterable[Toleration] = (),
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        env: Mapping[str, str] | None = None,
        volumes: Iterable[Volume] = (),
        timeout: float | None = 600.0,
        prompt_stdin_threshold: int = PROMPT_STDIN_THRESHOLD,
        cleanup: CleanupPolicy = CleanupPolicy.ALWAYS,
        launcher_environ: Mapping[str, str] | None = None,
        name_prefix: str = "claude-code",
        telemetry: Telemetry | None = None,
        managed_settings: Mapping[str, Any] | str | None = None,
        sessions: SessionStore | None = None,
    ) -> None:
        _check_options(credentials, telemetry, env, home, sessions)
        self.pod_runner = pod_runner
        self.image = image
        self.credentials = credentials
        self.resources = resources or Resources()
        self.namespace = namespace
        self.claude_path = claude_path
        self.home = home
        self.home_size_limit = home_size_limit
        self.tmp_size_limit = tmp_size_limit
        self.run_as_user = run_as_user
        self.image_pull_policy = image_pull_policy
        self.image_pull_secrets = tuple(image_pull_secrets)
        self.service_account = service_account
        self.node_selector = dict(node_selector or {})
        self.tolerations = tuple(tolerations)
        self.labels = dict(labels or {})
        self.annotations = dict(annotations or {})
        self.env = dict(env or {})
        self.volumes = tuple(volumes)
        self.timeout = timeout
        self.prompt_stdin_threshold = prompt_stdin_threshold
        self.cleanup = cleanup
        self.blank_env = blanked_names(launcher_environ)
        self.name_prefix = name_prefix
        self.telemetry = telemetry
        self.managed_settings = _managed_settings(managed_settings)
        self.sessions = sessions
        # Fail on a bad image, user or label now rather than at the first task.
        self.build_spec(ClaudeTask("validate"), pod_name="claude-code-validate")

    # -- the pod -------------------------------------------------------------------------------

    def base_spec(
        self,
        command: list[str],
        *,
        pod_name: str | None = None,
        restart_policy: str = "Never",
        extra_volumes: Iterable[Volume] = (),
    ) -> PodSpec:
        """Return the hardened pod spec around ``command`` (shared with the worker)."""
        plan = self.credentials.plan() if self.credentials is not None else None
        telemetry = self.telemetry.env() if self.telemetry is not None else {}
        plain = {**(plan.env if plan else {}), **telemetry}
        if self.sessions is not None:
            plain[SESSIONS_ENV] = self.sessions.mount_path
        env = {"HOME": self.home, "TMPDIR": "/tmp", **_DEFAULT_ENV, **plain, **self.env}  # noqa: S108
        secret_env = {
            **(plan.secret_env if plan else {}),
            **(self.telemetry.secret_env() if self.telemetry is not None else {}),
        }
        return PodSpec(
            self.image,
            command,
            name=pod_name,
            name_prefix=None if pod_name else self.name_prefix,
            namespace=self.namespace,
            resources=self.resources,
            service_account=self.service_account,
            restart_policy=restart_policy,
            image_pull_policy=self.image_pull_policy,
            env=[EnvVar(k, v) for k, v in env.items()],
            blank_env=self.blank_env,
            secret_env=secret_env,
            secret_files=dict(plan.secret_files) if plan else None,
            image_pull_secrets=self.image_pull_secrets,
            labels=self.labels,
            annotations=self.annotations,
            volumes=(
                Volume.empty_dir(self.home, self.home_size_limit),
                Volume.empty_dir("/tmp", self.tmp_size_limit),  # noqa: S108
                *self.volumes,
                *extra_volumes,
                *([self.sessions.volume] if self.sessions is not None else []),
            ),
            node_selector=self.node_selector,
            tolerations=self.tolerations,
            container_name=CLAUDE_CONTAINER,
            component=CLAUDE_COMPONENT,
            security=SecurityProfile.RESTRICTED,
            run_as_user=self.run_as_user,
            run_as_group=self.run_as_user,
            fs_group=self.run_as_user,
            read_only_root_filesystem=True,
            files=None
            if self.managed_settings is None
            else {MANAGED_SETTINGS_PATH: self.managed_settings},
        )

    def build_spec(
        self,
        task: ClaudeTask,
        *,
        pod_name: str | None = None,
    ) -> PodSpec:
        """Return the pod spec that runs ``task``.

        A prompt over ``prompt_stdin_threshold`` bytes goes into the spec's ``files`` (the
        run's ConfigMap, mounted read-only at :data:`PROMPT_MOUNT`) and is piped to the CLI's
        stdin instead of being passed in the argv.

        Args:
            task: The task.
            pod_name: Exact pod name; generated from ``name_prefix`` by default.

        Raises:
            SpecError: The prompt is larger than a ConfigMap holds, or the task cannot work
                with the runner's credentials (``bare`` with OAuth).
        """
        if self.credentials is not None:
            self.credentials.check_task(task)
        stdin = task.prompt_on_stdin(self.prompt_stdin_threshold)
        content = task.stdin() if stdin else ""
        size = len(content.encode("utf-8"))
        if size > _MAX_CONFIG_MAP_PROMPT:
            raise SpecError(
                "prompt",
                f"<{size} bytes>",
                f"must be at most {_MAX_CONFIG_MAP_PROMPT} bytes (a ConfigMap holds 1 MiB); "
                "mount large inputs as files and refer to them in the prompt",
            )
        plan = self.credentials.plan() if self.credentials is not None else None
        prompt_file = f"{PROMPT_MOUNT}/{PROMPT_KEY}"
        command = launcher_command(
            task.argv(self.claude_path, prompt_on_stdin=stdin),
            working_dir=task.working_dir,
            credentials_file=plan.credentials_file if plan else "",
            prompt_file=prompt_file if stdin else "",
            shell_prefix=plan.shell_prefix if plan else "",
            collect_seconds=self.collect_seconds if self._writes_back() else None,
        )
        spec = self.base_spec(command, pod_name=pod_name)
        return spec.with_files({prompt_file: content}) if stdin else spec

    def _prepared(
        self, task: ClaudeTask | str, timeout: float | None
    ) -> tuple[ClaudeTask, float | None]:
        """The task (a prompt becomes one) and its time limit, before any API call."""
        task = ClaudeTask(task) if isinstance(task, str) else task
        return task, self.timeout if timeout is None else timeout

    def _writes_back(self) -> bool:
        creds = self.credentials
        return creds is not None and creds.write_back is not False and not creds.inline


class ClaudeRunner(ClaudePods[PodRunner]):
    """Runs Claude Code tasks, each in a fresh pod, through a :class:`~podrunner.PodRunner`.

    Args:
        pod_runner: The runner (and so the cluster and default namespace) to use.
        image: An image with the ``claude`` CLI and ``sh``.
        credentials: How the CLI authenticates; ``None`` relies on the image.
        resources: CPU and memory for the container.
        namespace: Namespace; default: the runner's.
        claude_path: The CLI executable in the image.
        home: ``HOME`` of the container, an emptyDir.
        home_size_limit: Size cap of the ``HOME`` emptyDir.
        tmp_size_limit: Size cap of the ``/tmp`` emptyDir.
        run_as_user: Non-root UID (also the GID and fsGroup, so the emptyDirs are writable).
        image_pull_policy: When to pull the image.
        image_pull_secrets: Registry Secrets.
        service_account: Service account (its token is not mounted).
        node_selector: Node labels the pod requires.
        tolerations: Taints the pod tolerates.
        labels: Extra pod labels.
        annotations: Extra pod annotations (simulation annotations included).
        env: Extra plain variables (they win over the defaults and the blanking).
        volumes: Extra volumes, e.g. a PVC with the repository to work on.
        timeout: Default seconds per task (``None``: no limit).
        prompt_stdin_threshold: Prompts above this many bytes go through a ConfigMap and stdin
            (0 sends every prompt that way, keeping prompts out of the pod manifest).
        cleanup: What to delete after each task.
        launcher_environ: The environment whose ``CLAUDE*`` names are blanked; default
            :data:`os.environ`.
        name_prefix: Start of the pod names.
        telemetry: Where Claude Code sends its OpenTelemetry metrics and events
            (:class:`~podrunner.claude.Telemetry`); collector headers go through a Secret.
        sessions: A :class:`~podrunner.claude.SessionStore` where session transcripts outlive
            the pod, so a later task (in a new pod) can ``resume`` them.
        managed_settings: Settings the task cannot override (permissions, hooks, env...): a
            mapping or JSON text, delivered as :data:`MANAGED_SETTINGS_PATH` in the run's
            ConfigMap (so: no secrets in it). The directory replaces the image's own.
    """

    # -- running -------------------------------------------------------------------------------

    def run(
        self,
        task: ClaudeTask | str,
        *,
        timeout: float | None = None,
        check: bool = True,
        on_log: Callable[[str], None] | None = None,
        on_event: EventCallback | None = None,
    ) -> ClaudeResult:
        """Run ``task`` in a new pod and return the parsed result.

        Args:
            task: The task, or just a prompt.
            timeout: Seconds for the whole run (pod start included); default: the runner's.
            check: Raise the classified :class:`~podrunner.claude.ClaudeError` when the task
                failed; with ``False`` it is in ``result.error`` instead.
            on_log: Called with each output line as it arrives.
            on_event: Called with each JSON event as it arrives (use ``stream-json``).

        Returns:
            The result, with the pod's :class:`~podrunner.RunResult` in ``result.run``.

        Raises:
            ClaudeTimeout: The task ran out of time (always raised; partial output attached).
            ClaudeError: With ``check=True``, how the task failed.
            RunError: The pod never ran (image pull error, unschedulable...).
            SpecError: The task or the runner's settings are invalid.
        """
        task, limit = self._prepared(task, timeout)
        callbacks: list[Callable[[str], None]] = []
        if on_log is not None:
            callbacks.append(on_log)
        if on_event is not None:
            callbacks.append(line_events(on_event))
        with self._started(task, limit, callbacks) as handle:
            run = _wait(handle, limit)
        return claude_result(task, run, check=check)

    def stream(
        self,
        task: ClaudeTask | str,
        *,
        timeout: float | None = None,
        check: bool = True,
    ) -> Generator[dict[str, Any], None, None]:
        """Run ``task`` and yield its JSON events as they arrive (use ``stream-json``).

        The events are those ``on_event`` gets, each once and in order, also across a
        dropped log connection. Once the last event is yielded the run is awaited and parsed
        as by :meth:`run`, from the same output: a failed task raises its classified error
        from the iteration (with ``check=True``). Leaving the loop early, an exception in
        its body or Ctrl-C deletes the pod, its Secret and ConfigMap; a stream held but not
        finished is cleaned up when it is closed (``contextlib.closing``) or collected.

        Args:
            task: The task, or just a prompt.
            timeout: Seconds for the whole run (pod start included); default: the runner's.
            check: Raise the classified :class:`~podrunner.claude.ClaudeError` at the end
                when the task failed.

        Yields:
            Each stream-json event (one JSON object per output line).

        Raises:
            ClaudeTimeout: The task ran out of time.
            ClaudeError: With ``check=True``, how the task failed.
            RunError: The pod never ran.
            SpecError: The task or the runner's settings are invalid.
        """
        task, limit = self._prepared(task, timeout)
        with self._started(task, limit, []) as handle:
            for line in handle.logs():
                event = json_event(line)
                if event is not None:
                    yield event
            run = _wait(handle, limit)
        claude_result(task, run, check=check)

    @contextlib.contextmanager
    def _started(
        self, task: ClaudeTask, limit: float | None, callbacks: list[Callable[[str], None]]
    ) -> Iterator[RunHandle]:
        """Start ``task``'s pod; on exit clean it up and store refreshed credentials."""
        with claim(self.credentials), claim_session(self.sessions, task):
            collector = None
            if self._writes_back():
                # The pod's name is fixed up front: the collector execs into it mid-run.
                name = generate_pod_name(self.name_prefix)
                namespace = self.namespace or self.pod_runner.namespace
                collector = CredentialsCollector(
                    self.pod_runner.api, namespace, name, CLAUDE_CONTAINER
                )
                callbacks = [*callbacks, collector.on_line]
            spec = self.build_spec(task, pod_name=None if collector is None else collector.pod)
            handle = self.pod_runner.start(
                spec,
                timeout=limit,
                on_log=_fan_out(callbacks) if callbacks else None,
                cleanup=self.cleanup,
            )
            with handle:
                yield handle
            if collector is not None:
                self._store_refreshed(collector)

    def _store_refreshed(self, collector: CredentialsCollector) -> None:
        """Write back what the collector got (the CLI refreshed its file), or warn."""
        if not collector.finish():
            return  # the CLI did not refresh anything
        if collector.collected is None:
            warn_not_written(collector.pod, collector.problem or "nothing was collected")
            return
        assert self.credentials is not None  # _writes_back() held
        try:
            self.credentials = write_back(
                self.credentials, collector.collected, self.pod_runner.api, collector.namespace
            )
        except Exception as exc:  # a failed store is reported, not raised
            warn_not_written(collector.pod, f"storing it failed: {type(exc).__name__}")


def _fan_out(callbacks: list[Callable[[str], None]]) -> Callable[[str], None]:
    def on_line(line: str) -> None:
        for callback in callbacks:
            callback(line)

    return on_line


def _wait(handle: RunHandle, limit: float | None) -> RunResult:
    try:
        return handle.wait()
    except RunTimeout as exc:
        raise timeout_error(exc, limit) from exc


def claude_result(task: ClaudeTask, run: RunResult, *, check: bool) -> ClaudeResult:
    """Parse a finished run of ``task`` into its result, classifying how it failed.

    Raises:
        ClaudeError: With ``check=True``, how the task failed.
    """
    result = parse_output(
        run.logs,
        exit_code=run.exit_code,
        keep_events=task.output_format == "stream-json",
        expect_structured=task.structured_expected,
        max_turns=task.max_turns,
        max_budget_usd=task.max_budget_usd,
    )
    error = result.error
    if result.raw is None and run.reason in (Reason.OOM_KILLED, Reason.DEADLINE_EXCEEDED):
        # The kill explains the missing result better than "no result line" does.
        if run.reason is Reason.OOM_KILLED:
            error = ClaudeExecutionError(
                "the claude container was OOMKilled; raise its memory limit",
                exit_code=run.exit_code,
                cli_message=run.logs[-2000:],
            )
        else:
            error = ClaudeTimeout(
                "the pod reached its activeDeadlineSeconds",
                logs=run.logs,
                exit_code=run.exit_code,
            )
    result = attrs.evolve(result, run=run, error=error)
    if error is not None:
        error.result = result
        if check:
            raise error
    return result


def timeout_error(exc: RunTimeout, limit: float | None) -> ClaudeTimeout:
    """The :class:`ClaudeTimeout` for a run that ran out of its ``limit`` seconds."""
    return ClaudeTimeout(
        f"the Claude task did not finish within {limit:g}s",
        logs=exc.logs,
        cli_message="\n".join(exc.logs.splitlines()[-20:]),
    )
