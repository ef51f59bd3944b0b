"""What the test tiers, the bench and the drills share: fake writers (collector_fakes), OTLP
payload builders (otlp_builders), hostile payloads (fuzz_payloads), an independent reference
pricer over the shipped YAML (price_fixtures) and the report's seeded store (report_data).
`tests/` is on pytest's path (pyproject.toml), so tests import `testkit.<module>`."""
