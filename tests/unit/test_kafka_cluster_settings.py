"""Settings of the three-broker test profile and the replication settings (no JVM, no network)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tokenpulse.kafka_cluster import KafkaCluster, KafkaClusterSettings
from tokenpulse.settings import KafkaSettings, PathSettings, Settings


def test_cluster_points_the_stack_at_three_brokers_with_rf3_min_isr2(tmp_path):
    cluster = KafkaCluster(Settings(paths=PathSettings(state_dir=tmp_path)),
                           KafkaClusterSettings(broker_ports=[1, 2, 3], controller_ports=[4, 5, 6]))
    assert cluster.environment() == {
        "TOKENPULSE_KAFKA_RUN_LOCAL_BROKER": "false",
        "TOKENPULSE_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1,127.0.0.1:2,127.0.0.1:3",
        "TOKENPULSE_KAFKA_REPLICATION_FACTOR": "3",
        "TOKENPULSE_KAFKA_MIN_INSYNC_REPLICAS": "2",
    }
    k = cluster.kafka_settings()
    assert (k.replication_factor, k.min_insync_replicas, k.run_local_broker) == (3, 2, False)


@pytest.mark.parametrize("ports", [
    {"broker_ports": [1, 2], "controller_ports": [4, 5, 6]},  # one node short
    {"broker_ports": [1, 2, 3], "controller_ports": [3, 5, 6]},  # a port used twice
])
def test_cluster_ports_are_checked(ports):
    with pytest.raises(ValidationError):
        KafkaClusterSettings(**ports)


def test_min_isr_above_replication_factor_is_refused():
    assert KafkaSettings().replication_factor == 1  # the single-node stack
    with pytest.raises(ValidationError, match="no acks=all write could ever succeed"):
        KafkaSettings(replication_factor=1, min_insync_replicas=2)


def test_bootstrap_addresses_are_every_server_in_order_with_the_local_host_for_a_bare_port():
    kafka = KafkaSettings(bootstrap_servers="broker-1:9092, [::1]:9093,:9094")
    assert kafka.bootstrap_addresses() == [("broker-1", 9092), ("::1", 9093), ("127.0.0.1", 9094)]


def test_a_bootstrap_server_without_a_port_is_on_kafkas_default_port():
    # librdkafka and the Java client accept "broker"; the writer's reachability probe must not
    # fail on it (it used to raise ValueError out of a failing write)
    kafka = KafkaSettings(bootstrap_servers="broker-1,[::1]")
    assert kafka.bootstrap_addresses() == [("broker-1", 9092), ("::1", 9092)]
