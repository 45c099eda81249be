"""A worker of `billplane serve` does not outlive the supervisor that started it."""

import ctypes
import multiprocessing
import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent() -> None:
    """In a worker uvicorn's supervisor started: have the kernel send it SIGTERM when the
    supervisor dies, even by SIGKILL. Else the workers would keep serving on the port the
    supervisor bound, orphaned, and a restarted server could not take it. SIGTERM, not SIGKILL:
    the worker still answers the requests it holds (uvicorn's graceful shutdown).

    A no-op in a server of one process (uvicorn then serves from the supervisor itself) and
    outside Linux.
    """
    parent = multiprocessing.parent_process()
    if parent is None or not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    # The supervisor may have died before the kernel was told: then no signal would ever come.
    if os.getppid() != parent.pid:
        os.kill(os.getpid(), signal.SIGTERM)
