"""``python -m chorus_agent``: run one agent (configuration from ``AGENT_*``)."""

from __future__ import annotations

from chorus_agent.app import create_app
from chorus_agent.settings import Settings
from meshcommon.logs import configure_logging
from meshcommon.serve import run_http


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_level, service=f"agent[{settings.name}]")
    run_http(create_app(settings), settings)


if __name__ == "__main__":
    main()
