"""Cost arithmetic and the budget gate: prices, reservations, settling, and when a run must stop."""

from __future__ import annotations

import anyio
import pytest

from synthcv.pricing import ModelPrice, Pricing, find_price, format_usd
from synthcv.spend import ESTIMATE_MARGIN, Spend

MINI = Pricing("gpt-4o-mini", find_price("gpt-4o-mini"))


def test_snapshots_cost_what_their_family_costs_and_unknown_models_have_no_price() -> None:
    assert find_price("gpt-4o-mini-2024-07-18") == find_price("gpt-4o-mini")
    assert find_price("gpt-4o-2024-08-06") == find_price("gpt-4o")
    assert find_price("gpt-4o-mini") != find_price("gpt-4o")
    assert find_price("llama-3-70b") is None
    assert find_price("llama-3-70b", {"llama-3-70b": ModelPrice(input=1, output=2)}) == ModelPrice(input=1, output=2)
    assert Pricing("llama-3-70b", None).cost(1000, 1000) == 0.0
    assert not Pricing("llama-3-70b", None).known
    assert "price unknown" in Pricing("llama-3-70b", None).describe()


def test_costs_at_online_and_batch_prices() -> None:
    price = find_price("gpt-4o-mini")
    assert price is not None
    online = Pricing("gpt-4o-mini", price, "online").cost(1_000_000, 1_000_000)
    batch = Pricing("gpt-4o-mini", price, "batch").cost(1_000_000, 1_000_000)
    assert online == pytest.approx(0.15 + 0.60)
    assert batch == pytest.approx(online / 2)
    custom = ModelPrice(input=1.0, output=2.0, batch_input=0.9, batch_output=1.5)
    assert Pricing("m", custom, "batch").cost(1_000_000, 1_000_000) == pytest.approx(2.4)
    assert format_usd(0.0123456) == "$0.0123"
    assert format_usd(1234.5) == "$1,234.50"
    assert format_usd(None) == "price unknown"


def test_worst_case_adds_a_margin_to_estimated_prompts() -> None:
    spend = Spend(MINI)
    exact = spend.worst_case(1000, True, 500)
    estimated = spend.worst_case(1000, False, 500)
    assert exact == pytest.approx(MINI.cost(1000, 500))
    assert estimated == pytest.approx(MINI.cost(int(1000 * ESTIMATE_MARGIN) + 1, 500))


def test_an_answer_settles_at_its_usage_and_a_refusal_releases_its_reservation() -> None:
    spend = Spend(MINI)
    worst = spend.worst_case(100, True, 1000)
    assert spend.try_reserve(worst)
    assert spend.try_reserve(worst)
    assert spend.try_reserve(worst)
    assert spend.reserved == pytest.approx(3 * worst)
    spend.settle("cv", worst, 100, 200)
    spend.failed("500", worst)  # an error status: not billed
    spend.failed("timeout", worst)  # may have been billed: counted at its worst case
    assert spend.reserved == 0.0
    assert spend.holds == 0
    assert spend.usd == pytest.approx(MINI.cost(100, 200) + worst)
    assert (spend.prompt_tokens, spend.completion_tokens) == (100, 200)
    assert spend.per_request("cv") == pytest.approx(MINI.cost(100, 200))


def test_projection_uses_observed_means_then_the_estimate() -> None:
    spend = Spend(MINI, estimated_per_request={"cv": 0.01, "clue": 0.002})
    spend.cached_usd = 1.0
    assert spend.projected({"cv": 10, "clue": 100}) == pytest.approx(1.0 + 0.1 + 0.2)
    spend.try_reserve(0.5)
    spend.settle("cv", 0.5, 1000, 1000)
    assert spend.projected({"cv": 10, "clue": 0}) == pytest.approx(spend.total + 10 * MINI.cost(1000, 1000))


def test_a_request_that_does_not_fit_waits_for_requests_in_flight_then_goes() -> None:
    async def main() -> None:
        spend = Spend(MINI, budget=1.0)
        assert spend.try_reserve(0.6)
        assert not spend.try_reserve(0.6)  # 0.6 + 0.6 > 1.0 while the first is in flight
        outcome: list[bool] = []

        async def second() -> None:
            outcome.append(await spend.reserve(0.6))

        async with anyio.create_task_group() as group:
            group.start_soon(second)
            await anyio.sleep(0.05)
            assert outcome == []  # waiting, not refused: the first may settle for less
            spend.settle("cv", 0.6, 100, 100)  # cost ~ $0.000075
        assert outcome == [True]

    anyio.run(main)


def test_a_request_is_refused_when_settled_spending_leaves_no_room() -> None:
    async def main() -> None:
        spend = Spend(MINI, budget=1.0)
        spend.cached_usd = 0.7
        assert await spend.reserve(0.25)
        spend.settle("cv", 0.25, None, None)  # no usage reported: the worst case is spent
        assert spend.total == pytest.approx(0.95)
        assert not await spend.reserve(0.25)
        assert spend.exhausted
        assert spend.reserved == 0.0

    anyio.run(main)
