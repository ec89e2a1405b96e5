"""The composition root: every part of WHOOSH, built from its ``Settings``.

Nothing else constructs collaborators; tests swap an adapter by passing it here.
"""

from __future__ import annotations

import httpx
from prometheus_client import CollectorRegistry

from whoosh.adapters.gitea import GiteaClient, RetryPolicy
from whoosh.settings import Settings
from whoosh.workers.label_sync import LabelSyncService


def build_label_sync(
    settings: Settings,
    metrics_registry: CollectorRegistry,
    *,
    gitea_transport: httpx.AsyncBaseTransport | None = None,
    gitea_retry: RetryPolicy | None = None,
) -> LabelSyncService:
    """Label sync alone (the ``labels`` CLI needs nothing else); off without a Gitea URL."""

    def open_gitea() -> GiteaClient:
        return GiteaClient(settings, retry=gitea_retry, transport=gitea_transport)

    return LabelSyncService(
        settings, open_gitea if settings.gitea_url else None, metrics_registry=metrics_registry
    )
