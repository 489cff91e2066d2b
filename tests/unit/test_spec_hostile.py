"""Hostile input to the spec builder: unsendable text, secrets of any shape, oversize values.

Every string podrunner hands to ``execve`` or to the API server is checked when the spec is
built; a value that would fail later (a NUL byte, a lone surrogate, an argument over the
kernel's limit, a Secret or pod over the server's) is a :class:`SpecError` naming the field. No
message or repr ever shows a secret value, whatever shape the caller gave it.
"""

from __future__ import annotations

import json
import pickle
import traceback
from collections.abc import Callable
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from podrunner import ClusterConfig, PodRunner, PodSpec
from podrunner._validation import SECRET_DATA_SIZE_LIMIT, TOTAL_ANNOTATION_SIZE_LIMIT
from podrunner.claude.credentials import ClaudeCredentials
from podrunner.errors import ConfigError, SpecError
from podrunner.manifest import build_manifests
from podrunner.spec import (
    MAX_ARG_BYTES,
    MAX_EXEC_BYTES,
    RESERVED_ANNOTATION_BYTES,
    EnvVar,
    SecretRef,
    Toleration,
    Volume,
)
from podrunner.testing import FakeCluster

SECRET = "sk-ant-S3CR3T-0123456789"


def spec(**kw: Any) -> PodSpec:
    command = kw.pop("command", ["sh"])
    return PodSpec("img:v1", command, **kw)


def refused(build: Callable[[], object]) -> SpecError:
    with pytest.raises(SpecError) as info:
        build()
    return info.value


# -- NUL characters and lone surrogates (item 8) --------------------------------------------

# Each builder puts the bad text into one string field; the error must name that field.
FIELDS: dict[str, tuple[Callable[[str], object], str]] = {
    "image": (lambda t: PodSpec("img" + t, ["sh"]), "image"),
    "command": (lambda t: PodSpec("img", ["sh", "a" + t]), "command[1]"),
    "program": (lambda t: PodSpec("img", ["sh" + t]), "command[0]"),
    "env value": (lambda t: spec(env={"A": t}), "env.value"),
    "env pair value": (lambda t: spec(env=[("A", t)]), "env.value"),
    "EnvVar value": (lambda t: EnvVar("A", "x" + t), "env.value"),
    "env name": (lambda t: spec(env={"A" + t: "x"}), "env.name"),
    "blank_env": (lambda t: spec(blank_env=["A" + t]), "blank_env[0]"),
    "secret_env value": (lambda t: spec(secret_env={"A": t}), "secret_env[A]"),
    "secret_env name": (lambda t: spec(secret_env={"A" + t: "x"}), "secret_env"),
    "secret_files path": (lambda t: spec(secret_files={"/etc/a" + t: "x"}), "secret_files"),
    "labels value": (lambda t: spec(labels={"k": "v" + t}), "labels[k]"),
    "annotations key": (lambda t: spec(annotations={"k" + t: "v"}), "annotations"),
    "annotations value": (lambda t: spec(annotations={"k": "v" + t}), "annotations[k]"),
    "node_selector": (lambda t: spec(node_selector={"k": "v" + t}), "node_selector[k]"),
    "working_dir": (lambda t: spec(working_dir="/w" + t), "working_dir"),
    "name_prefix": (lambda t: spec(name_prefix="job" + t), "name_prefix"),
    "mount_path": (lambda t: Volume.empty_dir("/m" + t), "volume.mount_path"),
    "sub_path": (lambda t: Volume.empty_dir("/m", sub_path="s" + t), "volume.sub_path"),
    "host_path": (lambda t: Volume.host_path("/h" + t, "/m"), "volume.source"),
    "toleration value": (lambda t: Toleration(key="k", value="v" + t), "tolerations.value"),
}
BAD_CHARS = ["\x00", "\ud800", "\udfff", "\udc80"]


@settings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from(sorted(FIELDS)),
    bad=st.sampled_from(BAD_CHARS),
    before=st.text(max_size=5),
    after=st.text(max_size=5),
)
def test_unsendable_text_is_refused_naming_the_field(
    name: str, bad: str, before: str, after: str
) -> None:
    """A NUL byte or a lone surrogate anywhere in a string field is a SpecError for it."""
    build, field = FIELDS[name]
    err = refused(lambda: build(before + bad + after))
    assert err.field == field, err
    str(err).encode("utf-8")  # the message itself is printable: bad characters are escaped


def test_nul_in_secret_env_is_refused_without_echo() -> None:
    """The issue's case: a NUL in a secret_env value fails at once, not as a raw ValueError."""
    err = refused(lambda: spec(secret_env={"A": SECRET + "\x00y"}))
    assert err.field == "secret_env[A]"
    assert "NUL" in err.rule
    assert SECRET not in str(err)


def test_secret_file_content_may_hold_nul_but_not_a_surrogate() -> None:
    """File contents travel base64-encoded, so NUL is fine there; a surrogate cannot encode."""
    assert spec(secret_files={"/etc/blob": "a\x00b"}).secret_files["/etc/blob"] == "a\x00b"
    err = refused(lambda: spec(secret_files={"/etc/blob": SECRET + "\ud800"}))
    assert err.field == "secret_files[/etc/blob]"
    assert SECRET not in str(err)


any_text = st.text(
    st.one_of(st.characters(), st.sampled_from(BAD_CHARS)),
    max_size=8,
)


@settings(max_examples=300, deadline=None)
@given(
    command=st.lists(any_text, min_size=1, max_size=3),
    env=st.dictionaries(any_text, any_text, max_size=2),
    secret=any_text,
    annotation=any_text,
    workdir=any_text,
)
def test_whatever_is_accepted_can_be_sent(
    command: list[str], env: dict[str, str], secret: str, annotation: str, workdir: str
) -> None:
    """A spec either fails with SpecError or gives manifests that encode and exec cleanly."""
    try:
        s = PodSpec(
            "img",
            command,
            env=env,
            secret_env={"TOKEN": secret},
            annotations={"note": annotation},
            working_dir="/" + workdir,
        )
    except SpecError:
        return
    manifests = build_manifests(s)
    for obj in manifests.objects:
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    container = manifests.pod["spec"]["containers"][0]
    strings = [
        *container["command"],
        *(e["name"] + "=" + e.get("value", "") for e in container["env"]),
    ]
    strings.append(secret)
    for text in strings:
        assert "\x00" not in text
        text.encode("utf-8")


# -- Secret values in text (item 10) --------------------------------------------------------


def _texts_of(err: SpecError) -> str:
    return "\n".join(
        [str(err), repr(err), repr(err.value), str(err.args), repr(pickle.loads(pickle.dumps(err)))]
    )


SECRET_ENV_SHAPES: list[object] = [
    [("TOKEN", SECRET)],
    (("TOKEN", SECRET),),
    [["TOKEN", SECRET]],
    SECRET,
    SECRET.encode(),
    {"TOKEN": SECRET.encode()},
    {"TOKEN": [SECRET]},
    {"TOKEN": (SECRET,)},
    {"TOKEN": {"value": SECRET}},
    {1: SECRET},
    {b"TOKEN": SECRET},
    {("TOKEN",): SECRET},
    {"TOKEN=" + SECRET: "x"},
    {"TOKEN": SECRET + "\x00"},
    {"TOKEN": SECRET + "\ud800"},
    {"TOKEN": SECRET * (MAX_ARG_BYTES // len(SECRET) + 1)},
    {f"T{i}": SECRET * 5000 for i in range(10)},
    {"TOKEN": SECRET, "A": 5},
    {SECRET},
]


@pytest.mark.parametrize("shape", SECRET_ENV_SHAPES, ids=lambda s: type(s).__name__)
def test_secret_env_of_any_shape_never_shows_the_value(shape: object) -> None:
    """A secret_env value in the wrong shape or breaking a rule is refused without echo."""
    err = refused(lambda: spec(secret_env=shape))
    assert err.field.startswith("secret_env"), err
    assert SECRET not in _texts_of(err)


SECRET_FILE_SHAPES: list[object] = [
    [("/etc/token", SECRET)],
    {"/etc/token": SECRET.encode()},
    {"/etc/token": [SECRET]},
    {"/etc/token": None, "/etc/b": SECRET},
    {1: SECRET},
    {b"/etc/token": SECRET},
    {"/etc/token": SECRET + "\ud800"},
    {"/etc/token": SECRET * (SECRET_DATA_SIZE_LIMIT // len(SECRET) + 1)},
    SECRET,
]


@pytest.mark.parametrize("shape", SECRET_FILE_SHAPES, ids=lambda s: type(s).__name__)
def test_secret_files_of_any_shape_never_show_the_content(shape: object) -> None:
    """A secret_files content in the wrong shape or breaking a rule is refused without echo."""
    err = refused(lambda: spec(secret_files=shape))
    assert err.field.startswith("secret_files"), err
    assert SECRET not in _texts_of(err)


@pytest.mark.parametrize(
    "value",
    [SECRET.encode(), [SECRET], (SECRET,), {"k": SECRET}, SECRET + "\x00", SECRET + "\ud800", " "],
    ids=repr,
)
@pytest.mark.parametrize("kind", ["api_key", "oauth_token", "oauth_json"])
def test_credentials_of_any_shape_never_show_the_value(kind: str, value: object) -> None:
    """Claude credentials of the wrong shape are refused without echo."""
    err = refused(lambda: getattr(ClaudeCredentials, kind)(value))
    assert SECRET not in _texts_of(err)


def test_accepted_secrets_show_in_no_repr() -> None:
    """The repr and str of the spec, of its secret fields and of a credential plan hide values."""
    s = spec(
        secret_env={"TOKEN": SECRET, "REF": SecretRef("creds", "token")},
        secret_files={"/etc/creds.json": SECRET},
    )
    texts = [repr(s), str(s), repr(s.secret_env), str(s.secret_env), repr(s.secret_files)]
    texts += [str(s.secret_files), repr(dict(s.secret_env.items()).keys())]
    plan = ClaudeCredentials.api_key(SECRET).plan()
    texts += [repr(plan), repr(plan.secret_env), str(plan.secret_env)]
    plan = ClaudeCredentials.oauth_json('{"token": "' + SECRET + '"}').plan()
    texts += [repr(plan), repr(plan.secret_files)]
    for text in texts:
        assert SECRET not in text
    assert "TOKEN" in repr(s.secret_env)
    assert "creds" in repr(s.secret_env)  # a SecretRef names no secret: it is shown
    assert s.secret_env["TOKEN"] == SECRET  # the value itself is still there to use


@pytest.mark.parametrize(
    ("build", "shown"),
    [
        (
            lambda: PodSpec(None, ["sh"]),
            "image: None (no value) is invalid: must be a string, not None",
        ),  # type: ignore[arg-type]
        (
            lambda: PodSpec("img", ["sh", 3]),
            "command[1]: 3 is invalid: must be a string, not an integer",
        ),  # type: ignore[list-item]
        (
            lambda: spec(labels=[("a", "b")]),
            "labels: a list of 1 item is invalid: must be a mapping, not a list",
        ),  # type: ignore[arg-type]
        (lambda: spec(command=b"sh"), "command: 2 bytes is invalid"),  # type: ignore[arg-type]
        (
            lambda: spec(env={"A": b"x"}),
            "env.value: 1 bytes is invalid: must be a string, not bytes",
        ),  # type: ignore[dict-item]
    ],
)
def test_messages_name_values_plainly(build: Callable[[], object], shown: str) -> None:
    """Messages show a value as text, never as a Python repr (no quotes of b'', (), <object>)."""
    err = refused(build)
    assert str(err).startswith(shown), str(err)


# -- Oversize values (items 13, 14, 15) ------------------------------------------------------


def test_one_argument_over_max_arg_strlen_is_refused() -> None:
    """An argument over 128 KiB fails in the builder, naming the index and the limit."""
    spec(command=["sh", "x" * MAX_ARG_BYTES])  # the largest the kernel takes
    err = refused(lambda: spec(command=["sh", "-c", "x" * (MAX_ARG_BYTES + 1)]))
    assert err.field == "command[2]"
    assert str(MAX_ARG_BYTES) in err.rule
    assert "MAX_ARG_STRLEN" in err.rule
    assert len(str(err)) < 1000  # the value is cut short in the message


def test_an_environment_string_over_max_arg_strlen_is_refused() -> None:
    """NAME=value strings have the same per-string limit, for plain and secret variables."""
    err = refused(lambda: spec(env={"BIG": "x" * MAX_ARG_BYTES}))
    assert err.field == "env[BIG]"
    err = refused(lambda: spec(secret_env={"BIG": SECRET * (MAX_ARG_BYTES // len(SECRET) + 1)}))
    assert err.field == "secret_env[BIG]"
    assert SECRET not in str(err)


def test_a_20_mb_command_is_refused() -> None:
    """The issue's case: 20 MB of arguments, each under the per-argument limit."""
    err = refused(lambda: spec(command=["echo", *["y" * 100_000] * 200]))
    assert err.field == "command"
    assert "bytes" in err.rule


def test_argv_and_environment_together_are_capped() -> None:
    """The argv plus environment over ARG_MAX is refused even when each part fits on its own."""
    chunk = "z" * 127_000
    err = refused(
        lambda: spec(command=["sh", *[chunk] * 8], secret_env={f"S{i}": chunk for i in range(8)})
    )
    assert err.field == "command"
    assert str(MAX_EXEC_BYTES) in err.rule


def test_secret_data_over_one_mib_is_refused() -> None:
    """The per-run Secret may hold 1 MiB of data, as the API server allows; more is refused."""
    spec(secret_files={"/a": "s" * SECRET_DATA_SIZE_LIMIT})
    err = refused(lambda: spec(secret_files={"/a": "s" * (2 * 1024 * 1024)}))
    assert err.field == "secret_files"
    assert str(SECRET_DATA_SIZE_LIMIT) in err.rule
    chunk = "s" * 100_000
    err = refused(lambda: spec(secret_env={f"S{i}": chunk for i in range(11)}))
    assert err.field == "secret_env"


def test_annotations_keep_room_for_the_runner() -> None:
    """Annotations at the server's limit are refused, so the runner's own always fit."""
    key = "note"
    full = {key: "a" * (TOTAL_ANNOTATION_SIZE_LIMIT - len(key))}
    err = refused(lambda: spec(annotations=full))
    assert err.field == "annotations"
    assert str(RESERVED_ANNOTATION_BYTES) in err.rule
    err = refused(lambda: spec(annotations={"podrunner.dev/expires-at": "2030-01-01T00:00:00Z"}))
    assert "reserved" in err.rule


def test_the_largest_accepted_annotations_run_on_the_fake() -> None:
    """A spec at the largest accepted annotation size runs: the runner's annotation fits."""
    key = "note"
    most = TOTAL_ANNOTATION_SIZE_LIMIT - RESERVED_ANNOTATION_BYTES
    s = PodSpec("busybox:1.36", ["true"], annotations={key: "a" * (most - len(key))})
    cluster = FakeCluster()
    cluster.when(image="busybox:*").succeed(logs="ok\n")
    result = PodRunner(cluster.backend, namespace="default").run(s)
    assert result.exit_code == 0


def test_a_malformed_inline_kubeconfig_does_not_quote_its_token() -> None:
    """A YAML error names the problem and position, not the line (which may hold a token)."""
    text = "users:\n- name: a\n  user:\n    token: " + SECRET + ": x\n"
    with pytest.raises(ConfigError) as info:
        ClusterConfig.from_kubeconfig_yaml(text)
    shown = "".join(traceback.format_exception(info.value))
    assert SECRET not in shown
    assert "line 4" in str(info.value)


# -- fuzzing every field ----------------------------------------------------------------------

json_like = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=5)
    | st.binary(max_size=3)
    | st.sampled_from(["\x00", "\ud800", "-x", "/a", "A", "busybox"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.one_of(st.text(max_size=3), st.integers()), inner, max_size=3)
        | st.frozensets(st.integers(), max_size=2)
        | st.tuples(inner, inner)
    ),
    max_leaves=8,
)
SPEC_FIELDS = [a.name for a in attrs.fields(PodSpec) if a.name not in ("image", "command")]


@settings(max_examples=500, deadline=None)
@given(
    image=json_like,
    command=json_like,
    options=st.dictionaries(st.sampled_from(SPEC_FIELDS), json_like, max_size=4),
)
def test_any_input_builds_or_raises_spec_error(
    image: Any, command: Any, options: dict[str, Any]
) -> None:
    """Arbitrary values in any PodSpec field: a spec, or a SpecError with a printable message."""
    error: SpecError | None = None
    try:
        PodSpec(image, command, **options)
    except SpecError as exc:
        error = exc
    if error is not None:
        str(error).encode("utf-8")
