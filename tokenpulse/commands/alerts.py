"""`tokenpulse resolve-alerts`: close incidents whose owner lost track of them."""

from __future__ import annotations

import argparse
import sys

from ..settings import Settings


def cmd_resolve_alerts(settings: Settings, args) -> int:
    from tokenpulse.alerts.manual_resolve import choose, now_ms, open_incidents, resolved_state
    from tokenpulse.insights.runner import KafkaAlertPublisher, PublishFailed, query_fn_for_settings
    from tokenpulse.loader.clickhouse import StoreBusy

    from ..sql_client import QueryError

    try:
        incidents = open_incidents(query_fn_for_settings(settings), args.kind)
    except (QueryError, StoreBusy) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    now = now_ms()
    picked = choose(incidents, quiet_s=args.quiet_s, now_ms=now, dedupe_keys=args.dedupe_key or (), tenant=args.tenant)
    print(f"{len(incidents)} open {args.kind} incident(s); {len(picked)} quiet for >= {args.quiet_s} s"
          + (" and matching the filters" if args.dedupe_key or args.tenant else ""))
    for i in picked:
        print(f"  {i.dedupe_key}  opened {(now - i.opened_ms) / 60000:,.0f} min ago, "
              f"quiet {(now - i.last_activity_ms) / 60000:,.0f} min")
    if not picked or args.dry_run:
        return 0
    publish = KafkaAlertPublisher(settings.kafka, client_id="tokenpulse-resolve-alerts")
    try:
        publish([resolved_state(i, now, args.reason) for i in picked])
    except PublishFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        publish.close()
    print(f"published {len(picked)} resolved state(s) to the alerts topic")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    ra = sub.add_parser(
        "resolve-alerts", help="resolve open incidents whose owner lost track of them (after a state reset)",
        description="An incident stays open (paged, its session's breaker tripped) until whoever opened it "
                    "resolves it. After the loop detector lost its state (a --no-resume start, or a switch of "
                    "TOKENPULSE_DETECTOR_ENGINE), nobody will. This publishes the resolved state of the open "
                    "incidents whose session has been quiet long enough to the alerts topic, under their own "
                    "alert ids: hooks get their resolve (PagerDuty closes the page), breakers clear, and the "
                    "alerts table records it. Run it while the stack runs; try --dry-run first.",
        epilog="example: tokenpulse resolve-alerts --quiet-s 3600 --dry-run")
    ra.add_argument("--kind", default="runaway_loop", help="incident kind (default runaway_loop; also budget, growth)")
    ra.add_argument("--quiet-s", type=int, default=3600,
                    help="only incidents whose session made no call for this long (default 3600, the detector's "
                         "session TTL; no session: since it opened)")
    ra.add_argument("--dedupe-key", action="append", help="only this incident (repeatable), e.g. acme/runaway_loop/repetition/s-1")
    ra.add_argument("--tenant", help="only this tenant's incidents")
    ra.add_argument("--reason", default="detector state reset", help="recorded in the summary and evidence")
    ra.add_argument("--dry-run", action="store_true", help="list what would be resolved, publish nothing")
    ra.set_defaults(func=cmd_resolve_alerts)
