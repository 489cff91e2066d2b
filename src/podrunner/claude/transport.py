"""PodTransport: the Claude Agent SDK with its Claude Code CLI in a pod.

``claude-agent-sdk`` (``pip install podrunner[agent-sdk]``) talks to the CLI in JSON lines over
its standard input and output: the prompts and the SDK's control requests (``initialize``,
``interrupt``, ``set_permission_mode``...) go in, the conversation's messages and the CLI's
control requests (a permission decision through ``can_use_tool``, a hook callback, a message for
an in-process MCP server) come out. The SDK's ``Query`` speaks that protocol; a *transport* only
moves the lines. :class:`PodTransport` moves them to a CLI in a pod podrunner made:

1. ``connect``: a hardened pod built as :class:`~podrunner.claude.ClaudeRunner` builds its pods
   (credentials from a per-run Secret or a reference to one, never in the pod spec), running an
   idle loop; once it runs, the CLI is started in it with a bidirectional ``exec``
   (:meth:`AsyncBackend.open_exec <podrunner.backends.base.AsyncBackend.open_exec>`), through
   the same launcher script as a ``ClaudeRunner`` task. The argv is the one the SDK's own
   subprocess transport builds from ``ClaudeAgentOptions`` (the SDK does not hand options to a
   custom transport, so :class:`PodTransport` takes them too).
2. ``write``: each line goes to the exec's standard input; ``read_messages`` yields each JSON
   line of its standard output, as it arrives.
3. ``end_input`` closes standard input. Some exec transports cannot send end-of-file (the v4
   websocket protocol, kwok's local exec); the conversation then ends where the CLI would have
   ended it: once every prompt written has its ``result``.
4. ``close``: the exec ends and the pod, its Secret and its ConfigMap are deleted; also when
   ``connect`` fails or the task running it is cancelled. A pod a crashed process left behind
   carries podrunner's expiry annotation (``reap`` deletes it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from claude_agent_sdk import (
    ClaudeAgentOptions,
    CLIConnectionError,
    CLIJSONDecodeError,
    CLINotFoundError,
    ProcessError,
)
from claude_agent_sdk import __version__ as sdk_version
from claude_agent_sdk._internal.transport import Transport
from claude_agent_sdk._internal.transport.subprocess_cli import SubprocessCLITransport
from claude_agent_sdk.types import _configure_can_use_tool

from podrunner.claude.launch import launcher_command
from podrunner.claude.refresh import claim
from podrunner.claude.runner import CLAUDE_CONTAINER, ClaudePods
from podrunner.claude.worker import SLEEP_LOOP
from podrunner.errors import REDACTED, BackendError, RunError, SpecError
from podrunner.run.aio_handle import shielded
from podrunner.run.aio_runner import AsyncPodRunner

if TYPE_CHECKING:
    from podrunner.backends.base import AsyncExecStream
    from podrunner.claude.credentials import ClaudeCredentials
    from podrunner.run.aio_handle import AsyncRunHandle

__all__ = ["PodTransport", "cli_argv", "sdk_environment"]

# Variable names that hold credentials: those go in ``credentials=`` (a Secret), never in the
# pod spec's plain environment.
_SECRET_NAME_RE = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL", re.IGNORECASE)
_MAX_LINE = 1024 * 1024  # the SDK's own default limit for one stdout line
_STDERR_TAIL = 4096
_IDLE_GRACE = 1.0  # seconds an idle CLI gets to exit after its input is closed


def cli_argv(options: ClaudeAgentOptions, claude_path: str = "claude") -> list[str]:
    """Return the CLI argv the SDK's subprocess transport would run for ``options``.

    The SDK's own builder does it, so every option maps to the flag it maps to locally;
    ``can_use_tool`` adds ``--permission-prompt-tool stdio``, as ``query()`` and
    ``ClaudeSDKClient`` add it for their own transport.

    Args:
        options: The SDK options.
        claude_path: The CLI's path in the pod's image.

    Raises:
        ValueError: The options conflict (the SDK's own message), e.g. ``can_use_tool``
            together with ``permission_prompt_tool_name``.
    """
    configured = replace(_configure_can_use_tool(options), cli_path=claude_path)
    # The builder is the SDK's (a private method): reusing it keeps the flags the SDK's own.
    builder = SubprocessCLITransport(prompt="", options=configured)
    return list(builder._build_command())


def sdk_environment(options: ClaudeAgentOptions) -> dict[str, str]:
    """Return the variables the SDK gives its CLI, plus ``options.env``.

    Unlike the local transport, nothing of this process's environment is passed on.

    Raises:
        SpecError: A name in ``options.env`` looks like a credential.
    """
    for name, value in options.env.items():
        if _SECRET_NAME_RE.search(name) and value:
            raise SpecError(
                f"options.env[{name}]",
                REDACTED,
                "looks like a credential; it would be in the pod spec: pass it as "
                "credentials=ClaudeCredentials(...) (a Secret)",
            )
    env = {
        "CLAUDE_CODE_ENTRYPOINT": "sdk-py",
        # The SDK waits for the CLI's "idle" before it closes stdin when it answers control
        # requests; the CLI only reports session state when asked to.
        "CLAUDE_CODE_SDK_READS_SESSION_STATE": "1",
        **options.env,
        "CLAUDE_AGENT_SDK_VERSION": sdk_version,
    }
    if options.enable_file_checkpointing:
        env["CLAUDE_CODE_ENABLE_SDK_FILE_CHECKPOINTING"] = "true"
    return env


class PodTransport(Transport):
    """A ``claude_agent_sdk`` transport that runs the Claude Code CLI in a pod.

    Give it the same options as the SDK call::

        options = ClaudeAgentOptions(can_use_tool=decide, cwd="/work")
        transport = PodTransport(runner, image="my/claude:2", options=options,
                                 credentials=ClaudeCredentials.api_key(key))
        async with ClaudeSDKClient(options, transport=transport) as client:
            ...

    Or ``query(prompt=..., options=options, transport=transport)``. One transport runs one
    conversation (one pod); make a new one for the next.

    Args:
        runner: The :class:`~podrunner.AsyncPodRunner` whose backend and namespace are used.
        image: An image with the ``claude`` CLI and ``sh``.
        options: The SDK options of the conversation (also given to the SDK): they make the
            CLI's argv, ``env`` (plain settings only) goes into the pod's environment and
            ``cwd`` is where the CLI runs in the pod.
        credentials: How the CLI authenticates (:class:`~podrunner.claude.ClaudeCredentials`).
        start_timeout: Seconds ``connect`` waits for the pod to run.
        timeout: Seconds the pod may live in all (``None``: no limit; the reap expiry applies).
        close_timeout: Seconds ``close`` waits for the CLI to end before the pod is deleted.
        **pod_options: Further :class:`~podrunner.claude.ClaudeRunner` options (namespace,
            resources, env, volumes, labels, claude_path, home, launcher_environ...).

    Raises:
        SpecError: An option is invalid, or ``options.env`` holds a credential, before any API
            call. ``credentials`` with ``write_back`` are refused (nothing collects the file).
    """

    def __init__(
        self,
        runner: AsyncPodRunner,
        *,
        image: str,
        options: ClaudeAgentOptions | None = None,
        credentials: ClaudeCredentials | None = None,
        start_timeout: float = 120.0,
        timeout: float | None = None,
        close_timeout: float = 10.0,
        **pod_options: Any,
    ) -> None:
        if not isinstance(runner, AsyncPodRunner):
            raise SpecError("runner", type(runner).__name__, "must be an AsyncPodRunner")
        options = ClaudeAgentOptions() if options is None else options
        if options.cli_path is not None:
            raise SpecError(
                "options.cli_path",
                str(options.cli_path),
                "names a local file; pass claude_path= (the CLI's path in the image)",
            )
        env = {**sdk_environment(options), **dict(pod_options.pop("env", None) or {})}
        self._pods = ClaudePods(
            runner, image=image, credentials=credentials, timeout=timeout, env=env, **pod_options
        )
        if self._pods._writes_back():
            raise SpecError(
                "credentials.write_back",
                True,
                "is not supported by PodTransport (nothing collects the refreshed file); "
                "use a long-lived token (ClaudeCredentials.oauth_token) or write_back=False",
            )
        plan = credentials.plan() if credentials is not None else None
        self.command = launcher_command(
            cli_argv(options, self._pods.claude_path),
            working_dir=None if options.cwd is None else str(options.cwd),
            credentials_file=plan.credentials_file if plan else "",
            shell_prefix=plan.shell_prefix if plan else "",
        )
        """The exec's argv: the launcher script, then the CLI's argv."""
        self.spec = self._pods.base_spec(["sh", "-c", SLEEP_LOOP])
        """The pod (an idle loop the CLI is exec'd into)."""
        self.runner = runner
        self.start_timeout = start_timeout
        self.close_timeout = close_timeout
        self._on_stderr = options.stderr
        self._claims = contextlib.ExitStack()
        self._handle: AsyncRunHandle | None = None
        self._stream: AsyncExecStream | None = None
        self._pod_name: str | None = None
        self._pump_task: asyncio.Task[None] | None = None
        # The CLI's messages (or the error that ended them), None at the end; bounded, so a
        # slow reader holds the CLI back instead of filling memory.
        self._output: asyncio.Queue[dict[str, Any] | CLIJSONDecodeError | None]
        self._output = asyncio.Queue(maxsize=64)
        self._lost: BackendError | None = None
        self._closed = False
        self._input_ended = False
        self._prompts = 0
        self._results = 0
        self._stderr_tail = ""

    @property
    def pod_name(self) -> str | None:
        """The pod's name once ``connect`` created it (kept after ``close``)."""
        return self._pod_name

    # -- the Transport interface ---------------------------------------------------------------

    async def connect(self) -> None:
        """Create the pod, wait for it to run, start the CLI in it.

        Raises:
            CLIConnectionError: The pod could not be created or did not run (podrunner's error
                is its ``__cause__``); what was created is deleted first.
            ClaudeCredentialsInUse: The refreshable OAuth credentials are in use by another run.
        """
        if self._stream is not None or self._closed:
            if self._closed:
                raise CLIConnectionError("this PodTransport was closed; make a new one")
            return
        self._claims.enter_context(claim(self._pods.credentials))
        try:
            self._stream = stream = await self._start()
            self._pump_task = asyncio.ensure_future(self._pump(stream))
        except BaseException as exc:
            await shielded(self._cleanup)
            if isinstance(exc, (RunError, BackendError)):
                raise CLIConnectionError(f"Failed to start Claude Code in a pod: {exc}") from exc
            raise

    async def _start(self) -> AsyncExecStream:
        handle = await self.runner.start(
            self.spec, timeout=self._pods.timeout, cleanup=self._pods.cleanup
        )
        self._handle = handle
        self._pod_name = handle.pod_name
        await handle.wait_running(timeout=self.start_timeout)
        return await self.runner.api.open_exec(
            handle.namespace, handle.pod_name, CLAUDE_CONTAINER, self.command, stdin=True
        )

    async def write(self, data: str) -> None:
        """Send ``data`` (JSON lines) to the CLI's standard input."""
        stream = self._stream
        if stream is None or self._closed or self._input_ended:
            raise CLIConnectionError("PodTransport is not ready for writing")
        self._prompts += _user_messages(data)
        try:
            await stream.write(data.encode("utf-8"))
        except BackendError as exc:
            raise CLIConnectionError(f"Failed to write to Claude Code in the pod: {exc}") from exc

    async def end_input(self) -> None:
        """Close the CLI's standard input (see the module documentation)."""
        if self._input_ended or self._stream is None:
            return
        self._input_ended = True
        with contextlib.suppress(BackendError):
            await self._stream.close_stdin()

    def read_messages(self) -> AsyncIterator[dict[str, Any]]:
        """Yield each JSON object the CLI prints, as it arrives."""
        return self._read()

    async def _pump(self, stream: AsyncExecStream) -> None:
        """Parse the exec's output into the queue (stderr to the tail and ``options.stderr``).

        A task of its own, not the SDK's reader: ``close`` can then tell whether a turn is
        under way and let the CLI end on its own (its output read to the end).
        """
        pending = b""
        try:
            async for chunk in stream:
                if chunk.stream == "stderr":
                    self._stderr(chunk.data)
                    continue
                *lines, pending = (pending + chunk.data).split(b"\n")
                if len(pending) > _MAX_LINE:
                    raise CLIJSONDecodeError(
                        pending[:200].decode("utf-8", "replace"),
                        ValueError(f"a line of output is over {_MAX_LINE} bytes"),
                    )
                for line in lines:
                    await self._deliver(_parse(line))
            await self._deliver(_parse(pending))
        except BackendError as exc:
            self._lost = exc
        except CLIJSONDecodeError as exc:
            await self._deliver(exc)
        finally:
            if not self._closed:  # (after close nobody reads, and the queue may be full)
                await self._output.put(None)

    async def _deliver(self, item: dict[str, Any] | CLIJSONDecodeError | None) -> None:
        if isinstance(item, dict) and item.get("type") == "result":
            self._results += 1
        if item is not None and not self._closed:
            await self._output.put(item)

    async def _read(self) -> AsyncIterator[dict[str, Any]]:
        stream = self._stream
        if stream is None:
            raise CLIConnectionError("PodTransport is not connected")
        results = 0
        while (item := await self._output.get()) is not None:
            if isinstance(item, Exception):
                raise item
            yield item
            results += item.get("type") == "result"
            # After end of input the CLI exits once every prompt has its result; where the
            # end of input cannot reach it, the conversation ends here all the same.
            if self._input_ended and results >= self._prompts:
                return
        if self._lost is not None and not self._closed:
            raise CLIConnectionError(f"Lost the exec stream to the pod: {self._lost}")
        await self._check_exit(stream)

    async def _check_exit(self, stream: AsyncExecStream) -> None:
        if self._closed or self._lost is not None:
            return
        try:
            code = await stream.wait(self.close_timeout)
        except BackendError:
            return
        if code == 127:
            raise CLINotFoundError(
                "Claude Code not found in the pod's image", cli_path=self._pods.claude_path
            )
        if code != 0:
            raise ProcessError("Command failed", exit_code=code, stderr=self._stderr_tail or None)

    def _stderr(self, data: bytes) -> None:
        text = data.decode("utf-8", "replace")
        self._stderr_tail = (self._stderr_tail + text)[-_STDERR_TAIL:]
        if self._on_stderr is not None:
            for line in text.splitlines():
                if line.strip():
                    self._on_stderr(line)

    async def close(self) -> None:
        """End the CLI, delete the pod and what it owns (idempotent, bounded).

        As the SDK's own transport: standard input is closed and the CLI gets
        ``close_timeout`` seconds to end by itself (one second when no turn is under way);
        then the exec is closed and the pod deleted.
        """
        self._closed = True
        await shielded(self._cleanup)

    async def _cleanup(self) -> None:
        stream, self._stream = self._stream, None
        handle, self._handle = self._handle, None
        pump, self._pump_task = self._pump_task, None
        try:
            if stream is not None:
                await self._end(stream, pump)
            if handle is not None:
                handle.cancel()
                await handle.close()
        finally:
            self._claims.close()

    async def _end(self, stream: AsyncExecStream, pump: asyncio.Task[None] | None) -> None:
        while not self._output.empty():  # nobody reads any more: unblock the pump
            self._output.get_nowait()
        with contextlib.suppress(BackendError):
            await stream.close_stdin()
        # Between turns the CLI has nothing left to finish: where end-of-file cannot be sent
        # (v4 exec, kwok) waiting the whole close_timeout would only delay the pod's delete.
        grace = self.close_timeout if self._results < self._prompts else _IDLE_GRACE
        if pump is not None:
            await asyncio.wait((pump,), timeout=min(grace, self.close_timeout))
            pump.cancel()
        with contextlib.suppress(BackendError, TimeoutError):
            await asyncio.wait_for(stream.aclose(), self.close_timeout)

    def is_ready(self) -> bool:
        """Whether the CLI runs and takes input."""
        return self._stream is not None and not self._closed


def _user_messages(data: str) -> int:
    """How many ``user`` messages (prompts) the written lines hold."""
    count = 0
    for line in data.splitlines():
        with contextlib.suppress(ValueError):
            value = json.loads(line)
            count += isinstance(value, dict) and value.get("type") == "user"
    return count


def _parse(raw: bytes) -> dict[str, Any] | None:
    """One line of the CLI's output: a JSON object, or ``None`` for a blank or plain line."""
    line = raw.decode("utf-8", "replace").strip()
    if not line.startswith("{"):
        return None  # e.g. a debug line some CLI builds print on stdout
    try:
        value = json.loads(line)
    except ValueError as exc:
        raise CLIJSONDecodeError(line[:200], exc) from exc
    return value if isinstance(value, dict) else None
