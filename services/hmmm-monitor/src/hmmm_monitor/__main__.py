"""``python -m hmmm_monitor`` serves the monitor (stdout carries the JSON-lines message log,
so logs go to stderr); ``python -m hmmm_monitor doctor ...`` runs the doctor."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["doctor"]:
        # Imported here: the doctor talks HTTP only and must not load libp2p or FastAPI.
        from hmmm_monitor.doctor import main as doctor_main

        return doctor_main(argv[1:])

    from hmmm_monitor.app import create_app
    from hmmm_monitor.settings import Settings
    from meshcommon.logs import configure_logging
    from meshcommon.serve import run_http
    from meshcommon.swarm_key import SwarmKeyError

    settings = Settings()
    configure_logging(settings.log_level, service="hmmm-monitor")
    try:
        app = create_app(settings)
    except SwarmKeyError as exc:  # one line, nothing started yet
        raise SystemExit(f"hmmm-monitor: refusing to start: {exc}") from None
    run_http(app, settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
