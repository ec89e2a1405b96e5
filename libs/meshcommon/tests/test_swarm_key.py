"""The swarm.key file (libp2p pnet PSK v1): what kubo, go-libp2p and js-libp2p read is read;
anything else is refused with one line naming the file and the expected format."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from meshcommon.swarm_key import (
    EXPECTED_FORMAT,
    SwarmKeyError,
    format_swarm_key,
    new_swarm_key,
    parse_swarm_key,
    read_swarm_key,
    write_swarm_key,
)

KEY = bytes(range(32))
GOOD = f"/key/swarm/psk/1.0.0/\n/base16/\n{KEY.hex()}\n"


@pytest.mark.parametrize(
    "text",
    [GOOD, GOOD.rstrip("\n"), GOOD.replace("\n", "\r\n"), GOOD + "  \n\n", GOOD.upper().lower()],
    ids=["kubo", "no-final-newline", "crlf", "trailing-space", "lowercase"],
)
def test_the_standard_file_is_read(tmp_path: Path, text: str) -> None:
    path = tmp_path / "swarm.key"
    path.write_text(text)
    assert read_swarm_key(path).key == KEY


def test_uppercase_hex_is_read() -> None:
    assert parse_swarm_key(GOOD.replace(KEY.hex(), KEY.hex().upper())).key == KEY


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ("", "line 1 is not /key/swarm/psk/1.0.0/"),
        (GOOD.replace("psk/1.0.0", "psk/2.0.0"), "line 1 is not"),
        (GOOD.replace("/base16/", "/base64/"), "line 2 is not /base16/"),
        (GOOD.replace(KEY.hex(), KEY.hex()[:62]), "62 characters, not 64"),
        (GOOD.replace(KEY.hex(), KEY.hex() + "00"), "66 characters, not 64"),
        (GOOD.replace(KEY.hex(), "zz" + KEY.hex()[2:]), "not hexadecimal"),
        (GOOD + "extra\n", "4 lines"),
        (KEY.hex() + "\n", "line 1 is not"),
    ],
    ids=["empty", "header", "encoding", "short", "long", "not-hex", "extra-line", "bare-hex"],
)
def test_a_malformed_file_is_named_with_the_expected_format(
    tmp_path: Path, text: str, what: str
) -> None:
    path = tmp_path / "swarm.key"
    path.write_text(text)
    with pytest.raises(SwarmKeyError) as err:
        read_swarm_key(path)
    message = str(err.value)
    assert str(path) in message and what in message and EXPECTED_FORMAT in message
    assert "\n" not in message  # one line


def test_a_missing_or_binary_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SwarmKeyError, match=r"nope\.key cannot be read \(No such file"):
        read_swarm_key(tmp_path / "nope.key")
    binary = tmp_path / "bin.key"
    binary.write_bytes(b"\xff" * 40)
    with pytest.raises(SwarmKeyError, match="not ASCII"):
        read_swarm_key(binary)


def test_the_key_never_shows_in_errors_or_repr(tmp_path: Path) -> None:
    path = tmp_path / "swarm.key"
    path.write_text(GOOD + "junk\n")
    with pytest.raises(SwarmKeyError) as err:
        read_swarm_key(path)
    assert KEY.hex() not in str(err.value)
    assert KEY.hex() not in repr(parse_swarm_key(GOOD)) and str(KEY) not in repr(
        parse_swarm_key(GOOD)
    )


def test_new_keys_are_fresh_valid_files(tmp_path: Path) -> None:
    a, b = new_swarm_key(), new_swarm_key()
    assert a != b and parse_swarm_key(a).key != parse_swarm_key(b).key
    path = write_swarm_key(tmp_path / "swarm.key")
    assert path.stat().st_mode & 0o077 == 0  # owner only
    assert len(read_swarm_key(path).key) == 32
    assert parse_swarm_key(format_swarm_key(KEY)).key == KEY


def test_the_command_prints_a_key_file() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "meshcommon.swarm_key"], capture_output=True, text=True, check=True
    )
    assert len(parse_swarm_key(done.stdout).key) == 32
