"""Fixtures shared by unit and integration tests."""

import pytest
from testkit.otlp_builders import SpanFactory


@pytest.fixture
def span_factory() -> SpanFactory:
    return SpanFactory()
