"""tokenpulse's app-side SDK: record LLM calls as GenAI spans and honour the circuit breaker.

    from tokenpulse.sdk import CircuitBreaker, SessionStopped, record_llm_call
"""

from .breaker import CircuitBreaker, SessionStopped, StopInfo
from .calls import LlmCall, current_llm_call, record_llm_call
from .fingerprint import call_fingerprint

__all__ = ["CircuitBreaker", "LlmCall", "SessionStopped", "StopInfo", "call_fingerprint", "current_llm_call",
           "record_llm_call"]
