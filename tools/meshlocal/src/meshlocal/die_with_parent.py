"""Run a program that the kernel kills as soon as the launcher dies, however it dies (Linux).

    python -I -S die_with_parent.py <launcher pid> <program> [args...]

LocalMesh starts every service through this file (by path: it must not import the meshlocal
package, and only needs the standard library). In the new process it

1. asks the kernel to send SIGKILL when the parent dies (``prctl(PR_SET_PDEATHSIG)``), which
   also covers a launcher killed outright with SIGKILL, where no handler of ours runs;
2. checks that the launcher is still its parent: if the launcher died between fork and
   step 1, the process has already been re-parented and the signal will never come, so it
   kills itself instead of running unsupervised;
3. execs the program: the PID stays the same (the launcher's ``Popen`` still tracks it) and
   the parent-death signal survives ``execve`` (the interpreter is not set-uid/set-gid).

The kernel sends the signal when the *thread* that forked the process exits, so the launcher
must start its services from its main thread (``ServiceProcess.start`` checks).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def _prctl(option: int, arg: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    rc = libc.prctl(option, ctypes.c_ulong(arg), 0, 0, 0)
    if rc != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"prctl({option}): {os.strerror(errno)}")


def set_parent_death_signal(sig: int) -> None:
    _prctl(PR_SET_PDEATHSIG, int(sig))


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        sys.exit("usage: die_with_parent.py <parent pid> <program> [args...]")
    parent, program = int(argv[0]), argv[1:]
    try:
        set_parent_death_signal(signal.SIGKILL)
    except (OSError, AttributeError) as exc:  # not Linux, or prctl denied: run unguarded
        print(f"die_with_parent: cannot set a parent-death signal ({exc})", file=sys.stderr)
    if os.getppid() != parent:
        # The launcher died before prctl took effect: nobody is left to stop us.
        os.kill(os.getpid(), signal.SIGKILL)
    os.execv(program[0], program)


if __name__ == "__main__":
    main(sys.argv[1:])
