"""Runs label sync inside WHOOSH: at start-up, periodically, and on demand; exports metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import httpx
from prometheus_client import CollectorRegistry, Counter, Gauge

from whoosh.labels.gitea import GiteaClient, RetryPolicy
from whoosh.labels.required import LabelSpec, required_labels
from whoosh.labels.sync import BaseReport, LabelSyncer, StatusReport, SyncReport
from whoosh.settings import Settings

log = logging.getLogger(__name__)

OFF_MESSAGE = (
    "Gitea label sync is off: set WHOOSH_GITEA_URL (and WHOOSH_GITEA_REPOS, WHOOSH_GITEA_TOKEN)"
)


class LabelSyncDisabled(RuntimeError):
    """Raised by sync()/status() when WHOOSH_GITEA_URL is not configured."""

    def __init__(self) -> None:
        super().__init__(OFF_MESSAGE)


class _Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.runs = Counter(
            "whoosh_label_sync_runs_total",
            "Label sync runs that wrote to Gitea (dry runs excluded), by result",
            ["result"],
            registry=registry,
        )
        self.created = Counter(
            "whoosh_labels_created_total", "Labels created on Gitea", registry=registry
        )
        self.updated = Counter(
            "whoosh_labels_updated_total",
            "Labels whose colour/description drift was fixed",
            registry=registry,
        )
        self.errors = Counter(
            "whoosh_label_sync_errors_total",
            "Per-repository label sync failures, by reason",
            ["reason"],
            registry=registry,
        )
        self.complete = Gauge(
            "whoosh_label_repos_complete",
            "Monitored repositories that have every required label (last sync or status)",
            registry=registry,
        )

    def record(self, report: BaseReport, *, real_sync: bool) -> None:
        self.complete.set(report.repos_complete)
        for repo in report.repos:
            if repo.error_reason:
                self.errors.labels(reason=repo.error_reason).inc()
        if isinstance(report, SyncReport) and real_sync:
            self.created.inc(report.labels_created)
            self.updated.inc(report.labels_updated)
            if report.ok:
                result = "ok"
            elif report.repos_failed == len(report.repos):
                result = "failed"
            else:
                result = "partial"
            self.runs.labels(result=result).inc()


class LabelSyncService:
    def __init__(
        self,
        settings: Settings,
        registry: CollectorRegistry,
        *,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.retry = retry
        self._transport = transport  # tests inject one; production uses httpx's default
        self._metrics = _Metrics(registry)
        self._client: GiteaClient | None = None
        self._task: asyncio.Task[None] | None = None
        # One sync at a time: a periodic run racing a manual one would create labels twice.
        self._lock = asyncio.Lock()
        self.last_report: SyncReport | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.settings.gitea_url)

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
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
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
        if not dry_run:
            self.last_report = report
        return report

    async def status(self) -> StatusReport:
        """Lists and compares; never writes."""
        report = await self._syncer().status(self.settings.gitea_repos)
        self._metrics.record(report, real_sync=False)
        return report

    def _syncer(self) -> LabelSyncer:
        if not self.enabled:
            raise LabelSyncDisabled()
        required: tuple[LabelSpec, ...] = required_labels(self.settings)
        if self._client is None:
            self._client = GiteaClient(self.settings, retry=self.retry, transport=self._transport)
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
