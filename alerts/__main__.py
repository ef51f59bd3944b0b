"""Run the alert dispatcher:  python -m tokenpulse.alerts

Reads settings, loads the hooks file (resolving its environment variables once, here),
opens the outbox under the state directory and consumes alerts until SIGTERM.
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

from tokenpulse.settings import Settings

from .config import HooksConfigError, load_hooks
from .dispatcher import AlertDispatcher

log = logging.getLogger("tokenpulse.alerts")


def _exit_on_signal(signum, _frame) -> None:
    raise SystemExit(0)


def outbox_path(settings: Settings) -> Path:
    return settings.alerts.outbox_file or settings.paths.state_dir / "alerts" / "outbox.sqlite"


def run(settings: Settings) -> None:
    try:
        hooks = load_hooks(settings.alerts.hooks_file, environ=os.environ)
    except HooksConfigError as exc:
        log.error("%s", exc)
        raise SystemExit(2) from None
    path = outbox_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    dispatcher = AlertDispatcher(settings.kafka, settings.alerts, hooks, path)
    signal.signal(signal.SIGTERM, _exit_on_signal)  # `tokenpulse down` sends SIGTERM
    dispatcher.run()  # logs "alert dispatcher running: N hooks" once consuming; closes on exit


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    run(Settings())
