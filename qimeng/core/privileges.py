"""Keeping one process of a user out of another's memory (Linux; elsewhere these do nothing)."""

from __future__ import annotations

import contextlib
import sys


def set_not_dumpable(flag: bool = True) -> None:
    """PR_SET_DUMPABLE: while not dumpable, no other process of this user can ptrace this one or open
    its /proc memory and descriptors (Linux; elsewhere nothing happens)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(4, 0 if flag else 1)  # 4 = PR_SET_DUMPABLE


def drop_privileges() -> None:
    """Give up every capability for good (Linux; elsewhere nothing happens): a job that runs as root
    can then no more ptrace, or read the memory of, a process that is not dumpable than any other
    user's job. Also sets no_new_privs, so no program it executes gains privileges."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS
    for cap in range(64):
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP, until the first capability the kernel lacks
            break

    class _Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class _Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]

    header = _Header(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3: two data structs (64 capabilities)
    data = (_Data * 2)()
    with contextlib.suppress(AttributeError):
        libc.capset(ctypes.byref(header), data)
