"""Configuration files: `tokenpulse config-check | key-hash`."""

from __future__ import annotations

import argparse

from ..settings import Settings


def cmd_config_check(settings: Settings, args) -> int:
    """Validate every declarative config file and report all errors at once."""
    from pydantic import ValidationError

    from tokenpulse.alerts.config import load_hooks
    from tokenpulse.core.pricing_sql import check_stream_catalog_size
    from tokenpulse.insights.runner import InsightsSettings
    from tokenpulse.schemas.budgets import load_budget_config
    from tokenpulse.schemas.detectors import load_detector_config
    from tokenpulse.schemas.edge_profiles import load_edge_profiles
    from tokenpulse.schemas.growth import load_growth_config
    from tokenpulse.schemas.pricing import load_price_table
    from tokenpulse.schemas.senders import load_senders
    from tokenpulse.schemas.tenants import load_tenants

    from ..stack import dispatcher_environ

    def prices(path):
        table = load_price_table(path, settings.stream.catalog_file)
        if settings.stream.price_lookup == "case":  # "auto" switches to the lookup function when large
            check_stream_catalog_size(table)
        local = sum(1 for p in table.prices if p.origin == "local")
        return f"{local} local prices over {len(table.prices) - local} catalog entries ({settings.stream.catalog_file})"

    checks = (
        ("prices", settings.stream.prices_file, prices),
        ("senders", settings.collector.senders_file, lambda p: f"{len(load_senders(p).senders)} sender conventions"),
        ("edge", settings.stream.edge_profiles_file, lambda p: f"{len(load_edge_profiles(p).profiles)} profiles"),
        ("tenants", settings.collector.tenants_file, lambda p: f"{len(load_tenants(p).tenants)} tenants"),
        ("detectors", settings.detector.detectors_file,
         lambda p: f"{len(load_detector_config(p).overrides)} overrides"),
        # The dispatcher reads hook secrets from its environment; check them as it will.
        ("hooks", settings.alerts.hooks_file, lambda p: f"{len(load_hooks(p, environ=dispatcher_environ()).hooks)} hooks"),
        ("budgets", InsightsSettings().budgets_file, lambda p: f"{len(load_budget_config(p).budgets)} budgets"),
        ("growth", InsightsSettings().growth_file, lambda p: f"{len(load_growth_config(p).expected_growth)} planned rollouts"),
    )
    errors = 0
    for label, path, check in checks:
        try:
            print(f"  ok    {label:<9} {path} ({check(path)})")
        except (ValidationError, OSError, ValueError) as exc:
            errors += 1
            print(f"  error {label:<9} {path}\n{exc}")
    return 1 if errors else 0


def cmd_key_hash(settings: Settings, args) -> int:
    from tokenpulse.schemas.tenants import hash_key

    print(hash_key(args.key))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    cfg = sub.add_parser("config-check", help="validate prices and tenants files, report every error")
    cfg.set_defaults(func=cmd_config_check)

    kh = sub.add_parser("key-hash", help="print the SHA-256 digest of an API key for the tenants file")
    kh.add_argument("key")
    kh.set_defaults(func=cmd_key_hash)
