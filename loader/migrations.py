"""Apply and revert the numbered migrations in sql/migrations.

Files are `NNNN_verb_object.up.sql` / `.down.sql`. Applied versions are recorded in the
`schema_migrations` table, so `up` is idempotent and `down` reverts newest first.

With `cluster` (TOKENPULSE_CLICKHOUSE_CLUSTER) the same migrations are applied in their
clustered form (sql/cluster_ddl.py: ON CLUSTER, Replicated*MergeTree + Distributed; the
committed sql/cluster/ files are exactly this text), and the ledger is one table replicated to
every node, so any node answers "which versions are applied" the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from clickhouse_connect.driver.client import Client

from tokenpulse.sql import MIGRATIONS_DIR, cluster_ddl

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.(up|down)\.sql$")
LEDGER_DDL = """
CREATE TABLE IF NOT EXISTS schema_migrations
(version UInt32, name String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3))
ENGINE = MergeTree ORDER BY version
"""
# No {shard} in the path: all nodes of the cluster are replicas of one ledger.
CLUSTER_LEDGER_DDL = """
CREATE TABLE IF NOT EXISTS schema_migrations ON CLUSTER '{cluster}'
(version UInt32, name String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3))
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{database}/schema_migrations', '{replica}') ORDER BY version
"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    up: Path
    down: Path


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found: dict[int, dict[str, Path]] = {}
    names: dict[int, str] = {}
    for path in directory.glob("*.sql"):
        m = _NAME.match(path.name)
        if not m:
            raise ValueError(f"{path.name}: migration files are named NNNN_verb_object.up.sql / .down.sql")
        version = int(m.group(1))
        if names.setdefault(version, m.group(2)) != m.group(2):
            raise ValueError(f"two migrations share number {version:04d}: renumber one before merging")
        found.setdefault(version, {})[m.group(3)] = path
    out = []
    for version in sorted(found):
        pair = found[version]
        if set(pair) != {"up", "down"}:
            raise ValueError(f"migration {version:04d}_{names[version]} needs both .up.sql and .down.sql")
        out.append(Migration(version, names[version], pair["up"], pair["down"]))
    return out


def split_statements(sql: str) -> list[str]:
    """Split on semicolons that end a line; comments-only chunks are dropped."""
    chunks = re.split(r";\s*(?:\n|$)", sql)
    return [c.strip() for c in chunks if any(l.strip() and not l.strip().startswith("--") for l in c.splitlines())]


def statements(migration: Migration, direction: str, cluster: str | None = None) -> list[str]:
    """The statements one direction of a migration runs: as written, or clustered."""
    path = migration.up if direction == "up" else migration.down
    if not cluster:
        return split_statements(path.read_text())
    return cluster_ddl.rewrite_file(path, cluster_ddl.replicated_tables(path.parent), cluster,
                                    cluster_ddl.null_tables(path.parent))


def applied_versions(client: Client, cluster: str | None = None) -> set[int]:
    client.command(CLUSTER_LEDGER_DDL.replace("{cluster}", cluster) if cluster else LEDGER_DDL)
    return {row[0] for row in client.query("SELECT version FROM schema_migrations").result_rows}


def migrate_up(client: Client, migrations: list[Migration] | None = None,
               cluster: str | None = None) -> list[Migration]:
    done = applied_versions(client, cluster)
    applied = []
    for m in migrations if migrations is not None else discover():
        if m.version in done:
            continue
        for statement in statements(m, "up", cluster):
            client.command(statement)
        # A replicated insert identical to an earlier one (up, down, up) would be deduplicated away.
        client.insert("schema_migrations", [[m.version, m.name]], column_names=["version", "name"],
                      settings={"insert_deduplicate": 0} if cluster else None)
        applied.append(m)
    return applied


def migrate_down(client: Client, steps: int = 1, migrations: list[Migration] | None = None,
                 cluster: str | None = None) -> list[Migration]:
    done = applied_versions(client, cluster)
    reverted = []
    for m in sorted(migrations if migrations is not None else discover(), key=lambda m: -m.version):
        if len(reverted) >= steps:
            break
        if m.version not in done:
            continue
        for statement in statements(m, "down", cluster):
            client.command(statement)
        client.command("DELETE FROM schema_migrations WHERE version = {v:UInt32}", parameters={"v": m.version})
        reverted.append(m)
    return reverted
