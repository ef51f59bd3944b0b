import json

import pytest
from pydantic import ValidationError

from tokenpulse.schemas.events import TokenSpan
from tokenpulse.schemas.json_schema import JSON_DIR, MODELS, render


def make(**overrides) -> dict:
    base = dict(tenant="acme", service="app", team="t", trace_id="a" * 32, span_id="b" * 16,
                operation="chat", provider="openai", model="gpt-4o", runtime_kind="cloud", runtime_id="openai",
                start_ms=1000, end_ms=2000, received_ms=2100, input_tokens=100, output_tokens=10)
    base.update(overrides)
    return base


def test_valid_span_round_trips_through_json():
    span = TokenSpan(**make(cached_input_tokens=40, reasoning_tokens=5))
    again = TokenSpan.model_validate_json(span.model_dump_json())
    assert again == span
    assert span.kafka_key() == b"acme|" + b"a" * 32


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(cached_input_tokens=80, cache_creation_input_tokens=30), "exceed input_tokens"),
        (dict(reasoning_tokens=11), "exceed output_tokens"),
        (dict(input_tokens=-1), "greater than or equal to 0"),
        (dict(end_ms=500), "ends before it starts"),
        (dict(team="x" * 300), "at most 256"),
        (dict(trace_id="not-hex"), "pattern"),
        (dict(runtime_kind="mainframe"), "cloud"),
    ],
)
def test_invalid_spans_are_refused_with_a_reason(overrides, message):
    with pytest.raises(ValidationError) as err:
        TokenSpan(**make(**overrides))
    assert message in str(err.value)


def test_unknown_fields_are_refused():
    with pytest.raises(ValidationError):
        TokenSpan(**make(prompt="hello"))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_committed_json_schema_matches_the_model(name):
    committed = (JSON_DIR / f"{name}.schema.json").read_text()
    assert json.loads(committed) == json.loads(render(name)), (
        "schema drifted: run `python -m tokenpulse.schemas.json_schema` and bump the version if the change is breaking"
    )
