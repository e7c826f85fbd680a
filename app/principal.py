"""Who is acting: established by the front end, never taken from what a user declares
where the front end can know better.

* On an SQLite file, the file is the trust boundary: whoever can write it can write any
  row, so ``--actor`` (or ``MEMBERFLOW_ACTOR``) names the user, and the README says so.
* On PostgreSQL, the principal is the database login (``session_user``), linked to a
  memberflow user by an administrator (``user link USER --db-login NAME``); ``--actor`` may
  only name that same user. An officer cannot claim to be someone else, because their
  database password or certificate is theirs.
* The web app establishes the principal from its signed session (or an API token).
"""

from __future__ import annotations

from dataclasses import dataclass

from memberflow.errors import NotPermitted
from memberflow.i18n import _
from memberflow.workflow.directory import TICK_ACTOR


@dataclass(frozen=True)
class Principal:
    username: str
    established_by: str  # how the front end knows: "--actor", "database login X", "web session"


# The scheduler's own principal: ``memberflow tick`` makes the moves time makes.
SYSTEM = Principal(TICK_ACTOR, "system")


def from_declared(username: str | None) -> str:
    """The user named with ``--actor`` on a file database (checked to exist by the caller)."""
    if not username:
        raise NotPermitted(_("no one is named as acting: name the user with --actor or "
                             "MEMBERFLOW_ACTOR"))
    return username


def from_login(login: str, linked: str | None, declared: str | None) -> Principal:
    """The user a PostgreSQL login acts as; ``--actor`` may only repeat it."""
    if linked is None:
        raise NotPermitted(_("database login {login} acts as no memberflow user; an administrator "
                             "links it with 'memberflow user link USER --db-login {login}'")
                           .format(login=login))
    if declared and declared != linked:
        raise NotPermitted(_("database login {login} acts as {user}; it cannot act as {declared}")
                           .format(login=login, user=linked, declared=declared))
    return Principal(linked, f"database login {login}")
