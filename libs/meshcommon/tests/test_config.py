from __future__ import annotations

import re

import pytest
from pydantic_settings import BaseSettings, SettingsConfigDict

from meshcommon.config import CommaList, split_comma_list


class _Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MESHTEST_")

    overlay_cidrs: CommaList = []
    topics: CommaList = ["default"]


def test_comma_list_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESHTEST_OVERLAY_CIDRS", " 10.0.13.0/24, ,fd00::/8,, ")
    monkeypatch.setenv("MESHTEST_TOPICS", "a\nb,c")
    settings = _Settings()
    assert settings.overlay_cidrs == ["10.0.13.0/24", "fd00::/8"]
    assert settings.topics == ["a", "b", "c"]


def test_comma_list_single_and_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESHTEST_OVERLAY_CIDRS", "10.0.13.0/24")
    monkeypatch.setenv("MESHTEST_TOPICS", "")
    settings = _Settings()
    assert settings.overlay_cidrs == ["10.0.13.0/24"]
    assert settings.topics == []


def test_comma_list_not_json(monkeypatch: pytest.MonkeyPatch) -> None:
    # NoDecode: the value is split on commas, not parsed as JSON.
    monkeypatch.setenv("MESHTEST_TOPICS", '["a","b"]')
    assert _Settings().topics == ['["a"', '"b"]']


def test_defaults_and_lists_pass_through(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MESHTEST_OVERLAY_CIDRS", raising=False)
    monkeypatch.delenv("MESHTEST_TOPICS", raising=False)
    assert _Settings().topics == ["default"]
    assert _Settings(topics=["x", "y"]).topics == ["x", "y"]
    assert split_comma_list(["a"]) == ["a"]


# -- identity settings: a seed file or a derived identity, never half of one ---------------
def _peer(**env: str) -> object:
    from meshcommon.config import PeerSettings

    class AgentLike(PeerSettings):
        model_config = SettingsConfigDict(env_prefix="AGENT_")

    return AgentLike(**env)  # type: ignore[arg-type]


def test_derived_identity_settings() -> None:
    s = _peer(identity_secret_file="/run/secrets/chorus_identity", identity_scope="CHORUS_chorus/3")
    assert s.identity_scope == "CHORUS_chorus/3"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"identity_secret_file": "/s", "identity_path": "/data/identity.key"},
            "set AGENT_IDENTITY_PATH or AGENT_IDENTITY_SECRET_FILE, not both",
        ),
        ({"identity_secret_file": "/s"}, "AGENT_IDENTITY_SECRET_FILE needs AGENT_IDENTITY_SCOPE"),
        ({"identity_scope": "x/1"}, "AGENT_IDENTITY_SCOPE is set but AGENT_IDENTITY_SECRET_FILE"),
        (
            {"identity_secret_file": "/s", "identity_scope": "{{.Service.Name}}/{{.Task.Slot}}"},
            "holds a template nobody expanded",
        ),
    ],
)
def test_identity_settings_errors_name_the_variables(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        _peer(**env)
