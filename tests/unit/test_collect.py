"""Results out (``run(collect=...)``): options, the pod, safe extraction, the runs.

Streams are real tar archives built here (hostile ones included); on the local runtime the
collector runs the machine's own ``tar``.
"""

from __future__ import annotations

import asyncio
import io
import os
import stat
import tarfile
from pathlib import Path
from typing import Any

import pytest

from podrunner import (
    AsyncPodRunner,
    CleanupPolicy,
    Collect,
    CollectedFiles,
    CollectFailed,
    PodRunner,
    PodSpec,
    RunTimeout,
    SpecError,
    Volume,
    build_manifests,
)
from podrunner.backends.base import ExecResult, WatchEvent
from podrunner.backends.fake.scripting import ExecRequest
from podrunner.manifest import MANAGED_SELECTOR
from podrunner.run.collect import (
    COLLECTOR_NAME,
    DEFAULT_COLLECT_IMAGE,
    CollectProblem,
    extract,
    files_of_exec,
    tar_argv,
    with_collector,
)
from podrunner.run.core import CollectFiles, DrainLogs, Finish, RunCore
from podrunner.run.outcome import RunIdentity
from podrunner.spec import Deadlines
from podrunner.testing import FakeCluster

SPEC = PodSpec("python:3.12", ["python", "make_report.py"])


def tar_of(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    """A tar archive of ``(header, data)`` members, as ``tar -cf - -C /out .`` writes one."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return buf.getvalue()


def member(name: str, kind: bytes = tarfile.REGTYPE, mode: int = 0o644, link: str = "") -> Any:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.linkname = kind, mode, link
    return info


def leftovers(cluster: FakeCluster) -> list[str]:
    out: list[str] = []
    for kind in ("Pod", "Secret", "ConfigMap"):
        listed = cluster.backend.list(kind, None, label_selector=MANAGED_SELECTOR)
        out += [f"{kind}/{o['metadata']['name']}" for o in listed.items]
    return out


REPORT = tar_of(
    (member(".", tarfile.DIRTYPE, 0o755), None),
    (member("./report.json", mode=0o640), b'{"ok": true}\n'),
    (member("./bin", tarfile.DIRTYPE, 0o755), None),
    (member("./bin/tool", mode=0o4755), b"\x7fELF\x00\xff"),
    (member("./latest", tarfile.SYMTYPE, 0o777, "report.json"), None),
)


# -- options ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "field", "rule"),
    [
        ("/out/**", "collect", "list of absolute paths"),
        ([], "collect", "at least one path"),
        (["out/**"], "collect[0]", "absolute path"),
        (["/"], "collect[0]", "absolute path"),
        (["/out/../etc"], "collect[0]", "normalized"),
        (["/o*/x"], "collect", "one directory other than /"),
        (["/out"], "collect", "name what is under it: /out/**"),
        (["/out/a", "/tmp/b"], "collect", "one directory other than /"),
        ([3], "collect[0]", "must be a string"),
    ],
)
def test_bad_collect_values_name_field_value_and_rule(value: Any, field: str, rule: str) -> None:
    with pytest.raises(SpecError) as err:
        Collect(value)
    assert err.value.field == field
    assert rule in str(err.value)


def test_bad_options_are_refused_before_any_api_call(tmp_path: Path) -> None:
    (tmp_path / "old.txt").write_text("x")
    cluster = FakeCluster()
    with pytest.raises(SpecError, match="empty directory"):
        Collect(["/out/**"], directory=tmp_path)
    with pytest.raises(SpecError, match="max_bytes"):
        Collect(["/out/**"], max_bytes=-1)
    with pytest.raises(SpecError, match=r"collect\.image"):
        Collect(["/out/**"], image="")
    with pytest.raises(SpecError, match="collect"):
        PodRunner(cluster.backend).run(SPEC, collect=["relative"])
    assert leftovers(cluster) == []


@pytest.mark.parametrize(
    ("patterns", "path", "selected"),
    [
        (["/out/**"], "a/b/c.txt", True),
        (["/out/*.json"], "r.json", True),
        (["/out/*.json"], "sub/r.json", False),
        (["/out/**/*.json"], "sub/deep/r.json", True),
        (["/out/**/*.json"], "r.json", True),
        (["/out/sub"], "sub/x/y", True),
        (["/out/sub"], "subway", False),
        (["/out/a?.txt", "/out/b/**"], "b/z", True),
        (["/out/a?.txt"], "abc.txt", False),
        (["/w/results/*.json", "/w/results/logs/**"], "logs/a/b.txt", True),
        (["/w/results/*.json", "/w/logs/**"], "results/r.json", True),
        (["/w/results/*.json", "/w/logs/**"], "results/r.txt", False),
    ],
)
def test_globs_select_paths(patterns: list[str], path: str, selected: bool) -> None:
    assert Collect(patterns).selects(path) is selected


@pytest.mark.parametrize(
    ("patterns", "root"),
    [
        (["/out/**"], "/out"),
        (["/out/report.txt"], "/out"),
        (["/w/results/*.json", "/w/results/logs/**"], "/w/results"),
        (["/w/results/*.json", "/w/logs/**"], "/w"),
        (["/w/r*/x"], "/w"),
    ],
)
def test_the_root_is_the_deepest_shared_directory(patterns: list[str], root: str) -> None:
    assert Collect(patterns).root == root


# -- the pod --------------------------------------------------------------------------------


def test_the_collector_is_a_plain_container_sharing_the_directory() -> None:
    collect = Collect(["/out/**"])
    pod = with_collector(build_manifests(SPEC), collect, total=60).pod
    main, collector = pod["spec"]["containers"]
    assert {"name": "podrunner-collect", "emptyDir": {}} in pod["spec"]["volumes"]
    assert {"name": "podrunner-collect", "mountPath": "/out"} in main["volumeMounts"]
    assert collector["name"] == COLLECTOR_NAME
    assert collector["image"] == DEFAULT_COLLECT_IMAGE
    assert collector["command"] == ["sleep", str(60 + 3600)]
    assert collector["volumeMounts"] == [
        {"name": "podrunner-collect", "mountPath": "/out", "readOnly": True}
    ]
    # The main container's (restricted) security context: same user, Pod Security passes.
    assert collector["securityContext"] == main["securityContext"]
    # Not a native sidecar: the kubelet would stop it when the main container ends.
    assert all(c["name"] != COLLECTOR_NAME for c in pod["spec"].get("initContainers", ()))
    assert tar_argv(collect) == ["tar", "-cf", "-", "-C", "/out", "."]


def test_a_volume_the_spec_mounts_there_is_shared_instead() -> None:
    spec = SPEC.replace(volumes=[Volume.empty_dir("/out")])
    pod = with_collector(build_manifests(spec), Collect(["/out/*.txt"]), total=None).pod
    main, collector = pod["spec"]["containers"]
    assert len(pod["spec"]["volumes"]) == 1
    (mount,) = main["volumeMounts"]
    assert collector["volumeMounts"] == [{**mount, "readOnly": True}]


def test_a_volume_mounted_above_the_root_is_shared() -> None:
    spec = SPEC.replace(volumes=[Volume.empty_dir("/w"), Volume.empty_dir("/cache")])
    collect = Collect(["/w/results/**"])
    pod = with_collector(build_manifests(spec), collect, total=None).pod
    main, collector = pod["spec"]["containers"]
    (covering,) = [m for m in main["volumeMounts"] if m["mountPath"] == "/w"]
    assert collector["volumeMounts"] == [{**covering, "readOnly": True}]
    assert len(pod["spec"]["volumes"]) == 2  # no emptyDir added
    assert tar_argv(collect) == ["tar", "-cf", "-", "-C", "/w/results", "."]


def test_the_collector_name_is_reserved() -> None:
    spec = SPEC.replace(container_name=COLLECTOR_NAME)
    with pytest.raises(SpecError, match="collector's name"):
        with_collector(build_manifests(spec), Collect(["/out/**"]), total=None)


# -- extraction -------------------------------------------------------------------------------


def test_exact_bytes_modes_and_inside_links_in_memory() -> None:
    files = extract(io.BytesIO(REPORT), Collect(["/out/**"]))
    assert dict(files) == {"report.json": b'{"ok": true}\n', "bin/tool": b"\x7fELF\x00\xff"}
    # Set-user-ID is dropped; the permission bits stay exact.
    assert files.modes == {"report.json": 0o640, "bin/tool": 0o755}
    assert files.symlinks == {"latest": "report.json"}
    assert (files.skipped, files.truncated, files.total_bytes) == ({}, False, 19)


def test_exact_bytes_modes_and_links_in_a_directory(tmp_path: Path) -> None:
    dest = tmp_path / "results"
    files = extract(io.BytesIO(REPORT), Collect(["/out/**"], directory=dest))
    assert (dest / "report.json").read_bytes() == b'{"ok": true}\n'
    assert stat.S_IMODE((dest / "bin/tool").stat().st_mode) == 0o755
    assert stat.S_IMODE((dest / "report.json").stat().st_mode) == 0o640
    assert os.readlink(dest / "latest") == "report.json"
    assert files["bin/tool"] == b"\x7fELF\x00\xff"  # read back from the directory
    assert sorted(files) == ["bin/tool", "report.json"]


HOSTILE = tar_of(
    (member("../escape.txt"), b"out"),
    (member("/etc/passwd"), b"root::0:0"),
    (member("./a/../../up.txt"), b"up"),
    (member("./abs", tarfile.SYMTYPE, link="/etc/passwd"), None),
    (member("./climb", tarfile.SYMTYPE, link="../../etc"), None),
    (member("./d/zigzag", tarfile.SYMTYPE, link="../../x/../etc"), None),
    (member("./hard", tarfile.LNKTYPE, link="/etc/shadow"), None),
    (member("./dev", tarfile.CHRTYPE), None),
    (member("./fifo", tarfile.FIFOTYPE), None),
    (member("./ok.txt"), b"fine"),
)


@pytest.mark.parametrize("to_directory", [False, True])
def test_hostile_members_are_never_written(tmp_path: Path, to_directory: bool) -> None:
    dest = tmp_path / "dest" / "results"
    collect = Collect(["/out/**"], directory=dest if to_directory else None)
    files = extract(io.BytesIO(HOSTILE), collect)
    assert dict(files) == {"ok.txt": b"fine"}
    assert files.symlinks == {}
    assert sorted(files.skipped) == sorted(
        [
            "../escape.txt",
            "/etc/passwd",
            "./a/../../up.txt",
            "abs",
            "climb",
            "d/zigzag",
            "hard",
            "dev",
            "fifo",
        ]
    )
    assert "symbolic link out of the tree (/etc/passwd)" in files.skipped["abs"]
    assert "device, FIFO" in files.skipped["fifo"]
    # Nothing outside the destination was created.
    assert sorted(p.name for p in tmp_path.rglob("*")) == (
        ["dest", "ok.txt", "results"] if to_directory else []
    )


def test_a_file_is_never_written_through_a_link(tmp_path: Path) -> None:
    """A link to a directory inside, then a file under its name: links come last."""
    stream = tar_of(
        (member("./real", tarfile.DIRTYPE, 0o755), None),
        (member("./alias", tarfile.SYMTYPE, link="real"), None),
        (member("./alias/f.txt"), b"data"),
    )
    files = extract(io.BytesIO(stream), Collect(["/out/**"], directory=tmp_path / "r"))
    assert dict(files) == {"alias/f.txt": b"data"}
    assert (tmp_path / "r/alias").is_dir()
    assert not (tmp_path / "r/alias").is_symlink()
    assert "taken" in files.skipped["alias"]
    assert list((tmp_path / "r/real").iterdir()) == []


def test_files_over_the_cap_are_left_out_whole_and_flagged() -> None:
    stream = tar_of(
        (member("./small"), b"x" * 10),
        (member("./huge"), b"y" * 100),
        (member("./tiny"), b"z"),
        (member("./copy", tarfile.LNKTYPE, link="./small"), None),
    )
    files = extract(io.BytesIO(stream), Collect(["/out/**"], max_bytes=21))
    assert dict(files) == {"small": b"x" * 10, "tiny": b"z", "copy": b"x" * 10}
    assert files.truncated
    assert files.skipped == {"huge": "left out: 100 bytes would go over max_bytes=21"}
    assert files.total_bytes == 21


def test_only_selected_paths_are_kept() -> None:
    files = extract(io.BytesIO(REPORT), Collect(["/out/*.json"]))
    assert (dict(files), files.symlinks) == ({"report.json": b'{"ok": true}\n'}, {})


@pytest.mark.parametrize(
    ("stream", "words"),
    [
        (b"not a tar archive" * 40, "cut short or is not a tar archive"),
        (REPORT[:700], "cut short"),
        (REPORT[:1536], "cut short"),
        (b"\x01" * 512 + bytes(1024), "could not be read"),
        (b"", "cut short"),
    ],
)
def test_a_broken_stream_is_a_clear_problem(stream: bytes, words: str) -> None:
    with pytest.raises(CollectProblem, match=words):
        files_of_exec(ExecResult(0, stream, b""), Collect(["/out/**"]))


# -- the core -------------------------------------------------------------------------------


def test_the_core_collects_after_the_log_only_when_the_container_ran() -> None:
    from test_run_core import RUNNING, done

    collect = Collect(["/out/**"])
    run = RunIdentity(pod_name="p", namespace="ns", run_id="r", container="main")
    core = RunCore(
        run, deadlines=Deadlines(), cleanup=CleanupPolicy.ALWAYS, created_at=0, collect=collect
    )
    core.pod_event(WatchEvent("MODIFIED", RUNNING), 0)
    core.pod_event(WatchEvent("MODIFIED", done(3)), 1)
    assert isinstance(core.next_action(1), DrainLogs)
    core.logs_drained("")
    assert core.next_action(1) == CollectFiles(collect)
    files = CollectedFiles("/out", None)
    core.files_collected(files)
    verdict = core.next_action(1)
    assert isinstance(verdict, Finish)
    assert verdict.result.exit_code == 3
    assert verdict.result.files is files


# -- runs on the fake -------------------------------------------------------------------------


def serve(stream: bytes, code: int = 0, err: bytes = b"") -> Any:
    calls: list[ExecRequest] = []

    def handler(request: ExecRequest) -> tuple[int, bytes, bytes]:
        calls.append(request)
        return code, stream, err

    handler.calls = calls  # type: ignore[attr-defined]
    return handler


def test_a_run_collects_files_before_its_pod_is_deleted() -> None:
    cluster = FakeCluster()
    handler = serve(REPORT)
    cluster.when(image="python:*").fail(exit_code=2, after=5.0).exec_handler(handler)
    result = PodRunner(cluster.backend).run(SPEC, timeout=60, collect=["/out/**"])
    assert result.exit_code == 2  # files are collected from failed runs too
    assert result.files is not None
    assert result.files["report.json"] == b'{"ok": true}\n'
    (request,) = handler.calls
    assert (request.container, request.argv) == (COLLECTOR_NAME, tar_argv(Collect(["/out/**"])))
    assert leftovers(cluster) == []


def test_a_run_without_collect_has_no_files_and_no_collector() -> None:
    cluster = FakeCluster()
    result = PodRunner(cluster.backend).run(SPEC, timeout=60, cleanup=CleanupPolicy.NEVER)
    assert result.files is None
    (pod,) = cluster.pods()
    assert [c["name"] for c in pod["spec"]["containers"]] == [SPEC.container_name]


def test_an_image_without_tar_is_a_clear_error_and_nothing_stays() -> None:
    cluster = FakeCluster()  # no exec handler: the fake's images have no tar
    cluster.when(image="python:*").succeed(logs="done\n")
    runner = PodRunner(cluster.backend)
    with pytest.raises(CollectFailed) as err:
        runner.run(SPEC, timeout=60, collect=Collect(["/out/**"], image="gcr.io/distroless/x"))
    message = str(err.value)
    assert "gcr.io/distroless/x has no usable tar" in message
    assert "image=" in message  # says what to do
    assert (err.value.result.exit_code, err.value.result.logs) == (0, "done\n")
    assert leftovers(cluster) == []


@pytest.mark.parametrize(
    ("handler", "words"),
    [
        (serve(b"garbage" * 100), "not a tar archive"),
        (serve(b"", 2, b"tar: /out: Permission denied"), "exited 2: tar: /out: Permission"),
    ],
)
def test_a_failed_copy_is_a_clear_error_and_nothing_stays(handler: Any, words: str) -> None:
    cluster = FakeCluster()
    cluster.when(image="python:*").succeed().exec_handler(handler)
    with pytest.raises(CollectFailed, match=words):
        PodRunner(cluster.backend).run(SPEC, timeout=60, collect=["/out/**"])
    assert leftovers(cluster) == []


def test_a_collector_that_died_is_a_clear_error() -> None:
    cluster = FakeCluster()
    cluster.when(image=DEFAULT_COLLECT_IMAGE).fail(exit_code=127)
    cluster.when(image="python:*").succeed(after=2.0)
    with pytest.raises(CollectFailed, match="could not exec tar in the collector"):
        PodRunner(cluster.backend).run(SPEC, timeout=60, collect=["/out/**"])
    assert leftovers(cluster) == []


def test_tar_exit_1_with_output_keeps_the_files_with_a_note() -> None:
    cluster = FakeCluster()
    handler = serve(REPORT, 1, b"tar: ./x: file changed as we read it")
    cluster.when(image="python:*").succeed().exec_handler(handler)
    result = PodRunner(cluster.backend).run(SPEC, timeout=60, collect=["/out/**"])
    assert result.files is not None
    assert "file changed" in result.files.note
    assert "report.json" in result.files


def test_a_run_that_times_out_collects_nothing_and_leaves_nothing() -> None:
    cluster = FakeCluster()
    handler = serve(REPORT)
    cluster.when(image="python:*").hang().exec_handler(handler)
    with pytest.raises(RunTimeout):
        PodRunner(cluster.backend).run(SPEC, timeout=30, collect=["/out/**"])
    assert handler.calls == []
    assert leftovers(cluster) == []


def test_kept_pods_keep_their_collector_until_deleted() -> None:
    cluster = FakeCluster()
    cluster.when(image="python:*").succeed().exec_handler(serve(REPORT))
    runner = PodRunner(cluster.backend)
    result = runner.run(SPEC, timeout=60, collect=["/out/**"], cleanup=CleanupPolicy.NEVER)
    assert result.ok
    assert result.files is not None
    pod = cluster.backend.get("Pod", "default", result.pod_name)
    statuses = {s["name"]: s["state"] for s in pod["status"]["containerStatuses"]}
    assert "terminated" in statuses[SPEC.container_name]
    assert "running" in statuses[COLLECTOR_NAME]
    cluster.backend.delete("Pod", "default", result.pod_name, grace_period_seconds=0)


def test_the_async_runner_collects_too(tmp_path: Path) -> None:
    cluster = FakeCluster()
    cluster.when(image="python:*").succeed().exec_handler(serve(REPORT))

    async def main() -> Any:
        async with AsyncPodRunner(cluster.async_backend) as runner:
            collect = Collect(["/out/**"], directory=tmp_path / "r")
            return await runner.run(SPEC, timeout=60, collect=collect)

    result = asyncio.run(main())
    assert result.files is not None
    assert result.files.directory == tmp_path / "r"
    assert (tmp_path / "r/report.json").read_bytes() == b'{"ok": true}\n'
    assert leftovers(cluster) == []


def test_async_failures_are_clear_and_leave_nothing() -> None:
    cluster = FakeCluster()
    cluster.when(image="python:*").succeed()

    async def main() -> None:
        async with AsyncPodRunner(cluster.async_backend) as runner:
            await runner.run(SPEC, timeout=60, collect=["/out/**"])

    with pytest.raises(CollectFailed, match="has no usable tar"):
        asyncio.run(main())
    assert leftovers(cluster) == []


# -- the local runtime: the machine's own tar ---------------------------------------------------

WRITE = (
    'mkdir -p "$0/sub" && printf hi > "$0/a.txt" && printf x > "$0/sub/b.bin" && '
    'chmod 751 "$0/sub/b.bin" && ln -s a.txt "$0/link" && ln -s /etc/passwd "$0/evil"'
)


def test_real_tar_on_the_local_runtime(tmp_path: Path) -> None:
    cluster = FakeCluster(runtime="local")
    spec = PodSpec("img", ["sh", "-c", WRITE, "/out"])
    runner = PodRunner(cluster.backend)
    result = runner.run(spec, timeout=60, collect=["/out/**"])
    files = result.files
    assert files is not None
    assert dict(files) == {"a.txt": b"hi", "sub/b.bin": b"x"}
    assert files.modes["sub/b.bin"] == 0o751
    assert files.symlinks == {"link": "a.txt"}
    assert list(files.skipped) == ["evil"]
    dest = tmp_path / "r"
    collect = Collect(["/out/sub/*", "/out/*.txt"], directory=dest)
    result = runner.run(spec, timeout=60, collect=collect)
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*")) == [
        "a.txt",
        "sub",
        "sub/b.bin",
    ]
    assert (dest / "sub/b.bin").read_bytes() == b"x"
    assert leftovers(cluster) == []


def test_a_directory_holds_one_run(tmp_path: Path) -> None:
    collect = Collect(["/out/**"], directory=tmp_path / "r")
    extract(io.BytesIO(REPORT), collect)
    with pytest.raises(CollectProblem, match="not empty"):
        extract(io.BytesIO(REPORT), collect)
