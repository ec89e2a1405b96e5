"""tcp.BufferedTrioTCPStream (override ``tcp``): one recv() brings many frames, later reads
are slices of memory; ``read(n)`` returns 1..n bytes, ``b""`` at EOF."""

from __future__ import annotations

import pytest
import trio

pytest.importorskip("libp2p")

from meshcommon.p2p.tcp import BufferedTrioTCPStream, acquire

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "trio"


async def _pair() -> tuple[BufferedTrioTCPStream, trio.SocketStream]:
    a, b = trio.socket.socketpair()
    return BufferedTrioTCPStream(trio.SocketStream(a)), trio.SocketStream(b)


async def test_reads_are_served_from_one_recv() -> None:
    ours, theirs = await _pair()
    await theirs.send_all(b"\x00\x05hello\x00\x05world")
    await trio.sleep(0.01)
    assert await ours.read(2) == b"\x00\x05"
    assert ours._rbuf  # the rest is buffered: no syscall for the next reads
    assert await ours.read(5) == b"hello"
    assert await ours.read(None) == b"\x00\x05world"
    assert await ours.read(0) == b""
    await theirs.aclose()
    assert await ours.read(10) == b""  # EOF


async def test_write_goes_out_whole() -> None:
    ours, theirs = await _pair()
    await ours.write(b"x" * 100_000)
    got = b""
    while len(got) < 100_000:
        got += await theirs.receive_some(65536)
    assert got == b"x" * 100_000


async def test_a_free_lock_is_taken_without_a_schedule_point() -> None:
    lock = trio.Lock()
    await acquire(lock)
    assert lock.locked()
    lock.release()
