"""Audio and image calls through the real pipeline (collector → Kafka → Flink → ClickHouse):
audio tokens at the model's audio rates (not also at the text rate), a transcription per second
and an image generation per image, checked against amounts computed by hand from the catalog's
published prices, in token_spans and in the 1-minute rollups. In the same window, an answer from
the app's semantic cache costs 0 and stays out of the billed usage sums, and every row carries
the sending key's id (a digest prefix, never the key)."""

from __future__ import annotations

import time
import uuid
from decimal import Decimal

import pytest
from helpers import wait_for
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from test_pipeline import KEYS, export

from tokenpulse.schemas.tenants import hash_key

pytestmark = pytest.mark.integration

# provider, model, usage attributes, cost by hand (shipped schemas/prices.yaml)
CALLS = [
    # gpt-4o-audio-preview: text $2.50 / $10 per MTok, audio $40 / $80 per MTok, no cache price (= input).
    # 5,000 input = 1,000 text + 1,000 cache reads + 3,000 audio; 2,000 output = 500 text + 1,500 audio
    # 1,000*2.5e-6 + 1,000*2.5e-6 + 3,000*40e-6 + 500*10e-6 + 1,500*80e-6 = 0.0025+0.0025+0.12+0.005+0.12
    ("openai", "gpt-4o-audio-preview", {
        "gen_ai.usage.input_tokens": 5000, "gen_ai.usage.cache_read.input_tokens": 1000,
        "gen_ai.usage.output_tokens": 2000, "tokenpulse.usage.input_audio_tokens": 3000,
        "tokenpulse.usage.output_audio_tokens": 1500}, Decimal("0.25")),
    # whisper-1: $0.006 / minute; 12 min 34 s = 754 s * $0.0001
    ("openai", "whisper-1", {"gen_ai.usage.input_tokens": 0, "gen_ai.usage.output_tokens": 0,
                             "tokenpulse.usage.input_audio_seconds": 754}, Decimal("0.0754")),
    # imagen-4.0-generate-001: $0.04 per image generated; 3 images
    ("gcp.gemini", "imagen-4.0-generate-001", {"gen_ai.usage.input_tokens": 30, "gen_ai.usage.output_tokens": 0,
                                               "tokenpulse.usage.output_images": 3}, Decimal("0.12")),
    # answered from the app's semantic cache: what gpt-4o would have used, but nobody was paid
    ("openai", "gpt-4o", {"gen_ai.usage.input_tokens": 8000, "gen_ai.usage.output_tokens": 700,
                          "tokenpulse.cache.semantic_hit": True}, Decimal(0)),
]


def test_audio_and_image_calls_are_priced_by_their_own_rates(stack_settings):
    run = uuid.uuid4().hex[:8]
    team = f"media-{run}"
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "it-media"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("integration")
    end_ns = time.time_ns()
    for i, (prov, model, usage, _) in enumerate(CALLS):
        span = tracer.start_span(f"chat {model}", start_time=end_ns - 10**9, attributes={
            "gen_ai.operation.name": "chat", "gen_ai.provider.name": prov, "gen_ai.request.model": model,
            "gen_ai.conversation.id": f"{run}-{i}", "tokenpulse.team": team, **usage})
        span.end(end_time=end_ns + i)
    spans = list(memory.get_finished_spans())
    export(stack_settings, "acme", spans)
    export(stack_settings, "acme", spans[:1])  # a retry: counted once

    rows = wait_for(stack_settings, """
        SELECT model, cost_usd, priced, input_audio_tokens, output_audio_tokens, output_images, input_audio_seconds,
               semantic_cache_hit, input_tokens, api_key_id
        FROM token_spans FINAL WHERE team = {team:String} ORDER BY model""", {"team": team},
        lambda r: len(r) >= len(CALLS))
    got = {r[0]: (Decimal(r[1]), *r[2:8]) for r in rows}  # the query endpoint sends decimals as strings
    assert len(rows) == len(CALLS)
    assert got["gpt-4o-audio-preview"] == (Decimal("0.25"), True, 3000, 1500, 0, 0, False)
    assert got["whisper-1"] == (Decimal("0.0754"), True, 0, 0, 0, 754, False)
    assert got["imagen-4.0-generate-001"] == (Decimal("0.12"), True, 0, 0, 3, 0, False)
    assert got["gpt-4o"] == (Decimal(0), True, 0, 0, 0, 0, True)  # the hit keeps its counterfactual usage
    key_id = "sha256:" + hash_key(KEYS["acme"])[:12]
    assert {r[9] for r in rows} == {key_id} and KEYS["acme"] not in key_id

    total = sum(c[3] for c in CALLS)  # 0.4454
    rolled = wait_for(stack_settings, """
        SELECT sum(calls), sum(cost_usd), sum(input_audio_tokens), sum(output_audio_tokens), sum(output_images),
               sum(input_audio_seconds), sum(semantic_cache_hits), sum(input_tokens), groupUniqArray(api_key_id)
        FROM spend_1m FINAL WHERE team = {team:String}""", {"team": team},
        lambda r: (r[0][0] or 0) >= len(CALLS), timeout_s=180)
    assert (rolled[0][0], Decimal(rolled[0][1])) == (len(CALLS), total)
    assert tuple(rolled[0][2:7]) == (3000, 1500, 3, 754, 1)
    assert rolled[0][7] == 5000 + 0 + 30  # billed input tokens: the hit's 8,000 are not among them
    assert rolled[0][8] == [key_id]
