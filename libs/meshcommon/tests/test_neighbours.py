"""The neighbours report's wire form and its validation: budgets and types, each refusal
with its reason; agent versions grouped by implementation."""

from __future__ import annotations

from typing import Any

import pytest

from meshcommon.neighbours import (
    MAX_NEIGHBOURS,
    MAX_TOPICS_PER_NEIGHBOUR,
    Neighbour,
    RejectedReport,
    fit_topics,
    implementation_of,
    parse_report,
)
from meshcommon.topics import ALL_TOPICS, COORDINATION

PEER = "12D3KooWBChRxNoL2XZR2ys1MTyaBFuKgbWwE5LmUoLAWRF3iqHh"


def test_round_trip_is_compact_and_lossless() -> None:
    n = Neighbour(
        PEER,
        agent_version="js-libp2p/2.9.0",
        protocols=("/ipfs/id/1.0.0",),
        topics=("chorus/coordination/v1",),
        rtt_ms=1.2345,
        loss=0.125,
        pings=8,
        uptime_s=12.0,
        bytes_in_per_s=10.0,
        bytes_out_per_s=20.0,
        messages_in_per_s=0.5,
        messages_out_per_s=0.25,
    )
    wire = n.to_wire()
    assert set(wire) == {"p", "av", "pr", "t", "rtt", "loss", "n", "up", "bi", "bo", "mi", "mo"}
    (back,) = parse_report([wire])
    assert back == Neighbour(**{**n.__dict__, "rtt_ms": 1.234, "messages_out_per_s": 0.2})
    assert Neighbour(PEER).to_wire() == {"p": PEER}  # nothing known: the peer ID alone


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ({"p": PEER}, "not_a_list"),
        ([{"p": PEER}] * (MAX_NEIGHBOURS + 1), "too_many_neighbours"),
        (["x"], "entry_not_an_object"),
        ([{"p": "not a peer id"}], "bad_peer_id"),
        ([{"p": PEER, "rtt": "fast"}], "bad_value"),
        ([{"p": PEER, "rtt": True}], "bad_value"),
        ([{"p": PEER, "loss": 1.5}], "bad_value"),
        ([{"p": PEER, "bi": float("nan")}], "bad_value"),
        ([{"p": PEER, "n": -1}], "bad_value"),
        ([{"p": PEER, "t": "CHORUS/coordination/v1"}], "bad_value"),
        ([{"p": PEER, "t": ["x"] * (MAX_TOPICS_PER_NEIGHBOUR + 1)}], "over_budget"),
        ([{"p": PEER, "t": ["x" * 129]}], "over_budget"),
        ([{"p": PEER, "av": "v" * 97}], "over_budget"),
        ([{"p": PEER, "av": 7}], "bad_value"),
    ],
)
def test_a_report_breaking_a_budget_or_a_type_is_refused_with_its_reason(
    raw: Any, reason: str
) -> None:
    with pytest.raises(RejectedReport) as refused:
        parse_report(raw)
    assert refused.value.reason == reason


def test_topics_unknown_first_within_the_budget() -> None:
    many = [f"t{i}" for i in range(20)] + list(ALL_TOPICS) + ["y" * 500]
    kept, omitted = fit_topics(many, ALL_TOPICS)
    assert len(kept) == MAX_TOPICS_PER_NEIGHBOUR and omitted == len(many) - len(kept)
    assert COORDINATION not in kept and "y" * 500 not in kept
    assert fit_topics([COORDINATION, "chorus/x"], ALL_TOPICS) == ((("chorus/x", COORDINATION)), 0)


@pytest.mark.parametrize(
    ("agent_version", "implementation"),
    [
        ("github.com/libp2p/go-libp2p", "go-libp2p"),  # go-libp2p's default
        ("go-libp2p/0.33.0", "go-libp2p"),
        ("kubo/0.25.0/", "go-libp2p"),
        ("p2pd/0.1", "go-libp2p"),  # the go-libp2p daemon (tests/interop/go)
        ("my-p2pd/1", "other"),  # only the daemon's own prefix
        ("js-libp2p/2.9.0 UserAgent=node/20.19.2", "js-libp2p"),
        ("py-libp2p/0.8.1", "py-libp2p"),
        ("rust-libp2p/0.53", "rust-libp2p"),
        ("my-own-thing/1", "other"),
        ("", "unknown"),
    ],
)
def test_agent_versions_are_grouped_by_implementation(
    agent_version: str, implementation: str
) -> None:
    assert implementation_of(agent_version) == implementation
