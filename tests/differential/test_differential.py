"""Random traffic, the fake versus a real API server: they must answer alike.

A bounded run for ``nox -s integration`` (``PODRUNNER_DIFFERENTIAL_SEEDS`` sequences, 40 by
default, and at most ``PODRUNNER_DIFFERENTIAL_SECONDS`` of server time, 90 by default);
``nox -s differential`` runs the long one and records its figures. On failure the message
lists every root cause with a minimal reproduction of the most frequent ones.
"""

from __future__ import annotations

import os
import secrets
import time

import harness
import pytest

from podrunner.backends.base import Backend

#: The disagreement the tier tolerates, as a fraction of compared calls (issue 19's target).
#: What stays is listed with its reason in docs/fake-fidelity.md.
MAX_DISAGREEMENT = 0.01


def test_random_traffic_answers_alike(server: Backend) -> None:
    """Seeded sequences disagree on at most 1% of calls, and the fake stays 50x faster."""
    seeds = int(os.environ.get("PODRUNNER_DIFFERENTIAL_SEEDS", "40"))
    budget = float(os.environ.get("PODRUNNER_DIFFERENTIAL_SECONDS", "90"))
    report = harness.differential(
        server,
        list(range(seeds)),
        token=secrets.token_hex(3),
        shrink_causes=0,
        deadline=time.monotonic() + budget,
    )
    assert report.compared > 0
    if report.rate > MAX_DISAGREEMENT:
        # Shrink the most frequent causes only when failing: each costs server calls.
        for text, _ in report.causes.most_common(3):
            seed, index = report.samples[text]
            ops = harness.generate(seed)[: index + 1]
            report.reproductions[text] = harness.shrink(server, ops, text, secrets.token_hex(3))
        pytest.fail(report.summary())
    fake_per_call = report.fake_seconds / report.fake_calls
    server_per_call = report.server_seconds / report.server_calls
    assert server_per_call / fake_per_call >= 50, report.summary()


def test_the_generator_is_deterministic() -> None:
    """A seed is a reproduction: the same seed, the same operations, the same fake answers."""
    ops = harness.generate(7)
    assert ops == harness.generate(7)
    first = harness.run_fake(ops, "dsame")
    second = harness.run_fake(ops, "dsame")
    assert first.outcomes == second.outcomes
    assert any(o[0] == "error" for o in first.outcomes)  # invalid specs are part of the traffic
    assert any(o[0] == "ok" for o in first.outcomes)


def test_every_seed_generates_and_runs_on_the_fake() -> None:
    """Stacked mutations (no containers, then a container field) must not crash the generator.

    Seeds 313, 472 and 476 once raised IndexError; a budget past 300 seeds reached them.
    """
    for seed in range(1_000):
        ops = harness.generate(seed)
        assert ops
    for seed in (313, 472, 476, 561, 578, 901, 923, 931, 950, 971):
        outcomes = harness.run_fake(harness.generate(seed), f"d{seed}").outcomes
        assert any(o[0] == "error" for o in outcomes)
