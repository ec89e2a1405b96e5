"""The libp2p private-network key file (``swarm.key``, PSK v1), as kubo, go-libp2p and
js-libp2p (``@libp2p/pnet``) read it::

    /key/swarm/psk/1.0.0/
    /base16/
    <64 hex digits: the 32-byte key>

Pure (no libp2p): the services' settings read it, and WHOOSH never needs it.
``python -m meshcommon.swarm_key > swarm.key`` prints a fresh key file.

The key is a secret: errors name the file and what is wrong with it, never its content,
and ``SwarmKey`` never shows the key in its ``repr``.
"""

from __future__ import annotations

import os
import secrets
import sys
from dataclasses import dataclass, field
from hashlib import sha256
from pathlib import Path

HEADER = "/key/swarm/psk/1.0.0/"
ENCODING = "/base16/"
KEY_BYTES = 32
EXPECTED_FORMAT = f"3 lines: {HEADER} then {ENCODING} then {KEY_BYTES * 2} hex digits"


class SwarmKeyError(ValueError):
    """A swarm key file that cannot be used; the message names the file and the expected
    format (one line, for a service that refuses to start)."""


@dataclass(frozen=True)
class SwarmKey:
    """A 32-byte pre-shared key and the file it came from. ``fingerprint`` tells keys
    apart in logs without revealing them (first 8 hex digits of SHA-256 of the key)."""

    key: bytes = field(repr=False)
    source: str = ""

    def __post_init__(self) -> None:
        if len(self.key) != KEY_BYTES:
            raise SwarmKeyError(f"a swarm key is {KEY_BYTES} bytes, not {len(self.key)}")

    @property
    def fingerprint(self) -> str:
        return sha256(self.key).hexdigest()[:8]


def parse_swarm_key(text: str | bytes, source: str = "swarm key") -> SwarmKey:
    """The key in a ``swarm.key`` file's content; ``SwarmKeyError`` naming ``source``
    when it is not one. Line breaks may be ``\\n`` or ``\\r\\n``; whitespace around the
    lines and a trailing newline are tolerated."""

    def bad(what: str) -> SwarmKeyError:
        return SwarmKeyError(f"swarm key file {source}: {what}; expected {EXPECTED_FORMAT}")

    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError:
            raise bad("not ASCII text") from None
    lines = [line.strip() for line in text.strip().splitlines()]
    if not lines or lines[0] != HEADER:
        raise bad(f"line 1 is not {HEADER}")
    if len(lines) < 2 or lines[1] != ENCODING:
        # kubo also knows /base64/ and /bin/; every implementation reads /base16/.
        raise bad(f"line 2 is not {ENCODING}")
    if len(lines) != 3:
        raise bad(f"{len(lines)} lines")
    digits = lines[2]
    if len(digits) != KEY_BYTES * 2:
        raise bad(f"line 3 holds {len(digits)} characters, not {KEY_BYTES * 2}")
    try:
        key = bytes.fromhex(digits)
    except ValueError:
        raise bad("line 3 is not hexadecimal") from None
    return SwarmKey(key, source)


def read_swarm_key(path: str | os.PathLike[str]) -> SwarmKey:
    """The key in the file at ``path``; ``SwarmKeyError`` naming the file when it is
    missing, unreadable or malformed."""
    p = Path(path)
    try:
        content = p.read_bytes()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise SwarmKeyError(
            f"swarm key file {p} cannot be read ({reason}); expected {EXPECTED_FORMAT}"
        ) from None
    return parse_swarm_key(content, str(p))


def format_swarm_key(key: bytes) -> str:
    """The ``swarm.key`` file content for ``key``."""
    if len(key) != KEY_BYTES:
        raise SwarmKeyError(f"a swarm key is {KEY_BYTES} bytes, not {len(key)}")
    return f"{HEADER}\n{ENCODING}\n{key.hex()}\n"


def new_swarm_key() -> str:
    """A fresh ``swarm.key`` file content (32 bytes from ``secrets``)."""
    return format_swarm_key(secrets.token_bytes(KEY_BYTES))


def write_swarm_key(path: str | os.PathLike[str]) -> Path:
    """A fresh key file at ``path``, readable by its owner only."""
    p = Path(path)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(new_swarm_key())
    return p


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args:
        print(
            "usage: python -m meshcommon.swarm_key > swarm.key  (prints a new private-network "
            "key file, the format kubo, go-libp2p and js-libp2p read)",
            file=sys.stderr,
        )
        return 2
    sys.stdout.write(new_swarm_key())
    return 0


if __name__ == "__main__":
    sys.exit(main())
