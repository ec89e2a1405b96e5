"""iptables for process-level tests: a chain of our own, jumped to from OUTPUT, removed by
name afterwards (also after a killed run)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence

from .conftest import unavailable


def iptables(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["iptables", "-w", "5", *args], capture_output=True, text=True, check=check, timeout=60
    )


def remove_chain(chain: str) -> None:
    """Delete only what a test added: the jump(s) to ``chain``, then ``chain`` itself."""
    for _ in range(10):
        if iptables("-D", "OUTPUT", "-j", chain, check=False).returncode != 0:
            break
    iptables("-F", chain, check=False)
    iptables("-X", chain, check=False)


def require_iptables(test: str, chain: str, *probe: Sequence[str]) -> None:
    """Root, and an iptables (installed with apt-get when missing) that takes ``probe``'s
    rules in ``chain`` on this kernel; else ``unavailable``: a skip run by hand, a failure
    under CHORUS_REQUIRE_ENGINE=1. The probe's chain is removed again, and so is a leftover
    ``chain`` of a killed run."""
    if os.geteuid() != 0:
        unavailable(f"{test} test needs root (iptables, a group ID per agent)")
    if shutil.which("iptables") is None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(
                ["apt-get", "install", "-y", "--no-install-recommends", "iptables"],
                capture_output=True,
                timeout=180,
                check=False,
            )
    if shutil.which("iptables") is None:
        unavailable("iptables is not installed and apt-get could not install it")
    remove_chain(chain)
    result = iptables("-N", chain, check=False)
    for rule in probe:
        if result.returncode != 0:
            break
        result = iptables("-A", chain, *rule, check=False)
    remove_chain(chain)
    if result.returncode != 0:
        unavailable(f"iptables cannot add the {test} test's rules here: {result.stderr.strip()}")


@contextlib.contextmanager
def output_chain(chain: str, *rules: Sequence[str]) -> Iterator[None]:
    """``chain`` with ``rules``, jumped to first in OUTPUT while the block runs (more rules
    may be appended to it meanwhile); removed afterwards, also when a rule was refused."""
    try:
        iptables("-N", chain)
        for rule in rules:
            iptables("-A", chain, *rule)
        iptables("-I", "OUTPUT", "1", "-j", chain)
        yield
    finally:
        remove_chain(chain)
