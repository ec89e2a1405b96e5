"""What one label sync run does to each repository (LabelApplier), driven through the
service as WHOOSH drives it."""

import logging

import pytest
from whoosh_fake_gitea import MONITORED_REPOS, TOKEN, FakeGitea, error

from whoosh.domain.labels.required import REQUIRED_LABELS

pytestmark = pytest.mark.anyio
NINE = sorted(s.name for s in REQUIRED_LABELS)


async def test_fresh_repository_gets_all_nine(gitea: FakeGitea, label_sync_factory) -> None:
    gitea.add_repo("chorus/TEST")
    report = await label_sync_factory(["chorus/TEST"]).sync()
    (repo,) = report.repos
    assert repo.status == "ok" and repo.count == "9/9" and repo.complete
    assert sorted(repo.created) == NINE and repo.missing == []
    assert gitea.names("chorus/TEST") == NINE
    entry = gitea.label("chorus/TEST", "chorus-entrypoint")
    assert entry["color"] == "ff6b6b"
    assert entry["description"] == "Triggers council formation for project kickoffs"


async def test_second_run_changes_nothing(gitea: FakeGitea, label_sync_factory) -> None:
    gitea.add_repo("chorus/TEST")
    service = label_sync_factory(["chorus/TEST"])
    await service.sync()
    writes = len(gitea.writes())
    report = await service.sync()
    assert len(gitea.writes()) == writes == 9
    assert report.repos[0].created == [] and report.repos[0].updated == []
    assert report.repos[0].count == "9/9" and report.labels_created == 0


async def test_repository_with_eight_gets_only_chorus_entrypoint(
    gitea: FakeGitea, label_sync_factory
) -> None:
    gitea.add_required("chorus/WHOOSH", skip=("chorus-entrypoint",))
    report = await label_sync_factory(["chorus/WHOOSH"]).sync()
    assert report.repos[0].created == ["chorus-entrypoint"]
    assert gitea.writes() == [("POST", "chorus/WHOOSH")]
    assert report.repos[0].count == "9/9"


async def test_drift_reported_and_fixed_only_when_asked(
    gitea: FakeGitea, label_sync_factory
) -> None:
    gitea.add_required("chorus/CHORUS")
    gitea.label("chorus/CHORUS", "bug").update(color="00FF00", description="bugs")
    service = label_sync_factory(["chorus/CHORUS"])

    status = await service.status()
    (drift,) = status.repos[0].drifted
    assert (drift.name, drift.current_color, drift.wanted_color) == ("bug", "#00ff00", "#d73a4a")
    assert status.repos[0].present == [s.name for s in REQUIRED_LABELS]

    plan = await service.sync(dry_run=True, fix_drift=True)
    assert plan.repos[0].to_update == ["bug"] and plan.repos[0].updated == []
    report = await service.sync()  # WHOOSH_LABELS_FIX_DRIFT defaults to false
    assert report.repos[0].updated == [] and [d.name for d in report.repos[0].drifted] == ["bug"]
    assert gitea.writes() == []

    fixed = await service.sync(fix_drift=True)
    assert fixed.repos[0].updated == ["bug"] and fixed.repos[0].drifted == []
    assert gitea.writes() == [("PATCH", "chorus/CHORUS")]
    assert gitea.label("chorus/CHORUS", "bug")["color"] == "d73a4a"
    assert (await service.status()).repos[0].drifted == []


async def test_fix_drift_default_comes_from_settings(gitea: FakeGitea, label_sync_factory) -> None:
    gitea.add_required("chorus/CHORUS")
    gitea.label("chorus/CHORUS", "wontfix")["description"] = ""
    report = await label_sync_factory(["chorus/CHORUS"], labels_fix_drift=True).sync()
    assert report.fix_drift and report.repos[0].updated == ["wontfix"]


async def test_legacy_colour_format_with_hash_and_upper_case_is_not_drift(
    gitea: FakeGitea, label_sync_factory
) -> None:
    gitea.add_required("chorus/TEST")
    for label in gitea.repos["chorus/TEST"].values():
        label["color"] = "#" + label["color"].upper()  # older Gitea versions
    report = await label_sync_factory(["chorus/TEST"]).sync(fix_drift=True)
    assert report.repos[0].drifted == [] and gitea.writes() == []


async def test_user_labels_are_never_touched(gitea: FakeGitea, label_sync_factory) -> None:
    gitea.add_repo("chorus/TEST", [("priority/high", "ee0701", "urgent"), ("Bug", "000000", "")])
    before = {k: dict(v) for k, v in gitea.repos["chorus/TEST"].items()}
    report = await label_sync_factory(["chorus/TEST"]).sync(fix_drift=True)
    after = gitea.repos["chorus/TEST"]
    assert after[1] == before[1]  # priority/high: untouched
    assert after[2]["name"] == "Bug"  # a case variant is fixed in colour, never renamed
    assert "bug" not in report.repos[0].created
    assert not any(method == "DELETE" for method, _ in gitea.calls)
    assert report.repos[0].count == "9/9"


async def test_all_pages_are_read(gitea: FakeGitea, label_sync_factory) -> None:
    gitea.max_items = 10  # the server clamps our limit, as MAX_RESPONSE_ITEMS does
    gitea.add_repo("chorus/TEST", [(f"area/{i:02d}", "cccccc", "") for i in range(21)])
    gitea.add_required("chorus/WHOOSH", skip=("question",))
    for i in range(21):
        gitea._store("chorus/WHOOSH", f"zz/{i:02d}", "cccccc", "")  # 'question' sorts late
    service = label_sync_factory(["chorus/TEST", "chorus/WHOOSH"])
    report = await service.sync()
    whoosh = report.repos[1]
    assert whoosh.created == ["question"], "labels on pages 2 and 3 were not read"
    assert sum(1 for call in gitea.calls if call == ("GET", "chorus/WHOOSH")) == 3
    assert report.repos[0].count == "9/9"


async def test_pagination_with_only_x_total_count(gitea: FakeGitea, label_sync_factory) -> None:
    gitea.max_items, gitea.link_header = 10, False
    gitea.add_required("chorus/TEST")
    for i in range(21):
        gitea._store("chorus/TEST", f"a/{i:02d}", "cccccc", "")
    report = await label_sync_factory(["chorus/TEST"]).sync()
    assert report.repos[0].created == [] and gitea.writes() == []


async def test_five_repositories_in_one_call(gitea: FakeGitea, label_sync_factory) -> None:
    """Four repositories with every required label but chorus-entrypoint, one brand new:
    one sync completes all five."""
    for repo in MONITORED_REPOS[:-1]:
        gitea.add_required(repo, skip=("chorus-entrypoint",))
    gitea.add_repo(MONITORED_REPOS[-1])
    report = await label_sync_factory(MONITORED_REPOS).sync()
    assert [r.repo for r in report.repos] == MONITORED_REPOS
    assert [r.count for r in report.repos] == ["9/9"] * 5
    assert report.ok and report.repos_complete == 5
    assert all(r.created == ["chorus-entrypoint"] for r in report.repos[:-1])
    for repo in MONITORED_REPOS:
        assert gitea.names(repo) == NINE
    verified = await label_sync_factory(MONITORED_REPOS).status()
    assert [r.count for r in verified.repos] == ["9/9"] * 5


async def test_duplicate_repositories_are_synced_once(gitea: FakeGitea, label_sync_factory) -> None:
    gitea.add_repo("chorus/TEST")
    report = await label_sync_factory(["chorus/TEST", "chorus/TEST"]).sync()
    assert len(report.repos) == 1 and gitea.names("chorus/TEST") == NINE


async def test_token_never_logged_or_reported(
    gitea: FakeGitea, label_sync_factory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    gitea.add_repo("chorus/TEST")
    gitea.add_repo("chorus/WHOOSH")
    # A Gitea error that echoes the token back must not leak it either.
    gitea.always["chorus/WHOOSH"] = error(403, f"token {TOKEN} lacks scope write:issue")
    service = label_sync_factory(["chorus/TEST", "chorus/WHOOSH", "chorus/GONE"])
    report = await service.sync()
    status = await service.status()
    assert report.repos[1].error and "***" in report.repos[1].error
    assert caplog.records
    for record in caplog.records:
        assert TOKEN not in record.getMessage()
    assert TOKEN not in report.model_dump_json() and TOKEN not in status.model_dump_json()
    assert TOKEN not in repr(service._applier.connect())
