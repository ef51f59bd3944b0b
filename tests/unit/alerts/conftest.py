"""Fixtures for the alert dispatcher tests."""

import pytest
from alert_testkit import RecordingServer


@pytest.fixture
def http_server():
    """Factory: http_server(fail_first=2, fail_status=500) -> a started RecordingServer."""
    servers: list[RecordingServer] = []

    def start(**kwargs) -> RecordingServer:
        servers.append(RecordingServer(**kwargs))
        return servers[-1]

    yield start
    for s in servers:
        s.close()
