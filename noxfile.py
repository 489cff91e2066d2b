"""Project tasks.

``nox`` runs tests, lint and typing; ``bench``, ``docs`` and ``integration`` run when named
(``nox -s bench``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import nox

nox.needs_version = ">=2025.2.9"
nox.options.sessions = ["tests", "lint", "typing"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

ROOT = Path(__file__).parent
PYPROJECT = nox.project.load_toml(ROOT / "pyproject.toml")
CLAUDE_CODE_VERSION = "2.1.332"
"""The Claude Code release the Claude contract tier checks podrunner against (npm)."""


def install(session: nox.Session, *groups: str, editable: bool = True, extras: str = "") -> None:
    """Install the project (editable) with ``extras`` and the named dependency groups."""
    deps: list[str] = []
    for group in groups:
        deps.extend(nox.project.dependency_groups(PYPROJECT, group))
    project = f".[{extras}]" if extras else "."
    if editable:
        session.install("-e", project, *deps)
    else:
        session.install(project, *deps)


@nox.session
def tests(session: nox.Session) -> None:
    """Unit and contract tiers on the fake cluster. Pytest's exit 5 (nothing collected) fails."""
    install(session, "tests")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff (lint, formatting, complexity) and the import layers (import-linter)."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    # The layers contract in pyproject.toml; the package is analysed from src/, not installed.
    session.run("lint-imports", env={"PYTHONPATH": str(ROOT / "src")})


@nox.session
def typing(session: nox.Session) -> None:
    """Mypy --strict on the package, the typing examples and this file."""
    install(session, "typing")
    session.run("mypy", "src", "tests/typing", "noxfile.py")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks: print figures and write benchmarks/results/latest.json."""
    install(session, "tests", "bench")
    session.run("python", "benchmarks/run.py", *session.posargs)


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site; any warning fails the build."""
    install(session, "docs", "tests")
    session.run(
        "sphinx-build", "-W", "--keep-going", "-n", "-b", "html", "docs", "docs/_build/html"
    )


@nox.session
def integration(session: nox.Session) -> None:
    """Contract and integration tiers on a real API server (kwok by default).

    ``nox -s integration -- --cluster kind`` or ``-- --cluster kubeconfig=PATH`` picks another.
    """
    install(session, "tests")
    cluster = "kwok"
    args = list(session.posargs)
    if "--cluster" in args:
        i = args.index("--cluster")
        cluster = args[i + 1]
        del args[i : i + 2]
    if cluster == "kwok":
        session.run("python", "-m", "podrunner.testing.controlplane", "build")
    backend = cluster
    if cluster.startswith("kubeconfig="):
        backend = "kubeconfig"
        args.append(f"--podrunner-kubeconfig={cluster.split('=', 1)[1]}")
    env = {"PODRUNNER_CONTROLPLANE_CACHE": os.environ.get("PODRUNNER_CONTROLPLANE_CACHE", "")}
    session.run(
        "pytest",
        "tests/integration",
        "tests/contract",
        # Random traffic on the fake and the server, compared (a bounded run).
        "tests/differential",
        # The downstream-project test of the pytest plugin, on the same real cluster.
        "tests/unit/test_plugin.py::test_downstream_file_passes_on_kwok",
        "tests/unit/test_plugin.py::test_kwok_rules_report_and_skips",
        # The async fixtures (pytest-asyncio and anyio) on the same real cluster.
        "tests/unit/test_plugin_async.py::test_async_fixtures_on_kwok",
        f"--podrunner-backend={backend}",
        *args,
        env={k: v for k, v in env.items() if v},
    )


# The tests of podrunner.claude.PodTransport, which need the agent-sdk extra.
AGENT_SDK_TESTS = (
    "tests/unit/claude/test_claude_transport.py",
    "tests/integration/test_claude_sdk_kwok.py",
    "tests/unit/test_docs_examples.py::test_page_agent_sdk_examples_run_on_the_fake",
)


@nox.session
def agent_sdk(session: nox.Session) -> None:
    """PodTransport with the real claude-agent-sdk, on the fake and on kwok.

    The SDK's wheel is large (it bundles the CLI), so only this session and
    ``claude_contract`` install it; elsewhere these tests skip.
    """
    install(session, "typing", extras="agent-sdk")
    # mypy elsewhere sees no SDK (its base class is Any there): check against the real one here.
    session.run("mypy", "src/podrunner/claude/transport.py", *AGENT_SDK_TESTS[:2])
    session.run("python", "-m", "podrunner.testing.controlplane", "build")
    session.run("pytest", *AGENT_SDK_TESTS, "--podrunner-backend=kwok", *session.posargs)


@nox.session
def differential(session: nox.Session) -> None:
    """The long differential run on kwok; figures go to benchmarks/results/latest.json.

    ``nox -s differential -- --seeds 1000`` runs more sequences (300 by default).
    """
    install(session, "tests")
    session.run("python", "-m", "podrunner.testing.controlplane", "build")
    session.run("python", "tests/differential/run.py", *session.posargs)


@nox.session
def chaos(session: nox.Session) -> None:
    """The chaos tier: faults (restarts, resets, stalls, refusals) on ONE local kwok cluster.

    Bounded to a few minutes: the scenarios of a fault kind run in parallel, and component
    restarts replace cluster restarts. ``python benchmarks/run.py chaos``
    records its figures.
    """
    install(session, "tests")
    session.run("python", "-m", "podrunner.testing.controlplane", "build")
    session.run("pytest", "tests/chaos", *session.posargs)


def _claude_works(binary: Path) -> bool:
    """Whether ``binary --version`` prints the pinned version."""
    try:
        done = subprocess.run(
            [str(binary), "--version"], capture_output=True, text=True, timeout=60, check=False
        )
    except OSError:
        return False
    return done.returncode == 0 and done.stdout.startswith(CLAUDE_CODE_VERSION)


@nox.session
def claude_contract(session: nox.Session) -> None:
    """The Claude contract tier on the stand-in CLI and on the real Claude Code CLI.

    Installs ``@anthropic-ai/claude-code`` (:data:`CLAUDE_CODE_VERSION`, with npm) once under
    ``~/.cache/podrunner/claude-code/<version>``, then runs ``tests/claude_contract`` in a new
    network namespace with only loopback up (``unshare --net``, as root), so the real CLI can
    reach the local Messages API stand-in and nothing else.
    """
    install(session, "tests", extras="agent-sdk")  # the Agent SDK flows on both CLIs
    prefix = Path.home() / ".cache" / "podrunner" / "claude-code" / CLAUDE_CODE_VERSION
    binary = prefix / "node_modules" / ".bin" / "claude"
    if not _claude_works(binary):
        session.run(
            "npm", "install", "--prefix", str(prefix), "--no-audit", "--no-fund",
            f"@anthropic-ai/claude-code@{CLAUDE_CODE_VERSION}",
            external=True,
        )  # fmt: skip
    if not _claude_works(binary):
        # With install scripts off (npm's ignore-scripts) bin/claude.exe is a stub; the
        # package's postinstall links the native binary from its platform package, offline.
        script = prefix / "node_modules" / "@anthropic-ai" / "claude-code" / "install.cjs"
        session.run("node", str(script), external=True)
    # A new network namespace takes root here (a user namespace would map the pod's uid away).
    if os.geteuid() != 0 or not (shutil.which("unshare") and shutil.which("ip")):
        session.error("claude_contract runs as root with unshare and ip (a network namespace)")
    session.run(
        "unshare", "--net", "--", "sh", "-c", 'ip link set lo up && exec "$@"', "sh",
        "pytest", "tests/claude_contract", "-p", "no:cacheprovider", *session.posargs,
        env={"PODRUNNER_REAL_CLAUDE": str(binary)},
        external=True,
    )  # fmt: skip
