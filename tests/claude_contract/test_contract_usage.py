"""Usage and cost: what the API reported, summed over turns and priced per model."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from podrunner.claude import ClaudeBudgetExceeded, ClaudeMaxTurns, ClaudeTask
from podrunner.testing.messages_api import Reply, Usage

if TYPE_CHECKING:
    from podrunner.claude import ClaudeRunner
    from podrunner.testing.messages_api import FakeMessagesAPI

SONNET_45 = "claude-sonnet-4-5-20250929"
HAIKU_45 = "claude-haiku-4-5-20251001"
# Published list prices, US dollars per million tokens: input, output, cache write, cache read.
PRICES = {SONNET_45: (3.0, 15.0, 3.75, 0.30), HAIKU_45: (1.0, 5.0, 1.25, 0.10)}
USAGE = Usage(
    input_tokens=1000,
    output_tokens=2000,
    cache_creation_input_tokens=3000,
    cache_read_input_tokens=4000,
)


def _price(model: str, usage: Usage) -> float:
    counts = (
        usage.input_tokens,
        usage.output_tokens,
        usage.cache_creation_input_tokens,
        usage.cache_read_input_tokens,
    )
    return sum(n * p for n, p in zip(counts, PRICES[model], strict=True)) / 1_000_000


@pytest.mark.parametrize("model", [SONNET_45, HAIKU_45])
def test_usage_and_cost_of_one_turn(model: str, runner: ClaudeRunner, api: FakeMessagesAPI) -> None:
    """The result carries the API's token counts and their price for the model."""
    api.script(Reply.text("Priced.", usage=USAGE))
    result = runner.run(ClaudeTask("hi", model=model))
    assert result.usage.input_tokens == 1000
    assert result.usage.output_tokens == 2000
    assert result.usage.cache_creation_input_tokens == 3000
    assert result.usage.cache_read_input_tokens == 4000
    assert result.cost_usd == pytest.approx(_price(model, USAGE))
    assert result.model_usage[model]["costUSD"] == pytest.approx(result.cost_usd)
    assert result.model_usage[model]["inputTokens"] == 1000


def test_usage_sums_over_turns(runner: ClaudeRunner, api: FakeMessagesAPI) -> None:
    """A tool turn and an answer: both API calls are counted and paid for."""
    first = Usage(input_tokens=100, output_tokens=20)
    second = Usage(input_tokens=150, output_tokens=30, cache_read_input_tokens=100)
    api.script(
        Reply.tool_use("Bash", {"command": "echo counted"}, usage=first),
        Reply.text("Done.", usage=second),
    )
    result = runner.run(ClaudeTask("hi", model=SONNET_45))
    assert (result.usage.input_tokens, result.usage.output_tokens) == (250, 50)
    assert result.usage.cache_read_input_tokens == 100
    assert result.cost_usd == pytest.approx(_price(SONNET_45, first) + _price(SONNET_45, second))


def test_budget_stops_the_task(runner: ClaudeRunner, api: FakeMessagesAPI) -> None:
    """--max-budget-usd is checked between turns: the turn that crosses it is the last."""
    costly = Usage(input_tokens=100_000, output_tokens=1000)  # $0.315 a turn on Sonnet 4.5
    api.reset(default=Reply.tool_use("Bash", {"command": "echo again"}, usage=costly))
    with pytest.raises(ClaudeBudgetExceeded) as caught:
        runner.run(ClaudeTask("spend", model=SONNET_45, max_budget_usd=0.5))
    error = caught.value
    assert len(api.message_requests) == 2
    assert error.spent_usd == pytest.approx(2 * _price(SONNET_45, costly))
    assert error.limit_usd == 0.5
    assert "Reached maximum budget ($0.5)" in error.cli_message


def test_max_turns_stops_the_task(runner: ClaudeRunner, api: FakeMessagesAPI) -> None:
    """--max-turns N: N API calls, then error_max_turns (the CLI counts the turn it refused)."""
    api.reset(default=Reply.tool_use("Bash", {"command": "echo again"}))
    with pytest.raises(ClaudeMaxTurns) as caught:
        runner.run(ClaudeTask("loop", max_turns=2))
    error = caught.value
    assert len(api.message_requests) == 2
    assert (error.turns, error.limit) == (3, 2)
    assert "Reached maximum number of turns (2)" in error.cli_message
    assert error.result is not None
    assert error.result.cost_usd is not None
    assert error.result.cost_usd > 0
