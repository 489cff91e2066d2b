"""The container command that starts ``claude``: a constant shell script plus an argv.

The container runs ``sh -c LAUNCHER podrunner-claude WORKDIR CREDS PROMPT COLLECT claude ARGS...``.
The script text is a constant of this module; user data (prompt, options, paths) only ever
arrives as positional parameters and is used as ``"$@"``/``"$1"``, which the shell never
re-parses. So a prompt like ``$(rm -rf /)`` or ``'; reboot; '`` reaches the CLI byte for byte.

What the script does, in order:

1. ``cd`` into WORKDIR when it is not empty;
2. when CREDS is not empty and ``$HOME/.claude/.credentials.json`` does not exist yet, copy
   CREDS there with mode 0600 (a worker keeps the copy the CLI may have refreshed since);
   when ``$PODRUNNER_CLAUDE_SESSIONS`` names a session store, link
   ``${CLAUDE_CONFIG_DIR:-$HOME/.claude}/projects`` (the transcripts) to it;
3. ``exec`` the CLI, with PROMPT (a file) on standard input when it is not empty; with
   ``stdin:N`` the CLI gets exactly the first N bytes of the launcher's standard input (an
   exec's prompt). Counting bytes, rather than waiting for end-of-file, matters because some
   exec transports cannot half-close stdin (the v4 websocket protocol, kwok's local exec); the
   CLI would then wait for an EOF that never comes. Otherwise stdin is inherited.

With COLLECT (a number of seconds; credentials write-back, see :mod:`podrunner.claude.refresh`)
the CLI runs as a child instead (a TERM or INT is passed on to it). When it has exited and the
credentials file differs from CREDS, the script prints
:data:`~podrunner.claude.refresh.REFRESHED_MARKER` to stderr and waits up to COLLECT seconds for
``$HOME/.claude/.podrunner-collected`` to appear, then exits with the CLI's status.

The shell is used, rather than running ``claude`` directly, for these steps and because a
missing executable then exits 127 with the shell's "not found" message on every runtime,
instead of a runtime-specific container start error.

The only exception to "no user data in the script" is the inline credentials mode,
where :func:`~podrunner.build_credentials_prefix` (single-quoted, tested with hostile JSON) is
put in front.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["LAUNCHER_NAME", "LAUNCHER_SCRIPT", "launcher_command"]

LAUNCHER_NAME = "podrunner-claude"
"""``$0`` of the launcher shell (shows in ``ps`` and in the shell's error messages)."""

_FUNCTION = """\
podrunner_launch() {
  workdir=$1 creds=$2 prompt=$3 collect=$4
  shift 4
  if [ -n "$workdir" ]; then cd -- "$workdir" || exit 1; fi
  if [ -n "$creds" ] && [ ! -s "$HOME/.claude/.credentials.json" ]; then
    mkdir -p "$HOME/.claude" || exit 1
    (umask 077 && cat -- "$creds" > "$HOME/.claude/.credentials.json") || exit 1
  fi
  if [ -n "${PODRUNNER_CLAUDE_SESSIONS:-}" ]; then
    config=${CLAUDE_CONFIG_DIR:-$HOME/.claude}
    mkdir -p "$config" || exit 1
    [ -e "$config/projects" ] || ln -s -- "$PODRUNNER_CLAUDE_SESSIONS" "$config/projects" || exit 1
  fi
  if [ -z "$collect" ]; then
    case $prompt in
      stdin:*) head -c "${prompt#stdin:}" | "$@"; exit ;;
      ?*) exec "$@" < "$prompt" ;;
    esac
    exec "$@"
  fi
  case $prompt in
    stdin:*) head -c "${prompt#stdin:}" <&0 | "$@" & ;;
    ?*) "$@" < "$prompt" & ;;
    *) "$@" <&0 & ;;
  esac
  child=$!
  trap 'kill -TERM "$child" 2>/dev/null' TERM INT
  wait "$child"; status=$?
  if kill -0 "$child" 2>/dev/null; then wait "$child"; status=$?; fi
  saved="$HOME/.claude/.credentials.json"
  if [ -n "$creds" ] && [ "$(cat -- "$creds")" != "$(cat -- "$saved" 2>/dev/null)" ]; then
    echo "podrunner-claude: credentials refreshed; waiting up to ${collect}s for collection" >&2
    waited=0
    while [ ! -e "$HOME/.claude/.podrunner-collected" ] && [ "$waited" -lt "$collect" ]; do
      sleep 1
      waited=$((waited + 1))
    done
  fi
  exit "$status"
}
"""
_CALL = 'podrunner_launch "$@"\n'

LAUNCHER_SCRIPT = _FUNCTION + _CALL
"""The constant script (without an inline credentials prefix)."""


def launcher_command(
    claude_argv: Sequence[str],
    *,
    working_dir: str | None = None,
    credentials_file: str = "",
    prompt_file: str = "",
    shell_prefix: str = "",
    collect_seconds: int | None = None,
) -> list[str]:
    """Return the container argv that runs ``claude_argv`` through the launcher.

    Args:
        claude_argv: The CLI's argv (``ClaudeTask.argv()``).
        working_dir: Directory to run in.
        credentials_file: OAuth credentials file to copy into ``$HOME/.claude``.
        prompt_file: File piped to the CLI's standard input, or ``stdin:N`` for the first N
            bytes of the launcher's own standard input.
        shell_prefix: Inline credentials prefix (ends with ``&& ``), or ``""``.
        collect_seconds: Run the CLI as a child and, when it refreshed the credentials file,
            wait this long for the file to be collected (write-back); ``None``: ``exec`` it.

    Returns:
        ``["sh", "-c", script, "podrunner-claude", workdir, creds, prompt, collect,
        *claude_argv]``.
    """
    # The prefix sits right before the call, joined by its trailing "&&": when it fails, the
    # CLI never starts and the shell exits with the prefix's status.
    script = _FUNCTION + shell_prefix + _CALL
    return [
        "sh",
        "-c",
        script,
        LAUNCHER_NAME,
        working_dir or "",
        credentials_file,
        prompt_file,
        "" if collect_seconds is None else str(int(collect_seconds)),
        *claude_argv,
    ]
