"""tokenpulse's app-side SDK: record LLM calls as GenAI spans and honour the circuit breaker.

    from tokenpulse.sdk import CircuitBreaker, SessionStopped, record_llm_call, set_openai_usage
    from tokenpulse.sdk import record_outcome   # what a session or task achieved (sdk/outcomes.py)

Apps inside the cluster may export straight to Kafka with tokenpulse.sdk.KafkaSpanExporter
(docs/sdk.md).
"""

from .anthropic_usage import anthropic_usage_attributes, set_anthropic_usage
from .breaker import CircuitBreaker, SessionStopped, StopInfo
from .calls import LlmCall, current_llm_call, record_llm_call
from .fingerprint import call_fingerprint
from .openai_usage import openai_usage_attributes, set_openai_usage
from .outcomes import KafkaOutcomeRecorder, OutcomeNotRecorded, OutcomeReceipt, record_outcome

__all__ = ["CircuitBreaker", "KafkaOutcomeRecorder", "KafkaSpanExporter", "LlmCall", "OutcomeNotRecorded",
           "OutcomeReceipt", "SessionStopped", "StopInfo", "record_outcome",
           "anthropic_usage_attributes", "call_fingerprint", "current_llm_call", "openai_usage_attributes",
           "record_llm_call", "set_anthropic_usage", "set_openai_usage"]


def __getattr__(name: str):
    # Imported on first use: the exporter pulls in the collector and kafka-python, which most
    # apps (and the collector itself, which imports tokenpulse.sdk.fingerprint) do not need.
    if name == "KafkaSpanExporter":
        from .kafka_exporter import KafkaSpanExporter
        return KafkaSpanExporter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
