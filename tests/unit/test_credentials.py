"""Tests for build_credentials_prefix: a real /bin/sh writes exactly the JSON given."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from podrunner import build_credentials_prefix
from podrunner.errors import SpecError

CAT = 'cat "$HOME/.claude/.credentials.json"'
BATCH = 50
BATCHES = 20  # 1,000 JSON strings in all

# Text a shell argument can carry: anything but NUL (and lone surrogates, which are not text).
shell_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | shell_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(shell_text, inner, max_size=4),
    max_leaves=12,
)


@st.composite
def json_strings(draw: st.DrawFn) -> str:
    """JSON documents, compact or indented, ASCII-escaped or raw Unicode."""
    value: Any = draw(json_values)
    return json.dumps(
        value, ensure_ascii=draw(st.booleans()), indent=draw(st.sampled_from([None, 2]))
    )


def run_sh(script: str, home: Path) -> bytes:
    env = {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    return subprocess.run(
        ["/bin/sh", "-c", script], env=env, capture_output=True, check=True, timeout=60
    ).stdout


def test_none_gives_empty_prefix() -> None:
    """Seed: no credentials, no prefix."""
    assert build_credentials_prefix(None) == ""


def test_prefix_writes_file() -> None:
    """Seed: the prefix creates ~/.claude, names the file, holds the JSON and ends with '&& '."""
    creds = '{"claudeAiOauth":{"accessToken":"tok"}}'
    prefix = build_credentials_prefix(creds)
    assert 'mkdir -p "$HOME/.claude"' in prefix
    assert ".credentials.json" in prefix
    assert creds in prefix
    assert prefix.endswith("&& ")


@pytest.mark.parametrize(
    "creds",
    [
        '{"a":"it\'s"}',
        '{"a":"%s %d %%"}',
        '{"a":"line1\nline2"}',
        '{"a":"back\\\\slash \\n"}',
        '{"a":"ünïcødé ☃ 🎉"}',
        '{"a":"$(touch /tmp/pwned) `id` $HOME"}',
        "'''",
        "-n",
        "",
    ],
)
def test_hard_cases_round_trip(creds: str, tmp_path: Path) -> None:
    """Quotes, %, newlines, backslashes, Unicode and shell syntax arrive byte for byte."""
    out = run_sh(build_credentials_prefix(creds) + CAT, tmp_path)
    assert out.decode("utf-8") == creds
    mode = stat.S_IMODE((tmp_path / ".claude" / ".credentials.json").stat().st_mode)
    assert mode == 0o600


def test_umask_does_not_leak(tmp_path: Path) -> None:
    """The restrictive umask applies to the credentials only, not to the main command."""
    out = run_sh(build_credentials_prefix("{}") + "umask", tmp_path)
    assert out.strip() != b"0077"


def test_nul_is_refused_without_echo() -> None:
    """A NUL cannot travel in a shell argument: SpecError, with the value redacted."""
    with pytest.raises(SpecError) as info:
        build_credentials_prefix('{"a":"sec\x00ret"}')
    assert "sec" not in str(info.value)


@settings(max_examples=BATCHES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(docs=st.lists(json_strings(), min_size=BATCH, max_size=BATCH))
def test_thousand_json_strings_round_trip(docs: list[str]) -> None:
    """For 1,000 generated JSON strings, sh writes and cats back exactly the JSON.

    Batched: one shell runs 50 prefix+cat commands, each output terminated by a NUL (which
    JSON text cannot contain), so 20 shells cover 1,000 strings.
    """
    script = "\n".join(f"{build_credentials_prefix(doc)}{CAT} && printf '\\000'" for doc in docs)
    with tempfile.TemporaryDirectory() as home:
        out = run_sh(script, Path(home)).decode("utf-8").split("\x00")
    assert out[-1] == ""
    assert out[:-1] == docs
