"""On PostgreSQL who acts is the database login, never what the command line declares: two
officers with login roles of their own (bithu_vp, btv_khoi) linked by an administrator with
``user link``; neither can act as the other, with or without ``--actor``; a login no one
linked is refused; the first administrator is the login that ran ``init``."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import postgresql_schema
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ENTRY_POINT = Path(sys.executable).parent / "memberflow"


def memberflow(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ENTRY_POINT), "--db", url, "--lang", "en", *args],
                          capture_output=True, text=True, timeout=120)


def as_login(url: str, login: str) -> str:
    """The same database and schema, connected as ``login``."""
    return make_url(url).set(username=login).render_as_string(hide_password=False)


@pytest.fixture
def installation() -> Iterator[tuple[str, dict[str, str]]]:
    """A PostgreSQL installation made through the CLI: ``init`` by the installing login, a
    branch and its committee above, two officers each with a login role of their own."""
    with postgresql_schema() as url:
        schema = re.sub(r".*%3D", "", url)
        logins = {user: f"{user.replace('.', '_')}_{schema[3:11]}" for user in ("bithu.vp", "btv.khoi")}
        logins["stranger"] = f"stranger_{schema[3:11]}"
        engine = create_engine(url)
        with engine.begin() as conn:
            for login in logins.values():
                conn.execute(text(f"CREATE ROLE {login} LOGIN"))
        made = memberflow(url, "init", "--admin", "quantri", "--admin-name", "Trịnh Công Minh")
        assert made.returncode == 0, made.stderr
        with engine.begin() as conn:
            for login in logins.values():
                conn.execute(text(f"GRANT USAGE ON SCHEMA {schema} TO {login}"))
                conn.execute(text(f"GRANT ALL ON ALL TABLES IN SCHEMA {schema} TO {login}"))
                conn.execute(text(f"GRANT ALL ON ALL SEQUENCES IN SCHEMA {schema} TO {login}"))
        for args in (["org", "add", "KHOI", "--name", "Đảng bộ Khối", "--kind", "committee_above"],
                     ["org", "add", "VP", "--name", "Chi bộ Văn phòng", "--kind", "branch", "--parent",
                      "KHOI"],
                     ["user", "add", "bithu.vp", "--name", "Nguyễn Thị Hương"],
                     ["user", "grant", "bithu.vp", "branch_secretary", "--org", "VP"],
                     ["user", "add", "btv.khoi", "--name", "Bùi Thanh Sơn"],
                     ["user", "grant", "btv.khoi", "standing_committee_above", "--org", "KHOI"],
                     ["user", "link", "bithu.vp", "--db-login", logins["bithu.vp"]],
                     ["user", "link", "btv.khoi", "--db-login", logins["btv.khoi"]]):
            done = memberflow(url, *args)  # as the installing login: the first administrator
            assert done.returncode == 0, (args, done.stderr)
        try:
            yield url, logins
        finally:
            with engine.begin() as conn:
                for login in logins.values():
                    conn.execute(text(f"DROP OWNED BY {login}"))
    with engine.begin() as conn:
        for login in logins.values():
            conn.execute(text(f"DROP ROLE {login}"))
    engine.dispose()


def opened_by(url: str, login: str, *actor: str) -> subprocess.CompletedProcess[str]:
    return memberflow(as_login(url, login), *actor, "case", "open", "1", "--org", "VP", "--date",
                      "01/02/2026")


def test_each_login_acts_as_the_user_linked_to_it_and_as_no_one_else(
        installation: tuple[str, dict[str, str]]) -> None:
    url, logins = installation
    person = memberflow(as_login(url, logins["bithu.vp"]), "person", "add", "--org", "VP", "--name",
                        "Lê Thị Mỹ Duyên", "--birth-date", "05/09/1999", "--gender", "female")
    assert person.returncode == 0, person.stderr
    pretending = opened_by(url, logins["bithu.vp"], "--actor", "btv.khoi")
    assert (pretending.returncode, pretending.stdout) == (5, "")
    assert pretending.stderr == (f"error: database login {logins['bithu.vp']} acts as bithu.vp; it "
                                 "cannot act as btv.khoi\n")
    opened = opened_by(url, logins["bithu.vp"])
    assert opened.returncode == 0, opened.stderr
    history = memberflow(as_login(url, logins["btv.khoi"]), "case", "history", "1", "--format", "json")
    assert history.returncode == 0, history.stderr
    assert [event["actor"] for event in json.loads(history.stdout)] == ["bithu.vp"]


def test_the_committee_login_cannot_act_as_the_secretary(
        installation: tuple[str, dict[str, str]]) -> None:
    url, logins = installation
    for actor in (["--actor", "bithu.vp"], ["--actor", "quantri"]):
        refused = memberflow(as_login(url, logins["btv.khoi"]), *actor, "user", "list")
        assert (refused.returncode, refused.stdout) == (5, "")
        assert f"acts as btv.khoi; it cannot act as {actor[1]}" in refused.stderr


def test_a_login_no_one_linked_is_refused_and_unlinking_ends_a_login(
        installation: tuple[str, dict[str, str]]) -> None:
    url, logins = installation
    for actor in ([], ["--actor", "bithu.vp"]):
        refused = memberflow(as_login(url, logins["stranger"]), *actor, "org", "list")
        assert (refused.returncode, refused.stdout) == (5, "")
        assert refused.stderr == (f"error: database login {logins['stranger']} acts as no memberflow "
                                  f"user; an administrator links it with 'memberflow user link USER "
                                  f"--db-login {logins['stranger']}'\n")
    assert memberflow(url, "user", "link", "bithu.vp", "--unlink").returncode == 0
    ended = memberflow(as_login(url, logins["bithu.vp"]), "org", "list")
    assert ended.returncode == 5 and "acts as no memberflow user" in ended.stderr
    taken = memberflow(url, "user", "link", "bithu.vp", "--db-login", logins["btv.khoi"])
    assert taken.returncode != 0 and "already acts as btv.khoi" in taken.stderr


def test_the_login_that_ran_init_is_the_first_administrator(
        installation: tuple[str, dict[str, str]]) -> None:
    url, _ = installation
    listed = memberflow(url, "user", "list", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    admin = next(u for u in json.loads(listed.stdout) if u["username"] == "quantri")
    assert admin["db_login"] == make_url(url).username
