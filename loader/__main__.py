"""Run the loader:  python -m tokenpulse.loader  (started by `tokenpulse up`).

Applies pending migrations, then consumes priced spans, rollups and dead letters into
ClickHouse. With the embedded store it also serves `tokenpulse sql` on loopback.
"""

from __future__ import annotations

import logging
import signal

from tokenpulse.processes import announce_ready
from tokenpulse.settings import Settings

from . import query_server
from .clickhouse import LockedClient, open_client
from .kafka_to_clickhouse import KafkaToClickHouse
from .migrations import migrate_up

log = logging.getLogger("tokenpulse.loader")


def token_path(settings: Settings):
    return settings.paths.state_dir / "loader.token"


def run(settings: Settings) -> None:
    client = open_client(settings.clickhouse, settings.paths)
    for m in migrate_up(client, cluster=settings.clickhouse.cluster or None):
        log.info("applied migration %04d_%s", m.version, m.name)
    store = LockedClient(client)
    loader = KafkaToClickHouse(settings.kafka, settings.loader, store)
    server = None
    if settings.clickhouse.is_embedded(settings.paths):
        token = query_server.write_token(token_path(settings))
        server = query_server.start(store, loader.stats, settings.loader.query_host, settings.loader.query_port, token)
        log.info("query endpoint on http://%s:%d/query", settings.loader.query_host, settings.loader.query_port)
    signal.signal(signal.SIGTERM, lambda *_: loader.stop())
    signal.signal(signal.SIGINT, lambda *_: loader.stop())
    log.info("loading %s into %s", settings.kafka.bootstrap_servers, settings.clickhouse.resolved_dsn(settings.paths))
    announce_ready()
    try:
        loader.run()
    finally:
        if server is not None:
            server.shutdown()
        log.info("loader stopped after %d batches", loader.stats.batches)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    run(Settings())
