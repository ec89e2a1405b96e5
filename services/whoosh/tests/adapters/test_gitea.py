"""Each failure a user will meet: a clear per-repository message, the others still synced."""

import time

import httpx
import pytest
from whoosh_fake_gitea import FakeGitea, error

from whoosh.adapters.gitea import _retry_after_seconds

pytestmark = pytest.mark.anyio
OTHERS = ["chorus/WHOOSH", "chorus/CHORUS"]


async def sync_with_broken(gitea: FakeGitea, label_sync_factory, broken: str = "chorus/TEST"):
    for repo in OTHERS:
        gitea.add_repo(repo)
    report = await label_sync_factory([broken, *OTHERS]).sync()
    assert [r.count for r in report.repos[1:]] == ["9/9", "9/9"], "the others must still sync"
    assert not report.ok and report.repos_failed == 1
    return report.repos[0]


@pytest.mark.parametrize(
    ("status", "reason", "message"),
    [
        (401, "auth", "Gitea rejected the token (401 Unauthorized); check WHOOSH_GITEA_TOKEN"),
        (403, "forbidden", "no permission here (403 Forbidden)"),
        (404, "not_found", "repository not found on Gitea (404); check WHOOSH_GITEA_REPOS"),
    ],
)
async def test_client_errors_are_per_repository(
    gitea: FakeGitea, label_sync_factory, status: int, reason: str, message: str
) -> None:
    gitea.add_repo("chorus/TEST")
    gitea.always["chorus/TEST"] = error(status, "gitea says no")
    result = await sync_with_broken(gitea, label_sync_factory)
    assert result.status == "error" and result.error_reason == reason
    assert result.error.startswith("chorus/TEST: ") and message in result.error
    assert result.count == "?/9" and result.complete is False
    # 4xx are final: no retry
    assert gitea.calls.count(("GET", "chorus/TEST")) == 1


async def test_unknown_repository_is_a_real_404(gitea: FakeGitea, label_sync_factory) -> None:
    result = await sync_with_broken(gitea, label_sync_factory, broken="chorus/NOPE")
    assert result.error_reason == "not_found" and "chorus/NOPE" in result.error


async def test_bad_token_fails_every_repository_clearly(
    gitea: FakeGitea, label_sync_factory
) -> None:
    gitea.add_repo("chorus/TEST")
    report = await label_sync_factory(["chorus/TEST"], gitea_token="wrong").sync()
    assert report.repos[0].error_reason == "auth"
    assert "user does not exist" in report.repos[0].error  # Gitea's own words are kept


async def test_403_on_create_keeps_what_was_learnt(gitea: FakeGitea, label_sync_factory) -> None:
    gitea.add_required("chorus/TEST", skip=("bug",))
    gitea.faults["chorus/TEST"] = [_passthrough(gitea), 403]  # listing ok, the POST refused
    report = await label_sync_factory(["chorus/TEST"]).sync()
    result = report.repos[0]
    assert result.error_reason == "forbidden" and result.missing == ["bug"]
    assert result.count == "8/9"


def _passthrough(gitea: FakeGitea) -> httpx.Response:
    labels = sorted(gitea.repos["chorus/TEST"].values(), key=lambda v: v["name"])
    return httpx.Response(200, json=labels, headers={"X-Total-Count": str(len(labels))})


async def test_429_with_retry_after_is_retried(gitea: FakeGitea, label_sync_factory) -> None:
    gitea.add_repo("chorus/TEST")
    gitea.faults["chorus/TEST"] = [error(429, "rate limit", {"Retry-After": "3"})]
    started = time.monotonic()
    report = await label_sync_factory(["chorus/TEST"]).sync()
    elapsed = time.monotonic() - started
    assert report.repos[0].count == "9/9"
    assert gitea.calls.count(("GET", "chorus/TEST")) == 2
    assert 0.05 <= elapsed < 2, "Retry-After honoured, but capped (retry_after_cap_s=0.05)"


def test_retry_after_formats() -> None:
    assert _retry_after_seconds("7") == 7.0
    assert _retry_after_seconds(None) is None
    assert _retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert _retry_after_seconds("soon") is None


async def test_503_is_retried_then_succeeds(gitea: FakeGitea, label_sync_factory) -> None:
    gitea.add_repo("chorus/TEST")
    gitea.faults["chorus/TEST"] = [503, 502]
    report = await label_sync_factory(["chorus/TEST"]).sync()
    assert report.repos[0].count == "9/9" and report.ok


async def test_persistent_5xx_gives_a_clear_error(gitea: FakeGitea, label_sync_factory) -> None:
    gitea.add_repo("chorus/TEST")
    gitea.always["chorus/TEST"] = error(500, "database is locked")
    result = await sync_with_broken(gitea, label_sync_factory)
    assert result.error_reason == "unavailable"
    assert result.error == (
        "chorus/TEST: Gitea failed with 500 Internal Server Error: database is locked "
        "(gave up after 3 attempts)"
    )
    assert gitea.calls.count(("GET", "chorus/TEST")) == 3


async def test_persistent_429_gives_a_clear_error(gitea: FakeGitea, label_sync_factory) -> None:
    gitea.add_repo("chorus/TEST")
    gitea.always["chorus/TEST"] = error(429, "slow down", {"Retry-After": "0"})
    result = await sync_with_broken(gitea, label_sync_factory)
    assert "rate limiting WHOOSH (429 Too Many Requests)" in result.error


async def test_a_failed_create_is_not_blindly_repeated(
    gitea: FakeGitea, label_sync_factory
) -> None:
    """A POST answered 500 may have been applied: repeating it could duplicate a label."""
    gitea.add_required("chorus/TEST", skip=("bug",))
    gitea.faults["chorus/TEST"] = [_passthrough(gitea), 500]
    report = await label_sync_factory(["chorus/TEST"]).sync()
    assert report.repos[0].error_reason == "unavailable"
    assert gitea.calls.count(("POST", "chorus/TEST")) == 1


async def test_connection_refused_says_unreachable(gitea: FakeGitea, label_sync_factory) -> None:
    gitea.add_repo("chorus/TEST")
    gitea.always["chorus/TEST"] = httpx.ConnectError("[Errno 111] Connection refused")
    result = await sync_with_broken(gitea, label_sync_factory)
    assert result.error_reason == "unavailable"
    assert "Gitea unreachable at http://gitea.test/api/v1" in result.error
    assert "Connection refused" in result.error
    assert gitea.calls.count(("GET", "chorus/TEST")) == 3


async def test_timeout_is_reported(gitea: FakeGitea, label_sync_factory) -> None:
    gitea.add_repo("chorus/TEST")
    gitea.always["chorus/TEST"] = httpx.ReadTimeout("timed out")
    result = await sync_with_broken(gitea, label_sync_factory)
    assert "did not answer within 10s" in result.error


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (
            httpx.Response(200, text="<html>Sign in</html>", headers={"content-type": "text/html"}),
            "not JSON (text/html); is WHOOSH_GITEA_URL (http://gitea.test/api/v1) really Gitea?",
        ),
        (httpx.Response(200, json={"labels": []}), "expected a JSON list of labels"),
        (httpx.Response(200, json=[{"name": "bug"}]), "unexpected label object"),
        (httpx.Response(302, headers={"Location": "/user/login"}), "unexpected HTTP status 302"),
    ],
)
async def test_unexpected_body_is_a_clear_error(
    gitea: FakeGitea, label_sync_factory, response: httpx.Response, message: str
) -> None:
    gitea.add_repo("chorus/TEST")
    gitea.always["chorus/TEST"] = response
    result = await sync_with_broken(gitea, label_sync_factory)
    assert result.error_reason == "bad_response" and message in result.error


async def test_malformed_repository_name_is_a_config_error(
    gitea: FakeGitea, label_sync_factory
) -> None:
    result = await sync_with_broken(gitea, label_sync_factory, broken="just-a-name")
    assert result.error_reason == "config"
    assert "invalid repository 'just-a-name' in WHOOSH_GITEA_REPOS: expected owner/name" in (
        result.error
    )
