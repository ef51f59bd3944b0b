"""The data: `tokenpulse sql | migrate | sql-cluster-ddl | topics` (ClickHouse and the Kafka topics)."""

from __future__ import annotations

import argparse
import sys

from ..settings import Settings


def cmd_sql(settings: Settings, args) -> int:
    from tokenpulse.loader.clickhouse import StoreBusy
    from tokenpulse.sql import QUERIES_DIR

    from ..sql_client import QueryError, format_table, run_sql, saved_query

    if args.list:
        for p in sorted(QUERIES_DIR.glob("*.sql")):
            first = next((l[3:].strip() for l in p.read_text().splitlines() if l.startswith("--")), "")
            print(f"  {p.stem:<28} {first}")
        return 0
    if args.saved:
        sql = saved_query(args.saved)
    elif args.query:
        sql = args.query
    else:
        print("give a query, --saved NAME, or --list", file=sys.stderr)
        return 2
    params = {}
    for p in args.param or []:
        key, _, value = p.partition("=")
        params[key] = value
    try:
        from tokenpulse.loader.migrations import split_statements
        result = None
        for statement in split_statements(sql):
            result = run_sql(settings, statement, params)
    except (QueryError, StoreBusy) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if result is not None:
        print(format_table(result))
    return 0


def cmd_migrate(settings: Settings, args) -> int:
    from tokenpulse.loader.clickhouse import StoreBusy, open_client
    from tokenpulse.loader.migrations import migrate_down, migrate_up

    try:
        client = open_client(settings.clickhouse, settings.paths)
    except StoreBusy as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    cluster = settings.clickhouse.cluster or None  # TOKENPULSE_CLICKHOUSE_CLUSTER: clustered DDL, ON CLUSTER
    done = (migrate_up(client, cluster=cluster) if args.direction == "up"
            else migrate_down(client, args.steps, cluster=cluster))
    for m in done:
        print(f"  {args.direction} {m.version:04d}_{m.name}")
    print(f"{len(done)} migration(s) {'applied' if args.direction == 'up' else 'reverted'}")
    return 0


def cmd_topics(settings: Settings, args) -> int:
    from ..kafka_admin import apply_topics

    created = apply_topics(settings.kafka, args.replication_factor)
    print(f"created: {', '.join(created) if created else 'none (all exist)'}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    sql = sub.add_parser("sql", help="query ClickHouse (works while the stack runs)",
                         description="Runs SQL on the store. Saved queries live in sql/queries; "
                                     "`{name:Type}` placeholders are filled from --param name=value.",
                         epilog="examples:\n  tokenpulse sql --list\n"
                                "  tokenpulse sql --saved top_sessions --param hours=24 --param limit=10\n"
                                "  tokenpulse sql \"SELECT model, sum(cost_usd) FROM spend_1m FINAL GROUP BY model\"",
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    sql.add_argument("query", nargs="?", help="SQL text")
    sql.add_argument("--saved", metavar="NAME", help="run sql/queries/NAME.sql")
    sql.add_argument("--param", action="append", metavar="NAME=VALUE", help="bind a {NAME:Type} placeholder")
    sql.add_argument("--list", action="store_true", help="list saved queries")
    sql.set_defaults(func=cmd_sql)

    mig = sub.add_parser("migrate", help="apply or revert ClickHouse migrations (stack stopped, or a server DSN)")
    mig.add_argument("direction", choices=["up", "down"])
    mig.add_argument("--steps", type=int, default=1, help="migrations to revert with 'down' (default 1)")
    mig.set_defaults(func=cmd_migrate)

    from tokenpulse.sql import cluster_ddl

    ccd = sub.add_parser("sql-cluster-ddl", help="generate sql/cluster/: the migrations for a sharded, replicated cluster",
                         description="Rewrites every single-node migration in sql/migrations for a ClickHouse cluster "
                                     "(ON CLUSTER, Replicated*MergeTree <name>_local + Distributed <name>, sharded "
                                     "by tenant) into sql/cluster/. Run it after adding a migration; a unit test fails "
                                     "while the committed files are out of date. docs/clickhouse_cluster.md explains "
                                     "the layout; TOKENPULSE_CLICKHOUSE_CLUSTER=NAME makes `migrate` apply this form.",
                         epilog="examples:\n  tokenpulse sql-cluster-ddl            # regenerate sql/cluster/\n"
                                "  tokenpulse sql-cluster-ddl --check    # exit 1 if sql/cluster/ is out of date\n"
                                "  tokenpulse sql-cluster-ddl --cluster prod --out /tmp/prod-ddl",
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    cluster_ddl.add_arguments(ccd)
    ccd.set_defaults(func=lambda settings, args: cluster_ddl.run(args))

    top = sub.add_parser("topics", help="create the Kafka topics from the registry (idempotent)")
    top.add_argument("--replication-factor", type=int, default=None,
                     help="default TOKENPULSE_KAFKA_REPLICATION_FACTOR (1; 3 on a three-broker cluster)")
    top.set_defaults(func=cmd_topics)
