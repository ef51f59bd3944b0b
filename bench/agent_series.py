"""Benchmark: per-agent daily / weekly spend series from raw calls vs a per-agent rollup table.

    python bench/agent_series.py [--calls 3000000] [--days 60] [--agents 60] [--rounds 5]

spend_1m has no agent column, so a per-agent series either reads `token_spans` (the saved
query sql/queries/agent_spend_series.sql, over `token_spans FINAL`) or a rollup table kept
by a ClickHouse materialized view. This measures both on embedded chDB on disk (a temporary
directory, all migrations applied):

  1. `--calls` generated calls spread over `--days` days (one INSERT ... SELECT per day, like
     the loader's steady inserts; 8 tenants, 20 teams, 7 apps, 3 models, `--agents` agents);
  2. the saved query, daily and weekly, over the whole period and over the last 14 days (and
     once without FINAL, to show what exactly-once reading costs);
  3. the alternative: a SummingMergeTree `agent_spend_1d` fed by a materialized view, loaded
     with the same days, and the same daily series read from it (sum ... GROUP BY, no FINAL);
  4. the insert cost of the view (the same day inserted with and without it).

Prints a table and appends a JSON line to bench/results/agent_series.jsonl.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import bench_results  # bench/bench_results.py: the results line every benchmark appends
import clickhouse_connect

from tokenpulse.loader.migrations import migrate_up

REPO = Path(__file__).resolve().parents[1]
QUERY = (REPO / "sql" / "queries" / "agent_spend_series.sql").read_text()
START = date(2026, 9, 1)

# One day of calls generated inside ClickHouse (fast; no Python rows). Costs are exact decimals.
DAY_INSERT = """
INSERT INTO token_spans (tenant, service, team, agent_name, session_id, trace_id, span_id, operation, provider,
                         model, runtime_kind, runtime_id, start_time, end_time, received_at, input_tokens,
                         output_tokens, status, priced, cost_usd, is_late)
SELECT concat('tenant-', toString(number % 8)), concat('app-', toString(number % 7)),
       concat('team-', toString(number % 20)), concat('agent-', toString(number % {agents:UInt32})),
       concat('s-', toString(intDiv(number, 40))), lower(hex(MD5(concat({day:String}, toString(number))))),
       substring(lower(hex(MD5(toString(number)))), 1, 16), 'chat', 'openai',
       ['gpt-4o', 'gpt-4o-mini', 'o4-mini'][1 + number % 3], 'cloud', 'openai',
       toDateTime64({day:String}, 3, 'UTC') + toIntervalMillisecond(intDiv(number * 86400000, {n:UInt64})),
       toDateTime64({day:String}, 3, 'UTC') + toIntervalMillisecond(intDiv(number * 86400000, {n:UInt64}) + 900),
       toDateTime64({day:String}, 3, 'UTC') + toIntervalMillisecond(intDiv(number * 86400000, {n:UInt64}) + 1500),
       500 + number % 4000 AS inp, 50 + number % 700 AS outp, 'ok', true,
       toDecimal128(inp * 2.5 + outp * 10, 12) / 1000000, false
FROM numbers({n:UInt64})
"""

ROLLUP_DDL = [
    """CREATE TABLE agent_spend_1d (
        day Date, tenant LowCardinality(String), team LowCardinality(String), service LowCardinality(String),
        model LowCardinality(String), agent_name String, calls UInt64, tokens UInt64, cost_usd Decimal(38, 12))
       ENGINE = SummingMergeTree ORDER BY (tenant, day, team, service, model, agent_name)""",
    """CREATE MATERIALIZED VIEW agent_spend_1d_mv TO agent_spend_1d AS
       SELECT toDate(end_time) AS day, tenant, team, service, model, ifNull(agent_name, '') AS agent_name,
              count() AS calls, sum(input_tokens + output_tokens) AS tokens, sum(cost_usd) AS cost_usd
       FROM token_spans GROUP BY day, tenant, team, service, model, agent_name""",
]
ROLLUP_QUERY = """
SELECT tenant, team, service, model, agent_name, day, sum(calls), sum(tokens) AS t, sum(cost_usd) AS c,
       c * 1000000 / nullIf(t, 0)
FROM agent_spend_1d WHERE day >= {from:Date} AND day < {to:Date}
GROUP BY tenant, team, service, model, agent_name, day ORDER BY tenant, team, service, model, agent_name, day
"""


def median_ms(fn, rounds: int) -> dict[str, float]:
    """Median wall and CPU milliseconds. chDB runs inside this process, so process CPU time
    (all threads) is the query's own work: on a shared, oversubscribed machine it is the
    steadier figure of the two."""
    fn()  # warm the caches once, as an interactive user's second look would
    wall, cpu = [], []
    for _ in range(rounds):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return {"wall_ms": round(statistics.median(wall), 1), "cpu_ms": round(statistics.median(cpu), 1)}


def load(client, days: int, per_day: int, agents: int, label: str) -> float:
    t0 = time.perf_counter()
    for d in range(days):
        day = START + timedelta(days=d)
        client.command(DAY_INSERT, parameters={"day": str(day), "n": per_day, "agents": agents})
        if d % 10 == 9:
            print(f"  {label}: {d + 1}/{days} days loaded ({(d + 1) * per_day:,} calls)", flush=True)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=3_000_000, help="calls in total (default 3,000,000)")
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--agents", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    per_day = args.calls // args.days
    end = START + timedelta(days=args.days)
    results: dict = {}

    with tempfile.TemporaryDirectory(prefix="tp-agent-bench-") as tmp:
        raw = clickhouse_connect.get_client(dsn=f"chdb://{tmp}/raw")
        migrate_up(raw)
        print(f"loading {per_day * args.days:,} calls over {args.days} days into token_spans (chDB on disk)")
        results["loadavg_start"] = round(os.getloadavg()[0], 1)
        results["load_raw_s"] = round(load(raw, args.days, per_day, args.agents, "raw"), 1)
        series = raw.query("SELECT count() FROM (" + QUERY + ")", parameters={
            "from": str(START), "to": str(end), "grain": "day"}).result_rows[0][0]
        results["daily_series_rows"] = series

        def saved(frm: date, grain: str):
            return lambda: raw.query(QUERY, parameters={"from": str(frm), "to": str(end), "grain": grain})

        results["saved_daily_all"] = median_ms(saved(START, "day"), args.rounds)
        results["saved_weekly_all"] = median_ms(saved(START, "week"), args.rounds)
        results["saved_daily_14d"] = median_ms(saved(end - timedelta(days=14), "day"), args.rounds)
        results["saved_weekly_14d"] = median_ms(saved(end - timedelta(days=14), "week"), args.rounds)
        # What FINAL (exactly-once over re-deliveries) costs: the same query without it.
        no_final = QUERY.replace("FROM token_spans FINAL", "FROM token_spans")
        results["no_final_daily_all"] = median_ms(lambda: raw.query(no_final, parameters={
            "from": str(START), "to": str(end), "grain": "day"}), args.rounds)
        raw.close()

        # The alternative: the same calls through a materialized view into a per-agent rollup.
        mv = clickhouse_connect.get_client(dsn=f"chdb://{tmp}/mv")
        migrate_up(mv)
        for ddl in ROLLUP_DDL:
            mv.command(ddl)
        results["load_with_view_s"] = round(load(mv, args.days, per_day, args.agents, "with view"), 1)

        def rolled(frm: date):
            return lambda: mv.query(ROLLUP_QUERY, parameters={"from": str(frm), "to": str(end)})

        results["rollup_daily_all"] = median_ms(rolled(START), args.rounds)
        results["rollup_daily_14d"] = median_ms(rolled(end - timedelta(days=14)), args.rounds)
        mv.close()

    print(f"\n{per_day * args.days:,} calls, {args.days} days, {args.agents} agents, "
          f"{results['daily_series_rows']:,} daily series rows; median of {args.rounds}; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for k, v in results.items():
        print(f"  {k:24s} {v}")
    line = {"bench": "agent_series", "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "commit": bench_results.git_commit(),
            "cpu": platform.machine(), "cores": os.cpu_count(), "calls": per_day * args.days, "days": args.days,
            "agents": args.agents, "rounds": args.rounds, **results}
    bench_results.append("agent_series.jsonl", line)


if __name__ == "__main__":
    main()
