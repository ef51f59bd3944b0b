"""Apply and revert the numbered migrations in sql/migrations.

Files are `NNNN_verb_object.up.sql` / `.down.sql`. Applied versions are recorded in the
`schema_migrations` table, so `up` is idempotent and `down` reverts newest first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from clickhouse_connect.driver.client import Client

from tokenpulse.sql import MIGRATIONS_DIR

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.(up|down)\.sql$")
LEDGER_DDL = """
CREATE TABLE IF NOT EXISTS schema_migrations
(version UInt32, name String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3))
ENGINE = MergeTree ORDER BY version
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


def applied_versions(client: Client) -> set[int]:
    client.command(LEDGER_DDL)
    return {row[0] for row in client.query("SELECT version FROM schema_migrations").result_rows}


def migrate_up(client: Client, migrations: list[Migration] | None = None) -> list[Migration]:
    done = applied_versions(client)
    applied = []
    for m in migrations if migrations is not None else discover():
        if m.version in done:
            continue
        for statement in split_statements(m.up.read_text()):
            client.command(statement)
        client.insert("schema_migrations", [[m.version, m.name]], column_names=["version", "name"])
        applied.append(m)
    return applied


def migrate_down(client: Client, steps: int = 1, migrations: list[Migration] | None = None) -> list[Migration]:
    done = applied_versions(client)
    reverted = []
    for m in sorted(migrations if migrations is not None else discover(), key=lambda m: -m.version):
        if len(reverted) >= steps:
            break
        if m.version not in done:
            continue
        for statement in split_statements(m.down.read_text()):
            client.command(statement)
        client.command("DELETE FROM schema_migrations WHERE version = {v:UInt32}", parameters={"v": m.version})
        reverted.append(m)
    return reverted
