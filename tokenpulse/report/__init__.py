"""`tokenpulse report`: one self-contained HTML page of charts over a period.

    sections.py  one function per chart: saved query -> chart, legend, data table
    svg.py       the chart shapes, drawn as inline SVG in Python
    page.py      the page around them (inline CSS, no scripts, opens offline)
    fmt.py       how money, counts and times read (money exact, from Decimal)

Every number comes from ClickHouse through a saved query in sql/queries/, run by a
QueryFn: `tokenpulse.sql_client.run_sql` for the CLI (the loader's endpoint while the stack
runs, else the store directly), or a client's query in tests.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from . import page, sections
from .sections import Period, QueryFn, Section

DEFAULT_TOP_SESSIONS = 10


def build_report(query: QueryFn, period: Period, *, tenant: str = "", top_sessions: int = DEFAULT_TOP_SESSIONS,
                 store: str = "ClickHouse", generated: datetime | None = None) -> str:
    """The report's HTML for [period.start, period.end), one tenant or all ('')."""
    head = sections.totals(query, period, tenant)
    charts: list[Section] = [
        sections.spend_over_time(query, period, tenant, head),
        sections.jevons(query, period, tenant),
        sections.sessions(query, period, tenant, top_sessions),
        sections.cloud_vs_edge(query, period, tenant),
        sections.budgets(query, period, tenant),
        sections.savings(query, period, tenant),
    ]
    generated = generated or datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    return page.render(charts, head, period, tenant, generated, store)


def write_report(settings, out: Path, period: Period, *, tenant: str = "",
                 top_sessions: int = DEFAULT_TOP_SESSIONS) -> Path:
    """Query the configured store (see tokenpulse.sql_client.run_sql) and write the page."""
    from tokenpulse.sql_client import run_sql

    html = build_report(lambda sql, params=None: run_sql(settings, sql, params), period, tenant=tenant,
                        top_sessions=top_sessions, store=_store_label(settings))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    return out.resolve()


def _store_label(settings) -> str:
    dsn = settings.clickhouse.resolved_dsn(settings.paths)
    if "@" in dsn:  # never print a password from the DSN
        scheme, _, rest = dsn.partition("://")
        dsn = f"{scheme}://{rest.rpartition('@')[2]}"
    return f"{dsn} (database {settings.clickhouse.database})"


__all__ = ["Period", "build_report", "write_report", "DEFAULT_TOP_SESSIONS"]
