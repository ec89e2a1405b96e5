"""iptables for process-level tests: a chain of our own, jumped to from OUTPUT, removed by
name afterwards (also after a killed run)."""

from __future__ import annotations

import subprocess


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
