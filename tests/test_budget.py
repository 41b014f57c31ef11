"""Cost against the fake server's bill: the estimate before a run, the budget stop, the resume."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import synthcv
from synthcv.estimate import estimate
from synthcv.fake_server import read_stats
from synthcv.pricing import find_price
from synthcv.store import open_store

from .conftest import RunningServer, start_server, stop_server, synthcv_env

PRICE = find_price("gpt-4o-mini")


def bill(server: RunningServer) -> float:
    """What the fake server's account would pay: the usage of every answer it sent."""
    assert PRICE is not None
    stats = read_stats(server.url)
    return float(stats["billed_prompt_tokens"] * PRICE.input + stats["billed_completion_tokens"] * PRICE.output) / 1e6


def synthcv_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "synthcv", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=synthcv_env(OPENAI_API_KEY="fake-secret-for-tests-0123456789"),
    )


@pytest.fixture
def faulty_server(tmp_path: Path) -> Iterator[RunningServer]:
    server = start_server(tmp_path, "--latency", "0.05", "--faults", "500=0.05,reset=0.02,cut=0.02")
    yield server
    stop_server(server)


def test_a_budget_stops_the_run_before_the_bill_exceeds_it_and_a_higher_one_finishes(
    faulty_server: RunningServer, tmp_path: Path
) -> None:
    run = ("run", "--base-url", faulty_server.url, "--size", "200", "--out", str(tmp_path), "-q")
    budget = 0.01  # the whole dataset costs about $0.02 here

    stopped = synthcv_cli(*run, "--budget", str(budget))
    assert stopped.returncode == 3, stopped.stderr
    assert stopped.stderr.startswith("error: budget reached:")
    assert stopped.stderr.count("\n") == 1
    assert "higher --budget" in stopped.stderr
    assert "Traceback" not in stopped.stderr
    first_bill = bill(faulty_server)
    assert 0 < first_bill <= budget
    # Nothing paid for is lost: every answer the server sent whole is in the cache.
    answered = sum(1 for e in faulty_server.entries() if e["status"] == 200)
    with open_store(tmp_path / "synthcv-cache.sqlite") as store:
        assert len(store.done_keys()) == answered

    again = synthcv_cli(*run, "--budget", str(budget))  # the same budget: the cached answers already use it
    assert again.returncode == 3
    assert bill(faulty_server) <= budget

    finished = synthcv_cli(*run, "--budget", "1")
    assert finished.returncode == 0, finished.stderr
    assert "cost: $" in finished.stdout
    assert "(budget $1.00)" in finished.stdout
    assert (tmp_path / "resumes.feather").exists()
    assert bill(faulty_server) <= 1


def test_the_estimate_counts_the_prompts_the_server_bills_and_then_the_observed_completions(
    fake_server: RunningServer, tmp_path: Path
) -> None:
    config = synthcv.RunConfig(size=60, base_url=fake_server.url, out=tmp_path)
    before = estimate(config, None)
    assert all(s.cached == 0 for s in before.stages.values())
    assert all(s.observed == 0 for s in before.stages.values())
    assert before.stages["cv"].completion_tokens == 60 * config.max_tokens  # an upper bound before answers

    result = synthcv_cli("run", "--base-url", fake_server.url, "--size", "60", "--out", str(tmp_path), "-q")
    assert result.returncode == 0, result.stderr
    stats = read_stats(fake_server.url)
    assert sum(s.prompt_tokens for s in before.stages.values()) == stats["billed_prompt_tokens"]
    online_before = before.cost("online")
    assert online_before is not None
    assert online_before >= bill(fake_server)

    with open_store(config.cache_path) as store:
        after = estimate(config, store)
    assert all(s.cached == s.planned == 60 for s in after.stages.values())
    assert all(s.to_do == 0 for s in after.stages.values())
    completions = sum(s.observed * s.completion_per_request for s in after.stages.values())
    assert completions == pytest.approx(stats["billed_completion_tokens"])
    assert after.paid() == pytest.approx(bill(fake_server))
    assert after.cost("online") == 0


def test_estimate_command_prints_both_prices_and_says_when_a_price_is_unknown(tmp_path: Path) -> None:
    known = synthcv_cli("estimate", "--size", "100", "--out", str(tmp_path))
    assert known.returncode == 0, known.stderr
    assert "online" in known.stdout
    assert "batch" in known.stdout
    assert "$0." in known.stdout
    unknown = synthcv_cli("estimate", "--size", "100", "--model", "my-local-model", "--out", str(tmp_path))
    assert unknown.returncode == 0
    assert "price unknown" in unknown.stdout
    assert '[prices."my-local-model"]' in unknown.stdout
    config = tmp_path / "priced.toml"
    config.write_text('model = "my-local-model"\n[prices."my-local-model"]\ninput = 1.0\noutput = 2.0\n')
    priced = synthcv_cli("estimate", "--config", str(config), "--size", "100")
    assert priced.returncode == 0, priced.stderr
    assert "price unknown" not in priced.stdout
    refused = synthcv_cli("run", "--model", "my-local-model", "--budget", "5", "--out", str(tmp_path))
    assert refused.returncode == 2
    assert "--budget needs a price" in refused.stderr
