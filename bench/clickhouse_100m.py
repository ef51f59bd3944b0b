"""Benchmark: the saved "daily spend by team" query over >= 100M generated LLM-call spans.

    python bench/clickhouse_100m.py [--rows 100000000] [--chunk 5000000] [--runs 3] [--keep]

1. Creates the real `token_spans` table (the project's migrations, `tokenpulse migrate up`'s
   code) in an embedded chDB store under a fresh temp directory.
2. Generates the rows INSIDE ClickHouse (`INSERT ... SELECT ... FROM numbers()`, one chunk per
   statement, progress shown): 90 days of calls, skewed tenants (40, a few large ones), 12
   teams, 30 apps, 8 models of 4 providers (one local model on edge boxes), log-normal token
   counts, prompt caching, 0.5 % unpriced calls, exact Decimal(38, 12) costs from per-token
   prices, and 1 % of the calls delivered twice (as at-least-once Kafka delivery does), so
   FINAL has real duplicates to remove.
3. Lets background merges settle, then times `sql/queries/daily_spend_by_team.sql` cold (a
   fresh process, the store's files evicted from the OS page cache with posix_fadvise) and
   warm (`--runs` more in the same process), in three variants:
     final            the saved query as shipped (FINAL)
     final_partition  the same + do_not_merge_across_partitions_select_final=1 (exact here:
                      every copy of a call has the same end_time, so the same partition)
     no_final         FINAL removed: faster, but counts the 1 % re-deliveries twice
   Peak memory is the query process's max RSS (chDB runs in-process).
4. Prints a table, appends a JSON line to bench/results/clickhouse_100m.jsonl and deletes the
   store (unless --keep).

Each phase runs in its own process because chDB allows one store per process and only a new
process starts with ClickHouse's caches empty.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bench_results  # bench/bench_results.py: the results line every benchmark appends

REPO = Path(__file__).resolve().parents[1]
DATABASE = "tokenpulse"
DAYS = 90
FIRST_DAY = "2026-08-01"
DUPLICATE_EVERY = 100  # every 100th call is delivered twice
QUERY = (REPO / "sql" / "queries" / "daily_spend_by_team.sql").read_text()
QUERY_PARAMS = {"from": FIRST_DAY, "to": "2026-10-30"}  # FIRST_DAY + 90 days
VARIANTS = {
    "final": (QUERY, {}),
    "final_partition": (QUERY, {"do_not_merge_across_partitions_select_final": 1}),
    "no_final": (QUERY.replace("FROM token_spans FINAL", "FROM token_spans"), {}),
}

# provider, model, runtime, USD per 1M tokens: input, cached input, output; weight (of 20).
# Prices become integer pico-dollars (1e-12 USD) per token, so costs are exact integers
# before the one cast to Decimal(38, 12).
MODELS = [
    ("openai", "gpt-4o-mini", "cloud", "0.15", "0.075", "0.60", 6),
    ("openai", "gpt-4.1", "cloud", "2.00", "0.50", "8.00", 3),
    ("openai", "gpt-4o", "cloud", "2.50", "1.25", "10.00", 2),
    ("anthropic", "claude-sonnet-4", "cloud", "3.00", "0.30", "15.00", 3),
    ("anthropic", "claude-3-5-haiku", "cloud", "0.80", "0.08", "4.00", 2),
    ("gcp.gemini", "gemini-2.5-flash", "cloud", "0.30", "0.075", "2.50", 2),
    ("gcp.gemini", "gemini-2.5-pro", "cloud", "1.25", "0.31", "10.00", 1),
    ("ollama", "llama3.1:8b", "edge", "0", "0", "0", 1),
]


def _pico(usd_per_mtok: str) -> int:
    from decimal import Decimal
    return int(Decimal(usd_per_mtok) * 10**6)  # USD/1M tokens -> 1e-12 USD per token


def _array(values) -> str:
    return "[" + ", ".join(repr(v) if isinstance(v, str) else str(v) for v in values) + "]"


def generate_sql(start: int, count: int, total: int, duplicate: bool) -> str:
    """One chunk of rows [start, start + count). Values are hashes of the row number (so
    deterministic: a duplicate pass regenerates the same call with a later ingested_at)."""
    slots = [i + 1 for i, m in enumerate(MODELS) for _ in range(m[6])]  # weighted model choice
    period_ms = DAYS * 86_400_000
    where = f"WHERE number % {DUPLICATE_EVERY} = 0" if duplicate else ""
    return f"""
INSERT INTO token_spans (tenant, service, team, agent_id, agent_name, session_id, tool_name, call_fingerprint,
    trace_id, span_id, parent_span_id, operation, provider, request_model, response_model, model, runtime_kind,
    runtime_id, start_time, end_time, received_at, input_tokens, output_tokens, cached_input_tokens,
    cache_creation_input_tokens, reasoning_tokens, status, error_type, service_tier, priced, cost_usd,
    edge_cost_usd, cloud_equivalent_cost_usd, is_late, ingested_at)
WITH
    (cityHash64(number, 1) % 1000000 + 0.5) / 1000000 AS u1,
    (cityHash64(number, 2) % 1000000 + 0.5) / 1000000 AS u2,
    (cityHash64(number, 3) % 1000000 + 0.5) / 1000000 AS u3,
    sqrt(-2 * log(u1)) * cos(2 * pi() * u2) AS z1,
    sqrt(-2 * log(u1)) * sin(2 * pi() * u2) AS z2,
    toUInt32(floor(40 * pow(u3, 2.5))) AS tenant_idx,                -- a few large tenants
    {_array(slots)}[1 + cityHash64(number, 4) % {len(slots)}] AS m,
    {_array([x[0] for x in MODELS])}[m] AS prov,
    {_array([x[1] for x in MODELS])}[m] AS mdl,
    {_array([x[2] for x in MODELS])}[m] AS rt,
    cityHash64(number, 5) % 1000 AS r,                                -- per-mille dice
    if(r < 5, 0, 1) AS known,                                         -- 0.5 % models not in the catalog
    toUInt64(least(400000, exp(7.0 + 1.2 * z1))) AS in_tok,           -- median ~1,100 tokens
    toUInt64(least(32000, exp(5.5 + 1.0 * z2))) AS out_tok,           -- median ~250 tokens
    if(cityHash64(number, 6) % 3 = 0, intDiv(in_tok * 6, 10), 0) AS cached,
    toUInt64(least(120000, exp(7.3 + 0.8 * z2))) AS busy_ms,
    ({_array([_pico(x[3]) for x in MODELS])}[m] * (in_tok - cached)
      + {_array([_pico(x[4]) for x in MODELS])}[m] * cached
      + {_array([_pico(x[5]) for x in MODELS])}[m] * out_tok) * known AS api_pico,
    if(rt = 'edge', busy_ms * 3500000, 0) AS edge_pico,               -- $0.0000035 per busy ms
    fromUnixTimestamp64Milli(toInt64(toUnixTimestamp(toDateTime('{FIRST_DAY} 00:00:00', 'UTC')) * 1000
        + intDiv(number * {period_ms}, {total}) + cityHash64(number, 7) % 5000), 'UTC') AS t_end
SELECT
    concat('tenant-', leftPad(toString(tenant_idx), 2, '0')),
    concat('app-', toString(cityHash64(number, 8) % 30)),
    concat('team-', toString(cityHash64(tenant_idx, number % 7919, 9) % 12)),
    NULL,
    concat('agent-', toString(cityHash64(number, 10) % 50)),
    concat('s-', toString(intDiv(number, 40))),
    if(r % 10 = 0, 'search', NULL),
    lower(hex(cityHash64(number % 1000000, 11))),
    lower(hex(sipHash128(intDiv(number, 6)))),
    lower(hex(cityHash64(number, 12))),
    NULL,
    'chat', prov, if(known = 1, mdl, 'unlisted-model'), if(known = 1, mdl, 'unlisted-model'),
    if(known = 1, mdl, 'unlisted-model'),
    rt,
    if(rt = 'edge', concat('edge-box-', toString(cityHash64(number, 13) % 4)), concat(prov, '-api')),
    t_end - toIntervalMillisecond(busy_ms), t_end, t_end + toIntervalMillisecond(1500),
    in_tok, out_tok, cached, 0, if(prov = 'openai' AND r % 7 = 0, intDiv(out_tok, 2), 0),
    if(r >= 990, 'error', 'ok'), if(r >= 990, 'timeout', NULL),
    if(r % 20 = 1, 'batch', 'standard'),
    known = 1,
    toDecimal128(api_pico + edge_pico, 12) / 1000000000000,
    toDecimal128(edge_pico, 12) / 1000000000000,
    toDecimal128(if(rt = 'edge', 150000 * in_tok + 600000 * out_tok, 0), 12) / 1000000000000,
    r = 999,
    t_end + toIntervalMillisecond({60000 if duplicate else 4000})
FROM numbers({start}, {count})
{where}
SETTINGS max_threads = 2, max_insert_threads = 2
"""


def open_store(path: Path):
    import clickhouse_connect

    from tokenpulse.loader.migrations import migrate_up

    bootstrap = clickhouse_connect.get_client(dsn=f"chdb://{path}")
    bootstrap.command(f"CREATE DATABASE IF NOT EXISTS {DATABASE}")
    client = clickhouse_connect.get_client(dsn=f"chdb://{path}", database=DATABASE)
    return client, migrate_up


def table_stats(client) -> dict:
    row = client.query("SELECT count(), sum(rows), sum(bytes_on_disk), sum(data_uncompressed_bytes) FROM system.parts "
                       "WHERE database = currentDatabase() AND table = 'token_spans' AND active").result_rows[0]
    return {"parts": row[0], "rows": row[1], "bytes_on_disk": row[2], "uncompressed_bytes": row[3]}


def phase_generate(store: Path, rows: int, chunk: int, settle_s: int) -> dict:
    from tqdm import tqdm

    client, migrate_up = open_store(store)
    migrate_up(client)
    started = time.perf_counter()
    duplicates = rows // DUPLICATE_EVERY
    with tqdm(total=rows + duplicates, unit="row", unit_scale=True, desc="generating", file=sys.stderr) as bar:
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            client.command(generate_sql(start, n, rows, duplicate=False))
            bar.update(n)
        for start in range(0, rows, chunk * 5):  # the re-deliveries, later (as they arrive)
            n = min(chunk * 5, rows - start)
            client.command(generate_sql(start, n, rows, duplicate=True))
            bar.update(len(range(start + (-start) % DUPLICATE_EVERY, start + n, DUPLICATE_EVERY)))
    insert_s = time.perf_counter() - started
    # Let background merges work as a running server's would; report the part count reached.
    settle_started = time.perf_counter()
    while time.perf_counter() - settle_started < settle_s:
        merging = client.query("SELECT count() FROM system.merges WHERE database = currentDatabase()").result_rows[0][0]
        stats = table_stats(client)
        print(f"  settling: {stats['parts']} parts, {merging} merges running", file=sys.stderr, flush=True)
        if not merging:
            break
        time.sleep(15)
    stats = table_stats(client)
    client.close()
    return {"insert_s": round(insert_s, 1), "rows_inserted": rows + duplicates,
            "insert_rows_per_s": round((rows + duplicates) / insert_s),
            "settle_s": round(time.perf_counter() - settle_started, 1),
            "maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, **stats}


def evict_page_cache(store: Path) -> None:
    """Drop the store's files from the OS page cache (only ours; no root, no global drop)."""
    for path in store.rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def phase_query(store: Path, variant: str, runs: int) -> dict:
    sql, settings = VARIANTS[variant]
    evict_page_cache(store)
    client, _ = open_store(store)
    parts = table_stats(client)["parts"]
    times, result = [], None
    for _ in range(runs + 1):
        started = time.perf_counter()
        result = client.query(sql, parameters=QUERY_PARAMS, settings=settings or None)
        times.append(time.perf_counter() - started)
    rows = result.result_rows
    client.close()
    return {"variant": variant, "parts": parts, "cold_s": round(times[0], 3), "warm_s": [round(t, 3) for t in times[1:]],
            "result_rows": len(rows), "calls": sum(r[3] for r in rows), "cost_usd": str(sum(r[7] for r in rows)),
            "maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}


def child(args: list[str]) -> dict:
    """Run one phase in a fresh process; it prints its result as the last line of stdout."""
    proc = subprocess.run([sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True)
    if proc.returncode:
        sys.exit(f"phase {args[0]} failed (exit {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000_000, help="unique calls (default 100M; +1 %% re-deliveries)")
    parser.add_argument("--chunk", type=int, default=5_000_000, help="rows per INSERT ... SELECT (default 5M)")
    parser.add_argument("--runs", type=int, default=3, help="warm runs after the cold one (default 3)")
    parser.add_argument("--settle", type=int, default=300, help="max seconds to wait for merges (default 300)")
    parser.add_argument("--dir", type=Path, default=None, help="parent of the temp store (default: system temp)")
    parser.add_argument("--keep", action="store_true", help="keep the store (its path is printed)")
    parser.add_argument("--phase", choices=["generate", "query"], help=argparse.SUPPRESS)
    parser.add_argument("--store", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--variant", choices=list(VARIANTS), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.phase == "generate":
        print(json.dumps(phase_generate(args.store, args.rows, args.chunk, args.settle)))
        return
    if args.phase == "query":
        print(json.dumps(phase_query(args.store, args.variant, args.runs)))
        return

    parent = args.dir or Path(tempfile.gettempdir())
    free = shutil.disk_usage(parent).free
    need = args.rows * 120  # measured: 69 B/row in active parts, ~100 B/row before merged parts are removed
    if free < need:
        sys.exit(f"{parent}: {free / 2**30:.1f} GiB free, need about {need / 2**30:.1f} GiB for {args.rows:,} rows")
    store = Path(tempfile.mkdtemp(prefix="tokenpulse-ch100m-", dir=parent))
    print(f"store: {store} ({free / 2**30:.0f} GiB free before)", file=sys.stderr)
    try:
        gen = child(["--phase", "generate", "--store", str(store), "--rows", str(args.rows),
                     "--chunk", str(args.chunk), "--settle", str(args.settle)])
        gen["du_bytes"] = sum(p.stat().st_size for p in store.rglob("*") if p.is_file())
        print(f"generated {gen['rows']:,} rows in {gen['insert_s']} s ({gen['insert_rows_per_s']:,} rows/s), "
              f"{gen['parts']} parts, {gen['bytes_on_disk'] / 2**30:.2f} GiB on disk "
              f"({gen['uncompressed_bytes'] / 2**30:.1f} GiB uncompressed)", file=sys.stderr)
        queries = []
        for variant in VARIANTS:
            q = child(["--phase", "query", "--store", str(store), "--variant", variant, "--runs", str(args.runs)])
            queries.append(q)
            print(f"  {variant:<16} cold {q['cold_s']:>7.2f} s  warm {min(q['warm_s']):>7.2f} s  "
                  f"{gen['rows'] / min(q['warm_s']) / 1e6:>6.1f} M rows/s warm  rss {q['maxrss_mib']:>5} MiB  "
                  f"calls {q['calls']:,}  cost {q['cost_usd']}", file=sys.stderr)
    finally:
        if args.keep:
            print(f"kept {store}", file=sys.stderr)
        else:
            shutil.rmtree(store, ignore_errors=True)
    record = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "commit": bench_results.git_commit(),
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
              "unique_calls": args.rows, "generate": gen, "queries": queries}
    bench_results.append("clickhouse_100m.jsonl", record)
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
