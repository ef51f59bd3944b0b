"""Attribute names tokenpulse reads from OpenTelemetry spans.

We follow the OpenTelemetry GenAI semantic conventions as published in semconv 1.44.0
(Python package opentelemetry-semantic-conventions 0.66b2). These conventions are still
"Development" status and move between releases; the names are re-exported from the
official package so a rename shows up as an import error, not as silently missing data.
Names tokenpulse adds itself live under the `tokenpulse.` namespace.
"""

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as _genai
from opentelemetry.semconv.attributes import error_attributes as _error
from opentelemetry.semconv.attributes import service_attributes as _service

SEMCONV_VERSION = "1.44.0"

# --- gen_ai.* (OTel GenAI semantic conventions) -------------------------------------
PROVIDER_NAME = _genai.GEN_AI_PROVIDER_NAME  # "gen_ai.provider.name"
OPERATION_NAME = _genai.GEN_AI_OPERATION_NAME
REQUEST_MODEL = _genai.GEN_AI_REQUEST_MODEL
RESPONSE_MODEL = _genai.GEN_AI_RESPONSE_MODEL
INPUT_TOKENS = _genai.GEN_AI_USAGE_INPUT_TOKENS
OUTPUT_TOKENS = _genai.GEN_AI_USAGE_OUTPUT_TOKENS
# Subsets of input_tokens (cache hits / cache writes) and of output_tokens (reasoning).
CACHE_READ_INPUT_TOKENS = _genai.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS
CACHE_CREATION_INPUT_TOKENS = _genai.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS
REASONING_OUTPUT_TOKENS = _genai.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS
CONVERSATION_ID = _genai.GEN_AI_CONVERSATION_ID
AGENT_ID = _genai.GEN_AI_AGENT_ID
AGENT_NAME = _genai.GEN_AI_AGENT_NAME
TOOL_NAME = _genai.GEN_AI_TOOL_NAME
TOOL_CALL_ID = _genai.GEN_AI_TOOL_CALL_ID
TOOL_TYPE = _genai.GEN_AI_TOOL_TYPE
# Opt-in content on execute_tool spans: fingerprinted by the collector, then dropped.
TOOL_CALL_ARGUMENTS = _genai.GEN_AI_TOOL_CALL_ARGUMENTS
RESPONSE_ID = _genai.GEN_AI_RESPONSE_ID

# Content attributes: never forwarded unless a tenant enables content capture.
CONTENT_ATTRIBUTES = frozenset(
    {
        _genai.GEN_AI_INPUT_MESSAGES,
        _genai.GEN_AI_OUTPUT_MESSAGES,
        _genai.GEN_AI_SYSTEM_INSTRUCTIONS,
        "gen_ai.prompt",
        "gen_ai.completion",
        _genai.GEN_AI_TOOL_CALL_ARGUMENTS,
        _genai.GEN_AI_TOOL_CALL_RESULT,
        _genai.GEN_AI_TOOL_DEFINITIONS,
    }
)

# Content the collector may fingerprint (then drop) when the sender set no fingerprint.
FINGERPRINT_CONTENT_KEYS = (_genai.GEN_AI_INPUT_MESSAGES, "gen_ai.prompt")

ERROR_TYPE = _error.ERROR_TYPE
SERVICE_NAME = _service.SERVICE_NAME
HOST_NAME = "host.name"

# Service tier actually served (batch, flex, priority, ...): OpenAI's attributes, which
# semconv moved to the GenAI conventions repository; response first, then request.
SERVICE_TIER_KEYS = ("openai.response.service_tier", "openai.request.service_tier")

# --- tokenpulse.* (our own, for what semconv has no name for yet) --------------------
TEAM = "tokenpulse.team"
RUNTIME_KIND = "tokenpulse.runtime.kind"  # "cloud" | "edge"
RUNTIME_ID = "tokenpulse.runtime.id"  # links an edge call to its hardware profile
BATCH = "tokenpulse.request.batch"  # true: the call went through a provider's batch API
# A hash of the call's normalized request (prompt or tool name + arguments), computed by
# the SDK (or by the collector from content attributes before it drops them). Loop
# detection compares fingerprints; the content itself is never stored.
CALL_FINGERPRINT = "tokenpulse.call.fingerprint"

# Providers that run on the user's own hardware when no runtime kind is given.
EDGE_PROVIDERS = frozenset({"ollama", "vllm", "llama.cpp", "llamacpp", "tgi", "lmstudio", "local"})

# The tier a provider reports having served the call under, for providers semconv has no
# attribute for (Anthropic's `usage.service_tier`: standard, priority, batch). Read after
# SERVICE_TIER_KEYS.
RESPONSE_SERVICE_TIER = "tokenpulse.response.service_tier"

# Provider names as some senders spell them -> gen_ai.provider.name values (compared after
# lower-casing): the legacy gen_ai.system values semconv renamed, and OpenLLMetry's
# "MistralAI". Keeps such calls on the price table's provider names.
PROVIDER_ALIASES = {
    "az.ai.openai": "azure.ai.openai",
    "az.ai.inference": "azure.ai.inference",
    "gemini": "gcp.gemini",
    "vertex_ai": "gcp.vertex_ai",
    "xai": "x_ai",
    "mistralai": "mistral_ai",
}

# Content flattened into indexed attributes ("gen_ai.prompt.0.content", OpenLLMetry before
# it moved to gen_ai.input.messages; "llm.prompts.0.content" in its first releases).
CONTENT_ATTRIBUTE_PREFIXES = ("gen_ai.prompt.", "gen_ai.completion.", "llm.prompts.", "llm.completions.")
INDEXED_PROMPT_PREFIX = "gen_ai.prompt."
