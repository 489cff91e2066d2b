"""Workspace in: git checkouts and downloads by init containers, into an emptyDir or a PVC."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from podrunner import (
    AsyncPodRunner,
    InitContainer,
    InitContainerFailed,
    PodRunner,
    PodSpec,
    SecretRef,
    Sidecar,
    SpecError,
    Volume,
    Workspace,
    build_manifests,
)
from podrunner.errors import REDACTED
from podrunner.manifest import MANAGED_SELECTOR
from podrunner.spec import DEFAULT_WORKSPACE_IMAGE, DownloadSource, GitSource
from podrunner.testing import FakeCluster

HOUR = 3600.0
TOKEN = "ghp_s3cretTokenValue"  # a made-up token the tests look for
REPO = "https://github.com/acme/app.git"
CREDS = SecretRef("git-token", "token")
SSH_REPO = "git@github.com:acme/app.git"
KEY = SecretRef("deploy-key", "identity")
HOSTS = SecretRef("deploy-key", "known_hosts")
PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAAs3cr3t\n"
SPEC = PodSpec(
    "python:3.12",
    ["pytest"],
    workspace=Workspace.git(REPO, "main", credentials=CREDS),
    secret_env={"API_KEY": "k"},
    files={"/in/prompt.txt": "hi"},
)


def leftovers(cluster: FakeCluster) -> list[str]:
    out: list[str] = []
    for kind in ("Pod", "Secret", "ConfigMap"):
        listed = cluster.backend.list(kind, None, label_selector=MANAGED_SELECTOR)
        out += [f"{kind}/{o['metadata']['name']}" for o in listed.items]
    return out


def _init(spec: PodSpec) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = build_manifests(spec).pod["spec"]["initContainers"]
    return result


# -- spec ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "field", "rule"),
    [
        (lambda: GitSource("http://example.com/r.git"), "git.url", "https://"),
        (lambda: GitSource("--upload-pack=touch"), "git.url", "https://"),
        (lambda: GitSource("https:///r.git"), "git.url", "host"),
        (lambda: GitSource("https://a.com/r", "-o"), "git.ref", "leading"),
        (lambda: GitSource("https://a.com/r", "a..b"), "git.ref", "'..'"),
        (lambda: GitSource("https://a.com/r", "a b"), "git.ref", "spaces"),
        (lambda: GitSource("https://a.com/r", depth=0), "git.depth", "between 1"),
        (lambda: GitSource("https://a.com/r", path="../up"), "git.path", "'..'"),
        (lambda: GitSource("https://a.com/r", path="/abs"), "git.path", "relative"),
        (lambda: GitSource("git://a.com/r", credentials=CREDS), "git.credentials", "https://"),
        (lambda: GitSource(REPO, ssh_key=KEY, known_hosts=HOSTS), "git.ssh_key", "ssh URLs"),
        (lambda: GitSource(REPO, known_hosts=HOSTS), "git.known_hosts", "ssh URLs"),
        (lambda: GitSource(SSH_REPO, ssh_key=KEY), "git.known_hosts", "never trusted"),
        (lambda: GitSource(SSH_REPO, credentials=CREDS), "git.credentials", "ssh_key"),
        (lambda: DownloadSource("https://a.com/f", "dir/"), "download.path", "file path"),
        (lambda: DownloadSource("https://a.com/f", ""), "download.path", "name a file"),
        (lambda: DownloadSource("ftp://a.com/f", "f"), "download.url", "https://"),
        (lambda: DownloadSource("https://a.com/f", "f", sha256="abc"), "download.sha256", "64"),
        (lambda: Workspace.git(REPO, size_limit="lots"), "workspace.size_limit", "quantit"),
        (lambda: Workspace.git(REPO, size_limit="0"), "workspace.size_limit", "greater"),
        (lambda: Workspace.git(REPO, claim="c", size_limit="1Gi"), "workspace.size_limit", "claim"),
        (lambda: Workspace.git(REPO, claim="Bad_Claim"), "workspace.claim", "RFC 1123"),
        (lambda: Workspace.git(REPO, mount_path="/"), "workspace.mount_path", "root"),
        (lambda: Workspace.git(REPO, mount_path="w"), "workspace.mount_path", "absolute"),
        (lambda: Workspace.git(REPO, image=""), "workspace.image", "Required"),
        (lambda: Workspace.git(REPO).with_git(REPO), "workspace.sources[1].path", "sources[0]"),
        (lambda: Workspace(sources=[REPO]), "workspace.sources[0]", "GitSource"),
    ],
)
def test_bad_values_name_field_value_and_rule(build: Any, field: str, rule: str) -> None:
    """Every value is checked on construction, before any API call."""
    with pytest.raises(SpecError) as err:
        build()
    assert err.value.field == field
    assert rule in err.value.rule


@pytest.mark.parametrize(
    "url",
    [
        f"https://x-access-token:{TOKEN}@github.com/acme/app.git",
        f"https://{TOKEN}@github.com/acme/app.git",
        f"ssh://git:{TOKEN}@github.com/acme/app.git",
    ],
)
def test_credentials_in_a_url_are_refused_without_showing_them(url: str) -> None:
    """The error says to use a SecretRef and shows the URL with its credentials redacted."""
    with pytest.raises(SpecError) as err:
        Workspace.git(url)
    assert err.value.field == "git.url"
    assert "credentials=SecretRef" in err.value.rule
    assert TOKEN not in str(err.value)
    assert REDACTED in str(err.value.value)
    assert "github.com/acme/app.git" in str(err.value.value)


def test_a_token_given_as_credentials_is_not_echoed() -> None:
    """credentials="ghp_..." (the token itself, not a SecretRef) is refused, never shown."""
    with pytest.raises(SpecError) as err:
        Workspace.git(REPO, credentials=TOKEN)  # type: ignore[arg-type]
    assert err.value.field == "git.credentials"
    assert TOKEN not in str(err.value)


def test_accepted_sources() -> None:
    """Accepted: ssh (both syntaxes), git://, file://, tags, commit ids, in order."""
    commit = "A" * 40
    workspace = (
        Workspace.git("git@github.com:acme/app.git", "v1.2.3", path="app")
        .with_git("ssh://git@github.com/acme/lib.git", commit, path="lib", depth=None)
        .with_git("git://example.com/x.git", path="x")
        .with_git("file:///srv/repo.git", path="local")
        .with_download("https://example.com/d.csv", "data/d.csv", sha256="F" * 64)
    )
    kinds = [type(s).__name__ for s in workspace.sources]
    assert kinds == ["GitSource"] * 4 + ["DownloadSource"]
    lib = workspace.sources[1]
    assert isinstance(lib, GitSource)
    assert lib.ref == "a" * 40  # commit ids are kept in lower case
    assert workspace.sources[4] == DownloadSource(
        "https://example.com/d.csv", "data/d.csv", sha256="f" * 64
    )


@pytest.mark.parametrize(
    ("changes", "field", "rule"),
    [
        ({"volumes": [Volume.empty_dir("/workspace")]}, "workspace.mount_path", "volumes[0]"),
        ({"files": {"/workspace/p.txt": "x"}}, "workspace.mount_path", "files"),
        (
            {"init_containers": [InitContainer("workspace-0", image="x", command=["t"])]},
            "workspace.sources[0]",
            "another container",
        ),
        ({"workspace": "https://a.com/r"}, "workspace", "must be a Workspace"),
    ],
)
def test_pod_level_rules(changes: dict[str, Any], field: str, rule: str) -> None:
    """The mount path and the init containers' names are the workspace's alone."""
    with pytest.raises(SpecError) as err:
        SPEC.replace(**changes)
    assert err.value.field == field
    assert rule in err.value.rule


# -- manifest --------------------------------------------------------------------------------


def test_git_checkout_manifest_takes_the_token_from_the_secret() -> None:
    """A shallow clone by an init container; the token is a secretKeyRef, nowhere a value."""
    manifests = build_manifests(SPEC)
    pod = manifests.pod
    (fetch,) = pod["spec"]["initContainers"]
    assert fetch["name"] == "workspace-0"
    assert fetch["image"] == DEFAULT_WORKSPACE_IMAGE
    assert fetch["command"] == [
        "git",
        "clone",
        "--depth",
        "1",
        "--branch",
        "main",
        "--",
        REPO,
        "/workspace",
    ]
    env = {e["name"]: e for e in fetch["env"]}
    assert env["PODRUNNER_GIT_PASSWORD"] == {
        "name": "PODRUNNER_GIT_PASSWORD",
        "valueFrom": {"secretKeyRef": {"name": "git-token", "key": "token"}},
    }
    assert env["GIT_CONFIG_KEY_1"]["value"] == "credential.https://github.com.helper"
    assert env["GIT_TERMINAL_PROMPT"]["value"] == "0"
    assert fetch["volumeMounts"] == [{"name": "podrunner-workspace", "mountPath": "/workspace"}]
    assert fetch["securityContext"] == pod["spec"]["containers"][0]["securityContext"]
    main = pod["spec"]["containers"][0]
    assert main["workingDir"] == "/workspace"
    assert {"name": "podrunner-workspace", "mountPath": "/workspace"} in main["volumeMounts"]
    assert {"name": "podrunner-workspace", "emptyDir": {}} in pod["spec"]["volumes"]
    # The run's own Secret holds the spec's secret_env only: the git token is never copied.
    assert manifests.secret is not None
    assert set(manifests.secret["data"]) == {"env.API_KEY"}


def test_an_ssh_key_is_a_file_of_that_init_container_only() -> None:
    """Key and known_hosts are Secret volumes of the one init container; no value anywhere."""
    spec = PodSpec(
        "python:3.12",
        ["pytest"],
        workspace=Workspace.git(SSH_REPO, "main", ssh_key=KEY, known_hosts=HOSTS),
    )
    manifests = build_manifests(spec)
    pod = manifests.pod
    (fetch,) = pod["spec"]["initContainers"]
    where = "/var/run/podrunner/git-ssh-0"
    assert fetch["command"][:7] == [
        "sh",
        "-c",
        fetch["command"][2],
        "sh",
        f"{where}/key/identity",
        f"{where}/hosts/known_hosts",
        f"{where}/scratch",
    ]
    clone = ["git", "clone", "--depth", "1", "--branch", "main", "--", SSH_REPO, "/workspace"]
    assert fetch["command"][7:] == clone
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["podrunner-git-key-0"]["secret"] == {
        "secretName": "deploy-key",
        "items": [{"key": "identity", "path": "identity"}],
        "defaultMode": 0o440,
    }
    assert volumes["podrunner-git-hosts-0"]["secret"]["items"] == [
        {"key": "known_hosts", "path": "known_hosts"}
    ]
    assert volumes["podrunner-git-scratch-0"] == {
        "name": "podrunner-git-scratch-0",
        "emptyDir": {"medium": "Memory"},
    }
    mounted = {m["name"] for m in fetch["volumeMounts"]}
    assert {"podrunner-git-key-0", "podrunner-git-hosts-0", "podrunner-git-scratch-0"} <= mounted
    main = pod["spec"]["containers"][0]
    assert not {m["name"] for m in main["volumeMounts"]} & mounted - {"podrunner-workspace"}
    assert "PODRUNNER_GIT_PASSWORD" not in {e["name"] for e in fetch["env"]}
    assert manifests.secret is None


def test_an_ssh_key_given_as_text_is_not_echoed() -> None:
    for field in ("ssh_key", "known_hosts"):
        with pytest.raises(SpecError) as err:
            GitSource(SSH_REPO, **{field: PRIVATE_KEY})  # type: ignore[arg-type]
        assert err.value.field == f"git.{field}"
        assert "s3cr3t" not in str(err.value)
        assert "PRIVATE KEY" not in str(err.value)


def test_order_sizes_claims_and_working_dir() -> None:
    """Sidecars, then the workspace, then the spec's init containers (which see it)."""
    mine = InitContainer("deps", image="python:3.12", command=["pip", "install", "-e", "."])
    spec = SPEC.replace(
        init_containers=[mine],
        sidecars=[Sidecar("proxy", image="envoy", command=["envoy"])],
        workspace=Workspace.git(REPO, size_limit="2Gi", mount_path="/src"),
        working_dir="/tmp",
    )
    pod = build_manifests(spec).pod["spec"]
    assert [c["name"] for c in pod["initContainers"]] == ["proxy", "workspace-0", "deps"]
    deps = pod["initContainers"][2]
    assert {"name": "podrunner-workspace", "mountPath": "/src"} in deps["volumeMounts"]
    assert {"name": "podrunner-workspace", "emptyDir": {"sizeLimit": "2Gi"}} in pod["volumes"]
    assert pod["containers"][0]["workingDir"] == "/tmp"
    on_claim = build_manifests(SPEC.replace(workspace=Workspace.git(REPO, claim="ws")))
    spec_json = on_claim.pod["spec"]
    assert {"name": "podrunner-workspace", "persistentVolumeClaim": {"claimName": "ws"}} in (
        spec_json["volumes"]
    )
    assert spec_json["securityContext"]["fsGroup"] == 65532  # the claim is writable


def test_commit_and_download_pass_inputs_as_arguments() -> None:
    """Commit ids are fetched by id; a download checks its digest.

    Inputs are never in the shell text, so a URL or a path cannot inject commands.
    """
    commit = "0123456789abcdef0123456789abcdef01234567"
    workspace = Workspace.git(REPO, commit, path="app", depth=None).with_download(
        "https://example.com/a;rm${IFS}-rf${IFS}$HOME", "data/x.csv", sha256="e" * 64
    )
    git, download = _init(SPEC.replace(workspace=workspace))
    assert git["command"][:2] == ["sh", "-c"]
    assert git["command"][3:] == ["sh", REPO, commit, "/workspace/app", ""]
    assert download["command"][3:] == [
        "sh",
        "https://example.com/a;rm${IFS}-rf${IFS}$HOME",
        "/workspace/data/x.csv",
        "e" * 64,
    ]
    assert "example.com" not in download["command"][2]


def test_no_workspace_no_change() -> None:
    """A spec without a workspace builds the same pod as before."""
    plain = build_manifests(PodSpec("busybox", ["true"])).pod["spec"]
    assert "initContainers" not in plain
    assert "volumes" not in plain
    assert "workingDir" not in plain["containers"][0]


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_credential_helper_gives_the_token_to_the_repository_host_only(tmp_path: Path) -> None:
    """The helper as git runs it: the token for github.com, nothing for another host."""
    (fetch,) = _init(SPEC)
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    for entry in fetch["env"]:
        env[entry["name"]] = TOKEN if "valueFrom" in entry else entry["value"]

    def fill(host: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["git", "credential", "fill"],
            input=f"protocol=https\nhost={host}\npath=acme/app.git\n\n",
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )

    ok = fill("github.com")
    assert ok.returncode == 0
    assert f"username=x-access-token\npassword={TOKEN}\n" in ok.stdout
    other = fill("evil.example")
    assert other.returncode != 0
    assert TOKEN not in other.stdout + other.stderr


# -- runs on the fake ------------------------------------------------------------------------


def test_failing_clone_raises_with_gits_message_promptly_and_leaves_nothing() -> None:
    """A clone that fails ends the run as it fails, naming the container and git's message."""
    cluster = FakeCluster()
    cluster.when(image="alpine/git:*").fail(
        exit_code=128, logs="fatal: repository 'https://github.com/acme/app.git/' not found\n"
    )
    start = cluster.clock.now()
    with pytest.raises(InitContainerFailed) as err:
        PodRunner(cluster.backend).run(SPEC, timeout=HOUR)
    assert cluster.clock.now() - start < 60
    assert (err.value.container, err.value.exit_code) == ("workspace-0", 128)
    assert "fatal: repository" in err.value.logs
    assert "not found" in str(err.value)
    assert leftovers(cluster) == []


def test_successful_checkout_then_main_container() -> None:
    """The init container succeeds, then the main container runs in the workspace."""
    cluster = FakeCluster()
    cluster.when(image="alpine/git:*").succeed(logs="Cloning into '/workspace'...\n", after=3)
    cluster.when(image="python:*").succeed(logs="5 passed\n", after=10)
    result = PodRunner(cluster.backend).run(SPEC, timeout=HOUR)
    assert (result.exit_code, result.logs) == (0, "5 passed\n")
    assert leftovers(cluster) == []


@pytest.mark.asyncio
async def test_async_runner_raises_the_same_error() -> None:
    """The async runner fails the same way."""
    cluster = FakeCluster()
    cluster.when(image="alpine/git:*").fail(exit_code=128, logs="fatal: bad ref\n")
    with pytest.raises(InitContainerFailed) as err:
        await AsyncPodRunner(cluster.async_backend).run(SPEC, timeout=HOUR)
    assert err.value.container == "workspace-0"
    assert leftovers(cluster) == []


# -- the local runtime: a real git clone -------------------------------------------------------


@pytest.fixture
def bare_repo() -> Iterator[tuple[str, str]]:
    """A bare repository holding one commit; ``(file:// URL, commit id)``."""
    if shutil.which("git") is None:
        pytest.skip("needs git")
    # Not under pytest's tmp_path, which is private to its user: as root, the local runtime
    # runs the restricted pod as uid 65532, which must reach the repository.
    root = Path(tempfile.mkdtemp(prefix="podrunner-ws-"))
    root.chmod(0o755)
    work, bare = root / "src", root / "repo.git"
    ident = ["-c", "user.name=t", "-c", "user.email=t@example.com"]

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], capture_output=True, text=True, check=True)
        return done.stdout.strip()

    git("init", "-q", "-b", "main", str(work))
    (work / "README").write_text("hello from git\n")
    git("-C", str(work), "add", "README")
    git("-C", str(work), *ident, "commit", "-q", "-m", "one")
    git("clone", "-q", "--bare", str(work), str(bare))
    if os.geteuid() == 0:
        # git refuses a repository another user owns ("dubious ownership"), as it would in a
        # container: hand it to the user the pod runs as.
        for path in [bare, *bare.rglob("*")]:
            os.chown(path, 65532, 65532)
    try:
        yield f"file://{bare}", git("-C", str(work), "rev-parse", "HEAD")
    finally:
        shutil.rmtree(root)


def test_local_runtime_clones_a_real_repository(bare_repo: tuple[str, str]) -> None:
    """By branch into the workspace, by commit id into a directory.

    A missing repository fails the run with git's own message.
    """
    url, commit = bare_repo
    cluster = FakeCluster(runtime="local")
    runner = PodRunner(cluster.backend)
    spec = PodSpec("img", ["cat", "README", "lib/README"])
    workspace = Workspace.git(url, "main").with_git(url, commit, path="lib")
    result = runner.run(spec.replace(workspace=workspace), timeout=60)
    assert (result.exit_code, result.logs) == (0, "hello from git\n" * 2)
    missing = Workspace.git(url.replace("repo.git", "nope.git"))
    with pytest.raises(InitContainerFailed) as err:
        runner.run(spec.replace(workspace=missing), timeout=60)
    assert err.value.exit_code == 128, err.value.logs
    assert "does not appear to be a git repository" in err.value.logs
    assert leftovers(cluster) == []


# What ssh would do once connected, without a server: run the remote command here. It records
# what a real ssh insists on: the key file's mode, strict host checking, the hosts given.
_SSH_STANDIN = r"""#!/bin/sh
key=""; hosts=""; strict=""
while [ $# -gt 0 ]; do
  case "$1" in
    -i) key=$2; shift 2 ;;
    -o) case "$2" in
          UserKnownHostsFile=*) hosts=${2#UserKnownHostsFile=} ;;
          StrictHostKeyChecking=*) strict=${2#StrictHostKeyChecking=} ;;
        esac; shift 2 ;;
    -p|-l) shift 2 ;;
    -*) shift ;;
    *) break ;;
  esac
done
host=$1; shift
echo "host=$host mode=$(stat -c %a "$key") key=$(head -n 1 "$key") strict=$strict" \
  "hosts=$(cat "$hosts")" >> "$(dirname "$0")/record"
exec sh -c "$*"
"""


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_local_runtime_clones_over_ssh_with_the_key_from_the_secret(
    bare_repo: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The clone runs ssh with the Secret's key (mode 0600) and only the given host keys."""
    url, _ = bare_repo
    tools = Path(tempfile.mkdtemp(prefix="podrunner-ssh-"))
    try:
        tools.chmod(0o755)
        (tools / "ssh").write_text(_SSH_STANDIN)
        (tools / "ssh").chmod(0o755)
        (tools / "record").touch(mode=0o666)
        (tools / "record").chmod(0o666)
        monkeypatch.setenv("PATH", f"{tools}:{os.environ['PATH']}")
        cluster = FakeCluster(runtime="local")
        host_line = "example.invalid ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample"
        data = {"identity": PRIVATE_KEY, "known_hosts": host_line + "\n"}
        cluster.backend.create(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "deploy-key", "namespace": "default"},
                "stringData": data,
            }
        )
        ssh_url = "ssh://git@example.invalid" + url.removeprefix("file://")
        workspace = Workspace.git(ssh_url, "main", ssh_key=KEY, known_hosts=HOSTS)
        spec = PodSpec("img", ["cat", "README"], workspace=workspace)
        result = PodRunner(cluster.backend).run(spec, timeout=60)
        assert (result.exit_code, result.logs) == (0, "hello from git\n")
        record = (tools / "record").read_text()
        assert "host=git@example.invalid mode=600" in record
        assert "key=-----BEGIN OPENSSH PRIVATE KEY-----" in record
        assert f"strict=yes hosts={host_line}" in record
        assert leftovers(cluster) == []
    finally:
        shutil.rmtree(tools)


def test_manifest_is_json_and_stable() -> None:
    """Same spec, name and run id: the same bytes (the workspace adds no randomness)."""
    spec = SPEC.replace(name="p")
    first = json.dumps(build_manifests(spec, run_id="r").pod)
    assert first == json.dumps(build_manifests(spec, run_id="r").pod)
