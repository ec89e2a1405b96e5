"""``python -m chorus_agent``: run one agent (configuration from ``AGENT_*``)."""

from __future__ import annotations

import uvicorn

from chorus_agent.app import create_app
from chorus_agent.settings import Settings
from meshcommon.logs import configure_logging


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_level, service=f"agent[{settings.name}]")
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=False,
    )


if __name__ == "__main__":
    main()
