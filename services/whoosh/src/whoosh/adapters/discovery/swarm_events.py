"""Swarm events: start a discovery round when the agent service changes, instead of
waiting for the next period.

The manager's event stream carries service events cluster-wide (a scale or an update is a
``service update``) and container events of its own node (a task starting or dying there).
Tasks on other nodes show up through the fast re-checks that a service event starts
(``AgentDirectory.converge``). The stream (``DockerEngine.open_events``) is blocking, so it
is read in a daemon thread; if the engine goes away, the watcher reconnects with a capped
backoff.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

from whoosh.domain.stack_names import matches_stack_name

log = logging.getLogger(__name__)

SERVICE_LABEL = "com.docker.swarm.service.name"
CONTAINER_ACTIONS = {"start", "die", "health_status: healthy", "health_status: unhealthy"}

# Opens an event stream: an iterator of decoded events with a close() method.
OpenStream = Callable[[], Any]


def service_of(event: dict[str, Any]) -> str | None:
    """The Swarm service an event is about, if it is one worth a discovery round."""
    kind = event.get("Type")
    actor = event.get("Actor") or {}
    attributes = actor.get("Attributes") or {}
    if kind == "service":
        return str(attributes.get("name") or "") or None
    if kind == "container" and str(event.get("Action", "")) in CONTAINER_ACTIONS:
        return str(attributes.get(SERVICE_LABEL) or "") or None
    return None


class SwarmEventWatcher:
    """Calls ``on_change(why)`` (from its own thread) for events of ``service`` (a name or
    several)."""

    def __init__(
        self,
        open_stream: OpenStream,
        service: str | tuple[str, ...],
        on_change: Callable[[str], None],
        *,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 30.0,
    ) -> None:
        self._open, self._on_change = open_stream, on_change
        self.services = (service,) if isinstance(service, str) else service
        self._backoff_initial_s, self._backoff_max_s = backoff_initial_s, backoff_max_s
        self._stop = threading.Event()
        self._stream: Any = None
        self._thread = threading.Thread(target=self._run, name="swarm-events", daemon=True)
        self.events_seen = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        stream = self._stream
        if stream is not None:
            try:
                stream.close()  # unblocks the reading thread
            except Exception as exc:  # closing a broken stream can raise; stopping goes on
                log.debug("closing the event stream: %s", exc)
        self._thread.join(timeout=5)

    def _run(self) -> None:
        delay = self._backoff_initial_s
        while not self._stop.is_set():
            try:
                self._stream = self._open()
                delay = self._backoff_initial_s  # connected: reset the backoff
                for event in self._events(self._stream):
                    self._handle(event)
            except Exception as exc:  # engine restarted, socket gone...: retry
                if self._stop.is_set():
                    return
                log.warning("Swarm event stream lost (%s); retrying in %.0f s", exc, delay)
            if self._stop.wait(delay):
                return
            delay = min(self._backoff_max_s, delay * 2)

    def _events(self, stream: Any) -> Iterator[dict[str, Any]]:
        for event in stream:
            if self._stop.is_set():
                return
            if isinstance(event, dict):
                yield event

    def _handle(self, event: dict[str, Any]) -> None:
        name = service_of(event)
        if name and any(matches_stack_name(name, wanted) for wanted in self.services):
            self.events_seen += 1
            self._on_change(f"{event.get('Type')} {event.get('Action')} ({name})")
