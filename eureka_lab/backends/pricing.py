"""What model tokens cost, in US dollars.

The built-in table holds list prices for common OpenAI models, in USD per million
(prompt, completion) tokens, as published when this file was written: check current
pricing (https://openai.com/api/pricing) and override with ``--price MODEL=IN,OUT``
(``BackendSettings.prices``) where it has changed. Unknown models (a local vLLM or Ollama
server, say) cost nothing.
"""

from __future__ import annotations

from collections.abc import Mapping

Price = tuple[float, float]
"""USD per million (prompt, completion) tokens."""

PRICES: dict[str, Price] = {
    # As published by OpenAI; check current pricing.
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "o3": (2.00, 8.00),
    "o4-mini": (1.10, 4.40),
    "gpt-4-turbo": (10.00, 30.00),
    "gpt-3.5-turbo": (0.50, 1.50),
}


def _lookup(model: str, table: Mapping[str, Price]) -> Price | None:
    if model not in table:
        # A dated snapshot ('gpt-4o-2024-08-06') costs what its family does; the longest
        # matching family wins, so 'gpt-4o-mini-2024-07-18' is gpt-4o-mini, not gpt-4o.
        families = [k for k in table if model.startswith(k + "-")]
        if not families:
            return None
        model = max(families, key=len)
    prompt, completion = table[model]  # a tuple even where an override came as a list
    return prompt, completion


def price_for(model: str, overrides: Mapping[str, Price] | None = None) -> Price | None:
    """USD per million (prompt, completion) tokens for ``model``, or None if unknown.

    ``overrides`` (by model name) win over the built-in table; both match dated snapshots
    by prefix. A provider prefix ('openai/gpt-4o') is ignored.
    """
    names = [model]
    if "/" in model:
        names.append(model.rsplit("/", 1)[1])
    for table in (overrides or {}, PRICES):
        for name in names:
            price = _lookup(name, table)
            if price is not None:
                return price
    return None


def cost(
    prompt_tokens: int,
    completion_tokens: int,
    model: str,
    overrides: Mapping[str, Price] | None = None,
) -> float:
    """USD for the given token counts; 0.0 for unknown (e.g. local) models."""
    price = price_for(model, overrides)
    if price is None:
        return 0.0
    return (prompt_tokens * price[0] + completion_tokens * price[1]) / 1_000_000
