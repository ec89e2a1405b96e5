"""Serving a service's FastAPI app: the same uvicorn set-up for all three."""

from __future__ import annotations

from typing import Any

from meshcommon.config import ServiceSettings


def run_http(app: Any, settings: ServiceSettings) -> None:
    """Serve ``app`` until SIGINT/SIGTERM. Logging must be configured already
    (``meshcommon.logs.configure_logging``): ``log_config=None`` keeps that one format,
    and access logs are off (health checks and scrapes would drown everything else)."""
    import uvicorn

    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        log_level=settings.log_level.lower(),
        access_log=False,
    )
