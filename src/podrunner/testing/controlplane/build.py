"""Build the local Kubernetes control plane of ``--podrunner-backend=kwok`` and the kwok tests.

Builds pinned versions of kube-apiserver, kube-controller-manager, kube-scheduler, etcd, kwok and
kwokctl from the Go module proxy (no Docker, no prebuilt downloads) into::

    ~/.cache/podrunner/controlplane/<versions>/bin

Each tool is built from a small wrapper module shipped next to this file, in the podrunner wheel
(``kubernetes/``, ``etcd/``, ``kwok/``; go.mod and go.sum are committed), because the upstream
modules carry ``replace`` directives that make ``go install pkg@version`` impossible. Binaries
that already exist and report the expected version are skipped, so a second run costs a few
``--version`` calls.

Usage::

    python -m podrunner.testing.controlplane build            # build what is missing
    python -m podrunner.testing.controlplane build --force    # rebuild everything
    python -m podrunner.testing.controlplane bin-dir          # print where the binaries go

(``python tools/controlplane/build.py`` in a source checkout does the same as ``build``.)

Only the standard library is used. Needs Go >= 1.26 on PATH; runs with GOTOOLCHAIN=local and
CGO_ENABLED=0, at a lowered CPU priority (``--nice``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

HERE = Path(__file__).resolve().parent
VERSIONS: dict[str, str] = json.loads((HERE / "versions.json").read_text())


class Target(NamedTuple):
    """One binary: its name, wrapper module, Go package, and the text `--version` must contain."""

    name: str
    module: str
    package: str
    expect: str


# Files of a dependency replaced at build time: module -> (dependency, {path in it: patch file}).
# kwok v0.8.0 reports a failed exec as an opaque error; the patch makes it report the exit code.
# Go refuses -overlay for files in GOMODCACHE, so the dependency is copied, patched, and wired in
# with a `replace` in a temporary -modfile (the committed go.mod and go.sum stay untouched).
PATCHES: dict[str, tuple[str, dict[str, Path]]] = {
    "kwok": (
        "sigs.k8s.io/kwok",
        {"pkg/kwok/server/debugging_exec.go": HERE / "kwok" / "_overlay" / "debugging_exec.go"},
    )
}


def _targets() -> list[Target]:
    k8s, etcd, kwok = VERSIONS["kubernetes"], VERSIONS["etcd"], VERSIONS["kwok"]
    return [
        Target("kube-apiserver", "kubernetes", "k8s.io/kubernetes/cmd/kube-apiserver", k8s),
        Target(
            "kube-controller-manager",
            "kubernetes",
            "k8s.io/kubernetes/cmd/kube-controller-manager",
            k8s,
        ),
        Target("kube-scheduler", "kubernetes", "k8s.io/kubernetes/cmd/kube-scheduler", k8s),
        Target("etcd", "etcd", "go.etcd.io/etcd/server/v3", etcd.lstrip("v")),
        Target("kwok", "kwok", "sigs.k8s.io/kwok/cmd/kwok", kwok),
        Target("kwokctl", "kwok", "sigs.k8s.io/kwok/cmd/kwokctl", kwok),
    ]


def cache_root() -> Path:
    """Return ``$PODRUNNER_CONTROLPLANE_CACHE``, else ``~/.cache/podrunner/controlplane``.

    ``$XDG_CACHE_HOME`` replaces ``~/.cache`` when set (as in ``controlplane.kwok``).
    """
    explicit = os.environ.get("PODRUNNER_CONTROLPLANE_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "podrunner" / "controlplane"


def version_key() -> str:
    """Return the directory name that identifies this set of pinned versions."""
    return f"k8s-{VERSIONS['kubernetes']}_etcd-{VERSIONS['etcd']}_kwok-{VERSIONS['kwok']}"


def bin_dir() -> Path:
    """Return the directory the binaries are built into (``$PODRUNNER_CONTROLPLANE_BIN`` wins)."""
    explicit = os.environ.get("PODRUNNER_CONTROLPLANE_BIN")
    if explicit:
        return Path(explicit)
    return cache_root() / version_key() / "bin"


def _module_time(module: str, version: str, env: dict[str, str]) -> str:
    """Return the module's publication time from the proxy (a reproducible build date)."""
    out = subprocess.run(
        ["go", "mod", "download", "-json", f"{module}@{version}"],
        cwd=HERE / "kubernetes",
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    info = json.loads(out)
    if not info.get("Time") and info.get("Info"):
        info = json.loads(Path(info["Info"]).read_text())
    return str(info.get("Time") or "1970-01-01T00:00:00Z")


def _ldflags(target: Target, env: dict[str, str]) -> str:
    flags = ["-s", "-w"]
    if target.module == "kubernetes":
        version = VERSIONS["kubernetes"]
        major, minor = version.lstrip("v").split(".")[:2]
        values = {
            "gitVersion": version,
            "gitMajor": major,
            "gitMinor": minor,
            "gitCommit": f"{version}-from-go-module-proxy",
            "gitTreeState": "clean",
            "buildDate": _module_time("k8s.io/kubernetes", version, env),
        }
        for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
            flags += [f"-X {pkg}.{key}={value}" for key, value in values.items()]
    elif target.module == "etcd":
        flags.append(f"-X go.etcd.io/etcd/api/v3/version.GitSHA={VERSIONS['etcd']}")
    return " ".join(flags)


def _patched_modfile(target: Target, env: dict[str, str], workdir: Path) -> Path | None:
    """Copy and patch a dependency; return a temporary go.mod that replaces it with the copy."""
    if target.module not in PATCHES:
        return None
    dependency, patches = PATCHES[target.module]
    module_dir = HERE / target.module
    info = json.loads(
        subprocess.run(
            ["go", "mod", "download", "-json", dependency],
            cwd=module_dir,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    src = workdir / f".src-{dependency.replace('/', '_')}@{info['Version']}"
    if src.exists():
        shutil.rmtree(src)
    shutil.copytree(info["Dir"], src)
    for path in [src, *src.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    for rel, patch in patches.items():
        shutil.copyfile(patch, src / rel)
    modfile = workdir / f".{target.module}.mod"
    modfile.write_text((module_dir / "go.mod").read_text() + f"\nreplace {dependency} => {src}\n")
    shutil.copyfile(module_dir / "go.sum", modfile.with_suffix(".sum"))
    return modfile


def _recipe(target: Target, ldflags: str) -> str:
    """Hash of everything that determines a binary: module files, flags, patches."""
    digest = hashlib.sha256()
    for name in ("go.mod", "go.sum"):
        digest.update((HERE / target.module / name).read_bytes())
    digest.update(target.package.encode() + b"\0" + ldflags.encode())
    for patch in PATCHES.get(target.module, ("", {}))[1].values():
        digest.update(patch.read_bytes())
    return digest.hexdigest()


def _reported_version(path: Path) -> str:
    try:
        proc = subprocess.run(
            [str(path), "--version"], capture_output=True, text=True, timeout=60, check=False
        )
    except OSError:
        return ""
    return proc.stdout + proc.stderr


def _go_env() -> dict[str, str]:
    env = dict(os.environ)
    env["GOTOOLCHAIN"] = "local"
    env["CGO_ENABLED"] = "0"
    env["GOFLAGS"] = "-mod=readonly -buildvcs=false"
    env.pop("GOOS", None)
    env.pop("GOARCH", None)
    return env


def build(force: bool = False, only: list[str] | None = None) -> Path:
    """Build the missing binaries and return the bin directory."""
    if shutil.which("go") is None:
        sys.exit(
            "controlplane: `go` is not on PATH; install Go >= 1.26 (GOTOOLCHAIN=local is used)"
        )
    env = _go_env()
    out = bin_dir()
    out.mkdir(parents=True, exist_ok=True)
    go_version = subprocess.run(
        ["go", "env", "GOVERSION"], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    print(f"controlplane: {version_key()} with {go_version} -> {out}", flush=True)
    total_start = time.monotonic()
    timings: dict[str, float] = {}
    for target in _targets():
        if only and target.name not in only:
            continue
        seconds = _build_one(target, out, env, force)
        if seconds is not None:
            timings[target.name] = seconds
    total = time.monotonic() - total_start
    print(f"controlplane: done in {total:.1f} s", flush=True)
    if timings:
        info = {"versions": VERSIONS, "go": go_version, "seconds": timings, "total": total}
        (out.parent / "build-info.json").write_text(json.dumps(info, indent=2) + "\n")
    return out


def _build_one(target: Target, out: Path, env: dict[str, str], force: bool) -> float | None:
    """Build one binary unless it is up to date; return the seconds it took, else ``None``."""
    dest = out / target.name
    stamp = out / f".{target.name}.recipe"
    ldflags = _ldflags(target, env)
    recipe = _recipe(target, ldflags)
    if (
        not force
        and dest.exists()
        and stamp.exists()
        and stamp.read_text().strip() == recipe
        and target.expect in _reported_version(dest)
    ):
        print(f"  {target.name:<24} up to date", flush=True)
        return None
    start = time.monotonic()
    tmp = out / f".{target.name}.tmp"
    cmd = ["go", "build", "-trimpath", "-tags=selinux,notest,grpcnotrace", "-ldflags", ldflags]
    scratch = out.parent / "build"
    scratch.mkdir(exist_ok=True)
    modfile = _patched_modfile(target, env, scratch)
    if modfile is not None:
        cmd.append(f"-modfile={modfile}")
    cmd += ["-o", str(tmp), target.package]
    print(f"  {target.name:<24} building ({target.package}) ...", flush=True)
    proc = subprocess.run(cmd, cwd=HERE / target.module, env=env, check=False)
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        sys.exit(f"controlplane: building {target.name} failed (exit {proc.returncode})")
    tmp.replace(dest)
    stamp.write_text(recipe + "\n")
    reported = _reported_version(dest)
    if target.expect not in reported:
        sys.exit(
            f"controlplane: {target.name} --version reported {reported.strip()!r}, "
            f"expected {target.expect}"
        )
    seconds = time.monotonic() - start
    print(
        f"  {target.name:<24} built in {seconds:6.1f} s: {reported.strip().splitlines()[0]}",
        flush=True,
    )
    return seconds


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """Build what is missing (``--force``: everything); ``--print-bin-dir`` only prints."""
    parser = argparse.ArgumentParser(prog=prog, description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--force", action="store_true", help="rebuild even if binaries exist")
    parser.add_argument("--only", action="append", help="build only this binary (repeatable)")
    parser.add_argument("--print-bin-dir", action="store_true", help="print the bin dir and exit")
    parser.add_argument("--nice", type=int, default=10, help="CPU niceness increment (default 10)")
    args = parser.parse_args(argv)
    if args.print_bin_dir:
        print(bin_dir())
        return 0
    if args.nice > 0:
        os.nice(args.nice)
    build(force=args.force, only=args.only)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
