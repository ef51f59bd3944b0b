"""The Java price lookup (for large catalogs) prices every call exactly as the generated CASE
and schemas/pricing.py do: one bounded Flink job over thousands of generated calls against a
catalog with periods, context tiers, service tiers, aliases, audio-token rates and per-unit
(image, audio-second) prices. No Kafka needed."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from pyflink.table import EnvironmentSettings, TableEnvironment

from tokenpulse.jars import udf_jar
from tokenpulse.schemas.pricing import PriceTable, load_price_table
from tokenpulse.settings import PathSettings
from tokenpulse.stream_jobs import price_lookup

pytestmark = pytest.mark.integration
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def large_catalog(rnd: random.Random) -> PriceTable:
    shipped = load_price_table()
    extra = []
    for i in range(150):
        base = Decimal(rnd.randint(1, 20_000)) / 1000
        change = T0 + timedelta(days=rnd.randint(10, 300), hours=rnd.randint(0, 23))
        common = {"provider": rnd.choice(["openai", "anthropic", "synthetic"]), "model": f"model-{i}",
                  "aliases": [f"model-{i}-latest"] if i % 3 == 0 else [], "source": "generated test catalog"}
        extra.append({**common, "input_usd_per_mtok": base, "output_usd_per_mtok": base * 4,
                      "cached_input_usd_per_mtok": base / 10, "effective_from": T0, "effective_to": change})
        media = {}  # every other model also charges for audio and images (issue #5)
        if i % 2 == 0:
            media = {"input_audio_usd_per_mtok": base * 16, "output_audio_usd_per_mtok": base * 32,
                     "output_image_usd": Decimal(rnd.randint(1, 120)) / 1000,
                     "input_image_usd": Decimal(rnd.randint(0, 50)) / 10000,
                     "input_audio_usd_per_second": Decimal(rnd.randint(1, 300)) / 10**6}
        extra.append({**common, **media, "input_usd_per_mtok": base / 2, "output_usd_per_mtok": base * 2,
                      "effective_from": change})
        if i % 4 == 0:  # a context tier and a batch tier
            extra.append({**common, "input_usd_per_mtok": base * 2, "output_usd_per_mtok": base * 8,
                          "min_input_tokens": 200_000, "effective_from": T0})
            extra.append({**common, "input_usd_per_mtok": base / 4, "output_usd_per_mtok": base,
                          "service_tier": "batch", "effective_from": T0})
    doc = shipped.model_dump()
    doc["prices"] = [*doc["prices"], *extra]
    return PriceTable.model_validate(doc)


def test_lookup_function_matches_the_reference_pricer_on_a_large_catalog():
    rnd = random.Random(11)
    table = large_catalog(rnd)
    assert len(table.prices) > 300
    names = [(p.provider, n) for p in table.prices for n in p.names] + [("openai", "unknown-model"), ("nobody", "gpt-4o")]
    calls = []
    for _ in range(3000):
        provider, model = rnd.choice(names)
        end_ms = int((T0 + timedelta(days=rnd.randint(-5, 400), minutes=rnd.randint(0, 1439))).timestamp() * 1000)
        calls.append((provider, model, end_ms, rnd.choice([0, 1000, 199_999, 200_000, 500_000]),
                      rnd.choice(["standard", "standard", "batch", "flex"])))

    t_env = TableEnvironment.create(EnvironmentSettings.in_batch_mode())
    t_env.get_config().set("parallelism.default", "1")
    t_env.get_config().set("pipeline.jars", udf_jar(PathSettings()).resolve().as_uri())
    price_lookup.register(t_env, table)
    t_env.create_temporary_view("calls", t_env.from_elements(
        calls, ["provider", "model", "end_ms", "input_tokens", "service_tier"]))
    result = t_env.sql_query(f"SELECT provider, model, end_ms, input_tokens, service_tier, "
                             f"{price_lookup.priced_columns()} FROM calls")
    n = len(price_lookup.CLASSES)
    with result.execute().collect() as results:
        rows = list(results)  # an iterator: read once, used twice
        got = {tuple(r[:5]): tuple(r[5:5 + n]) for r in rows}
        folded = {tuple(r[:5]): r[5 + n] for r in rows}

    priced = 0
    for call in calls:
        provider, model, end_ms, input_tokens, tier = call
        p = table.price_at(provider, model, end_ms, input_tokens, tier)
        expected = (None,) * len(price_lookup.CLASSES) if p is None else tuple(
            getattr(p, prop) for prop, _, _ in price_lookup.CLASSES)
        assert got[call] == expected, call
        assert folded[call] == (table.catalog_model(provider, model) or model), call
        priced += p is not None
    assert 1000 < priced < len(calls)  # both priced and unpriced calls were exercised
    with_media = sum(1 for call in calls if (p := table.price_at(*call[:2], call[2], call[3], call[4]))
                     and p.output_image_usd is not None)
    assert with_media > 100  # and calls whose entry prices audio and images
