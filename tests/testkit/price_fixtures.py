"""Price tables for tests of pricing mechanics (the generated CASE, tiers, history, batch).

The shipped table is the genai-prices catalog under a small local file; the CASE engine and
its tests use a hand-written local table alone: the catalog-sized table is priced by the
Java lookup (tests/integration/test_price_lookup_udf.py)."""

import functools
from datetime import UTC
from pathlib import Path

from tokenpulse.schemas.pricing import PriceTable, load_price_table

HANDWRITTEN_PRICES = Path(__file__).resolve().parents[1] / "fixtures" / "prices.handwritten.yaml"


def handwritten_prices() -> PriceTable:
    return load_price_table(HANDWRITTEN_PRICES, catalog=None)


# --- an independent pricer: the YAML files read directly, without schemas/pricing.py -------------

@functools.cache
def _raw_entries():
    import yaml

    root = Path(__file__).resolve().parents[2] / "schemas"
    local = yaml.safe_load((root / "prices.yaml").read_text())["prices"]
    catalog_doc = yaml.safe_load((root / "prices.catalog.yaml").read_text())
    return local, catalog_doc["prices"], catalog_doc.get("provider_aliases", {})


def _fits(entry: dict, model: str) -> bool:
    import re

    def rule(r: dict) -> bool:
        (kind, value), = r.items()
        return {"equals": lambda: model == value, "starts_with": lambda: model.startswith(value),
                "ends_with": lambda: model.endswith(value), "contains": lambda: value in model,
                "regex": lambda: re.search(value, model) is not None,
                "any_of": lambda: any(rule(x) for x in value), "all_of": lambda: all(rule(x) for x in value)}[kind]()
    names = [entry["model"], *entry.get("aliases", [])]
    return model in [n.lower() for n in names] or ("match" in entry and rule(entry["match"]))


def _ms(value) -> int:
    from datetime import date, datetime

    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day, tzinfo=UTC)
    return int(value.timestamp() * 1000)


def independent_entry(provider: str, model: str, at_ms: int, input_tokens: int = 0, tier: str = "standard") -> dict | None:
    """The price entry (a YAML dict) for a call: local entries that list the model override the
    catalog per service tier; the catalog's first fitting entry names the model; the entry in
    force at `at_ms`, for the call's tier before standard, the highest context tier reached."""
    local, catalog, aliases = _raw_entries()
    provider, lower = aliases.get(provider, provider), model.lower()
    mine = [e for e in local if e["provider"] == provider and _fits(e, lower)]
    canonical = next((e["model"] for e in catalog if e["provider"] == provider and _fits(e, lower)), None)
    covered = {e.get("service_tier", "standard") for e in mine}
    entries = mine + [e for e in catalog if canonical and e["provider"] == provider and e["model"] == canonical
                      and e.get("service_tier", "standard") not in covered]
    live = [e for e in entries if _ms(e["effective_from"]) <= at_ms
            and ("effective_to" not in e or at_ms < _ms(e["effective_to"]))
            and e.get("min_input_tokens", 0) <= input_tokens and e.get("service_tier", "standard") in (tier, "standard")]
    live.sort(key=lambda e: (e.get("service_tier", "standard") == tier, e.get("min_input_tokens", 0)), reverse=True)
    return live[0] if live else None


def independent_cost(provider: str, model: str, inp: int, cr: int, cc: int, out: int, tier: str = "standard",
                     at_ms: int | None = None):
    """Text-token cost of one call at the independent entry (0 when unpriced), exact."""
    import time
    from decimal import Decimal

    p = independent_entry(provider, model, int(time.time() * 1000) if at_ms is None else at_ms, inp, tier)
    if p is None:
        return Decimal(0)
    base = Decimal(str(p["input_usd_per_mtok"]))
    cached = Decimal(str(p.get("cached_input_usd_per_mtok", base)))
    write = Decimal(str(p.get("cache_creation_input_usd_per_mtok", base)))
    output = Decimal(str(p["output_usd_per_mtok"]))
    return ((inp - cr - cc) * base + cr * cached + cc * write + out * output) / Decimal(10**6)
