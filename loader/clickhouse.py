"""Open the one data-access layer: a clickhouse-connect client.

`chdb:///dir` opens the embedded ClickHouse engine (chDB) on disk; `http(s)://...` talks
to a ClickHouse server. The same SQL files serve both. chDB allows one process per data
directory: a second process gets an error, which we turn into a plain explanation.
"""

from __future__ import annotations

import threading

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ProgrammingError

from tokenpulse.settings import ClickHouseSettings, PathSettings


class StoreBusy(RuntimeError):
    """The embedded store is open in another process."""


def open_client(ch: ClickHouseSettings, paths: PathSettings, *, create_database: bool = True) -> Client:
    dsn = ch.resolved_dsn(paths)
    try:
        if create_database:
            bootstrap = clickhouse_connect.get_client(dsn=dsn)
            on_cluster = f" ON CLUSTER '{ch.cluster}'" if ch.cluster else ""  # the database on every node
            bootstrap.command(f"CREATE DATABASE IF NOT EXISTS `{ch.database}`{on_cluster}")
        return clickhouse_connect.get_client(dsn=dsn, database=ch.database)
    except ProgrammingError as exc:
        if dsn.startswith("chdb:") and "Unable to open the chdb engine" in str(exc):
            raise StoreBusy(
                f"the embedded ClickHouse store {dsn[len('chdb://'):]} is open in another process "
                "(chDB allows one process per data directory). While the stack runs, the loader owns it: "
                "use `tokenpulse sql`, which goes through the loader, or stop the stack with `tokenpulse down`."
            ) from None
        raise


class LockedClient:
    """Serialises calls on one client: the loader thread and the query server share it."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.lock = threading.Lock()

    def insert(self, table: str, rows: list[list], column_names: list[str]) -> None:
        with self.lock:
            self.client.insert(table, rows, column_names=column_names)

    def raw_insert(self, table: str, body: bytes, fmt: str, settings: dict | None = None) -> None:
        """Insert bytes that ClickHouse parses itself (e.g. JSONEachRow)."""
        with self.lock:
            self.client.raw_insert(table, None, body, settings=settings, fmt=fmt)

    def query(self, sql: str, parameters: dict | None = None):
        with self.lock:
            return self.client.query(sql, parameters=parameters)

    def command(self, sql: str, parameters: dict | None = None):
        with self.lock:
            return self.client.command(sql, parameters=parameters)
