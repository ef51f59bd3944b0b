from decimal import Decimal

import pytest
from pydantic import ValidationError

from tokenpulse.schemas.edge_profiles import RuntimeProfile, edge_call_cost_usd, load_edge_profiles

BOX = dict(runtime_id="box", hardware_price_usd="3652.5", depreciation_months=12, idle_watts="100",
           load_watts="500", pue="1.2", energy_usd_per_kwh="0.25", expected_utilization="0.5",
           effective_from="2025-01-01", source="test figures")


def test_hand_computed_edge_call():
    p = RuntimeProfile(**BOX)
    # hardware: 3652.5 / (12 * 30.4375 d * 86.4e6 ms * 0.5) = 3652.5 / 15778800000 ms
    assert p.hardware_usd_per_busy_ms == Decimal("0.000000231481")
    # energy: (500 + 100 * 0.5/0.5) W * 1.2 * $0.25/kWh / 3.6e9 W·ms/kWh = 5e-8 $/ms
    assert p.energy_usd_per_busy_ms == Decimal("0.000000050000")
    assert edge_call_cost_usd(p, busy_ms=2000) == Decimal("0.000562962")


def test_idle_above_load_is_refused():
    with pytest.raises(ValidationError, match="idle_watts exceeds load_watts"):
        RuntimeProfile(**{**BOX, "idle_watts": "600"})


def test_shipped_profiles_are_valid_and_sourced():
    profiles = load_edge_profiles().profiles
    assert profiles and all(p.source for p in profiles)
    assert all(p.usd_per_busy_ms > 0 for p in profiles)
