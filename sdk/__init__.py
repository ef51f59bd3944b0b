"""tokenpulse's app-side SDK: record LLM calls as GenAI spans and honour the circuit breaker.

    from tokenpulse.sdk import CircuitBreaker, SessionStopped, record_llm_call, set_openai_usage
    from tokenpulse.sdk import record_outcome   # what a session or task achieved (sdk/outcomes.py)

Apps inside the cluster may export straight to Kafka with tokenpulse.sdk.KafkaSpanExporter
(docs/sdk.md). Install: `pip install tokenpulse` (the SDK alone: OpenTelemetry, pydantic; no
Flink, ClickHouse or server), `pip install "tokenpulse[kafka]"` for the Kafka exporter.
The SDK imports only tokenpulse.core and tokenpulse.schemas, never the servers' code.
"""

from tokenpulse.core.fingerprint import call_fingerprint

from .anthropic_usage import anthropic_usage_attributes, set_anthropic_usage
from .breaker import CircuitBreaker, SessionStopped, StopInfo
from .calls import LlmCall, current_llm_call, record_llm_call
from .openai_usage import openai_usage_attributes, set_openai_usage
from .outcomes import KafkaOutcomeRecorder, OutcomeNotRecorded, OutcomeReceipt, record_outcome

__all__ = ["CircuitBreaker", "KafkaOutcomeRecorder", "KafkaSpanExporter", "LlmCall", "OutcomeNotRecorded",
           "OutcomeReceipt", "SessionStopped", "StopInfo", "record_outcome",
           "anthropic_usage_attributes", "call_fingerprint", "current_llm_call", "openai_usage_attributes",
           "record_llm_call", "set_anthropic_usage", "set_openai_usage"]


def __getattr__(name: str):
    # Imported on first use: the exporter needs librdkafka (the `kafka` extra), which most apps
    # do not install.
    if name == "KafkaSpanExporter":
        from .kafka_exporter import KafkaSpanExporter
        return KafkaSpanExporter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
