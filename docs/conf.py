"""Sphinx configuration: MyST Markdown, furo, API reference from Google-style docstrings."""

from __future__ import annotations

import json
from pathlib import Path

project = "podrunner"
author = "podrunner developers"
copyright = "2026, podrunner developers"

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
]
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build", "rbac"]
html_theme = "furo"
html_title = "podrunner"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
autodoc_typehints = "description"
autodoc_member_order = "bysource"
# No inventories: the build must not need the network (set one here when it may).
intersphinx_mapping: dict[str, tuple[str, None]] = {}
# No network during the build: intersphinx inventories are optional.
intersphinx_disabled_reftypes = ["*"]
nitpicky = False
suppress_warnings = ["myst.xref_missing"]


def _performance_table() -> str:
    """Render benchmarks/results/latest.json, so the docs quote measured figures only."""
    path = Path(__file__).parent.parent / "benchmarks" / "results" / "latest.json"
    if not path.exists():
        return "No benchmark results recorded yet: run `nox -s bench`."
    data = json.loads(path.read_text())
    meta = data.pop("_meta", {})
    lines = [
        f"Measured {meta.get('date', '?')} on {meta.get('machine', '?')}, "
        f"Python {meta.get('python', '?')}.",
        "",
        "| benchmark | figure | value |",
        "|---|---|---|",
    ]
    for bench, figures in sorted(data.items()):
        if not isinstance(figures, dict):
            continue
        for key, value in figures.items():
            if isinstance(value, float):
                value = f"{value:,.4g}"
            lines.append(f"| {bench} | {key} | {value} |")
    return "\n".join(lines)


#: (benchmark, figure, unit, target as the issues state it, the benchmark's "met" flag).
_TARGETS = [
    (
        "fake",
        "create_get_delete_ops_per_s",
        "ops/s",
        ">= 50,000 ops/s",
        "create_get_delete_target_50000_met",
    ),
    (
        "fake",
        "lifecycles_per_s",
        "lifecycles/s",
        ">= 10,000 lifecycles/s",
        "lifecycles_target_10000_met",
    ),
    ("fake", "virtual_hour_wall_ms", "ms", "< 1 ms", "virtual_hour_target_1ms_met"),
    ("fake", "construction_us", "µs", "< 50 µs", "construction_target_50us_met"),
    ("runner", "runs_per_s", "runs/s", ">= 5,000 runs/s", "runs_target_5000_met"),
    (
        "async",
        "fake_10000_peak_kib_per_run",
        "KiB/run",
        "10,000 concurrent async runs on the fake: <= 20 KiB/run",
        "fake_10000_memory_target_20kib_met",
    ),
    (
        "async",
        "kwok_1000_async_peak_threads",
        "threads",
        "1,000 concurrent async runs on kwok: <= 4 OS threads",
        "kwok_1000_threads_target_4_met",
    ),
    (
        "async",
        "kwok_1000_async_requests_per_run",
        "requests",
        "<= 4 requests per run without a Secret",
        "kwok_1000_requests_target_4_met",
    ),
    ("runner", "virtual_hour_run_ms", "ms", "< 5 ms", "virtual_hour_target_5ms_met"),
    (
        "runner",
        "run_many_1000_peak_watch_streams",
        "streams",
        "<= 2 streams, all 1,000 runs correct",
        "run_many_1000_target_met",
    ),
    (
        "output",
        "buffered_wall_s",
        "s",
        "15 MB of output: <= 1.5 x the command alone + 1 s",
        "buffered_target_met",
    ),
    (
        "output",
        "buffered_peak_rss_above_baseline_mb",
        "MB",
        "15 MB of output: <= 100 MB above the baseline",
        "buffered_target_met",
    ),
    (
        "output",
        "streamed_wall_s",
        "s",
        "15 MB through on_log: <= 1.5 x the command alone + 1 s",
        "streamed_target_met",
    ),
    (
        "output",
        "streamed_peak_rss_above_baseline_mb",
        "MB",
        "15 MB through on_log: <= 100 MB above the baseline",
        "streamed_target_met",
    ),
]


def _targets_table() -> str:
    """The issues' speed targets beside the last measurement, from latest.json."""
    path = Path(__file__).parent.parent / "benchmarks" / "results" / "latest.json"
    if not path.exists():
        return "No benchmark results recorded yet: run `nox -s bench`."
    data = json.loads(path.read_text())
    lines = ["| benchmark | figure | measured | target | met |", "|---|---|---|---|---|"]
    for bench, key, unit, target, flag in _TARGETS:
        figures = data.get(bench, {})
        if key not in figures:
            continue
        met = figures.get(flag)
        verdict = "yes" if met is True else ("no" if met is False else "?")
        lines.append(f"| {bench} | {key} | {figures[key]:,} {unit} | {target} | {verdict} |")
    return "\n".join(lines)


def _async_transport_table() -> str:
    """The async transports side by side (benchmarks/bench_async.py), from latest.json."""
    path = Path(__file__).parent.parent / "benchmarks" / "results" / "latest.json"
    figures = json.loads(path.read_text()).get("async", {}) if path.exists() else {}
    rows = [(k, v) for k, v in figures.items() if k.startswith(("transport_", "kwok_1000_"))]
    if not rows:
        return "No async benchmark results recorded yet: run `python benchmarks/run.py async`."
    lines = ["| figure | value |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in rows]
    return "\n".join(lines)


Path(__file__).parent.joinpath("_generated").mkdir(exist_ok=True)
Path(__file__).parent.joinpath("_generated", "async-transport.md").write_text(
    _async_transport_table() + "\n"
)
Path(__file__).parent.joinpath("_generated", "performance-targets.md").write_text(
    _targets_table() + "\n"
)
Path(__file__).parent.joinpath("_generated", "performance-table.md").write_text(
    _performance_table() + "\n"
)

# `-n` stays on for links the reference can resolve. Intersphinx is off (no network in the
# build), so standard-library targets cannot resolve; internal classes that are not part of the
# API reference, and the short names napoleon takes from "Returns:" prose, cannot either.
nitpick_ignore_regex = [
    (
        r"py:.*",
        r"(asyncio|collections|pathlib|threading|typing|types|time|os|signal|subprocess)(\..*)?",
    ),
    (r"py:.*", r"podrunner\.(backends|testing|spec|manifest|run)\..*"),
    (r"py:.*", r"podrunner\.(RunError|SpecError|errors\..*)"),
    (r"py:class", r"(FakeCluster|VirtualClock|RealTimeClock|Phase|The rule|The default namespace)"),
    (r"py:class", r"(Manifests|LogCallback|StateCallback|Source|kubernetes\..*)"),
    (r"py:class", r"(RunCore|Driver|Callbacks)"),
    (r"py:class", r"(AsyncDriver|AsyncCallbacks|AsyncFakeBackend|AsyncStream)"),
    (r"py:attr", r"PodState\..*"),
]
