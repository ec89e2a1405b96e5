"""LabelSyncService: off without a URL, start-up and periodic runs, metrics, never writing
on status or dry runs."""

import logging

import pytest
from prometheus_client import CollectorRegistry
from whoosh_fake_gitea import FAST, FakeGitea, gitea_settings

from meshcommon.waiting import wait_until_async
from whoosh.domain.labels.required import REQUIRED_LABELS, LabelsConfigError
from whoosh.wiring import build_label_sync
from whoosh.workers.label_sync_service import LabelSyncDisabled

pytestmark = pytest.mark.anyio


def metric(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


async def test_off_without_gitea_url(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    service = build_label_sync(gitea_settings(["chorus/TEST"], gitea_url=""), CollectorRegistry())
    await service.start()
    assert not service.enabled and service._task is None
    assert [r.getMessage() for r in caplog.records if "label sync is off" in r.getMessage()]
    with pytest.raises(LabelSyncDisabled, match="WHOOSH_GITEA_URL"):
        await service.sync()
    with pytest.raises(LabelSyncDisabled):
        await service.status()
    await service.stop()


async def test_start_syncs_in_background_and_stop_cancels(gitea: FakeGitea) -> None:
    gitea.add_repo("chorus/TEST")
    registry = CollectorRegistry()
    settings = gitea_settings(["chorus/TEST"], labels_sync_on_start=True, labels_sync_interval_s=60)
    service = build_label_sync(settings, registry, gitea_retry=FAST)
    await service.start()

    async def ok_runs() -> float:
        return metric(registry, "whoosh_label_sync_runs_total", result="ok")

    await wait_until_async(ok_runs, within_s=10, what="the start-up sync")
    assert gitea.names("chorus/TEST") == sorted(s.name for s in REQUIRED_LABELS)
    task = service._task
    await service.stop()
    assert task is not None and task.done() and service._task is None
    assert metric(registry, "whoosh_label_sync_runs_total", result="ok") == 1
    assert metric(registry, "whoosh_labels_created_total") == 9
    assert metric(registry, "whoosh_label_repos_complete") == 1


async def test_metrics_name_the_repository_missing_labels(gitea: FakeGitea) -> None:
    """What LabelSyncFailing and RepositoryMissingLabels alert on: failed repositories, and
    per repository the required labels it lacks (kept from the last check that listed them)."""
    gitea.add_repo("chorus/TEST")
    gitea.add_repo("chorus/WHOOSH")
    registry = CollectorRegistry()
    service = build_label_sync(
        gitea_settings(["chorus/TEST", "chorus/WHOOSH"]), registry, gitea_retry=FAST
    )
    await service.status()
    missing = len(REQUIRED_LABELS)
    assert metric(registry, "whoosh_label_repo_missing_labels", repo="chorus/TEST") == missing
    assert metric(registry, "whoosh_label_repos_failed") == 0
    gitea.always["chorus/TEST"] = 401
    await service.sync()
    assert metric(registry, "whoosh_label_repos_failed") == 1
    assert metric(registry, "whoosh_label_repo_missing_labels", repo="chorus/TEST") == missing
    assert metric(registry, "whoosh_label_repo_missing_labels", repo="chorus/WHOOSH") == 0
    del gitea.always["chorus/TEST"]
    await service.sync()
    await service.stop()
    assert metric(registry, "whoosh_label_repos_failed") == 0
    assert metric(registry, "whoosh_label_repo_missing_labels", repo="chorus/TEST") == 0


async def test_periodic_runs(gitea: FakeGitea) -> None:
    gitea.add_repo("chorus/TEST")
    settings = gitea_settings(["chorus/TEST"], labels_sync_interval_s=0.02)
    registry = CollectorRegistry()
    service = build_label_sync(settings, registry, gitea_retry=FAST)
    await service.start()

    async def ok_runs() -> float:
        return metric(registry, "whoosh_label_sync_runs_total", result="ok")

    try:
        await wait_until_async(ok_runs, lambda runs: runs >= 2, within_s=10, what="two runs")
    finally:
        await service.stop()
    assert metric(registry, "whoosh_labels_created_total") == 9


async def test_metrics_for_errors_and_partial_runs(gitea: FakeGitea) -> None:
    gitea.add_repo("chorus/TEST")
    gitea.always["chorus/TEST"] = 403
    gitea.add_repo("chorus/WHOOSH")
    registry = CollectorRegistry()
    service = build_label_sync(
        gitea_settings(["chorus/TEST", "chorus/WHOOSH"]), registry, gitea_retry=FAST
    )
    await service.sync(dry_run=True)
    assert metric(registry, "whoosh_label_sync_runs_total", result="ok") == 0  # dry runs: no
    await service.sync()
    await service.stop()
    assert metric(registry, "whoosh_label_sync_runs_total", result="partial") == 1
    assert metric(registry, "whoosh_label_sync_errors_total", reason="forbidden") == 2
    assert metric(registry, "whoosh_label_repos_complete") == 1


async def test_status_and_dry_run_never_write(gitea: FakeGitea, label_sync_factory) -> None:
    gitea.add_repo("chorus/TEST")
    service = label_sync_factory(["chorus/TEST"])
    status = await service.status()
    assert status.repos[0].missing and status.repos[0].count == "0/9"
    plan = await service.sync(dry_run=True)
    assert len(plan.repos[0].to_create) == 9 and plan.repos[0].created == []
    assert gitea.writes() == []


async def test_bad_extra_labels_config_is_raised(label_sync_factory) -> None:
    service = label_sync_factory(["chorus/TEST"], labels_extra="[{")
    with pytest.raises(LabelsConfigError, match="WHOOSH_LABELS_EXTRA is not valid JSON"):
        await service.sync()


async def test_extra_labels_are_synced(gitea: FakeGitea, label_sync_factory) -> None:
    gitea.add_required("chorus/TEST")
    extra = '[{"name": "triage", "color": "#fbca04", "description": "Needs a look"}]'
    report = await label_sync_factory(["chorus/TEST"], labels_extra=extra).sync()
    assert report.repos[0].created == ["triage"] and report.repos[0].count == "10/10"
