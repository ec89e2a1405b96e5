"""Runs label sync inside WHOOSH: at start-up, periodically, and on demand (one run at a
time); exports metrics. What one run does to the repositories is ``label_applier``'s."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from meshcommon.aio import cancel_and_wait
from whoosh.domain.labels.report import StatusReport, SyncReport
from whoosh.domain.labels.required import LabelSpec, required_labels
from whoosh.metrics import LabelSyncMetrics
from whoosh.workers.label_applier import LabelApplier

log = logging.getLogger(__name__)

OFF_MESSAGE = (
    "Gitea label sync is off: set WHOOSH_GITEA_URL (and WHOOSH_GITEA_REPOS, WHOOSH_GITEA_TOKEN)"
)


class LabelSyncDisabled(RuntimeError):
    """Raised by sync()/status() when WHOOSH_GITEA_URL is not configured."""

    def __init__(self) -> None:
        super().__init__(OFF_MESSAGE)


@dataclass(frozen=True)
class LabelSyncConfig:
    """What label sync is told (the WHOOSH_GITEA_* and WHOOSH_LABELS_* variables)."""

    repos: tuple[str, ...]  # WHOOSH_GITEA_REPOS
    labels_extra: str  # WHOOSH_LABELS_EXTRA: read per run, so a bad value fails runs only
    fix_drift: bool  # WHOOSH_LABELS_FIX_DRIFT: sync()'s default
    interval_s: float  # WHOOSH_LABELS_SYNC_INTERVAL_S: 0 = on start-up only
    on_start: bool  # WHOOSH_LABELS_SYNC_ON_START
    has_token: bool  # WHOOSH_GITEA_TOKEN is set (without it Gitea refuses writes)


class LabelSyncService:
    def __init__(
        self,
        config: LabelSyncConfig,
        applier: LabelApplier | None,
        metrics: LabelSyncMetrics,
    ) -> None:
        """``applier``: None when label sync is off (no WHOOSH_GITEA_URL)."""
        self.config = config
        self._applier = applier
        self._metrics = metrics
        self._task: asyncio.Task[None] | None = None
        # One sync at a time: a periodic run racing a manual one would create labels twice.
        self._lock = asyncio.Lock()

    @property
    def enabled(self) -> bool:
        return self._applier is not None

    async def start(self) -> None:
        if not self.enabled:
            log.info(OFF_MESSAGE)
            return
        if not self.config.repos:
            log.warning("label sync: WHOOSH_GITEA_REPOS is empty, nothing to keep in sync")
        if not self.config.has_token:
            log.warning("label sync: WHOOSH_GITEA_TOKEN is not set; Gitea will refuse writes")
        # In the background: a slow or down Gitea must not delay WHOOSH's start-up.
        self._task = asyncio.create_task(self._loop(), name="whoosh-label-sync")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        if self._applier is not None:
            await self._applier.aclose()

    async def sync(self, dry_run: bool = False, fix_drift: bool | None = None) -> SyncReport:
        """Raises LabelSyncDisabled, or LabelsConfigError for a bad WHOOSH_LABELS_EXTRA."""
        applier, required = self._prepare()
        fix = self.config.fix_drift if fix_drift is None else fix_drift
        async with self._lock:
            report = await applier.sync(self.config.repos, required, dry_run=dry_run, fix_drift=fix)
        self._metrics.record(report, real_sync=not dry_run)
        return report

    async def status(self) -> StatusReport:
        """Lists and compares; never writes."""
        applier, required = self._prepare()
        report = await applier.status(self.config.repos, required)
        self._metrics.record(report, real_sync=False)
        return report

    def _prepare(self) -> tuple[LabelApplier, Sequence[LabelSpec]]:
        """The applier, connected, and this run's required labels."""
        if self._applier is None:
            raise LabelSyncDisabled()
        # Read per run: a bad WHOOSH_LABELS_EXTRA is reported by each run, not fatal.
        required = required_labels(self.config.labels_extra)
        self._applier.connect()
        return self._applier, required

    async def _loop(self) -> None:
        interval = self.config.interval_s
        if not self.config.on_start:
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
