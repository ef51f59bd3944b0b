"""A stable fingerprint of an LLM request, for loop detection without storing content.

Two calls get the same fingerprint when they ask "the same thing" — including when an agent
loops with a counter or a fresh id in its prompt ("retry 3 of task 8f3a…" and "retry 4 of
task 1b2c…" match). Normalization, in order:

  1. text (prompt, message contents, string tool arguments): whitespace runs collapse to
     one space and ends are stripped; case is kept;
  2. in text, UUIDs become "<uuid>"; opaque tokens of 16+ letters and digits mixed, with an
     optional short prefix (API call ids such as "call_Ab12…", "toolu_01…"), "<id>"; hex
     tokens of 4+ characters with at least one digit and one a-f letter (hashes, short
     SHAs) "<hex>"; then every remaining digit run (with an optional decimal part) "<n>"
     (so "step_3" still reads as a counter, and "gpt-4o" in text as "gpt-<n>o", consistently);
  3. numbers in messages and tool arguments become "<n>" too (booleans stay);
  4. dict keys are sorted; keys that only carry per-call ids ("id", "tool_call_id",
     "tool_use_id", "call_id", also as the last part of a flattened key) are left out;
  5. model and tool name are kept as given (stripped).

Messages are fingerprinted by their **newest turn**, not the whole history: agents send the
whole conversation on every call, so a hash of everything grows with each step and a stuck
agent repeating one tool call never matches itself. The newest turn is what is new since
the previous call: from the last assistant message on (its action and the tool results that
followed, plus any user message after them); without an assistant message, the last user
message on. System prompts and older history are left out. Message lists may be Python
lists or the JSON text of `gen_ai.input.messages`; OpenAI (`tool_calls`), Anthropic
(`tool_use` / `tool_result` blocks), the semconv `parts` shape and OpenLLMetry's indexed
`gen_ai.prompt.N.*` (collected into dicts by the collector) all carry a `role` per message.
An exact repeat of the whole request has an equal newest turn, so the turn catches those too.

The result is the first 16 hex characters of SHA-256 over a canonical JSON form. Messages
are hashed in the shape given, so fingerprints compare between calls from one source (one
session), not across message formats. Standard library only: the collector reuses this.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

FINGERPRINT_VERSION = 2  # 2: messages by their newest turn (1: the whole list)
_ID_KEYS = frozenset({"id", "tool_call_id", "tool_use_id", "call_id"})

_ASSISTANT_ROLES = frozenset({"assistant", "model", "ai"})  # OpenAI/Anthropic, Gemini, LangChain
_WHITESPACE = re.compile(r"\s+")
_UUID = re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b")
# Standalone tokens only (not inside a longer word), so ordinary words keep their digits' context.
# An optional short prefix ("call_", "toolu_") then 16+ letters and digits mixed; hyphenated
# or snake_case phrases are not ids, so separators are allowed only after the prefix.
_OPAQUE_ID = re.compile(
    r"(?<![A-Za-z0-9_-])(?:[A-Za-z]{1,8}[_-])?(?=[A-Za-z0-9]*[0-9])(?=[A-Za-z0-9]*[A-Za-z])[A-Za-z0-9]{16,}(?![A-Za-z0-9_-])")
_HEX = re.compile(r"(?<![A-Za-z0-9])(?:0x)?(?=[0-9a-fA-F]*[0-9])(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{4,}(?![A-Za-z0-9])")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def normalize_text(text: str) -> str:
    """Step 1 and 2 of the module's normalization, for one piece of text."""
    text = _WHITESPACE.sub(" ", text).strip()
    text = _UUID.sub("<uuid>", text)
    text = _OPAQUE_ID.sub("<id>", text)
    text = _HEX.sub("<hex>", text)
    return _NUMBER.sub("<n>", text)


def _normalize_value(value: Any) -> Any:
    if isinstance(value, str):
        return normalize_text(value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        return "<n>"
    if isinstance(value, dict):
        # "tool_calls.0.id": OpenLLMetry's flattened keys name ids in their last segment
        return {str(k): _normalize_value(v) for k, v in value.items() if str(k).rsplit(".", 1)[-1] not in _ID_KEYS}
    if isinstance(value, (list, tuple)):
        return [_normalize_value(v) for v in value]
    if hasattr(value, "model_dump"):  # provider SDK objects (pydantic models)
        return _normalize_value(value.model_dump(exclude_none=True))
    return normalize_text(str(value))


def _normalize_arguments(arguments: Any) -> Any:
    # OpenAI hands tool arguments over as a JSON string: compare what it says, not its spacing.
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except ValueError:
            pass
    return _normalize_value(arguments)


def _role(message: Any) -> str | None:
    role = message.get("role") if isinstance(message, dict) else getattr(message, "role", None)
    return role.strip().lower() if isinstance(role, str) else None


def newest_turn(messages: Any) -> Any:
    """The part of a message list that is new since the previous call (module docstring);
    anything that is not a list of role-carrying messages is returned as given."""
    if isinstance(messages, str) and messages.lstrip().startswith("["):
        try:
            messages = json.loads(messages)
        except ValueError:
            return messages
    if not isinstance(messages, (list, tuple)) or not messages:
        return messages
    roles = [_role(m) for m in messages]
    if all(r is None for r in roles):
        return messages
    last_assistant = max((i for i, r in enumerate(roles) if r in _ASSISTANT_ROLES), default=None)
    if last_assistant is not None:
        return list(messages[last_assistant:])
    last_user = max((i for i, r in enumerate(roles) if r == "user"), default=None)
    return list(messages[last_user:]) if last_user is not None else list(messages)


def call_fingerprint(*, model: str | None = None, messages: Any = None, prompt: str | None = None,
                     tool_name: str | None = None, tool_arguments: Any = None) -> str:
    """16 hex characters identifying the normalized request (see the module docstring)."""
    canonical = {
        "v": FINGERPRINT_VERSION,
        "model": model.strip() if model else None,
        "messages": _normalize_value(newest_turn(messages)) if messages is not None else None,
        "prompt": normalize_text(prompt) if prompt is not None else None,
        "tool": tool_name.strip() if tool_name else None,
        "arguments": _normalize_arguments(tool_arguments) if tool_arguments is not None else None,
    }
    blob = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
