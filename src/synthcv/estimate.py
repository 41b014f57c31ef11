"""What a run will cost before it starts: requests per stage, tokens, dollars at online and batch prices.

Prompt tokens are counted (tiktoken, or its estimate where the table is unavailable). Completion tokens
are `max_tokens` per request until the cache holds answers of that stage, then their observed mean: an
upper bound at first, a forecast once the run has begun.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from .config import RunConfig
from .plan import layout
from .pricing import PRICES_AS_OF, Pricing, PricingMode, find_price, format_usd
from .prompts import QUALITIES, SEXES
from .store import Store
from .tokens import TokenCounter

STAGE_LABELS = {"cv": "CVs", "clue": "clues"}


def pricing_for(config: RunConfig, mode: PricingMode = "online") -> Pricing:
    if config.provider == "offline":
        return Pricing(config.model, None, mode, free=True)
    return Pricing(config.model, find_price(config.model, config.prices), mode)


def counter_for(config: RunConfig) -> TokenCounter:
    return TokenCounter(config.model, use_tiktoken=config.provider == "openai")


@dataclass(frozen=True, slots=True)
class StageEstimate:
    stage: str
    planned: int
    cached: int
    prompt_tokens: int  # of the requests still to do
    completion_per_request: float
    observed: int  # cached answers whose usage gave completion_per_request; 0: it is max_tokens
    paid_prompt_tokens: int  # reported usage of the cached answers
    paid_completion_tokens: int

    @property
    def to_do(self) -> int:
        return self.planned - self.cached

    @property
    def completion_tokens(self) -> int:
        return round(self.to_do * self.completion_per_request)


@dataclass(frozen=True, slots=True)
class Estimate:
    config: RunConfig
    stages: dict[str, StageEstimate]
    counter_note: str
    counter_encoding: str

    def pricing(self, mode: PricingMode) -> Pricing:
        return pricing_for(self.config, mode)

    def cost(self, mode: PricingMode, stage: str | None = None) -> float | None:
        """Dollars for the requests still to do; None when the model's price is unknown."""
        pricing = self.pricing(mode)
        if not pricing.known:
            return None
        chosen = [self.stages[stage]] if stage else list(self.stages.values())
        return sum(pricing.cost(s.prompt_tokens, s.completion_tokens) for s in chosen)

    def paid(self) -> float | None:
        pricing = self.pricing("online")
        if not pricing.known:
            return None
        return sum(pricing.cost(s.paid_prompt_tokens, s.paid_completion_tokens) for s in self.stages.values())

    def per_request(self, stage: str) -> float:
        """Expected online cost of one more request of `stage` (0 when the price is unknown)."""
        s = self.stages[stage]
        if not s.planned:
            return 0.0
        prompt_each = s.prompt_tokens / s.to_do if s.to_do else 0.0
        return self.pricing("online").cost(round(prompt_each), round(s.completion_per_request))

    def render(self) -> str:
        config = self.config
        lines = [f"estimate for {config.size:,} CVs with {config.model} (max_tokens {config.max_tokens:,})"]
        header = (
            f"{'stage':<6} {'planned':>8} {'cached':>8} {'to do':>8} {'prompt tokens':>14} "
            f"{'completion tokens':>18}  {'online':>13}  {'batch':>13}"
        )
        lines.append(header)
        for stage, s in self.stages.items():
            source = f"mean of {s.observed:,}" if s.observed else "max_tokens"
            lines.append(
                f"{STAGE_LABELS[stage]:<6} {s.planned:>8,} {s.cached:>8,} {s.to_do:>8,} {s.prompt_tokens:>14,} "
                f"{s.completion_tokens:>18,}  {format_usd(self.cost('online', stage)):>13} "
                f"{format_usd(self.cost('batch', stage)):>13}   (completion: {source})"
            )
        total = self.stages.values()
        lines.append(
            f"{'total':<6} {sum(s.planned for s in total):>8,} {sum(s.cached for s in total):>8,} "
            f"{sum(s.to_do for s in total):>8,} {sum(s.prompt_tokens for s in total):>14,} "
            f"{sum(s.completion_tokens for s in total):>18,}  {format_usd(self.cost('online')):>13} "
            f"{format_usd(self.cost('batch')):>13}"
        )
        cached = sum(s.cached for s in total)
        if cached:
            lines.append(
                f"already paid for the {cached:,} cached answers: {format_usd(self.paid())} "
                "(their reported usage at online prices)"
            )
        lines.append(
            f"prompt tokens: counted with tiktoken ({self.counter_encoding})"
            if not self.counter_note
            else self.counter_note
        )
        lines.append(
            "completion tokens: max_tokens per request (an upper bound) until answers of a stage are cached, "
            "then their mean"
        )
        lines.append(_prices_line(self.pricing("online")))
        if config.regenerate_flagged:
            lines.append("not included: new samples asked for flagged answers (--regenerate-flagged)")
        return "\n".join(lines)


def _prices_line(online: Pricing) -> str:
    """Both modes' prices: one ModelPrice holds them."""
    if online.free:
        return "prices: offline provider, free"
    if online.price is None:
        return f"prices: {online.describe()}"
    (online_in, online_out), (batch_in, batch_out) = online.price.per_token("online"), online.price.per_token("batch")
    return (
        f"prices: {online.model}, per million prompt / completion tokens: ${online_in * 1e6:g} / "
        f"${online_out * 1e6:g} online, ${batch_in * 1e6:g} / ${batch_out * 1e6:g} batch "
        f"(list prices of {PRICES_AS_OF}; override under [prices] in the config)"
    )


def estimate(config: RunConfig, store: Store | None) -> Estimate:
    """The cost of the requests `config` still needs, given what `store` (if any) already holds."""
    rows = layout(config)
    counter = counter_for(config)
    prompts = config.prompts
    prompt_each = {("cv", q): counter.prompt_tokens(prompts.cv_messages(q)) for q in QUALITIES} | {
        ("clue", s): counter.prompt_tokens(prompts.clue_messages(s)) for s in SEXES
    }
    planned = {
        "cv": rows.select(pl.col("cv_key").alias("key"), pl.col("quality").alias("variant")),
        "clue": rows.select(pl.col("clue_key").alias("key"), pl.col("sex").alias("variant")),
    }
    keys = planned["cv"]["key"].to_list() + planned["clue"]["key"].to_list()
    usage = store.usage(keys) if store is not None else Store.empty_usage()
    stages: dict[str, StageEstimate] = {}
    for stage, frame in planned.items():
        cached_usage = usage.filter(pl.col("stage") == stage)
        to_do = frame.filter(~pl.col("key").is_in(cached_usage["key"].implode()))
        prompt_tokens = sum(
            prompt_each[(stage, variant)] * count for variant, count in to_do.group_by("variant").len().iter_rows()
        )
        reported = cached_usage.drop_nulls("completion_tokens")
        observed = reported.height
        completion = float(reported["completion_tokens"].mean()) if observed else float(config.max_tokens)  # type: ignore[arg-type]
        stages[stage] = StageEstimate(
            stage=stage,
            planned=frame.height,
            cached=cached_usage.height,
            prompt_tokens=prompt_tokens,
            completion_per_request=completion,
            observed=observed,
            paid_prompt_tokens=int(cached_usage["prompt_tokens"].fill_null(0).sum()),
            paid_completion_tokens=int(cached_usage["completion_tokens"].fill_null(0).sum()),
        )
    return Estimate(config, stages, counter.note, getattr(counter, "encoding", ""))
