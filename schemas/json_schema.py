"""JSON Schema documents generated from the event models (kept in sync by a unit test).

    python -m tokenpulse.schemas.json_schema   # rewrites schemas/json/*.schema.json
"""

import json
from pathlib import Path

from .alerts import Alert, DispatchOutcome
from .events import ContextSpan, DeadLetter, Heartbeat, TokenSpan

JSON_DIR = Path(__file__).with_name("json")
MODELS = {"token_span.v1": TokenSpan, "context_span.v1": ContextSpan, "heartbeat.v1": Heartbeat, "dead_letter.v1": DeadLetter,
          "alert.v1": Alert, "alert_dispatch.v1": DispatchOutcome}


def render(name: str) -> str:
    schema = MODELS[name].model_json_schema()
    schema["$id"] = f"https://tokenpulse.dev/schemas/{name}.schema.json"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write_all() -> list[Path]:
    JSON_DIR.mkdir(exist_ok=True)
    written = []
    for name in MODELS:
        path = JSON_DIR / f"{name}.schema.json"
        path.write_text(render(name))
        written.append(path)
    return written


if __name__ == "__main__":
    for p in write_all():
        print(p)
