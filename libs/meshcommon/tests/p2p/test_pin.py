"""pin: another py-libp2p than the pinned one stops the process at start, in one line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from meshcommon.p2p import pin


def test_the_pinned_version_and_no_libp2p_pass() -> None:
    assert pin.check_libp2p_version(pin.PINNED_LIBP2P_VERSION)
    assert pin.version_problem(None) is None  # WHOOSH: meshcommon without libp2p


def test_another_version_is_an_error_naming_the_way_out(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv(pin.UNPINNED_ENV, raising=False)
    with pytest.raises(pin.Libp2pVersionError) as stopped:
        pin.check_libp2p_version("0.9.0")
    text = str(stopped.value.code)
    assert "0.9.0" in text and "0.8.1" in text and pin.UNPINNED_ENV in text
    assert "\n" not in text


def test_the_escape_hatch_makes_it_a_warning(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv(pin.UNPINNED_ENV, "1")
    with pytest.warns(UserWarning, match="0.9.0"):
        assert pin.check_libp2p_version("0.9.0") is False


def test_a_process_importing_meshcommon_p2p_exits_with_one_line() -> None:
    code = (
        "import importlib.metadata as m\n"
        "real = m.version\n"
        "m.version = lambda n: '0.9.0' if n == 'libp2p' else real(n)\n"
        "import meshcommon.p2p\n"
        "print('not reached')\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != pin.UNPINNED_ENV}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.strip().count("\n") == 0  # one line, no traceback
    assert done.stderr.startswith("meshcommon.p2p: py-libp2p 0.9.0 is installed")
