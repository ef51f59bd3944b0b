"""The generated pricing SQL, evaluated by a real ClickHouse engine (in-memory chDB), equals the
Python reference for arbitrary calls: every token class (audio tokens, images and audio seconds
included), tiers, edge busy time, unknown models.
(The integration tests check that Flink evaluates the same SQL to the same digits.)"""

from decimal import Decimal

import clickhouse_connect
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from testkit.price_fixtures import handwritten_prices

from tokenpulse.core.pricing_sql import (
    clickhouse_null,
    cloud_equivalent_cost_case,
    cost_columns,
    edge_rate_case,
    priced_columns,
)
from tokenpulse.schemas.edge_profiles import edge_call_cost_usd, load_edge_profiles
from tokenpulse.schemas.pricing import call_cost_usd

PRICES, EDGE = handwritten_prices(), load_edge_profiles()
MODELS = sorted({(p.provider, n) for p in PRICES.prices for n in p.names}) + [("openai", "not-in-the-table")]
SQL = f"""
SELECT {cost_columns()} FROM (
  SELECT *, {priced_columns(PRICES, null=clickhouse_null)},
         {edge_rate_case(EDGE, null=clickhouse_null)} AS p_edge,
         {cloud_equivalent_cost_case(EDGE, PRICES, null=clickhouse_null)} AS cloud_equivalent_cost
  FROM (SELECT {{provider:String}} AS provider, {{model:String}} AS model, {{kind:String}} AS runtime_kind,
               {{runtime:String}} AS runtime_id, {{start_ms:Int64}} AS start_ms, {{end_ms:Int64}} AS end_ms,
               {{tier:String}} AS service_tier, {{inp:Int64}} AS input_tokens, {{cr:Int64}} AS cached_input_tokens,
               {{cc:Int64}} AS cache_creation_input_tokens, {{out:Int64}} AS output_tokens,
               {{ia:Int64}} AS input_audio_tokens, {{oa:Int64}} AS output_audio_tokens, {{ii:Int64}} AS input_images,
               {{oi:Int64}} AS output_images, {{secs:Int64}} AS input_audio_seconds,
               {{hit:Bool}} AS semantic_cache_hit))
SETTINGS cast_keep_nullable = 1"""


@pytest.fixture(scope="module")
def engine():
    client = clickhouse_connect.get_client(dsn="chdb://:memory:")
    yield client
    client.close()


NO_MEDIA = {"ia_share": 0.0, "oa_share": 0.0, "ii": 0, "oi": 0, "secs": 0, "hit": False}
calls = st.fixed_dictionaries({
    "model": st.sampled_from(MODELS),
    "edge": st.booleans(), "tier": st.sampled_from(["standard", "batch", "flex"]),
    "inp": st.integers(0, 400_000), "cr_share": st.floats(0, 1), "cc_share": st.floats(0, 1),
    "out": st.integers(0, 50_000), "busy_ms": st.integers(0, 600_000),
    "ia_share": st.floats(0, 1), "oa_share": st.floats(0, 1), "ii": st.integers(0, 20), "oi": st.integers(0, 8),
    "secs": st.integers(0, 7200),
    "hit": st.sampled_from([False, False, False, True]),  # answered from the app's semantic cache
    "end_ms": st.integers(1735689600000, 1798761600000),  # 2025..2027
})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(calls)
# Cases random search may miss: a >200k-token prompt (upper tier), cache writes, an edge call.
@example({"model": ("gcp.gemini", "gemini-2.5-pro"), "tier": "standard", "edge": False, "inp": 250_000, "cr_share": 0.2,
          "cc_share": 0.0, "out": 900, "busy_ms": 1000, "end_ms": 1760000000000, **NO_MEDIA})
@example({"model": ("anthropic", "claude-sonnet-4"), "tier": "standard", "edge": False, "inp": 30_000, "cr_share": 0.5,
          "cc_share": 0.5, "out": 700, "busy_ms": 1000, "end_ms": 1760000000000, **NO_MEDIA})
@example({"model": ("ollama", "llama3.1:8b"), "tier": "standard", "edge": True, "inp": 3000, "cr_share": 0.0,
          "cc_share": 0.0, "out": 300, "busy_ms": 2345, "end_ms": 1760000000000, **NO_MEDIA})
@example({"model": ("openai", "gpt-4o"), "tier": "batch", "edge": False, "inp": 10_000, "cr_share": 0.5,
          "cc_share": 0.0, "out": 2000, "busy_ms": 1000, "end_ms": 1760000000000, **NO_MEDIA})
@example({"model": ("openai", "gpt-4o"), "tier": "flex", "edge": False, "inp": 10_000, "cr_share": 0.5,
          "cc_share": 0.0, "out": 2000, "busy_ms": 1000, "end_ms": 1760000000000, **NO_MEDIA})
# Audio tokens at their own rate, a transcription priced per second, an image priced per image.
@example({"model": ("openai", "gpt-4o-audio-preview"), "tier": "standard", "edge": False, "inp": 5000, "cr_share": 0.2,
          "cc_share": 0.0, "out": 3000, "busy_ms": 1000, "end_ms": 1760000000000, "ia_share": 0.75, "oa_share": 0.5,
          "ii": 0, "oi": 0, "secs": 0, "hit": False})
@example({"model": ("openai", "whisper-1"), "tier": "standard", "edge": False, "inp": 0, "cr_share": 0.0,
          "cc_share": 0.0, "out": 0, "busy_ms": 1000, "end_ms": 1760000000000, "ia_share": 0.0, "oa_share": 0.0,
          "ii": 0, "oi": 0, "secs": 754, "hit": False})
@example({"model": ("gcp.gemini", "imagen-4.0-generate-001"), "tier": "standard", "edge": False, "inp": 40,
          "cr_share": 0.0, "cc_share": 0.0, "out": 0, "busy_ms": 1000, "end_ms": 1760000000000, "ia_share": 0.0,
          "oa_share": 0.0, "ii": 1, "oi": 4, "secs": 0, "hit": False})
# A semantic-cache hit on an edge runtime: no provider fee, no busy time, no counterfactual stored.
@example({"model": ("ollama", "llama3.1:8b"), "tier": "standard", "edge": True, "inp": 3000, "cr_share": 0.0,
          "cc_share": 0.0, "out": 300, "busy_ms": 2345, "end_ms": 1760000000000, **{**NO_MEDIA, "hit": True}})
def test_generated_sql_equals_reference(engine, c):
    (provider, model), inp = c["model"], c["inp"]
    cr = int(inp * c["cr_share"])
    cc = int((inp - cr) * c["cc_share"])
    ia = int((inp - cr - cc) * c["ia_share"])  # audio: the uncached part of the input
    oa = int(c["out"] * c["oa_share"])
    media = {"input_audio_tokens": ia, "output_audio_tokens": oa, "input_images": c["ii"], "output_images": c["oi"],
             "input_audio_seconds": c["secs"]}
    runtime = "edge-plant-01" if c["edge"] else provider
    params = {"provider": provider, "model": model, "kind": "edge" if c["edge"] else "cloud", "runtime": runtime,
              "start_ms": c["end_ms"] - c["busy_ms"], "end_ms": c["end_ms"], "inp": inp, "cr": cr, "cc": cc,
              "out": c["out"], "tier": c["tier"], "ia": ia, "oa": oa, "ii": c["ii"], "oi": c["oi"], "secs": c["secs"], "hit": c["hit"]}
    priced, cost, edge_cost, cloud_eq = engine.query(SQL, parameters=params).result_rows[0]

    price = PRICES.price_at(provider, model, c["end_ms"], inp, c["tier"])
    api = call_cost_usd(price, input_tokens=inp, cached_input_tokens=cr, cache_creation_input_tokens=cc,
                        output_tokens=c["out"], **media) if price else Decimal(0)
    profile = EDGE.profile_at(runtime, c["end_ms"]) if c["edge"] else None
    expected_edge = edge_call_cost_usd(profile, busy_ms=c["busy_ms"]) if profile else Decimal(0)
    eq = None
    if profile and profile.cloud_equivalent:
        eq_price = PRICES.price_at(profile.cloud_equivalent.provider, profile.cloud_equivalent.model, c["end_ms"],
                                   inp, c["tier"])
        eq = call_cost_usd(eq_price, input_tokens=inp, cached_input_tokens=cr, cache_creation_input_tokens=cc,
                           output_tokens=c["out"], **media) if eq_price else None
    if c["hit"]:  # the app's semantic cache answered: nothing was paid (the savings evaluator prices it)
        api = expected_edge = eq = Decimal(0)
    assert bool(priced) == (price is not None)
    assert edge_cost == expected_edge
    assert cost == api + expected_edge
    assert cloud_eq == (eq or Decimal(0))


def test_sparse_audio_and_unit_cases_respect_the_entry_order(engine):
    """The audio / per-unit CASEs list only the entries that can decide them (bench/README.md):
    an entry without an audio rate that comes first (a batch tier, a context tier) must still
    win for its calls, so those get the text rate, exactly as the reference pricer says."""
    from tokenpulse.schemas.pricing import PriceTable

    common = {"provider": "openai", "model": "m", "aliases": ["m-latest"], "source": "test catalog entry",
              "effective_from": "2025-01-01", "input_usd_per_mtok": "2", "output_usd_per_mtok": "8"}
    table = PriceTable.model_validate({"currency": "USD", "prices": [
        {**common, "input_audio_usd_per_mtok": "40", "output_audio_usd_per_mtok": "80", "output_image_usd": "0.05"},
        {**common, "service_tier": "batch", "input_usd_per_mtok": "1", "output_usd_per_mtok": "4"},
        {**common, "aliases": [], "min_input_tokens": 100_000, "input_usd_per_mtok": "3"},
        {**common, "model": "other", "aliases": [], "input_usd_per_mtok": "1"}]})
    sql = f"""SELECT {cost_columns()} FROM (SELECT *, {priced_columns(table, null=clickhouse_null)},
        CAST(NULL AS Nullable(Decimal(18, 12))) AS p_edge, CAST(NULL AS Nullable(Decimal(32, 12))) AS cloud_equivalent_cost
      FROM (SELECT {{model:String}} AS model, 'openai' AS provider, 'cloud' AS runtime_kind, 'openai' AS runtime_id,
            toInt64(1760000000000) AS start_ms, toInt64(1760000000000) AS end_ms, {{tier:String}} AS service_tier,
            {{inp:Int64}} AS input_tokens, toInt64(0) AS cached_input_tokens, toInt64(0) AS cache_creation_input_tokens,
            toInt64(1000) AS output_tokens, toInt64(600) AS input_audio_tokens, toInt64(400) AS output_audio_tokens,
            toInt64(0) AS input_images, toInt64(2) AS output_images, toInt64(0) AS input_audio_seconds,
            false AS semantic_cache_hit)) SETTINGS cast_keep_nullable = 1"""
    seen = set()
    for model in ("m", "m-latest", "other"):
        for tier in ("standard", "batch"):
            for inp in (1_000, 150_000):
                price = table.price_at("openai", model, 1760000000000, inp, tier)
                cost = engine.query(sql, parameters={"model": model, "tier": tier, "inp": inp}).result_rows[0][1]
                assert cost == call_cost_usd(price, input_tokens=inp, cached_input_tokens=0,
                                             cache_creation_input_tokens=0, output_tokens=1000, input_audio_tokens=600,
                                             output_audio_tokens=400, output_images=2), (model, tier, inp)
                seen.add(price.input_audio_usd_per_mtok)
    assert seen == {Decimal(40), None}  # both the audio rate and the text-rate fallback were exercised
