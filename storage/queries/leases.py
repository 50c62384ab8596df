"""Leases between processes, and the record of daily job runs."""

from __future__ import annotations

import datetime as dt
import os
import socket

from sqlalchemy import delete, update
from sqlmodel import Session, col, select

from storage.models import (
    Lease,
    utcnow,
)
from storage.queries._common import _insert_ignore

# --- leases and job runs ------------------------------------------------------------------


def _host_id() -> str:
    """This host and PID namespace: two containers can share a hostname (host networking)
    but not their pids, so a lease's pid is only checked from the namespace it names."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")  # "pid:[4026531836]"
    except OSError:  # not Linux
        return socket.gethostname()
    return f"{socket.gethostname()}/{namespace.strip('pid:[]')}"


HOST_ID = _host_id()
PROCESS_OWNER = f"{HOST_ID}:{os.getpid()}"


def acquire_lease(name: str, owner: str, seconds: float, *, session: Session) -> bool:
    """Take the named lease if it is free, expired, ours, or held by a dead local process.

    Commits at once: a lease only means something when other processes can see it.
    """
    now = utcnow()
    expires = now + dt.timedelta(seconds=seconds)
    row = {"name": name, "owner": owner, "expires_at": expires}
    if _insert_ignore(session, Lease, [row], ("name",)):
        session.commit()
        return True
    holder = session.exec(select(Lease.owner).where(Lease.name == name)).first()
    stale = holder is not None and _owner_is_dead(holder)
    condition = (col(Lease.expires_at) < now) | (col(Lease.owner) == owner)
    if stale:
        condition = condition | (col(Lease.owner) == holder)
    stmt = (
        update(Lease)
        .where(col(Lease.name) == name, condition)
        .values(owner=owner, expires_at=expires)
    )
    taken = (session.execute(stmt).rowcount or 0) > 0
    session.commit()
    return taken


def release_lease(name: str, owner: str, *, session: Session) -> None:
    session.execute(delete(Lease).where(col(Lease.name) == name, col(Lease.owner) == owner))
    session.commit()


def _owner_is_dead(owner: str) -> bool:
    """True when `owner` names a process on this host (and PID namespace) that no longer runs."""
    host, _, rest = owner.partition(":")
    pid_text = rest.split(":", 1)[0]
    if host != HOST_ID or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
