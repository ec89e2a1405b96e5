"""The Swarm event watcher against a scripted event stream."""

from __future__ import annotations

import threading
from typing import Any

from meshcommon.waiting import wait_until
from whoosh.adapters.discovery.swarm_events import SwarmEventWatcher, service_of


def service_event(name: str, action: str = "update") -> dict[str, Any]:
    return {"Type": "service", "Action": action, "Actor": {"Attributes": {"name": name}}}


def container_event(service: str, action: str) -> dict[str, Any]:
    attrs = {"com.docker.swarm.service.name": service, "name": f"{service}.1.x"}
    return {"Type": "container", "Action": action, "Actor": {"Attributes": attrs}}


class Stream:
    """Yields its events, then blocks until closed (as the engine's stream does)."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.events = events
        self.closed = threading.Event()

    def __iter__(self):  # type: ignore[no-untyped-def]
        yield from self.events
        self.closed.wait()

    def close(self) -> None:
        self.closed.set()


def test_events_of_the_agent_service_start_a_round_others_do_not() -> None:
    assert service_of(service_event("CHORUS_chorus")) == "CHORUS_chorus"
    assert service_of(container_event("CHORUS_chorus", "exec_create: sh")) is None
    assert service_of({"Type": "network", "Action": "create"}) is None
    stream = Stream(
        [
            service_event("CHORUS_chorus"),  # scale or update, cluster-wide
            container_event("CHORUS_chorus", "start"),
            container_event("CHORUS_chorus", "die"),
            service_event("CHORUS_whoosh"),  # another service
            container_event("other", "start"),
        ]
    )
    seen: list[str] = []
    watcher = SwarmEventWatcher(lambda: stream, "chorus", seen.append)
    watcher.start()
    try:
        wait_until(lambda: len(seen), lambda n: n >= 3, within_s=5, what="three events")
    finally:
        watcher.stop()
    assert len(seen) == 3 and seen[0] == "service update (CHORUS_chorus)"
    assert stream.closed.is_set()


def test_events_of_the_gateway_service_count_too() -> None:
    stream = Stream([service_event("CHORUS_chorus-gateway"), service_event("CHORUS_whoosh")])
    seen: list[str] = []
    watcher = SwarmEventWatcher(lambda: stream, ("chorus", "chorus-gateway"), seen.append)
    watcher.start()
    try:
        wait_until(lambda: len(seen), lambda n: n >= 1, within_s=5, what="the gateway's event")
    finally:
        watcher.stop()
    assert seen == ["service update (CHORUS_chorus-gateway)"]


def test_a_lost_stream_is_reopened() -> None:
    opened: list[int] = []
    seen: list[str] = []

    def open_stream() -> Any:
        opened.append(1)
        if len(opened) == 1:
            raise ConnectionError("engine restarting")
        return Stream([service_event("chorus")])

    watcher = SwarmEventWatcher(open_stream, "chorus", seen.append, backoff_initial_s=0.01)
    watcher.start()
    try:
        wait_until(lambda: len(seen), lambda n: n >= 1, within_s=5, what="an event after reopening")
    finally:
        watcher.stop()
    assert len(opened) == 2
