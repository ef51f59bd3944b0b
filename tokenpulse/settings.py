"""Runtime settings of each deployable, resolved once at the entry point and passed down.

Order of resolution: explicit argument > environment variable > default below.
Environment variables are `TOKENPULSE_<COMPONENT>_<FIELD>`, e.g.
`TOKENPULSE_KAFKA_BOOTSTRAP_SERVERS`, `TOKENPULSE_CLICKHOUSE_DSN`. Library code never
reads os.environ itself.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[1]
# A source checkout (what `make` works in) has the project file at its root; an installed
# package has none there (REPO_ROOT is then site-packages).
IN_CHECKOUT = (REPO_ROOT / "pyproject.toml").is_file()


def shipped(package: str, name: str) -> Path:
    """A data file installed with a tokenpulse package (package data in pyproject.toml): found
    beside that package's modules, in a checkout and in site-packages alike. Only the parent
    package is imported to find it."""
    spec = importlib.util.find_spec(f"tokenpulse.{package}")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"tokenpulse.{package} is not installed as a package, so its {name} cannot be found: "
                                "reinstall tokenpulse (pip install tokenpulse) or run from a checkout")
    return Path(next(iter(spec.submodule_search_locations))) / name


def _default_dir(checkout_name: str, xdg_variable: str, xdg_default: str) -> Path:
    """In a checkout: <repo>/.cache or .state (git-ignored). Installed: the XDG base directory
    (~/.cache/tokenpulse, ~/.local/state/tokenpulse), never inside site-packages."""
    if IN_CHECKOUT:
        return REPO_ROOT / checkout_name
    return Path(os.environ.get(xdg_variable) or Path.home() / xdg_default) / "tokenpulse"


def _config(prefix: str) -> SettingsConfigDict:
    return SettingsConfigDict(env_prefix=f"TOKENPULSE_{prefix}_", frozen=True, extra="forbid")


class PathSettings(BaseSettings):
    """Where downloads and runtime state live (both git-ignored)."""

    model_config = _config("PATHS")
    cache_dir: Path = _default_dir(".cache", "XDG_CACHE_HOME", ".cache")
    state_dir: Path = _default_dir(".state", "XDG_STATE_HOME", ".local/state")

    @property
    def kafka_jars(self) -> Path:
        return self.cache_dir / "jars" / "kafka" / "lib"

    @property
    def flink_jars(self) -> Path:
        return self.cache_dir / "jars" / "flink" / "lib"

    @property
    def logs(self) -> Path:
        return self.state_dir / "logs"

    @property
    def pids(self) -> Path:
        return self.state_dir / "pids"


class KafkaSettings(BaseSettings):
    model_config = _config("KAFKA")
    bootstrap_servers: str = "127.0.0.1:19092"
    # Passed through to clients for a secured cluster (PLAINTEXT locally).
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    # TLS to the brokers (security_protocol SSL or SASL_SSL), PEM files: the CA bundle that
    # signed the brokers' certificates, and a client certificate + key for mutual TLS. The
    # Flink jobs take one PEM keystore file, so give the key and certificate in one file
    # (ssl_certfile; ssl_keyfile unset or the same path) when the stream jobs need it.
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_password: SecretStr | None = None  # of an encrypted client key
    # `tokenpulse up` starts a local single-node broker unless this is false (use your own
    # cluster by setting bootstrap_servers and run_local_broker=false).
    run_local_broker: bool = True
    # Local broker only: the KRaft controller port.
    controller_port: int = 19093
    broker_heap: str = "512m"
    # Topics the stack creates (kafka_admin.apply_topics): 1 for the local single-node broker;
    # 3 / 2 on a three-broker cluster (tokenpulse/kafka_cluster.py), so acks=all survives one
    # broker down. min_insync_replicas is set per topic (min.insync.replicas).
    replication_factor: int = Field(default=1, ge=1)
    min_insync_replicas: int = Field(default=1, ge=1)
    # Producer batch per partition. Collectors flush after every export request, so a
    # request's records go out in as few produce requests as this allows: 1 MiB measured
    # 2.1x the records/s of kafka-python's 16 KiB default (bench/collector_stages.py).
    producer_batch_bytes: int = Field(default=1024 * 1024, ge=16 * 1024, le=8 * 1024 * 1024)
    # The stream jobs' own Kafka clients (Flink's connector, the Java client). Its defaults answer
    # a fetch as soon as one byte is there and send produce requests of 16 KiB, so at volume the
    # broker serves many small requests (bench/README.md, "The hot path against Kafka's own
    # limit"). A fetch waits for fetch_min_bytes or fetch_max_wait_ms, whichever comes first:
    # the wait only applies when little arrives, and it adds to alert latency once per topic hop.
    stream_fetch_min_bytes: int = Field(default=1, ge=1, le=64 * 1024 * 1024)
    stream_fetch_max_wait_ms: int = Field(default=500, ge=0, le=5_000)
    stream_producer_batch_bytes: int = Field(default=16 * 1024, ge=16 * 1024, le=8 * 1024 * 1024)
    stream_compression: Literal["none", "lz4", "zstd", "snappy", "gzip"] = "none"

    def bootstrap_addresses(self) -> list[tuple[str, int]]:
        """(host, port) of every bootstrap server, in order (a bare ":port" means 127.0.0.1; a
        host without a port means Kafka's 9092, as the Kafka clients read it)."""
        out = []
        for server in self.bootstrap_servers.split(","):
            host, sep, port = server.strip().rpartition(":")
            if not (sep and port.isdigit()):  # "broker", "[::1]": no port given
                host, port = server.strip(), "9092"
            out.append((host.strip("[]") or "127.0.0.1", int(port)))
        return out

    def client_options(self) -> dict:
        """kafka-python keyword arguments shared by producers, consumers and admin."""
        opts: dict = {"bootstrap_servers": self.bootstrap_servers.split(","), "security_protocol": self.security_protocol}
        if self.sasl_mechanism:
            opts["sasl_mechanism"] = self.sasl_mechanism
            opts["sasl_plain_username"] = self.sasl_username
            opts["sasl_plain_password"] = self.sasl_password.get_secret_value() if self.sasl_password else None
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            if getattr(self, name) is not None:
                opts[name] = str(getattr(self, name))
        if self.ssl_password is not None:
            opts["ssl_password"] = self.ssl_password.get_secret_value()
        return opts

    def librdkafka_options(self) -> dict:
        """The same connection and security settings for librdkafka (confluent-kafka)."""
        opts: dict = {"bootstrap.servers": self.bootstrap_servers, "security.protocol": self.security_protocol}
        if self.sasl_mechanism:
            opts["sasl.mechanism"] = self.sasl_mechanism
            opts["sasl.username"] = self.sasl_username
            opts["sasl.password"] = self.sasl_password.get_secret_value() if self.sasl_password else None
        for name, key in (("ssl_cafile", "ssl.ca.location"), ("ssl_certfile", "ssl.certificate.location"),
                          ("ssl_keyfile", "ssl.key.location")):
            if getattr(self, name) is not None:
                opts[key] = str(getattr(self, name))
        if self.ssl_password is not None:
            opts["ssl.key.password"] = self.ssl_password.get_secret_value()
        return {k: v for k, v in opts.items() if v is not None}

    @model_validator(mode="after")
    def _check_replication(self) -> KafkaSettings:
        if self.min_insync_replicas > self.replication_factor:
            raise ValueError(f"min_insync_replicas ({self.min_insync_replicas}) > replication_factor "
                             f"({self.replication_factor}): no acks=all write could ever succeed")
        return self

    @model_validator(mode="after")
    def _check_ssl(self) -> KafkaSettings:
        uses_ssl = self.ssl_cafile or self.ssl_certfile or self.ssl_keyfile or self.ssl_password
        # kafka-python ignores ssl_* under a plaintext protocol: say so instead of connecting in clear.
        if uses_ssl and self.security_protocol.upper() not in ("SSL", "SASL_SSL"):
            raise ValueError(f"ssl_* settings are set but security_protocol is {self.security_protocol}: "
                             "use SSL or SASL_SSL")
        if (self.ssl_keyfile or self.ssl_password) and not self.ssl_certfile:
            raise ValueError("ssl_keyfile / ssl_password need ssl_certfile (the client certificate)")
        return self


class ClickHouseSettings(BaseSettings):
    """`dsn` is `chdb:///<dir>` for the embedded engine, or `http(s)://user:pass@host:8123` for a server."""

    model_config = _config("CLICKHOUSE")
    dsn: str = ""  # empty: embedded store under <state_dir>/clickhouse
    database: str = "tokenpulse"
    # A ClickHouse cluster's name (remote_servers): migrations are then applied ON CLUSTER in
    # their clustered form (Replicated*MergeTree + Distributed, sql/cluster/). Empty: one node.
    cluster: str = Field(default="", pattern=r"^([A-Za-z0-9_.-]*|\{cluster\})$")

    def resolved_dsn(self, paths: PathSettings) -> str:
        return self.dsn or f"chdb://{paths.state_dir / 'clickhouse'}"

    def is_embedded(self, paths: PathSettings) -> bool:
        return self.resolved_dsn(paths).startswith("chdb:")


class KafkaInput(BaseModel):
    """One Kafka topic an OpenTelemetry Collector's kafka exporter writes traces to.

    Kafka carries no API key, so the tenant is configured here: only that tenant's otelcol
    may be able to write this topic (Kafka ACLs are the tenant boundary for this input)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    topic: str = Field(min_length=1)
    encoding: Literal["otlp_proto", "otlp_json"] = "otlp_proto"  # the kafka exporter's names
    tenant: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    consumer_group: str = "tokenpulse-otlp-ingest"


class CollectorSettings(BaseSettings):
    model_config = _config("COLLECTOR")
    host: str = "127.0.0.1"
    port: int = 4318  # the OTLP/HTTP default, so SDK exporters work with zero config
    tenants_file: Path = shipped("schemas", "tenants.demo.yaml")
    max_body_bytes: int = 8 * 1024 * 1024
    heartbeat_interval_ms: int = Field(default=1000, ge=100)
    produce_timeout_s: float = 10.0
    collector_id: str = "collector-local"
    # How each sender (instrumentation package) writes usage on the wire, matched by the
    # span's instrumentation scope: schemas/senders.yaml (validated by `tokenpulse config-check`).
    senders_file: Path = shipped("schemas", "senders.yaml")
    # Circuit breaker board: the collector follows the alerts topic and answers
    # GET /v1/breakers (long poll) with the caller's tenant's sessions told to stop.
    breaker_board: bool = True
    breaker_max_wait_s: float = Field(default=25.0, gt=0, le=60)
    # OTLP/gRPC beside OTLP/HTTP (4317 is the OTLP/gRPC default); largest message = max_body_bytes.
    grpc_enabled: bool = True
    grpc_port: int = 4317
    # otelcol kafka exporter topics to ingest, a JSON list, e.g.
    # '[{"topic": "otlp_spans", "encoding": "otlp_proto", "tenant": "acme"}]'
    kafka_inputs: list[KafkaInput] = []
    # Export requests (HTTP and gRPC together) decoded, mapped and written at once. More are
    # refused at once (HTTP 503 + Retry-After, gRPC UNAVAILABLE; exporters retry both) rather
    # than queued, so request bodies in memory stay below about this x max_body_bytes.
    max_inflight_requests: int = Field(default=64, ge=1, le=4096)
    busy_retry_after_s: int = Field(default=1, ge=1, le=300)  # sent with those refusals
    # A connection with no request in progress for this long is closed (keep-alive between
    # exports, or one that never sends a request); an idle connection costs a few KiB, not a
    # thread. A long poll is a request in progress, not idle.
    idle_timeout_s: float = Field(default=75.0, gt=0, le=3600)
    # TLS on both OTLP ports (PEM files, TLS 1.2+): certificate and key, both or neither.
    # With tls_client_ca_file, clients must also present a certificate signed by that CA
    # (mutual TLS); the API key is still required.
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    tls_client_ca_file: Path | None = None

    @property
    def tls_enabled(self) -> bool:
        return self.tls_cert_file is not None

    @model_validator(mode="after")
    def _check_tls(self) -> CollectorSettings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("set both tls_cert_file and tls_key_file, or neither")
        if self.tls_client_ca_file is not None and self.tls_cert_file is None:
            raise ValueError("tls_client_ca_file (mutual TLS) needs tls_cert_file and tls_key_file")
        # Fail at start with the setting's name, not at the first connection.
        for name in ("tls_cert_file", "tls_key_file", "tls_client_ca_file"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise ValueError(f"{name}: {path} is not a file")
        return self


class EdgeCollectorSettings(BaseSettings):
    """The edge collector (collectors/edge.py): OTLP/HTTP into a durable local buffer that a
    forwarder drains to Kafka, so apps beside an edge runtime never wait for the WAN."""

    model_config = _config("EDGE")
    host: str = "127.0.0.1"
    port: int = 4319  # beside the main collector's 4318, so both can run on one machine
    buffer_dir: Path | None = None  # None: <state_dir>/edge-buffer
    # Payload bytes (Kafka key + value) the buffer may hold; beyond it new spans get 503.
    max_buffer_bytes: int = Field(default=1 << 30, ge=1 << 20)
    forward_batch_max: int = Field(default=500, ge=1, le=10_000)
    tenants_file: Path = shipped("schemas", "tenants.demo.yaml")
    max_body_bytes: int = 8 * 1024 * 1024
    collector_id: str = "edge-local"
    # Wait between forward attempts while Kafka is unreachable (doubling, with jitter).
    retry_backoff_min_ms: int = Field(default=200, ge=1)
    retry_backoff_max_ms: int = Field(default=30_000, ge=1)
    # How long one forwarded batch may wait for Kafka's acks before it counts as failed.
    delivery_timeout_ms: int = Field(default=30_000, ge=5_000)
    # Sent as Retry-After with the 503 that refuses spans when the buffer is full.
    refused_retry_after_s: int = Field(default=10, ge=1)

    def resolved_buffer_dir(self, paths: PathSettings) -> Path:
        return self.buffer_dir or paths.state_dir / "edge-buffer"


class StreamJobSettings(BaseSettings):
    model_config = _config("STREAM")
    parallelism: int = Field(default=2, ge=1)
    # Flink's pipeline.object-reuse for the cost job: chained operators hand rows on instead of
    # deep-copying each one. Measured (bench/README.md, "A binary format on the raw topic"): the
    # copies were 21 % of the job's samples by default and 8 % with reuse; the job's CPU per span
    # fell 15-28 % in two stage_cpu runs. Safe while every Java function takes external types
    # (Row, String, Long: converted afresh per call) and keeps only objects it built itself, and
    # the assembler's input has no ORDER BY (Flink's sort buffer keeps input rows by reference);
    # tests/integration/test_trace_assembler.py compares the assembler's output with it on and off.
    object_reuse: bool = True
    # Bounded out-of-orderness: how long after a span's end we still count it on time.
    # OTel SDKs batch spans for seconds (BatchSpanProcessor defaults to 5 s), so keep this
    # above the exporters' delay. Later spans are not lost: they take the late path.
    watermark_delay_ms: int = Field(default=10_000, ge=0)
    checkpoint_interval_ms: int = Field(default=10_000, ge=1000)
    # How long a span id is remembered for deduplication.
    dedup_ttl_ms: int = Field(default=3_600_000, ge=60_000)
    # Your prices (negotiated rates, corrections, local models), over the comprehensive catalog
    # generated from genai-prices (`tokenpulse prices-import-genai-prices`); set the catalog to
    # an empty value to price from the local file alone.
    prices_file: Path = shipped("schemas", "prices.yaml")
    catalog_file: Path | None = shipped("schemas", "prices.catalog.yaml")
    # How the job finds a call's price: "case" (generated SQL, fastest for a small hand-written
    # table), "lookup" (the catalog in a Java function, constant cost for any size, match rules),
    # or "auto" (case for a small local table alone, lookup otherwise). bench/README.md has the numbers.
    price_lookup: Literal["auto", "case", "lookup"] = "auto"
    # Trace assembly (issue #17): how long (event time after a call's end) a call whose
    # conversation or agent is still unknown waits for its ancestors' spans to amend it; an
    # agent's invoke_agent span ends when the agent does, so this bounds the agent runs that
    # get attributed after the fact. State per trace is capped at max_spans_per_trace context
    # spans and as many waiting calls (counted in the job's metrics beyond that).
    attribution_pending_ms: int = Field(default=1_800_000, ge=0)
    max_spans_per_trace: int = Field(default=2048, ge=16)

    edge_profiles_file: Path = shipped("schemas", "edge_profiles.yaml")
    consumer_group: str = "tokenpulse-cost-rollup"
    # "local": the job keeps checkpoints under <state_dir>/flink/checkpoints and resumes from
    # the newest one itself (MiniCluster, the standalone cluster on one machine). "cluster": it
    # leaves checkpoint storage and recovery to the Flink cluster's configuration (e.g. S3 +
    # the Kubernetes operator's last-state upgrades; infra/production/).
    checkpoints: Literal["local", "cluster"] = "local"
    # Resume from the newest retained checkpoint under <state_dir>/flink/checkpoints.
    resume: bool = True

    @field_validator("catalog_file", mode="before")
    @classmethod
    def _no_catalog(cls, v):
        return None if isinstance(v, str) and not v.strip() else v


class DetectorJobSettings(BaseSettings):
    """The runaway-loop detection job (stream_jobs/loop_detection.py)."""

    model_config = _config("DETECTOR")
    detectors_file: Path = shipped("schemas", "detectors.yaml")
    parallelism: int = Field(default=1, ge=1)
    consumer_group: str = "tokenpulse-loop-detection"
    # Where the rules run: "jvm" (stream_jobs/jvm/.../loops, ~10x the throughput, no Python
    # workers) or "python" (stream_jobs/loop_rules.py in keyed Python functions, the reference
    # the JVM port is tested against). bench/README.md has both measured.
    engine: Literal["jvm", "python"] = "jvm"
    # Python operators take records in bundles of at most this long: shorter bundles cut alert
    # latency, longer ones raise throughput (state moves per bundle; bench/README.md).
    bundle_time_ms: int = Field(default=100, ge=1)
    # Session states the Python worker keeps cached (about 2-5 KB each).
    state_cache_entries: int = Field(default=20_000, ge=1000)
    checkpoint_interval_ms: int = Field(default=10_000, ge=1000)
    checkpoints: Literal["local", "cluster"] = "local"  # as StreamJobSettings.checkpoints
    resume: bool = True


class AlertSettings(BaseSettings):
    """The alert dispatcher (alerts/): hooks file and its durable outbox."""

    model_config = _config("ALERTS")
    hooks_file: Path = shipped("alerts", "hooks.demo.yaml")
    consumer_group: str = "tokenpulse-alert-dispatcher"
    # Delivery state (what was sent to which hook) lives here; defaults under state_dir.
    outbox_file: Path | None = None
    # Finished incidents are forgotten this long after their resolve was delivered. Keep it
    # above the alerts topic's retention (7 days), or a redelivered old alert pages again.
    outbox_retention_days: int = Field(default=30, ge=8)


class LoaderSettings(BaseSettings):
    model_config = _config("LOADER")
    consumer_group: str = "tokenpulse-loader"
    batch_max_rows: int = Field(default=10_000, ge=1)
    batch_max_ms: int = Field(default=1000, ge=10)
    # Store on-time priced spans as their own JSON, converted by ClickHouse (sql/migrations/0016);
    # false: every record through the Python conversion (loader/rows.py), as before issue #15.
    json_intake: bool = True
    # The Kafka client the loader reads with (loader/kafka_source.py): librdkafka (C) or the
    # pure-Python kafka-python it used before issue #15.
    kafka_client: Literal["librdkafka", "kafka-python"] = "librdkafka"
    # The loader owns the embedded store, so it also answers `tokenpulse sql` here.
    query_host: str = "127.0.0.1"
    query_port: int = 18124


class Settings(BaseSettings):
    """All sections; each deployable reads only the sections it needs."""

    model_config = SettingsConfigDict(frozen=True, extra="forbid")
    paths: PathSettings = Field(default_factory=PathSettings)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    clickhouse: ClickHouseSettings = Field(default_factory=ClickHouseSettings)
    collector: CollectorSettings = Field(default_factory=CollectorSettings)
    edge: EdgeCollectorSettings = Field(default_factory=EdgeCollectorSettings)
    stream: StreamJobSettings = Field(default_factory=StreamJobSettings)
    detector: DetectorJobSettings = Field(default_factory=DetectorJobSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    loader: LoaderSettings = Field(default_factory=LoaderSettings)


# --- settings of single tools (not part of Settings: each reads its own prefix) -----------

class InsightsSettings(BaseSettings):
    """The insights runner (python -m tokenpulse.insights). Kafka and ClickHouse come from
    tokenpulse.settings.Settings (TOKENPULSE_KAFKA_*, TOKENPULSE_CLICKHOUSE_*)."""

    model_config = SettingsConfigDict(env_prefix="TOKENPULSE_INSIGHTS_", frozen=True, extra="forbid")
    # Seconds between evaluations. Budgets are judged on minute rollups, so less than 60 s
    # only re-reads the same minutes.
    interval_s: int = Field(default=60, ge=5, le=3600)
    budgets_file: Path = shipped("schemas", "budgets.yaml")
    growth_file: Path = shipped("schemas", "growth.yaml")  # growth, Jevons and savings rules
    # Re-read budgets_file / growth_file when they change (checked before every cycle).
    reload_config: bool = True
    # Minutes younger than this are not judged yet: a 1-minute window closes after the
    # stream's watermark delay (10 s) and reaches ClickHouse after the loader's batch (1 s).
    # Counting a half-loaded minute would understate the 5-minute burn window.
    settle_s: int = Field(default=30, ge=0, le=600)
    # Evaluators to run: names in REGISTRY or "package.module:factory" paths (JSON list).
    evaluators: list[str] = ["budgets", "growth", "jevons", "savings"]
    client_id: str = "tokenpulse-insights"
    publish_timeout_s: float = Field(default=10.0, gt=0)
    # Unpublished alerts kept for the next cycle while Kafka is down (oldest dropped beyond).
    max_pending_alerts: int = Field(default=10_000, ge=100)
    # Largest JSON payload of one SQL insert (the loader's query endpoint takes 1 MiB).
    insert_chunk_bytes: int = Field(default=512 * 1024, ge=4096, le=1024 * 1024)


class FlinkClusterSettings(BaseSettings):
    """The local standalone cluster (TOKENPULSE_FLINK_CLUSTER_<FIELD>)."""

    model_config = SettingsConfigDict(env_prefix="TOKENPULSE_FLINK_CLUSTER_", frozen=True, extra="forbid")
    host: str = "127.0.0.1"
    rest_port: int = 18081
    rpc_port: int = 16123
    taskmanagers: int = Field(default=2, ge=1)
    slots: int = Field(default=2, ge=1)  # per TaskManager
    jobmanager_memory: str = "1024m"
    taskmanager_memory: str = "1536m"
    heartbeat_timeout_ms: int = Field(default=15_000, ge=4_000)
    start_timeout_s: float = 120.0
    submit_timeout_s: float = 300.0


KAFKA_CLUSTER_NODES = 3  # tokenpulse.kafka_cluster: each node broker + controller


class KafkaClusterSettings(BaseSettings):
    """The local three-node cluster (TOKENPULSE_KAFKA_CLUSTER_<FIELD>; ports as JSON lists)."""

    model_config = SettingsConfigDict(env_prefix="TOKENPULSE_KAFKA_CLUSTER_", frozen=True, extra="forbid")
    broker_ports: list[int] = [19192, 19193, 19194]
    controller_ports: list[int] = [19195, 19196, 19197]
    # Three JVMs beside the rest of the stack on a shared 2-core box: keep each small.
    heap: str = "384m"
    start_timeout_s: float = Field(default=120.0, gt=0)
    replication_factor: int = 3
    min_insync_replicas: int = 2

    @model_validator(mode="after")
    def _check(self) -> KafkaClusterSettings:
        if len(self.broker_ports) != KAFKA_CLUSTER_NODES or len(self.controller_ports) != KAFKA_CLUSTER_NODES:
            raise ValueError(f"give {KAFKA_CLUSTER_NODES} broker_ports and {KAFKA_CLUSTER_NODES} controller_ports")
        if len({*self.broker_ports, *self.controller_ports}) != 2 * KAFKA_CLUSTER_NODES:
            raise ValueError("broker and controller ports must all differ")
        return self
