"""Run SQL against the store, wherever it is.

* embedded store, stack running: through the loader's loopback query endpoint (the loader
  owns the chDB directory; a second process could not open it);
* embedded store, stack stopped: open chDB directly;
* ClickHouse server (`TOKENPULSE_CLICKHOUSE_DSN=http://...`): connect directly.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from decimal import Decimal

from tokenpulse.loader.clickhouse import open_client
from tokenpulse.sql import QUERIES_DIR

from .settings import Settings


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[list]

    def as_dicts(self) -> list[dict]:
        return [dict(zip(self.columns, r)) for r in self.rows]


class QueryError(RuntimeError):
    pass


def saved_query(name: str) -> str:
    path = QUERIES_DIR / f"{name}.sql"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in QUERIES_DIR.glob("*.sql")))
        raise QueryError(f"no saved query {name!r}; known: {known}")
    return path.read_text()


def _via_loader(settings: Settings, sql: str, parameters: dict | None) -> QueryResult | None:
    token_file = settings.paths.state_dir / "loader.token"
    if not token_file.exists():
        return None
    url = f"http://{settings.loader.query_host}:{settings.loader.query_port}/query"
    req = urllib.request.Request(url, data=json.dumps({"sql": sql, "parameters": parameters}).encode(),
                                 headers={"X-Tokenpulse-Token": token_file.read_text().strip(),
                                          "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            doc = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        raise QueryError(json.loads(exc.read() or b"{}").get("error", str(exc))) from None
    except OSError:
        return None  # loader not running: fall back to opening the store directly
    return QueryResult(doc["columns"], doc["rows"])


def run_sql(settings: Settings, sql: str, parameters: dict | None = None) -> QueryResult:
    if settings.clickhouse.is_embedded(settings.paths):
        result = _via_loader(settings, sql, parameters)
        if result is not None:
            return result
    client = open_client(settings.clickhouse, settings.paths)
    try:
        r = client.query(sql, parameters=parameters or None)
        return QueryResult(list(r.column_names), [list(x) for x in r.result_rows])
    except Exception as exc:  # noqa: BLE001 - report ClickHouse's message as is
        raise QueryError(str(exc)) from None
    finally:
        client.close()


def _cell(value, max_chars: int) -> str:
    if value is None:
        return ""
    text = format(value, "f") if isinstance(value, Decimal) else str(value)
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"


def format_table(result: QueryResult, max_rows: int = 200, max_chars: int = 60) -> str:
    cells = [[str(c) for c in result.columns]] + [[_cell(v, max_chars) for v in r] for r in result.rows[:max_rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(result.columns))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if len(result.rows) > max_rows:
        lines.append(f"... {len(result.rows) - max_rows} more rows")
    return "\n".join(lines)
