"""Clustered ClickHouse DDL, generated from the single-node migrations (the one source).

Each `migrations/NNNN_*.{up,down}.sql` is rewritten statement by statement for a cluster of
shards x replicas (docs/clickhouse_cluster.md):

* `CREATE TABLE t ... ENGINE = XMergeTree(args)` becomes two tables, both `ON CLUSTER`:
  `t_local` with `ReplicatedXMergeTree('/clickhouse/tables/{shard}/{database}/{table}',
  '{replica}', args)` and the same columns and keys, and `t` = `Distributed` over `t_local`.
  Every query, view and insert keeps using the name `t`, so nothing else changes.
* Sharding key: `cityHash64(tenant)` when `tenant` is in the sort key, else a hash of the
  whole sort key. Either way every copy of a row (same sort key) lands on the same shard,
  which is what makes ReplacingMergeTree's dedup and `FINAL` exact per shard.
* `ALTER TABLE t` column changes go to `t_local` and `t` (adds: local first, so the
  Distributed table never names a column its shards lack; drops and renames: Distributed
  first); data and index changes (UPDATE, DELETE, INDEX, PROJECTION, TTL, ...) only to `t_local`.
* `DROP TABLE t` drops `t` then `t_local` (`SYNC`, so an `up` right after a `down` can reuse
  the replication path in Keeper); views and everything else get `ON CLUSTER`.
* `INSERT` runs once, through the Distributed table.
* `CREATE TABLE t ... ENGINE = Null` (an intake that stores nothing and only feeds a view) and
  `CREATE MATERIALIZED VIEW v TO t` get `ON CLUSTER`: every node has the intake and its view,
  and the view writes into the Distributed `t`, so rows inserted on any node reach their shard.

Statements this module cannot rewrite safely (materialized views without TO, RENAME, other
engines, ...) raise `UnsupportedStatement` naming the file: extend this module then, the
regeneration test (tests/unit/sql/) fails until someone does.

    python -m tokenpulse.sql.cluster_ddl [--cluster NAME] [--out DIR] [--check]
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from tokenpulse.sql import MIGRATIONS_DIR, SQL_DIR

CLUSTER_DIR = SQL_DIR / "cluster"
CLUSTER_MACRO = "{cluster}"  # expanded by each server from its <macros>; or pass a real name
REPLICATION_PATH = "/clickhouse/tables/{shard}/{database}/{table}"
REPLICA_NAME = "{replica}"
LOCAL_SUFFIX = "_local"
# Per-table sharding key overrides, e.g. when one tenant outgrows a shard:
# {"token_spans": "cityHash64(tenant, trace_id)"} (any function of sort-key columns stays exact).
SHARDING_KEYS: dict[str, str] = {}

_MIGRATION = re.compile(r"^(\d{4})_([a-z0-9_]+)\.(up|down)\.sql$")
_IDENT = r"`?([A-Za-z_][A-Za-z0-9_]*)`?"
# Clauses that change only the schema (and so apply to the Distributed table too).
_COLUMN_CLAUSE = re.compile(r"^(ADD|DROP|MODIFY|RENAME|COMMENT)\s+COLUMN\b", re.I)
_REMOVING_CLAUSE = re.compile(r"^(DROP|RENAME)\s+COLUMN\b", re.I)


class UnsupportedStatement(ValueError):
    """A migration statement with no safe clustered rewrite here."""


# ---------------------------------------------------------------- lexical helpers


def mask(sql: str) -> str:
    """`sql` with comments blanked and the insides of quotes replaced by '_', same length, so
    keywords, parentheses and commas can be searched without tripping over text."""
    out = list(sql)
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if sql.startswith("--", i):
            j = sql.find("\n", i)
            j = n if j < 0 else j
            out[i:j] = " " * (j - i)
            i = j
        elif sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out[i:j] = [ch if ch == "\n" else " " for ch in sql[i:j]]
            i = j
        elif c in "'\"`":
            j = i + 1
            while j < n and sql[j] != c:
                j += 2 if sql[j] == "\\" else 1
            out[i + 1:j] = "_" * (j - i - 1)
            i = j + 1
        else:
            i += 1
    return "".join(out)


def _closing_paren(masked: str, open_at: int) -> int:
    depth = 0
    for i in range(open_at, len(masked)):
        depth += {"(": 1, ")": -1}.get(masked[i], 0)
        if depth == 0:
            return i
    raise UnsupportedStatement("unbalanced parentheses")


def split_top_level(sql: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """(start, end) spans of the comma-separated items of sql[start:end] at depth 0."""
    masked = mask(sql)
    end = len(sql) if end is None else end
    spans, depth, item_start = [], 0, start
    for i in range(start, end):
        ch = masked[i]
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            spans.append((item_start, i))
            item_start = i + 1
    spans.append((item_start, end))
    return spans


def _strip_comments(sql: str) -> str:
    """Collapse a fragment to one line without comments (for keys and messages)."""
    masked = mask(sql)
    kept = "".join(c if m != " " or c in " \t\n" else " " for c, m in zip(sql, masked))
    return " ".join(kept.split())


# ---------------------------------------------------------------- statement model


@dataclass(frozen=True)
class CreateTable:
    name: str
    columns: str          # the text between the column list's parentheses, comments kept
    engine: str           # e.g. ReplacingMergeTree
    engine_args: str      # e.g. ingested_at ('' when none)
    tail: str             # PARTITION BY / ORDER BY / ... after the engine
    order_by: list[str]   # sort key expressions

    @classmethod
    def parse(cls, stmt: str) -> CreateTable | None:
        masked = mask(stmt)
        head = re.match(rf"\s*CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?{_IDENT}\s*\(", masked, re.I)
        if not head:
            return None
        name = head.group(1)
        close = _closing_paren(masked, head.end() - 1)
        engine = re.compile(r"\s*ENGINE\s*=\s*(\w+)\s*", re.I).match(masked, close + 1)
        if not engine:
            raise UnsupportedStatement(f"CREATE TABLE {name}: no ENGINE after the column list")
        args, tail_at = "", engine.end()
        if masked.startswith("(", tail_at):
            args_close = _closing_paren(masked, tail_at)
            args, tail_at = stmt[tail_at + 1:args_close].strip(), args_close + 1
        tail = stmt[tail_at:].strip()
        return cls(name, stmt[head.end():close], engine.group(1), args, tail, _order_by(tail))


def _order_by(tail: str) -> list[str]:
    masked = mask(tail)
    m = re.search(r"\bORDER\s+BY\s+", masked, re.I)
    if not m:
        return []
    stop = re.compile(r"\b(PRIMARY\s+KEY|SAMPLE\s+BY|TTL|SETTINGS|PARTITION\s+BY)\b", re.I).search(masked, m.end())
    expr = tail[m.end():stop.start() if stop else len(tail)].strip()
    if expr.startswith("(") and _closing_paren(mask(expr), 0) == len(expr) - 1:
        expr = expr[1:-1]
    return [_strip_comments(expr[a:b]) for a, b in split_top_level(expr)]


def sharding_key(table: CreateTable) -> str:
    if table.name in SHARDING_KEYS:
        return SHARDING_KEYS[table.name]
    if "tenant" in table.order_by:
        return "cityHash64(tenant)"
    if not table.order_by:
        raise UnsupportedStatement(f"{table.name}: no ORDER BY, so no sharding key keeps its duplicates together")
    return f"cityHash64({', '.join(table.order_by)})"


def replicated_tables(migrations_dir: Path = MIGRATIONS_DIR) -> set[str]:
    """Names of every *MergeTree table any migration creates (they get _local + Distributed)."""
    return _tables_created(migrations_dir, lambda engine: engine.endswith("MergeTree"))


def null_tables(migrations_dir: Path = MIGRATIONS_DIR) -> set[str]:
    """Names of every Null-engine intake table any migration creates (one per node, no _local)."""
    return _tables_created(migrations_dir, lambda engine: engine == "Null")


def _tables_created(migrations_dir: Path, engine_matches) -> set[str]:
    names = set()
    for path in sorted(migrations_dir.glob("*.up.sql")):
        for stmt in _statements(path.read_text()):
            table = CreateTable.parse(stmt)
            if table and engine_matches(table.engine):
                names.add(table.name)
    return names


def _statements(sql: str) -> list[str]:
    from tokenpulse.loader.migrations import split_statements  # the runner's own splitter

    return split_statements(sql)


# ---------------------------------------------------------------- rewriting


def _leading_comments(stmt: str) -> tuple[str, str]:
    """Split a statement into its leading comment lines and the SQL itself."""
    lines = stmt.splitlines(keepends=True)
    i = 0
    while i < len(lines) and (not lines[i].strip() or lines[i].lstrip().startswith("--")):
        i += 1
    return "".join(lines[:i]), "".join(lines[i:])


def _on(cluster: str) -> str:
    return f"ON CLUSTER '{cluster}'"


def _create_table(table: CreateTable, cluster: str) -> list[str]:
    if table.engine == "Null":  # stores nothing: the same table on every node, feeding its view
        return [f"CREATE TABLE IF NOT EXISTS {table.name} {_on(cluster)}\n({table.columns})\nENGINE = Null"]
    if not table.engine.endswith("MergeTree") or table.engine.startswith("Replicated"):
        raise UnsupportedStatement(f"CREATE TABLE {table.name}: engine {table.engine} has no replicated rewrite here")
    local = table.name + LOCAL_SUFFIX
    args = ", ".join(a for a in (f"'{REPLICATION_PATH}'", f"'{REPLICA_NAME}'", table.engine_args) if a)
    key = sharding_key(table)
    return [
        f"CREATE TABLE IF NOT EXISTS {local} {_on(cluster)}\n({table.columns})\n"
        f"ENGINE = Replicated{table.engine}({args})\n{table.tail}",
        f"-- What clients read and write: rows go to the shard of {key}; every copy of a row\n"
        f"-- (same sort key) lands on one shard, so FINAL / ReplacingMergeTree dedup stays exact.\n"
        f"CREATE TABLE IF NOT EXISTS {table.name} {_on(cluster)}\n({table.columns})\n"
        f"ENGINE = Distributed('{cluster}', currentDatabase(), {local}, {key})",
    ]


def _alter_table(stmt: str, name: str, clauses_at: int, cluster: str) -> list[str]:
    clauses = [stmt[a:b].strip() for a, b in split_top_level(stmt, clauses_at)]
    schema = [c for c in clauses if _COLUMN_CLAUSE.match(_strip_comments(c))]
    removing = [c for c in schema if _REMOVING_CLAUSE.match(_strip_comments(c))]
    adding = [c for c in schema if c not in removing]

    def alter(table: str, parts: list[str]) -> str:
        return f"ALTER TABLE {table} {_on(cluster)}\n    " + ",\n    ".join(parts)

    out = [alter(name, removing)] if removing else []
    out.append(alter(name + LOCAL_SUFFIX, clauses))
    if adding:
        out.append(alter(name, adding))
    return out


def rewrite_statement(stmt: str, tables: set[str], cluster: str = CLUSTER_MACRO,
                      intakes: frozenset[str] | set[str] = frozenset()) -> list[str]:
    """The clustered statements for one single-node statement, in execution order
    (`tables`: the replicated tables; `intakes`: the Null-engine ones)."""
    comments, sql = _leading_comments(stmt)
    masked = mask(sql)
    table = CreateTable.parse(sql)
    out: list[str]
    if table:
        out = _create_table(table, cluster)
    elif m := re.match(rf"ALTER\s+TABLE\s+{_IDENT}\s+", masked, re.I):
        if m.group(1) not in tables:
            raise UnsupportedStatement(f"ALTER TABLE {m.group(1)}: not a table created by a migration")
        out = _alter_table(sql, m.group(1), m.end(), cluster)
    elif (m := re.match(rf"DROP\s+TABLE\s+(IF\s+EXISTS\s+)?{_IDENT}\s*$", masked, re.I)) and m.group(2) in intakes:
        out = [f"DROP TABLE {m.group(1) or ''}{m.group(2)} {_on(cluster)} SYNC"]
    elif m := re.match(rf"DROP\s+TABLE\s+(IF\s+EXISTS\s+)?{_IDENT}\s*$", masked, re.I):
        name, if_exists = m.group(2), m.group(1) or ""
        if name not in tables:
            raise UnsupportedStatement(f"DROP TABLE {name}: not a table created by a migration")
        out = [f"DROP TABLE {if_exists}{name} {_on(cluster)} SYNC",
               f"DROP TABLE {if_exists}{name}{LOCAL_SUFFIX} {_on(cluster)} SYNC"]
    elif m := re.match(rf"(CREATE\s+(?:OR\s+REPLACE\s+)?VIEW\s+(?:IF\s+NOT\s+EXISTS\s+)?{_IDENT})\s+AS\b", masked, re.I):
        out = [f"{sql[:m.end(1)]} {_on(cluster)}{sql[m.end(1):]}"]  # reads the Distributed tables
    elif m := re.match(rf"(CREATE\s+MATERIALIZED\s+VIEW\s+(?:IF\s+NOT\s+EXISTS\s+)?{_IDENT})\s+TO\s+{_IDENT}\s+AS\b",
                       masked, re.I):
        if m.group(3) not in tables:
            raise UnsupportedStatement(f"materialized view {m.group(2)} writes to {m.group(3)}, not a replicated table")
        out = [f"{sql[:m.end(1)]} {_on(cluster)}{sql[m.end(1):]}"]  # writes through the Distributed table
    elif m := re.match(rf"(DROP\s+VIEW\s+(?:IF\s+EXISTS\s+)?{_IDENT})\s*$", masked, re.I):
        out = [f"{sql[:m.end(1)]} {_on(cluster)} SYNC"]
    elif m := re.match(rf"(OPTIMIZE|TRUNCATE)\s+TABLE\s+(IF\s+EXISTS\s+)?{_IDENT}", masked, re.I):
        out = [f"{sql[:m.end()]}{LOCAL_SUFFIX} {_on(cluster)}{sql[m.end():]}"]
    elif m := re.match(rf"DELETE\s+FROM\s+{_IDENT}", masked, re.I):
        out = [f"{sql[:m.end()]}{LOCAL_SUFFIX} {_on(cluster)}{sql[m.end():]}"]
    elif re.match(r"INSERT\s+INTO\b", masked, re.I):
        out = [sql]  # once, through the Distributed table, which routes rows to their shards
    else:
        raise UnsupportedStatement(f"no clustered rewrite for: {_strip_comments(sql)[:80]}")
    return [comments + out[0], *out[1:]]


def rewrite_file(path: Path, tables: set[str], cluster: str = CLUSTER_MACRO,
                 intakes: frozenset[str] | set[str] = frozenset()) -> list[str]:
    try:
        return [s for stmt in _statements(path.read_text()) for s in rewrite_statement(stmt, tables, cluster, intakes)]
    except UnsupportedStatement as exc:
        raise UnsupportedStatement(f"{path.name}: {exc}") from None


def render_file(path: Path, tables: set[str], cluster: str = CLUSTER_MACRO,
                intakes: frozenset[str] | set[str] = frozenset()) -> str:
    header = (f"-- GENERATED from sql/migrations/{path.name} by `tokenpulse sql-cluster-ddl` (sql/cluster_ddl.py).\n"
              f"-- Do not edit: change the single-node migration (or the generator) and regenerate.\n")
    return header + "".join(s + ";\n\n" for s in rewrite_file(path, tables, cluster, intakes)).rstrip("\n") + "\n"


def generate(out_dir: Path = CLUSTER_DIR, cluster: str = CLUSTER_MACRO,
             migrations_dir: Path = MIGRATIONS_DIR) -> dict[str, str]:
    """{file name: text} of the clustered variant of every migration file."""
    tables, intakes = replicated_tables(migrations_dir), null_tables(migrations_dir)
    return {p.name: render_file(p, tables, cluster, intakes)
            for p in sorted(migrations_dir.glob("*.sql")) if _MIGRATION.match(p.name)}


def write(files: dict[str, str], out_dir: Path = CLUSTER_DIR) -> list[str]:
    """Write the files, delete generated ones whose migration is gone; returns what changed."""
    out_dir.mkdir(parents=True, exist_ok=True)
    changed = []
    for stale in out_dir.glob("*.sql"):
        if stale.name not in files:
            stale.unlink()
            changed.append(stale.name)
    for name, text in files.items():
        target = out_dir / name
        if not target.exists() or target.read_text() != text:
            target.write_text(text)
            changed.append(name)
    return sorted(changed)


def drift(files: dict[str, str], out_dir: Path = CLUSTER_DIR) -> list[str]:
    """Names whose committed file differs from (or is missing for) the generated text."""
    committed = {p.name: p.read_text() for p in out_dir.glob("*.sql")} if out_dir.exists() else {}
    return sorted(n for n in set(files) | set(committed) if files.get(n) != committed.get(n))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tokenpulse sql-cluster-ddl", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run(parser.parse_args(argv))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cluster", default=CLUSTER_MACRO,
                        help="cluster name in ON CLUSTER / Distributed (default '{cluster}': each server's macro)")
    parser.add_argument("--out", type=Path, default=CLUSTER_DIR, help="output directory (default sql/cluster/)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if the files in --out differ from what would be generated")


def run(args) -> int:
    try:
        files = generate(args.out, args.cluster)
    except UnsupportedStatement as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.check:
        stale = drift(files, args.out)
        for name in stale:
            print(f"  out of date: {args.out / name}")
        print("up to date" if not stale else "regenerate with: tokenpulse sql-cluster-ddl")
        return 1 if stale else 0
    changed = write(files, args.out)
    for name in changed:
        print(f"  wrote {args.out / name}")
    print(f"{len(files)} files in {args.out}, {len(changed)} changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
