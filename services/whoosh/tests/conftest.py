"""Shared fixtures for WHOOSH tests."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import respx
from prometheus_client import CollectorRegistry

# --import-mode=importlib does not put test directories on sys.path; the helpers need it.
sys.path.insert(0, str(Path(__file__).parent))

from whoosh_fake_gitea import FAST, GITEA_LABELS_PATH, FakeGitea, gitea_settings

from whoosh.wiring import build_label_sync
from whoosh.workers.label_sync_service import LabelSyncService


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def gitea() -> Iterator[FakeGitea]:
    """A fake Gitea at http://gitea.test, answering through respx."""
    fake = FakeGitea()
    with respx.mock(assert_all_called=False) as router:
        router.route(host="gitea.test", path__regex=GITEA_LABELS_PATH).mock(side_effect=fake.handle)
        yield fake


@pytest.fixture
async def label_sync_factory(
    anyio_backend: str,
) -> AsyncIterator[Callable[..., LabelSyncService]]:
    """Label sync services against the fake Gitea (fast retries), stopped after the test."""
    made: list[LabelSyncService] = []

    def make(repos: list[str], **overrides: Any) -> LabelSyncService:
        service = build_label_sync(
            gitea_settings(repos, **overrides), CollectorRegistry(), gitea_retry=FAST
        )
        made.append(service)
        return service

    yield make
    for service in made:
        await service.stop()
