"""The two databases the run store can live in: a SQLite file (the default, nothing to install) or a
PostgreSQL server (`LIFECYCLE_RUNS=postgresql://...`, for several app servers and a Ray cluster).

`core.serving.store.RunStore` writes its SQL once, with `?` placeholders and the statements both
databases share (`INSERT ... RETURNING`, `ON CONFLICT ... DO UPDATE`); a backend supplies what
differs: connections (one per thread), how a write transaction starts, where the schema version
lives, the column types of the migrations, how a recording process shows it is alive, and what an
error means in words.

A process that records runs must show it is alive, so that a run whose process died (kill -9, a
closed laptop, a lost Ray worker) is marked interrupted and does not stay "running" forever:
- SQLite: an exclusive lock file per process (`<db>.owners/<token>.lock`, via the portable
  `filelock`), which the operating system drops when the process dies;
- PostgreSQL: a session advisory lock held on a connection of its own, which the server drops
  when that connection ends. A restart of the server drops it too: the lock is taken again at
  the next write, and a run wrongly marked interrupted meanwhile goes back to running (see
  `RunStore.add_epoch`).
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Callable, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from filelock import FileLock, Timeout

BUSY_TIMEOUT_S = 10.0  # how long a write waits for another writer (SQLite) or for a restarting server
POSTGRES_SCHEMES = ("postgresql://", "postgres://")

# column types in the migrations' text, per database
TYPES = {
    "sqlite": {"$ID": "INTEGER PRIMARY KEY AUTOINCREMENT", "$REF": "INTEGER", "$REAL": "REAL", "$BLOB": "BLOB"},
    "postgresql": {"$ID": "BIGSERIAL PRIMARY KEY", "$REF": "BIGINT", "$REAL": "DOUBLE PRECISION", "$BLOB": "BYTEA"},
}


class StoreError(RuntimeError):
    """The run store cannot be used; the message says which store and what to do."""


def is_postgres(location: str | os.PathLike) -> bool:
    return str(location).startswith(POSTGRES_SCHEMES)


def redact(url: str) -> str:
    """A PostgreSQL URL as it may be shown: without its password, in the user part or the query
    (`?password=`, `?sslpassword=`, or any other parameter that names a password or a key)."""
    parts = urlsplit(url)
    if parts.password is not None:
        host = parts.hostname or ""
        parts = parts._replace(netloc=f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else ""))
    if parts.query:
        pairs = [(k, "***" if any(w in k.lower() for w in ("password", "key", "secret", "token")) else v)
                 for k, v in parse_qsl(parts.query, keep_blank_values=True)]
        parts = parts._replace(query=urlencode(pairs, safe="*"))
    return urlunsplit(parts)


def migration_sql(template: str, dialect: str) -> list[str]:
    """One migration's statements, with its column types for `dialect`."""
    for token, sql_type in TYPES[dialect].items():
        template = template.replace(token, sql_type)
    return [s for s in template.split(";") if s.strip()]


class Cursor(Protocol):
    rowcount: int

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    def execute(self, sql: str, args: Any = ...) -> Cursor: ...

    def executemany(self, sql: str, rows: Any) -> Any: ...


class Backend(Protocol):
    dialect: str
    label: str  # where the store is, as messages show it (a file, or a URL without its password)

    def connect(self) -> Connection: ...

    def write(self, fn: Callable[[Connection], Any]) -> Any: ...

    def read(self, fn: Callable[[Connection], Any]) -> Any: ...

    def version(self) -> int: ...

    def migrate(self, upgrade: Callable[[Connection, int], None]) -> None: ...

    def hold_owner(self, owner: str) -> bool: ...

    def owner_alive(self, owner: str) -> bool: ...

    def release_owner(self) -> None: ...

    def read_only(self) -> bool: ...

    def close(self) -> None: ...


# --- SQLite --------------------------------------------------------------------------------------

_write_locks: dict[str, threading.Lock] = {}
_write_locks_guard = threading.Lock()


def _write_lock(path: Path) -> threading.Lock:
    """One lock per database file per process: writes from every thread take turns."""
    key = str(path.resolve())
    with _write_locks_guard:
        return _write_locks.setdefault(key, threading.Lock())


class SqliteBackend:
    """One SQLite file: WAL journal and a busy timeout, so readers never block the writer and
    writers wait their turn; every write one short `BEGIN IMMEDIATE` transaction, serialised within
    a process (the SQLite here predates the fix for a rare WAL bug with two simultaneous writers);
    the schema version in `PRAGMA user_version`."""

    dialect = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.label = str(path)
        self._local = threading.local()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the folder for the runs database {path}: {exc.strerror}") from exc
        self._lock = _write_lock(path)
        self._owner_dir = path.with_name(path.name + ".owners")
        self._owner_lock: FileLock | None = None

    def connect(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=True)
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            conn.execute("PRAGMA foreign_keys = ON")
            mode = _wal_mode(conn)
            if mode.lower() != "wal" and not self.read_only():
                raise StoreError(f"{self.path}: SQLite refused WAL mode ({mode})")
            self._local.conn = conn
        return conn

    def read(self, fn: Callable[[Connection], Any]) -> Any:
        return self._guard(lambda: fn(self.connect()))

    def write(self, fn: Callable[[Connection], Any]) -> Any:
        """One short BEGIN IMMEDIATE transaction (a read that upgrades to a write could fail at
        once with SQLITE_BUSY), serialised with this process's other writers."""
        def go() -> Any:
            conn = self.connect()
            with self._lock:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    result = fn(conn)
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
                return result
        return self._guard(go)

    def version(self) -> int:
        return self.read(lambda c: c.execute("PRAGMA user_version").fetchone()[0])

    def migrate(self, upgrade: Callable[[Connection, int], None]) -> None:
        def go(conn: Connection) -> None:
            upgrade(conn, conn.execute("PRAGMA user_version").fetchone()[0])  # re-read inside the lock
        self.write(go)

    @staticmethod
    def set_version(conn: Connection, version: int) -> None:
        conn.execute(f"PRAGMA user_version = {int(version)}")

    def hold_owner(self, owner: str) -> bool:
        """Held for this process's lifetime; False when the folder is not writable (then runs
        this process records cannot be told apart from interrupted ones, and none are written)."""
        try:
            self._owner_dir.mkdir(exist_ok=True)
            lock = FileLock(str(self._owner_dir / f"{owner}.lock"), thread_local=False)
            lock.acquire(timeout=1)
        except (OSError, Timeout):
            return False
        self._owner_lock = lock
        return True

    def owner_alive(self, owner: str) -> bool:
        path = self._owner_dir / f"{owner}.lock"
        if not path.exists():
            return False
        probe = FileLock(str(path), thread_local=False)
        try:
            probe.acquire(timeout=0)
        except Timeout:
            return True
        except OSError:
            return True  # cannot tell: never mark a live run interrupted
        probe.release()
        path.unlink(missing_ok=True)
        return False

    def release_owner(self) -> None:
        if self._owner_lock is not None:
            self._owner_lock.release()
            Path(self._owner_lock.lock_file).unlink(missing_ok=True)
            self._owner_lock = None

    def read_only(self) -> bool:
        return self.path.exists() and not os.access(self.path, os.W_OK)

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _guard(self, fn: Callable[[], Any]) -> Any:
        """Every sqlite error leaves as one StoreError that names the file and what to do."""
        try:
            return fn()
        except StoreError:
            raise
        except sqlite3.DatabaseError as exc:
            text = str(exc)
            if "readonly" in text or "read-only" in text:
                hint = "the file or its folder is read-only: point the app or --runs-db at a writable place"
            elif "not a database" in text or "malformed" in text:
                hint = "the file is damaged: move it away (runs recorded before are in it) or choose another file"
            elif "locked" in text or "busy" in text:
                hint = "another program holds it locked for too long: try again"
            else:
                hint = "choose another file with --runs-db, $LIFECYCLE_RUNS or the app's Data page"
            raise StoreError(f"runs database {self.path}: {text}; {hint}") from exc
        except OSError as exc:
            raise StoreError(f"runs database {self.path}: {exc}") from exc


def _wal_mode(conn: sqlite3.Connection) -> str:
    """Switch to WAL (a no-op once the file is in WAL mode). Two processes creating the file at once
    both need an exclusive lock for it, and SQLite answers one of them 'locked' at once, without
    waiting for its busy timeout: so wait here, as the busy timeout would."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            return conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


# --- PostgreSQL ----------------------------------------------------------------------------------

CONNECT_TIMEOUT_S = 5
MIGRATION_LOCK = 7_316_201  # advisory lock key: one migrating process at a time


class _Row(tuple):
    """A result row addressable by position and by column name, as sqlite3.Row is."""

    _index: dict[str, int]

    def __getitem__(self, key: Any) -> Any:  # type: ignore[override]
        return super().__getitem__(self._index[key] if isinstance(key, str) else key)


def _row_factory(cursor: Any) -> Callable[[Any], _Row]:
    index = {column.name: i for i, column in enumerate(cursor.description or ())}

    def make(values: Any) -> _Row:
        row = _Row(values)
        row._index = index
        return row
    return make


class _PgConnection:
    """A psycopg connection that takes the store's `?` placeholders."""

    def __init__(self, conn: Any) -> None:
        self.raw = conn

    def execute(self, sql: str, args: Any = ()) -> Any:
        return self.raw.execute(sql.replace("?", "%s"), tuple(args) if args else None)

    def executemany(self, sql: str, rows: Any) -> None:
        with self.raw.cursor() as cursor:
            cursor.executemany(sql.replace("?", "%s"), [tuple(row) for row in rows])

    @property
    def broken(self) -> bool:
        return bool(self.raw.closed or self.raw.broken)


def owner_key(owner: str) -> int:
    """A recording process's token as a PostgreSQL advisory lock key (a signed 64-bit number)."""
    return int.from_bytes(hashlib.blake2b(owner.encode(), digest_size=8).digest(), "big", signed=True)


class PostgresBackend:
    """A PostgreSQL database (psycopg 3, from requirements-cluster.txt). Connections are per thread;
    a connection the server dropped (a restart) is opened again and the write retried for up to
    BUSY_TIMEOUT_S, so a run that is training loses no epoch to a quick restart."""

    dialect = "postgresql"

    def __init__(self, url: str) -> None:
        try:
            import psycopg
        except ImportError:
            raise StoreError(f"runs database {redact(url)}: PostgreSQL needs psycopg, which is not installed: "
                             "pip install -r requirements-cluster.txt") from None
        self._psycopg = psycopg
        self.url = url
        self.label = redact(url)
        self._local = threading.local()
        self._owner_conn: Any = None
        self._owner: str | None = None
        self._owner_guard = threading.Lock()
        self._reached = False  # has the server answered once? Then a failure is a restart, worth waiting for

    def _open(self) -> Any:
        conn = self._psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S,
                                     row_factory=_row_factory)
        self._reached = True
        return conn

    def connect(self) -> _PgConnection:
        conn: _PgConnection | None = getattr(self._local, "conn", None)
        if conn is None or conn.broken:
            conn = _PgConnection(self._open())
            self._local.conn = conn
        return conn

    def read(self, fn: Callable[[Connection], Any]) -> Any:
        return self._retrying(lambda: fn(self.connect()))

    def write(self, fn: Callable[[Connection], Any]) -> Any:
        def go() -> Any:
            self._keep_owner()
            conn = self.connect()
            with conn.raw.transaction():
                return fn(conn)
        return self._retrying(go)

    def version(self) -> int:
        def read(conn: Connection) -> int:
            if conn.execute("SELECT to_regclass('schema_version')").fetchone()[0] is None:
                return 0  # a fresh database: migrate() creates the table
            row = conn.execute("SELECT version FROM schema_version").fetchone()
            return row[0] if row else 0
        return self.read(read)

    def migrate(self, upgrade: Callable[[Connection, int], None]) -> None:
        def go(conn: Connection) -> None:
            conn.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))
            # under the lock: two CREATE TABLE IF NOT EXISTS at once can still collide in PostgreSQL
            # (a class's first runs open a fresh database together)
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = conn.execute("SELECT version FROM schema_version").fetchone()
            upgrade(conn, row[0] if row else 0)
        self.write(go)

    @staticmethod
    def set_version(conn: Connection, version: int) -> None:
        conn.execute("DELETE FROM schema_version")
        conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))

    def hold_owner(self, owner: str) -> bool:
        self._owner = owner
        try:
            self._retrying(self._keep_owner)
        except StoreError:
            return False
        return True

    def _keep_owner(self) -> None:
        """(Re)take this process's advisory lock on its own connection, which a server restart drops."""
        with self._owner_guard:
            if self._owner is None or self._owner_alive_here():
                return
            conn = _PgConnection(self._open())
            conn.execute("SELECT pg_advisory_lock(?)", (owner_key(self._owner),))
            self._owner_conn = conn

    def _owner_alive_here(self) -> bool:
        """Does this process's lock connection still hold? A connection the server ended is only
        known to be broken once used: so use it (one round trip per write, at most a few per epoch)."""
        if self._owner_conn is None or self._owner_conn.broken:
            return False
        try:
            self._owner_conn.execute("SELECT 1")
        except self._psycopg.Error:
            self._owner_conn.raw.close()
            return False
        return True

    def owner_alive(self, owner: str) -> bool:
        def probe(conn: Connection) -> bool:
            key = owner_key(owner)
            if not conn.execute("SELECT pg_try_advisory_lock(?)", (key,)).fetchone()[0]:
                return True
            conn.execute("SELECT pg_advisory_unlock(?)", (key,))
            return False
        return self.read(probe)

    def release_owner(self) -> None:
        with self._owner_guard:
            self._owner = None
            if self._owner_conn is not None:
                self._owner_conn.raw.close()
                self._owner_conn = None

    def read_only(self) -> bool:
        return False

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.raw.close()
            self._local.conn = None

    def _retrying(self, fn: Callable[[], Any]) -> Any:
        """Run fn; while the server cannot be reached (down, restarting), try again for up to
        BUSY_TIMEOUT_S, then give up with one StoreError."""
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                return fn()
            except StoreError:
                raise
            except self._psycopg.OperationalError as exc:
                # a server that never answered is a wrong address: say so at once
                if not self._reached or time.monotonic() > deadline:
                    raise self._error(exc) from exc
                self.close()
                time.sleep(0.5)
            except self._psycopg.Error as exc:
                raise self._error(exc) from exc

    def _error(self, exc: Exception) -> StoreError:
        text = " ".join(str(exc).split())
        if "password" in text or "authentication" in text:
            hint = "check the user and password in the URL"
        elif "does not exist" in text and "database" in text:
            hint = "create the database (createdb) or fix its name in the URL"
        elif isinstance(exc, self._psycopg.OperationalError):
            hint = "is PostgreSQL running there and reachable from this machine? Check the host and port"
        else:
            hint = "choose another store with --runs-db, $LIFECYCLE_RUNS or the app's Data page"
        return StoreError(f"runs database {self.label}: {text}; {hint}")
