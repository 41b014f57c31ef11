"""What tokens cost: one table of list prices, overridable from the config, and the arithmetic.

Prices are US dollars per million tokens at OpenAI's standard (online) tier, as listed on
https://openai.com/api/pricing in 2025. The Batch API charges half of each. A dated snapshot
("gpt-4o-mini-2024-07-18") costs what its family does. A model not in the table has no price: synthcv
says "price unknown" rather than guess, and the config's `[prices."<model>"]` table supplies one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

PRICES_AS_OF = "2025"
BATCH_DISCOUNT = 0.5
PricingMode = Literal["online", "batch"]


class ModelPrice(BaseModel):
    """US dollars per million tokens; batch prices default to half the online ones."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: float = Field(ge=0, description="USD per million prompt tokens")
    output: float = Field(ge=0, description="USD per million completion tokens")
    batch_input: float | None = Field(None, ge=0)
    batch_output: float | None = Field(None, ge=0)

    def per_token(self, mode: PricingMode) -> tuple[float, float]:
        if mode == "batch":
            batch_in = self.batch_input if self.batch_input is not None else self.input * BATCH_DISCOUNT
            batch_out = self.batch_output if self.batch_output is not None else self.output * BATCH_DISCOUNT
            return batch_in / 1e6, batch_out / 1e6
        return self.input / 1e6, self.output / 1e6


def _price(input_per_million: float, output_per_million: float) -> ModelPrice:
    return ModelPrice(input=input_per_million, output=output_per_million)


PRICE_TABLE: dict[str, ModelPrice] = {
    "gpt-4o-mini": _price(0.15, 0.60),
    "gpt-4o": _price(2.50, 10.00),
    "gpt-4.1": _price(2.00, 8.00),
    "gpt-4.1-mini": _price(0.40, 1.60),
    "gpt-4.1-nano": _price(0.10, 0.40),
    "gpt-5": _price(1.25, 10.00),
    "gpt-5-mini": _price(0.25, 2.00),
    "gpt-5-nano": _price(0.05, 0.40),
    "gpt-4-turbo": _price(10.00, 30.00),
    "gpt-3.5-turbo": _price(0.50, 1.50),
    "o3": _price(2.00, 8.00),
    "o3-mini": _price(1.10, 4.40),
    "o4-mini": _price(1.10, 4.40),
}


def find_price(model: str, overrides: dict[str, ModelPrice] | None = None) -> ModelPrice | None:
    """The model's price: an override, else the table's entry for it or for its family, else None."""
    table = {**PRICE_TABLE, **(overrides or {})}
    if model in table:
        return table[model]
    # "gpt-4o-mini-2024-07-18" is a snapshot of "gpt-4o-mini", not of "gpt-4o": the longest family wins.
    families = [name for name in table if model.startswith(name + "-")]
    return table[max(families, key=len)] if families else None


@dataclass(frozen=True, slots=True)
class Pricing:
    """Turns token counts into dollars for one model and mode; `free` for the offline provider."""

    model: str
    price: ModelPrice | None
    mode: PricingMode = "online"
    free: bool = False

    @property
    def known(self) -> bool:
        return self.free or self.price is not None

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        if self.free or self.price is None:
            return 0.0
        per_input, per_output = self.price.per_token(self.mode)
        return prompt_tokens * per_input + completion_tokens * per_output

    def describe(self) -> str:
        if self.free:
            return "offline provider: free"
        if self.price is None:
            return f'price unknown for {self.model!r}; add it under [prices."{self.model}"] in the config'
        per_input, per_output = self.price.per_token(self.mode)
        return (
            f"{self.model} {self.mode} prices: ${per_input * 1e6:g} / ${per_output * 1e6:g} per million "
            "prompt / completion tokens"
        )


def format_usd(amount: float | None) -> str:
    if amount is None:
        return "price unknown"
    # Cents hide what a small test run costs: below a dollar, show four decimals.
    return f"${amount:.4f}" if amount < 1 else f"${amount:,.2f}"
