"""``python -m whoosh labels ...``: the plan, a sync, a status, exit codes."""

import subprocess
import sys

import pytest
from whoosh_fake_gitea import GITEA, MONITORED_REPOS, TOKEN, FakeGitea

from whoosh.cli import main


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHOOSH_GITEA_URL", GITEA)
    monkeypatch.setenv("WHOOSH_GITEA_TOKEN", TOKEN)
    monkeypatch.setenv("WHOOSH_GITEA_REPOS", "chorus/TEST, chorus/WHOOSH")


def test_dry_run_prints_the_plan(
    env: None, gitea: FakeGitea, capsys: pytest.CaptureFixture
) -> None:
    gitea.add_repo("chorus/TEST")
    gitea.add_required("chorus/WHOOSH", skip=("chorus-entrypoint",))
    assert main(["sync", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "dry run (nothing changed)" in out
    assert "chorus/WHOOSH  ok      8/9     chorus-entrypoint" in out
    assert gitea.writes() == [] and TOKEN not in out


def test_sync_then_status(env: None, gitea: FakeGitea, capsys: pytest.CaptureFixture) -> None:
    gitea.add_repo("chorus/TEST")
    gitea.add_repo("chorus/WHOOSH")
    assert main(["labels", "sync"]) == 0
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "2/2 repositories complete, 0 failed" in out


def test_failure_exits_non_zero(
    env: None, gitea: FakeGitea, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WHOOSH_GITEA_REPOS", ",".join(MONITORED_REPOS))
    for repo in MONITORED_REPOS[1:]:
        gitea.add_repo(repo)
    assert main(["sync", "--json"]) == 1
    out = capsys.readouterr().out
    assert '"repos_failed": 1' in out and "repository not found on Gitea (404)" in out


def test_off_without_url(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.delenv("WHOOSH_GITEA_URL", raising=False)
    assert main(["status"]) == 2
    assert "WHOOSH_GITEA_URL" in capsys.readouterr().err


def test_the_cli_does_not_load_the_web_stack() -> None:
    """The CLI runs in deploy scripts: it must not import FastAPI or uvicorn."""
    code = (
        "import sys, whoosh.__main__, whoosh.cli; "
        "print(sorted({'fastapi', 'uvicorn'} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
