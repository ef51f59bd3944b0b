"""The clustered DDL (sql/cluster/) is generated from the single-node migrations: committed
files equal the generator's output, every statement parses in ClickHouse (chDB), and replaying
the clustered sequence gives the same columns, types, keys and views as the single-node one.

No ClickHouse cluster (Keeper, remote shards) can run here, so the replay turns each clustered
statement back into something one node can run: ON CLUSTER removed, Replicated*MergeTree
without its Keeper path, Distributed replaced by a Merge table over the same local table (it
carries its own column list and takes the same ALTERs, as the Distributed table does)."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import clickhouse_connect
import pytest

from tokenpulse.loader import migrations as runner
from tokenpulse.loader.migrations import discover, migrate_down, migrate_up, split_statements
from tokenpulse.sql import MIGRATIONS_DIR, cluster_ddl
from tokenpulse.sql.cluster_ddl import CLUSTER_DIR, UnsupportedStatement


@pytest.fixture(scope="module")
def engine():
    client = clickhouse_connect.get_client(dsn="chdb://:memory:")
    yield client
    client.close()


@pytest.fixture()
def database(engine):
    """A fresh database in the shared in-memory engine; returns a client bound to it."""
    name = f"cluster_ddl_{uuid.uuid4().hex[:8]}"
    engine.command(f"CREATE DATABASE {name}")
    client = clickhouse_connect.get_client(dsn="chdb://:memory:", database=name)
    yield client
    client.close()
    engine.command(f"DROP DATABASE IF EXISTS {name}")


def generated_statements() -> list[tuple[str, str]]:
    return [(p.name, s) for p in sorted(CLUSTER_DIR.glob("*.sql")) for s in split_statements(p.read_text())]


# ----------------------------------------------------------------- no drift


def test_committed_cluster_ddl_is_what_the_generator_writes():
    stale = cluster_ddl.drift(cluster_ddl.generate())
    assert not stale, (f"sql/cluster/ is out of date for {stale}: run `tokenpulse sql-cluster-ddl` "
                       "after changing sql/migrations or sql/cluster_ddl.py")


def test_every_migration_file_has_a_clustered_variant():
    sources = {p.name for p in MIGRATIONS_DIR.glob("*.sql")}
    assert sources == {p.name for p in CLUSTER_DIR.glob("*.sql")}


# ----------------------------------------------------------------- syntax


def test_every_generated_statement_is_valid_clickhouse(engine):
    statements = generated_statements()
    assert len(statements) > 40
    for name, stmt in statements:
        formatted = engine.query("SELECT formatQuery({q:String})", parameters={"q": stmt}).result_rows[0][0]
        if not formatted.startswith("INSERT"):
            assert "ON CLUSTER `{cluster}`" in formatted, f"{name}: DDL without ON CLUSTER: {formatted[:120]}"


def test_a_real_cluster_name_replaces_the_macro(engine):
    m = next(m for m in discover() if m.name == "create_token_spans")
    stmts = runner.statements(m, "up", cluster="prod_ch")
    assert all("{cluster}" not in s for s in stmts)
    assert "ON CLUSTER 'prod_ch'" in stmts[0] and "Distributed('prod_ch'" in stmts[1]
    for stmt in stmts:
        engine.query("SELECT formatQuery({q:String})", parameters={"q": stmt})


# ----------------------------------------------------------------- same schema as one node


def declustered(stmt: str) -> str:
    """What one node can run in place of a clustered statement (see module docstring)."""
    stmt = re.sub(r" ON CLUSTER '[^']*'", "", stmt)
    stmt = re.sub(r"ENGINE = Replicated(\w+MergeTree)\('[^']*', '[^']*'(?:, )?", r"ENGINE = \1(", stmt)
    return re.sub(r"ENGINE = Distributed\('[^']*', currentDatabase\(\), (\w+), .*\)\s*$",
                  r"ENGINE = Merge(currentDatabase(), '^\1$')", stmt)


def schema(client, names: dict[str, str]) -> dict:
    """Columns, engine and keys of each table / view, keyed by the single-node name."""
    out = {}
    for name, real in names.items():
        cols = client.query(
            "SELECT name, type, position, default_kind, default_expression FROM system.columns "
            "WHERE database = currentDatabase() AND table = {t:String} ORDER BY position", parameters={"t": real}).result_rows
        table = client.query(
            "SELECT engine, sorting_key, primary_key, partition_key, as_select FROM system.tables "
            "WHERE database = currentDatabase() AND name = {t:String}", parameters={"t": real}).result_rows
        out[name] = {"columns": cols, "table": table}
    return out


def single_node_objects(client) -> list[str]:
    return [r[0] for r in client.query("SELECT name FROM system.tables WHERE database = currentDatabase() "
                                       "AND name != 'schema_migrations' ORDER BY name").result_rows]


def test_clustered_sequence_gives_the_single_node_schema(engine, database):
    engine.command(f"CREATE DATABASE {database.database}_single")
    single = clickhouse_connect.get_client(dsn="chdb://:memory:", database=database.database + "_single")
    try:
        migrate_up(single)
        for name, stmt in generated_statements():
            if name.endswith(".up.sql"):
                database.command(declustered(stmt))
        objects = single_node_objects(single)
        tables = cluster_ddl.replicated_tables()
        assert {"token_spans", "spend_1m", "focus_spend"} <= set(objects)

        # Each table's front (Distributed, here a Merge proxy) has exactly the single-node columns.
        front = schema(database, {n: n for n in objects})
        expected = schema(single, {n: n for n in objects})
        for n in objects:
            assert front[n]["columns"] == expected[n]["columns"], n
        # ... and so does its _local table, with the same engine (minus Replicated), keys and version.
        local = schema(database, {n: n + "_local" for n in tables})
        for n in tables:
            assert local[n]["columns"] == expected[n]["columns"], n
            engine_l, *keys_l, _ = local[n]["table"][0]
            engine_s, *keys_s, _ = expected[n]["table"][0]
            assert engine_l == engine_s and keys_l == keys_s, n
        view_select = lambda sch, db: sch["focus_spend"]["table"][0][4].replace(f"{db}.", "")
        assert view_select(front, database.database) == view_select(expected, single.database)

        # Engine arguments (the ReplacingMergeTree version column) survive the rewrite.
        for n in tables:
            full = lambda c, t: c.query("SELECT engine_full FROM system.tables WHERE database = currentDatabase() "
                                        "AND name = {t:String}", parameters={"t": t}).result_rows[0][0]
            assert full(database, n + "_local") == full(single, n), n

        # Down, newest first: both end with nothing but the ledger.
        migrate_down(single, steps=100)
        for m in sorted(discover(), key=lambda m: -m.version):
            for stmt in split_statements((CLUSTER_DIR / m.down.name).read_text()):
                database.command(declustered(stmt))
        assert single_node_objects(single) == [] and single_node_objects(database) == []
    finally:
        single.close()
        engine.command(f"DROP DATABASE IF EXISTS {database.database}_single")


def test_sharding_keys_keep_every_copy_of_a_row_on_one_shard():
    """ReplacingMergeTree dedups within a shard only: the sharding key must be a function of the
    sort key, or two deliveries of one span could land on two shards and both be counted."""
    for path in sorted(MIGRATIONS_DIR.glob("*.up.sql")):
        for stmt in split_statements(path.read_text()):
            table = cluster_ddl.CreateTable.parse(stmt)
            if not table or table.engine == "Null":  # an intake stores nothing: nothing to shard
                continue
            key = cluster_ddl.sharding_key(table)
            used = set(re.findall(r"\b([a-z_][a-z0-9_]*)\b(?!\s*\()", key))
            sort_columns = {c for expr in table.order_by for c in re.findall(r"\b([a-z_][a-z0-9_]*)\b(?!\s*\()", expr)}
            assert used and used <= sort_columns, f"{table.name}: sharding key {key} not within {table.order_by}"
            if "tenant" in table.order_by:
                assert key == "cityHash64(tenant)"  # a tenant's rows together: per-tenant joins stay local


# ----------------------------------------------------------------- ordering and refusals


def sql_only(stmt: str) -> str:
    return "\n".join(line for line in stmt.splitlines() if not line.startswith("--"))


def write_migrations(tmp: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (tmp / name).write_text(text)
    return tmp


def test_order_adds_after_the_local_table_drops_before_it(tmp_path):
    d = write_migrations(tmp_path, {
        "0001_create_t.up.sql": "CREATE TABLE IF NOT EXISTS t\n(\n    tenant String, -- who (a 'tenant')\n"
                                "    v UInt64\n)\nENGINE = ReplacingMergeTree(v)\nORDER BY (tenant)",
        "0001_create_t.down.sql": "DROP TABLE IF EXISTS t",
        "0002_alter_t.up.sql": "ALTER TABLE t ADD COLUMN IF NOT EXISTS x UInt8 DEFAULT 0, ADD INDEX ix x TYPE minmax",
        "0002_alter_t.down.sql": "ALTER TABLE t DROP INDEX ix, DROP COLUMN IF EXISTS x",
    })
    files = cluster_ddl.generate(migrations_dir=d)
    up1 = split_statements(files["0001_create_t.up.sql"])
    assert [re.search(r"CREATE TABLE .*", s).group(0) for s in up1] == [
        "CREATE TABLE IF NOT EXISTS t_local ON CLUSTER '{cluster}'", "CREATE TABLE IF NOT EXISTS t ON CLUSTER '{cluster}'"]
    assert "-- who (a 'tenant')" in up1[0]  # comments with quotes and parentheses pass through
    assert [sql_only(s) for s in split_statements(files["0001_create_t.down.sql"])] == [
        "DROP TABLE IF EXISTS t ON CLUSTER '{cluster}' SYNC", "DROP TABLE IF EXISTS t_local ON CLUSTER '{cluster}' SYNC"]
    up2 = [sql_only(s) for s in split_statements(files["0002_alter_t.up.sql"])]
    assert up2[0].startswith("ALTER TABLE t_local") and "ADD INDEX" in up2[0]
    assert up2[1].startswith("ALTER TABLE t ON") and "ADD INDEX" not in up2[1]  # no indexes on Distributed
    down2 = [sql_only(s) for s in split_statements(files["0002_alter_t.down.sql"])]
    assert down2[0].startswith("ALTER TABLE t ON") and "DROP INDEX" not in down2[0]
    assert down2[1].startswith("ALTER TABLE t_local") and "DROP INDEX" in down2[1]


def test_a_table_without_tenant_shards_by_its_whole_sort_key(tmp_path):
    d = write_migrations(tmp_path, {
        "0001_create_q.up.sql": "CREATE TABLE q (topic String, p UInt32, o UInt64) ENGINE = MergeTree ORDER BY (topic, p, o)",
        "0001_create_q.down.sql": "DROP TABLE q"})
    up = cluster_ddl.generate(migrations_dir=d)["0001_create_q.up.sql"]
    assert "ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')" in up
    assert "Distributed('{cluster}', currentDatabase(), q_local, cityHash64(topic, p, o))" in up


def test_an_intake_and_its_view_exist_on_every_node_and_write_through_the_distributed_table(tmp_path):
    d = write_migrations(tmp_path, {
        "0001_create_t.up.sql": "CREATE TABLE t (tenant String, v UInt64) ENGINE = MergeTree ORDER BY tenant",
        "0001_create_t.down.sql": "DROP TABLE t",
        "0002_create_t_json.up.sql": "CREATE TABLE t_json (tenant String, v Int64) ENGINE = Null;\n"
                                     "CREATE MATERIALIZED VIEW IF NOT EXISTS t_mv TO t AS SELECT tenant, toUInt64(v) AS v FROM t_json",
        "0002_create_t_json.down.sql": "DROP VIEW IF EXISTS t_mv;\nDROP TABLE IF EXISTS t_json"})
    files = cluster_ddl.generate(migrations_dir=d)
    up, down = files["0002_create_t_json.up.sql"], files["0002_create_t_json.down.sql"]
    assert "CREATE TABLE IF NOT EXISTS t_json ON CLUSTER '{cluster}'" in up and "ENGINE = Null" in up
    assert "t_json_local" not in up and "Distributed" not in up  # stores nothing: no shards of it
    assert "CREATE MATERIALIZED VIEW IF NOT EXISTS t_mv ON CLUSTER '{cluster}' TO t AS" in up  # t: the Distributed table
    assert "DROP TABLE IF EXISTS t_json ON CLUSTER '{cluster}' SYNC" in down and "t_json_local" not in down


@pytest.mark.parametrize("statement, why", [
    ("CREATE MATERIALIZED VIEW mv AS SELECT 1", "no clustered rewrite"),  # no TO: an inner table
    ("CREATE MATERIALIZED VIEW mv TO elsewhere AS SELECT 1", "not a replicated table"),
    ("CREATE TABLE m (a UInt8) ENGINE = Memory", "engine Memory"),
    ("ALTER TABLE unknown_table ADD COLUMN a UInt8", "not a table created by a migration"),
    ("RENAME TABLE t TO u", "no clustered rewrite"),
])
def test_statements_without_a_safe_rewrite_are_refused_by_file_name(tmp_path, statement, why):
    d = write_migrations(tmp_path, {
        "0001_create_t.up.sql": "CREATE TABLE t (tenant String) ENGINE = MergeTree ORDER BY tenant",
        "0001_create_t.down.sql": "DROP TABLE t",
        "0002_new_thing.up.sql": statement, "0002_new_thing.down.sql": "DROP TABLE IF EXISTS t"})
    with pytest.raises(UnsupportedStatement, match=rf"0002_new_thing.up.sql: .*{why}"):
        cluster_ddl.generate(migrations_dir=d)


def test_check_mode_reports_drift_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "cluster"
    assert cluster_ddl.main(["--out", str(out)]) == 0
    assert cluster_ddl.main(["--out", str(out), "--check"]) == 0
    first = sorted(out.glob("*.up.sql"))[0]
    first.write_text(first.read_text() + "-- hand edit\n")
    (out / "9999_orphan.up.sql").write_text("SELECT 1")
    assert cluster_ddl.main(["--out", str(out), "--check"]) == 1
    report = capsys.readouterr().out
    assert first.name in report and "9999_orphan.up.sql" in report
    assert first.read_text().endswith("-- hand edit\n")


# ----------------------------------------------------------------- the runner in cluster mode


class RecordingClient:
    """Stands in for a cluster connection only to record what the runner sends, in order;
    no cluster runs here (see module docstring)."""

    def __init__(self):
        self.sent: list[str] = []
        self.inserts: list[tuple] = []

    def command(self, sql, parameters=None):
        self.sent.append(sql)

    def query(self, sql, parameters=None):
        result = type("Result", (), {})()
        result.result_rows = [(version,) for version, *_ in self.inserts]  # the ledger's versions
        return result

    def insert(self, table, rows, column_names, settings=None):
        self.inserts.append((rows[0][0], table, settings))


def test_runner_applies_the_clustered_form_with_a_replicated_ledger(engine):
    client = RecordingClient()
    applied = migrate_up(client, cluster="prod_ch")
    assert [m.version for m in applied] == [m.version for m in discover()]
    assert "ON CLUSTER 'prod_ch'" in client.sent[0] and "ReplicatedMergeTree(" in client.sent[0]
    assert "{shard}" not in client.sent[0]  # one ledger replicated to every server
    engine.query("SELECT formatQuery({q:String})", parameters={"q": client.sent[0]})
    expected = [s for m in discover() for s in runner.statements(m, "up", "prod_ch")]
    assert client.sent[1:] == expected
    assert all(settings == {"insert_deduplicate": 0} for _, _, settings in client.inserts)
    assert migrate_up(client, cluster="prod_ch") == []  # idempotent: the ledger says all applied


def test_the_runner_applies_exactly_the_committed_cluster_files():
    for m in discover():
        for direction, path in (("up", m.up), ("down", m.down)):
            committed = [sql_only(s) for s in split_statements((CLUSTER_DIR / path.name).read_text())]
            assert [sql_only(s) for s in runner.statements(m, direction, "{cluster}")] == committed, path.name


# ----------------------------------------------------------------- repricing on a cluster


def test_rollup_rebuild_deletes_on_the_shards_and_inserts_synchronously(engine):
    """`tokenpulse reprice` on a cluster: a Distributed table takes no DELETE, so the rollups'
    DELETE must go to every shard's local table; the INSERTs must land before the next step."""
    from tokenpulse.loader.reprice import rebuild_rollups_statements, with_sync_insert

    single = rebuild_rollups_statements()
    assert [s.split()[0] for s in map(cluster_ddl._strip_comments, single)] == ["DELETE", "INSERT"]
    clustered = [engine.query("SELECT formatQuery({q:String})", parameters={"q": s}).result_rows[0][0]
                 for s in rebuild_rollups_statements("prod_ch")]
    assert len(clustered) == 2
    assert clustered[0].startswith("DELETE FROM spend_1m_local ON CLUSTER prod_ch WHERE")
    assert clustered[1].startswith("INSERT INTO spend_1m (") and "insert_distributed_sync = 1" in clustered[1]
    assert with_sync_insert("INSERT INTO t SELECT 1\nSETTINGS a = 1").endswith("SETTINGS a = 1, insert_distributed_sync = 1")
    assert with_sync_insert("DELETE FROM t WHERE 1") == "DELETE FROM t WHERE 1"
    from tokenpulse.loader.reprice import reprice_spans_sql
    from tokenpulse.schemas.edge_profiles import load_edge_profiles
    from tokenpulse.schemas.pricing import load_price_table
    reprice = engine.query("SELECT formatQuery({q:String})", parameters={
        "q": with_sync_insert(reprice_spans_sql(load_price_table(), load_edge_profiles(),
                                                [("openai", "gpt-4o-2024-08-06")]))}).result_rows[0][0]
    assert reprice.endswith("SETTINGS cast_keep_nullable = 1, insert_distributed_sync = 1")
