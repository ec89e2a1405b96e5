"""``python -m chorus_agent``: run one agent (configuration from ``AGENT_*``)."""

from __future__ import annotations

from chorus_agent.app import create_app
from chorus_agent.settings import Settings
from meshcommon.logs import configure_logging
from meshcommon.serve import run_http
from meshcommon.swarm_key import SwarmKeyError


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_level, service=f"agent[{settings.name}]")
    try:
        app = create_app(settings)
    except SwarmKeyError as exc:  # one line, nothing started yet
        raise SystemExit(f"agent[{settings.name}]: refusing to start: {exc}") from None
    run_http(app, settings)


if __name__ == "__main__":
    main()
