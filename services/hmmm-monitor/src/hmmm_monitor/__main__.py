"""``python -m hmmm_monitor``: stdout carries the JSON-lines message log, so logs go to stderr."""

from __future__ import annotations

from hmmm_monitor.app import create_app
from hmmm_monitor.settings import Settings
from meshcommon.logs import configure_logging
from meshcommon.serve import run_http


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_level, service="hmmm-monitor")
    run_http(create_app(settings), settings)


if __name__ == "__main__":
    main()
