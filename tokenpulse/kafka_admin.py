"""Create the registry's topics (idempotent) and check the broker answers."""

from __future__ import annotations

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from tokenpulse.schemas.topics import ALL_TOPICS

from .settings import KafkaSettings


def apply_topics(kafka: KafkaSettings, replication_factor: int | None = None) -> list[str]:
    """Create missing topics; returns the names created. Replication factor and min ISR come
    from the settings (1 / 1 for the single-node stack, 3 / 2 on the three-broker cluster)
    unless a replication factor is given."""
    rf = replication_factor or kafka.replication_factor
    min_isr = min(kafka.min_insync_replicas, rf)
    admin = KafkaAdminClient(**kafka.client_options(), client_id="tokenpulse-admin")
    try:
        existing = set(admin.list_topics())
        missing = [t for t in ALL_TOPICS if t.name not in existing]
        new = [
            NewTopic(t.name, t.partitions, rf, topic_configs={"retention.ms": str(t.retention_ms),
                                                          "cleanup.policy": t.cleanup_policy,
                                                          "min.insync.replicas": str(min_isr)})
            for t in missing
        ]
        if new:
            try:
                admin.create_topics(new)
            except TopicAlreadyExistsError:
                pass  # another process created it meanwhile
        return [t.name for t in missing]
    finally:
        admin.close()


def broker_ready(kafka: KafkaSettings) -> bool:
    try:
        admin = KafkaAdminClient(**kafka.client_options(), client_id="tokenpulse-probe", request_timeout_ms=3000)
    except Exception:  # noqa: BLE001 - any failure means "not ready yet"
        return False
    try:
        admin.list_topics()
        return True
    except Exception:  # noqa: BLE001
        return False
    finally:
        admin.close()
