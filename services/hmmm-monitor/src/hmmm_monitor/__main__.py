"""``python -m hmmm_monitor``: stdout carries the JSON-lines message log, so logs go to stderr."""

from __future__ import annotations

import logging
import sys

import uvicorn

from hmmm_monitor.app import create_app
from hmmm_monitor.settings import Settings


def main() -> None:
    settings = Settings()
    logging.basicConfig(
        level=settings.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    app = create_app(settings)
    # log_config=None: keep our stderr handler instead of uvicorn's default config.
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        log_level=settings.log_level.lower(),
    )


if __name__ == "__main__":
    main()
