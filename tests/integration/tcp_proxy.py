"""A round-robin TCP forwarder on loopback: one address in front of several agents, as a
Swarm VIP or a load balancer is. Each new connection goes to the next backend, starting
with the second: clients that dial backends' peer IDs in backend order (as a monitor
dialling its list does) do not all land by chance on the one they name."""

from __future__ import annotations

import itertools
import socket
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while chunk := src.recv(65536):
            dst.sendall(chunk)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            with suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


@contextmanager
def round_robin_proxy(
    listen: tuple[str, int], backends: Sequence[tuple[str, int]]
) -> Iterator[int]:
    """Forward each connection accepted on ``listen`` to the next of ``backends``; yields
    the port it listens on."""
    server = socket.create_server(listen, reuse_port=False)
    server.settimeout(0.2)
    stop = threading.Event()
    order = itertools.islice(itertools.cycle(backends), 1, None)
    open_sockets: list[socket.socket] = []
    lock = threading.Lock()

    def serve() -> None:
        while not stop.is_set():
            try:
                client, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(next(order), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            client.settimeout(None)
            with lock:
                open_sockets.extend((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pipe, args=(a, b), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        server.close()
        with lock:
            for s in open_sockets:
                s.close()
