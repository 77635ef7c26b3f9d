"""A lock file that tells maintenance commands a service is running on this data directory.

``vms serve``, ``vms record`` and ``vms janitor`` hold ``DATA_DIR/service.lock``
shared for their whole life (:func:`hold_shared`); a command that must not run
beside them (``vms keys rotate``: a running service keeps the old master key in
memory and would wrap new day keys with it) takes it exclusively
(:func:`exclusive`) and refuses with a clear message when it cannot.  The kernel
drops the lock when a process dies, ``kill -9`` included, so a crash never
leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from vms.core.errors import DomainError, Kind

LOCK_NAME = "service.lock"


def _open(data_dir: Path) -> int:
    return os.open(Path(data_dir) / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)


def hold_shared(data_dir: Path) -> int:
    """Hold the lock shared until the process exits; returns the descriptor."""
    fd = _open(data_dir)
    fcntl.flock(fd, fcntl.LOCK_SH)
    return fd


@contextmanager
def exclusive(data_dir: Path, what: str) -> Iterator[None]:
    fd = _open(data_dir)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DomainError(Kind.PRECONDITION, f"{what} needs every service of this appliance stopped (vms serve, "
                                                 "record or janitor is running on this data directory: "
                                                 "systemctl stop vms, then try again)") from None
        yield
    finally:
        os.close(fd)
