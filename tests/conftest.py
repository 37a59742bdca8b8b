"""The suite's shared fixtures, in one place (helpers they use are in ``tests/support/``).

- ``adb_server`` (session): one real adb server on a free port for the whole run; ``adb`` is
  perflab's ``Adb`` on it. Phones connect and disconnect between tests, so a test that counts
  devices filters by its own serials.
- ``phones`` (per test) / ``module_phones`` (per module): start emulated phones connected to that
  server; every one is disconnected and stopped at teardown, also when the test failed.
- ``pg_url`` (session): a PostgreSQL URL — ``$PERFLAB_TEST_PG_URL`` when set, else a throwaway
  cluster started for the session (Debian's binaries, which ``scripts/setup.sh --dev`` installs).

With ``-n auto --dist loadscope`` (pytest-xdist, docs/testing.md) the suite runs in worker
processes, as many as the CPUs and at most 4; each worker has its own session fixtures (adb
server, PostgreSQL cluster), and a module stays on one worker (its ``module_phones``).
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import adbutils
    from support.phones import PhoneFactory

    from perflab.devices.adb import Adb

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# A developer's own ~/.config/perflab must not change what the tests load: every test (and every
# perflab it starts) sees an empty user config folder unless the test sets one itself.
os.environ["PERFLAB_CONFIG_DIR"] = tempfile.mkdtemp(prefix="perflab-test-config-")


@pytest.fixture
def perflab_cmd() -> list[str]:
    """The installed console script's equivalent, run with this interpreter."""
    return [sys.executable, "-m", "perflab"]


@pytest.fixture(scope="session")
def adb_server() -> Iterator[adbutils.AdbClient]:
    """A real adb server on a free port (never 5037), killed at the session's end."""
    from perflab.emulator.testing import private_adb_server

    with private_adb_server() as client:
        yield client


@pytest.fixture(scope="session")
def adb(adb_server: adbutils.AdbClient) -> Adb:
    """perflab's adb client on the session's server (short timeouts: emulated phones answer fast)."""
    from perflab.devices.adb import Adb

    return Adb(port=adb_server.port, timeout_s=20.0, backoff_s=0.2)


@pytest.fixture
def phones(adb_server: adbutils.AdbClient) -> Iterator[PhoneFactory]:
    """Emulated phones for one test: ``phones.start("pixel7")``; all stopped when the test ends."""
    from support.phones import PhoneFactory

    with PhoneFactory(adb_server) as factory:
        yield factory


@pytest.fixture(scope="module")
def module_phones(adb_server: adbutils.AdbClient) -> Iterator[PhoneFactory]:
    """Emulated phones shared by a module's tests; all stopped when the module ends."""
    from support.phones import PhoneFactory

    with PhoneFactory(adb_server) as factory:
        yield factory


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A PostgreSQL server's URL: ``$PERFLAB_TEST_PG_URL`` if set, else a throwaway cluster."""
    from support.postgres import pg_bindir, private_postgres

    url = os.environ.get("PERFLAB_TEST_PG_URL")
    if url:
        yield url
        return
    if pg_bindir() is None:
        pytest.skip("PostgreSQL is not installed (scripts/setup.sh --dev installs it) and "
                    "PERFLAB_TEST_PG_URL is not set")
    with private_postgres() as pg:
        yield pg.url


@pytest.fixture
def pg_schema_url(pg_url: str) -> Iterator[str]:
    """``pg_url`` with a schema of this test's own (its search_path), dropped afterwards."""
    import secrets

    import sqlalchemy as sa

    from perflab.store.sql import normalize_url

    schema = f"t_{secrets.token_hex(4)}"
    eng = sa.create_engine(normalize_url(pg_url))
    with eng.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in pg_url else "?"
    try:
        yield f"{pg_url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with eng.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        eng.dispose()


#: workers for ``-n auto``: the suite is CPU-bound (emulated phones run real models on the host),
#: so more workers than CPUs only queue; past 4, each worker's TensorFlow and emulated phones cost
#: more memory than the time they save
MAX_WORKERS = 4


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    return max(1, min(MAX_WORKERS, len(os.sched_getaffinity(0))))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Modules with end-to-end (``slow``) tests first, the one with the longest declared
    ``timeout`` first among them; every module kept whole and in its own order. Under xdist a
    module is handed to a worker in this order, so the longest start early instead of ending the
    run alone (the 540p30 run on two phones, ~11 minutes, came last and ran 16 of the suite's
    39 minutes). A test's timeout is the only length the suite declares. Only in xdist's workers
    (they collect, the controller hands out): in one process the order stays the files' order."""
    if not hasattr(config, "workerinput"):
        return
    module_of = {it.nodeid: it.nodeid.split("::")[0] for it in items}
    longest_s: dict[str, float] = {}
    for it in items:
        if it.get_closest_marker("slow") is not None:
            t = it.get_closest_marker("timeout")
            declared = float(t.args[0]) if t is not None and t.args else 0.0
            m = module_of[it.nodeid]
            longest_s[m] = max(longest_s.get(m, 0.0), declared)
    items.sort(key=lambda it: (module_of[it.nodeid] not in longest_s, -longest_s.get(module_of[it.nodeid], 0.0)))

