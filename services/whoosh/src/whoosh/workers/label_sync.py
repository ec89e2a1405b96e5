"""Runs label sync inside WHOOSH: at start-up, periodically, and on demand; exports metrics."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from prometheus_client import CollectorRegistry

from meshcommon.aio import cancel_and_wait
from whoosh.adapters.gitea import GiteaClient
from whoosh.domain.labels.report import StatusReport, SyncReport
from whoosh.domain.labels.required import required_labels
from whoosh.metrics import LabelSyncMetrics
from whoosh.settings import Settings
from whoosh.workers.label_syncer import LabelSyncer

log = logging.getLogger(__name__)

OFF_MESSAGE = (
    "Gitea label sync is off: set WHOOSH_GITEA_URL (and WHOOSH_GITEA_REPOS, WHOOSH_GITEA_TOKEN)"
)


class LabelSyncDisabled(RuntimeError):
    """Raised by sync()/status() when WHOOSH_GITEA_URL is not configured."""

    def __init__(self) -> None:
        super().__init__(OFF_MESSAGE)


class LabelSyncService:
    def __init__(
        self,
        settings: Settings,
        open_gitea: Callable[[], GiteaClient] | None,
        *,
        metrics_registry: CollectorRegistry,
    ) -> None:
        """``open_gitea`` makes the Gitea client on first use (None: label sync is off).
        Late, so that a Gitea URL the client cannot use is a failed run, reported like any
        other, and never stops WHOOSH from starting."""
        self.settings = settings
        self._open_gitea = open_gitea
        self._metrics = LabelSyncMetrics(metrics_registry)
        self._client: GiteaClient | None = None
        self._task: asyncio.Task[None] | None = None
        # One sync at a time: a periodic run racing a manual one would create labels twice.
        self._lock = asyncio.Lock()

    @property
    def enabled(self) -> bool:
        return self._open_gitea is not None

    async def start(self) -> None:
        if not self.enabled:
            log.info(OFF_MESSAGE)
            return
        if not self.settings.gitea_repos:
            log.warning("label sync: WHOOSH_GITEA_REPOS is empty, nothing to keep in sync")
        if self.settings.gitea_token is None:
            log.warning("label sync: WHOOSH_GITEA_TOKEN is not set; Gitea will refuse writes")
        # In the background: a slow or down Gitea must not delay WHOOSH's start-up.
        self._task = asyncio.create_task(self._loop(), name="whoosh-label-sync")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def sync(self, dry_run: bool = False, fix_drift: bool | None = None) -> SyncReport:
        """Raises LabelSyncDisabled, or LabelsConfigError for a bad WHOOSH_LABELS_EXTRA."""
        syncer = self._syncer()
        fix = self.settings.labels_fix_drift if fix_drift is None else fix_drift
        async with self._lock:
            report = await syncer.sync(self.settings.gitea_repos, dry_run=dry_run, fix_drift=fix)
        self._metrics.record(report, real_sync=not dry_run)
        return report

    async def status(self) -> StatusReport:
        """Lists and compares; never writes."""
        report = await self._syncer().status(self.settings.gitea_repos)
        self._metrics.record(report, real_sync=False)
        return report

    def _syncer(self) -> LabelSyncer:
        if self._open_gitea is None:
            raise LabelSyncDisabled()
        # Read per run: a bad WHOOSH_LABELS_EXTRA is reported by each run, not fatal.
        required = required_labels(self.settings.labels_extra)
        if self._client is None:
            self._client = self._open_gitea()
        return LabelSyncer(self._client, required)

    async def _loop(self) -> None:
        interval = self.settings.labels_sync_interval_s
        if not self.settings.labels_sync_on_start:
            if interval <= 0:
                return
            await asyncio.sleep(interval)
        while True:
            try:
                report = await self.sync()
                log.info(
                    "label sync: %d/%d repositories complete, %d created, %d updated, %d failed",
                    report.repos_complete, len(report.repos), report.labels_created,
                    report.labels_updated, report.repos_failed,
                )  # fmt: skip
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # config errors included: log, keep WHOOSH running
                log.error("label sync run failed: %s", exc)
            if interval <= 0:  # 0 disables the periodic runs (start-up only)
                return
            await asyncio.sleep(interval)
