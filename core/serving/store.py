"""The run store: every training run from the app and the CLI, kept in one database.

A run is recorded when it starts (step, full config, seed, device, torch version, source), each
epoch as it finishes, and its end (completed / stopped / failed, with the reason) together with
the weights that were tested. The database is a SQLite file by default (nothing to install), or
PostgreSQL when the location is a `postgresql://` URL, so that several app servers and the
machines of a Ray cluster share one store (`core.serving.store_backends`: what differs between the
two). The SQL here is written once for both; the schema version and MIGRATIONS move a store
forward, whichever it is.

A run whose process died (kill -9, a closed laptop, a lost cluster worker) must not stay "running"
forever: each recording process shows it is alive (a lock the operating system or the server drops
when it dies), and a "running" run whose owner is gone is marked interrupted, with the epochs it
finished.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import sqlite3
import time
import uuid
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

import torch

from core.architecture.challenge import CHALLENGE
from core.project import ROOT
from core.results.summary import JudgedRun, setting_key
from core.serving.store_backends import (
    Backend,
    Connection,
    PostgresBackend,
    SqliteBackend,
    StoreError,
    is_postgres,
    migration_sql,
    redact,
)
from core.training.config import TrainConfig
from core.training.events import EPOCH_FIELDS
from core.training.inside import Sample

DEFAULT_DB = ROOT / "runs" / "runs.sqlite3"
STATUSES = ("running", "completed", "stopped", "failed", "interrupted")
SOURCES = ("app", "cli")
MAX_NAME = 40  # characters of a student's name
INTERRUPTED_CHECK_S = 10.0

# Each migration is written once for both databases: $ID, $REF, $REAL and $BLOB become each one's
# column types (core.serving.store_backends.TYPES).
MIGRATIONS: list[str] = [
    # version 1
    """
    CREATE TABLE runs (
        id $ID,
        step INTEGER NOT NULL,
        seed INTEGER NOT NULL,
        config TEXT NOT NULL,         -- TrainConfig.as_dict() as JSON
        config_key TEXT NOT NULL,     -- the config without seed and device: groups the seeds of one setting
        label TEXT NOT NULL,          -- the run's limits ("full: ..." / "reduced: ...")
        source TEXT NOT NULL,         -- app | cli
        device TEXT NOT NULL,
        torch TEXT NOT NULL,
        params INTEGER NOT NULL,
        status TEXT NOT NULL,         -- running | completed | stopped | failed | interrupted
        reason TEXT NOT NULL DEFAULT '',
        owner TEXT NOT NULL,          -- the recording process's token (see the module docstring)
        started_at $REAL NOT NULL,
        finished_at $REAL
    );
    CREATE INDEX runs_by_step ON runs(step, started_at);
    CREATE TABLE epochs (
        run_id $REF NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        epoch INTEGER NOT NULL,
        train_loss $REAL, train_acc $REAL, test_loss $REAL, test_acc $REAL, lr $REAL, seconds $REAL,
        images_per_s $REAL,
        PRIMARY KEY (run_id, epoch)
    );
    CREATE TABLE weights (
        run_id $REF PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
        state_dict $BLOB NOT NULL      -- torch.save of the tested state_dict
    );
    """,
    # version 2: the class together. Who started a run (browser session, typed name), what they
    # predicted, and a summary kept up to date per epoch, so the class board reads one row per run
    # and never the epochs table. Classes mark where a board starts counting; exercises are
    # teacher links that lock or hide controls.
    f"""
    ALTER TABLE runs ADD COLUMN session TEXT NOT NULL DEFAULT '';    -- the browser session ('' = command line)
    ALTER TABLE runs ADD COLUMN student TEXT NOT NULL DEFAULT '';    -- the name typed (shown as text only)
    ALTER TABLE runs ADD COLUMN prediction TEXT NOT NULL DEFAULT ''; -- JSON (core.classroom.Prediction)
    ALTER TABLE runs ADD COLUMN epochs_done INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE runs ADD COLUMN best_acc $REAL;
    ALTER TABLE runs ADD COLUMN min_last $REAL;                       -- min of the last {CHALLENGE.last_epochs} test accuracies
    UPDATE runs SET
        epochs_done = (SELECT COUNT(*) FROM epochs WHERE run_id = runs.id),
        best_acc = (SELECT MAX(test_acc) FROM epochs WHERE run_id = runs.id),
        min_last = CASE WHEN (SELECT COUNT(*) FROM epochs WHERE run_id = runs.id) >= {CHALLENGE.last_epochs} THEN
            (SELECT MIN(test_acc) FROM (SELECT test_acc FROM epochs WHERE run_id = runs.id
                                         ORDER BY epoch DESC LIMIT {CHALLENGE.last_epochs}) AS recent) END;
    CREATE INDEX runs_by_start ON runs(started_at);
    CREATE INDEX runs_by_status ON runs(status);
    CREATE TABLE classes (
        id $ID,
        started_at $REAL NOT NULL,
        name TEXT NOT NULL DEFAULT '',
        predict_first INTEGER NOT NULL DEFAULT 0  -- step pages fold their result until a student predicted or trained
    );
    CREATE TABLE exercises (
        id $ID,
        page TEXT NOT NULL,             -- step_N or design
        settings TEXT NOT NULL,         -- JSON object: link key -> value as the link writes it
        locked TEXT NOT NULL,           -- JSON list of link keys: shown, cannot change
        hidden TEXT NOT NULL,           -- JSON list of link keys: not shown, cannot change
        created_at $REAL NOT NULL
    );
    """,
    # version 3: inside the network while it trains (core.training.inside), sampled on the batches
    # that report: what each layer's activations, gradients and updates did, kept so a finished run
    # can be shown again and compared
    """
    CREATE TABLE inside (
        run_id $REF NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        step INTEGER NOT NULL,          -- the optimiser step sampled, 1-based
        epoch INTEGER NOT NULL,
        layers TEXT NOT NULL,           -- JSON: layer -> metric -> value
        filters TEXT,                   -- JSON: the first convolution's filters, on some samples
        PRIMARY KEY (run_id, step)
    );
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


@dataclass(frozen=True)
class ClassInfo:
    """A class the teacher started: the board counts the runs from `started_at` on."""

    id: int
    started_at: float
    name: str
    predict_first: bool


@dataclass(frozen=True)
class Exercise:
    """A teacher link: a page whose `locked` controls are shown but fixed at `settings`, and
    whose `hidden` ones are fixed and not shown. The link carries only the id, so editing the
    URL cannot unlock anything."""

    id: int
    page: str
    settings: dict[str, str]
    locked: frozenset[str]
    hidden: frozenset[str]

    def fixes(self, key: str) -> bool:
        return key in self.locked or key in self.hidden


def resolve_db(location: str | os.PathLike | None = None) -> Path | str:
    """--runs-db / the app's setting, else $LIFECYCLE_RUNS, else runs/runs.sqlite3 in the project:
    a file, or a `postgresql://` URL (kept as text)."""
    chosen = location or os.environ.get("LIFECYCLE_RUNS") or DEFAULT_DB
    return str(chosen) if is_postgres(chosen) else Path(chosen).expanduser()


def describe_db(location: str | os.PathLike | None = None) -> str:
    """Where runs are kept, as it may be shown: a file's full path, or a URL without its password."""
    where = resolve_db(location)
    return redact(where) if isinstance(where, str) else str(where.resolve())


STORE_SUFFIXES = (".sqlite3", ".sqlite", ".db")
_SQLITE_HEADER = b"SQLite format 3\x00"


def check_chosen_location(location: str | os.PathLike) -> None:
    """Raise StoreError unless a location typed in a browser may become the run store: a PostgreSQL
    URL, a run store this project made, or a new `.sqlite3` file in a folder that exists. Checked
    before anything is opened, so nothing is created beside a refused path, and no other program's
    file (a database, a `.pth` that Python runs at start) is ever turned into a store."""
    if is_postgres(location):
        return
    try:
        path = Path(location).expanduser()
        if path.suffix not in STORE_SUFFIXES:
            raise StoreError(f"a run store is a SQLite file ending in {', '.join(STORE_SUFFIXES)}; "
                             f"{path.name!r} is not")
        if path.exists() or path.is_symlink():
            if not _is_run_store(path):
                raise StoreError(f"{path.name} already exists and is not a run store made by this app: "
                                 "choose a new file name, or one of this app's stores")
        elif not path.parent.is_dir():
            raise StoreError(f"the folder of {path.name} does not exist: the app creates a new store only in a "
                             "folder that is already there")
    except StoreError:
        raise
    except (OSError, RuntimeError) as exc:  # a folder this user may not read, an unknown ~user
        raise StoreError(f"that location cannot be checked ({type(exc).__name__}): choose another") from exc


def _is_run_store(path: Path) -> bool:
    """A regular SQLite file holding this project's tables (read without opening it as SQLite,
    which could write a journal next to a file that is not ours)."""
    if path.is_symlink() or not path.is_file():
        return False
    with open(path, "rb") as f:
        if f.read(16) != _SQLITE_HEADER:
            return False
    try:
        uri = path.resolve().as_uri() + "?mode=ro&immutable=1"  # immutable: no -shm or journal beside it
        with closing(sqlite3.connect(uri, uri=True, timeout=1)) as conn:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.Error:
        return False
    return {"runs", "epochs", "weights"} <= tables


def public_db_label(location: str | os.PathLike | None = None) -> str:
    """Where runs are kept, as a student may see it: `host/db` for PostgreSQL (no user, password or
    port), a file by its path inside the project, or by its name alone when it lies elsewhere."""
    where = resolve_db(location)
    if isinstance(where, str):
        parts = urlsplit(where)
        return f"{parts.hostname or 'localhost'}{parts.path or '/'}"
    try:
        return str(where.resolve().relative_to(ROOT))
    except ValueError:
        return where.name


def open_backend(location: str | os.PathLike | None = None) -> Backend:
    where = resolve_db(location)
    return PostgresBackend(where) if isinstance(where, str) else SqliteBackend(where)


@dataclass(frozen=True)
class RunTags:
    """Who started a run and what they expected of it (all optional; the CLI sets none)."""

    session: str = ""  # the browser session: a student may cancel or delete only their own runs
    student: str = ""  # the name typed for the class board; stored and shown as plain text
    prediction: str = ""  # core.classroom.Prediction as JSON, '' = none

    def __post_init__(self) -> None:
        for name, longest in (("session", 64), ("student", MAX_NAME), ("prediction", 500)):
            value = getattr(self, name)
            if not isinstance(value, str) or len(value) > longest:
                raise ValueError(f"a run's {name} is text of at most {longest} characters")


@dataclass(frozen=True)
class BoardRow:
    """One run as the class board shows it: the runs table's own columns, no epochs."""

    id: int
    step: int
    seed: int
    config_key: str
    limits: str  # stored in the column `label`: "full: ..." / "reduced: ..."
    params: int
    status: str
    started_at: float
    epochs_done: int
    best_acc: float | None
    min_last: float | None
    tags: RunTags


@dataclass(frozen=True)
class SeedResult:
    """One seed of one setting, as the leaderboard judges it."""

    config_key: str
    seed: int
    min_last: float
    params: int


@dataclass(frozen=True)
class StoredRun(JudgedRun):
    id: int
    step: int
    seed: int
    config: TrainConfig
    config_key: str
    limits: str  # stored in the column `label`: "full: ..." / "reduced: ..."
    source: str
    device: str
    torch: str
    params: int
    status: str
    reason: str
    started_at: float
    finished_at: float | None
    epochs: tuple[dict[str, float], ...]
    has_weights: bool
    tags: RunTags = RunTags()

    @property
    def started(self) -> str:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(self.started_at))

    def summary(self) -> dict[str, Any]:
        """One flat row for tables and `runs list --json`."""
        return {"id": self.id, "step": self.step, "net": self.config.net if self.config.is_design else "",
                "seed": self.seed, "status": self.status, "source": self.source, "student": self.tags.student,
                "started": self.started, "epochs": len(self.epochs), "best_test_acc": self.best_test,
                "min_last3_test_acc": self.min_last, "params": self.params, "device": self.device,
                "label": self.limits, "reason": self.reason}


class RunStore:
    def __init__(self, location: str | os.PathLike | None = None) -> None:
        self._db = open_backend(location)
        self.path: Path | str = self._db.path if isinstance(self._db, SqliteBackend) else self._db.label
        self.owner = uuid.uuid4().hex
        self._interrupted_checked = -math.inf
        self._owns = self._db.hold_owner(self.owner)
        self._migrate()

    @property
    def dialect(self) -> str:
        return self._db.dialect

    def _write(self, fn: Callable[[Connection], Any]) -> Any:
        return self._db.write(fn)

    def _read(self, fn: Callable[[Connection], Any]) -> Any:
        return self._db.read(fn)

    def _migrate(self) -> None:
        version = self._db.version()
        if version > SCHEMA_VERSION:
            raise StoreError(f"runs database {self._db.label} has schema version {version}, newer than this program "
                             f"({SCHEMA_VERSION}): update the program or choose another store")
        if version == SCHEMA_VERSION:
            return

        def upgrade(conn: Connection, current: int) -> None:
            for number in range(current, SCHEMA_VERSION):
                for statement in migration_sql(MIGRATIONS[number], self._db.dialect):
                    conn.execute(statement)
                self._db.set_version(conn, number + 1)
        self._db.migrate(upgrade)

    def close(self) -> None:
        self._db.close()
        if self._owns:
            self._db.release_owner()
            self._owns = False

    @property
    def writable(self) -> bool:
        return self._owns and not self._db.read_only()

    # --- writing --------------------------------------------------------------------------------

    def start_run(self, config: TrainConfig, source: str, device: str, params: int, limits: str,
                  tags: RunTags = RunTags()) -> int:
        if source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
        if not self._owns:
            raise StoreError(f"runs database {self._db.label}: this process cannot show that it is alive (its owner "
                             "lock cannot be created); point the app or --runs-db at a writable place")
        values = (config.step, config.seed, json.dumps(config.as_dict()), setting_key(config), limits, source, device,
                  torch.__version__, params, "running", self.owner, time.time(), tags.session, tags.student,
                  tags.prediction)
        return self._write(lambda c: c.execute(
            "INSERT INTO runs (step, seed, config, config_key, label, source, device, torch, params, status, owner, "
            "started_at, session, student, prediction) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            values).fetchone()[0])

    def add_epoch(self, run_id: int, row: dict[str, float]) -> None:
        columns = ", ".join(EPOCH_FIELDS)
        marks = ", ".join("?" for _ in EPOCH_FIELDS)

        updates = ", ".join(f"{k} = excluded.{k}" for k in EPOCH_FIELDS if k != "epoch")
        n = CHALLENGE.last_epochs

        def add(c: Connection) -> None:
            c.execute(f"INSERT INTO epochs (run_id, {columns}) VALUES (?, {marks}) "
                      f"ON CONFLICT (run_id, epoch) DO UPDATE SET {updates}", (run_id, *(row[k] for k in EPOCH_FIELDS)))
            # the run's summary, in the same transaction: the class board reads it without the epochs
            c.execute("UPDATE runs SET epochs_done = (SELECT COUNT(*) FROM epochs WHERE run_id = ?), "
                      "best_acc = (SELECT MAX(test_acc) FROM epochs WHERE run_id = ?), "
                      "min_last = CASE WHEN (SELECT COUNT(*) FROM epochs WHERE run_id = ?) >= ? THEN "
                      "(SELECT MIN(test_acc) FROM (SELECT test_acc FROM epochs WHERE run_id = ? "
                      "ORDER BY epoch DESC LIMIT ?) AS recent) END WHERE id = ?", (run_id, run_id, run_id, n, run_id, n, run_id))
            # a run marked interrupted while its owner could not show it was alive (the server restarted)
            # trains on: it is running again
            c.execute("UPDATE runs SET status = 'running', reason = '', finished_at = NULL "
                      "WHERE id = ? AND status = 'interrupted' AND owner = ?", (run_id, self.owner))
        self._write(add)

    def add_inside(self, run_id: int, samples: list[Sample]) -> None:
        """Samples of the run's inside, in one transaction (the recorder sends an epoch's worth at once)."""
        if not samples:
            return
        rows = [(run_id, s.step, s.epoch, json.dumps(s.layers), None if s.filters is None else json.dumps(s.filters))
                for s in samples]
        self._write(lambda c: c.executemany(
            "INSERT INTO inside (run_id, step, epoch, layers, filters) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (run_id, step) DO UPDATE SET epoch = excluded.epoch, layers = excluded.layers, "
            "filters = excluded.filters", rows))

    def inside(self, run_id: int) -> list[Sample]:
        """The run's samples in step order ([] for a run trained before they were kept, or side by side)."""
        rows = self._read(lambda c: c.execute(
            "SELECT step, epoch, layers, filters FROM inside WHERE run_id = ? ORDER BY step", (run_id,)).fetchall())
        return [Sample(row[0], row[1], json.loads(row[2]), None if row[3] is None else json.loads(row[3])) for row in rows]

    def finish_run(self, run_id: int, status: str, reason: str = "",
                   weights: dict[str, torch.Tensor] | None = None) -> None:
        if status not in STATUSES[1:]:
            raise ValueError(f"a run ends as one of {STATUSES[1:]}, got {status!r}")
        blob = _to_bytes(weights) if weights is not None else None

        def finish(c: Connection) -> None:
            c.execute("UPDATE runs SET status = ?, reason = ?, finished_at = ? WHERE id = ?",
                      (status, reason, time.time(), run_id))
            if blob is not None:
                c.execute("INSERT INTO weights (run_id, state_dict) VALUES (?, ?) "
                          "ON CONFLICT (run_id) DO UPDATE SET state_dict = excluded.state_dict", (run_id, blob))
        self._write(finish)

    def delete_run(self, run_id: int) -> bool:
        return self._write(lambda c: c.execute("DELETE FROM runs WHERE id = ?", (run_id,)).rowcount) > 0

    def mark_interrupted(self) -> int:
        """Runs left 'running' by a process that no longer exists become 'interrupted'."""
        owners = [row[0] for row in self._read(lambda c: c.execute(
            "SELECT DISTINCT owner FROM runs WHERE status = 'running' AND owner != ?", (self.owner,)).fetchall())]
        gone = [o for o in owners if not self._db.owner_alive(o)]
        if not gone:
            return 0
        marks = ", ".join("?" for _ in gone)
        return self._write(lambda c: c.execute(
            f"UPDATE runs SET status = 'interrupted', finished_at = COALESCE(finished_at, ?), "
            f"reason = 'its process ended before the run did (closed, killed or crashed)' "
            f"WHERE status = 'running' AND owner IN ({marks})", (time.time(), *gone)).rowcount)

    # --- reading --------------------------------------------------------------------------------

    def runs(self, step: int | None = None, status: str | None = None, source: str | None = None,
             ids: list[int] | None = None) -> list[StoredRun]:
        """Newest first. Interrupted runs are found (and marked) before every listing."""
        if self.writable:
            self.mark_interrupted()
        where, args = [], []
        for column, value in (("step", step), ("status", status), ("source", source)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if ids is not None:
            where.append(f"id IN ({', '.join('?' for _ in ids) or 'NULL'})")
            args.extend(ids)
        clause = f"WHERE {' AND '.join(where)}" if where else ""

        def read(conn: Connection) -> list[StoredRun]:
            rows = conn.execute(f"SELECT runs.*, EXISTS (SELECT 1 FROM weights WHERE run_id = runs.id) AS has_weights "
                                f"FROM runs {clause} ORDER BY started_at DESC, id DESC", args).fetchall()
            epochs: dict[int, list[dict[str, float]]] = {}
            if rows:
                marks = ", ".join("?" for _ in rows)
                for e in conn.execute(f"SELECT * FROM epochs WHERE run_id IN ({marks}) ORDER BY run_id, epoch",
                                      [r["id"] for r in rows]):
                    epochs.setdefault(e["run_id"], []).append({k: e[k] for k in EPOCH_FIELDS})
            return [_stored(r, epochs.get(r["id"], [])) for r in rows]
        return self._read(read)

    def _check_interrupted(self) -> None:
        """Interrupted runs are looked for at most every INTERRUPTED_CHECK_S by the board's reads,
        not on every refresh of every watching page."""
        if self.writable and time.monotonic() - self._interrupted_checked > INTERRUPTED_CHECK_S:
            self._interrupted_checked = time.monotonic()
            self.mark_interrupted()

    def board(self, since: float, limit: int | None = None, predicted_only: bool = False) -> list[BoardRow]:
        """The runs started at or after `since`, newest first: one indexed query over the runs
        table's own columns (the epochs, configs and weights are not read)."""
        self._check_interrupted()
        sql = ("SELECT id, step, seed, config_key, label, params, status, started_at, epochs_done, best_acc, min_last, "
               "session, student, prediction FROM runs WHERE started_at >= ?"
               + (" AND prediction != ''" if predicted_only else "") + " ORDER BY started_at DESC, id DESC")
        args: list[Any] = [since]
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        rows = self._read(lambda c: c.execute(sql, args).fetchall())
        return [BoardRow(r["id"], r["step"], r["seed"], r["config_key"], r["label"], r["params"], r["status"],
                         r["started_at"], r["epochs_done"], r["best_acc"], r["min_last"],
                         RunTags(r["session"], r["student"], r["prediction"])) for r in rows]

    def board_counts(self, since: float) -> tuple[int, int, int]:
        """(runs, runs training now, browser sessions) from `since` on: one aggregate query."""
        row = self._read(lambda c: c.execute(
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN status = 'running' THEN 1 ELSE 0 END), 0), COUNT(DISTINCT NULLIF(session, '')) FROM runs "
            "WHERE started_at >= ?", (since,)).fetchone())
        return row[0], row[1], row[2]

    def seed_results(self, since: float) -> list[SeedResult]:
        """Per setting and seed, the best min(last 3) of its completed runs from `since` on (a
        completed run trained every epoch it planned): what the leaderboard judges, one grouped query."""
        self._check_interrupted()
        rows = self._read(lambda c: c.execute(
            "SELECT config_key, seed, MAX(min_last) AS min_last, MAX(params) AS params FROM runs "
            "WHERE started_at >= ? AND status = 'completed' AND min_last IS NOT NULL GROUP BY config_key, seed",
            (since,)).fetchall())
        return [SeedResult(r["config_key"], r["seed"], r["min_last"], r["params"]) for r in rows]

    def configs(self, keys: list[str]) -> dict[str, TrainConfig]:
        """One config per setting key (what the board needs once per setting, not per run)."""
        if not keys:
            return {}
        marks = ", ".join("?" for _ in keys)
        rows = self._read(lambda c: c.execute(
            f"SELECT config_key, MIN(config) AS config, MAX(params) AS params FROM runs WHERE config_key IN ({marks}) "
            "GROUP BY config_key", keys).fetchall())
        return {r["config_key"]: TrainConfig.from_dict(json.loads(r["config"]), r["params"]) for r in rows}

    # --- classes and exercises -----------------------------------------------------------------------

    def start_class(self, name: str = "", predict_first: bool = False) -> int:
        return self._write(lambda c: c.execute(
            "INSERT INTO classes (started_at, name, predict_first) VALUES (?, ?, ?) RETURNING id",
            (time.time(), name[:MAX_NAME], int(predict_first))).fetchone()[0])

    def current_class(self) -> ClassInfo | None:
        row = self._read(lambda c: c.execute(
            "SELECT * FROM classes ORDER BY id DESC LIMIT 1").fetchone())
        return ClassInfo(row["id"], row["started_at"], row["name"], bool(row["predict_first"])) if row else None

    def add_exercise(self, page: str, settings: dict[str, str], locked: list[str], hidden: list[str]) -> int:
        values = (page, json.dumps(settings, sort_keys=True), json.dumps(sorted(locked)), json.dumps(sorted(hidden)),
                  time.time())
        return self._write(lambda c: c.execute(
            "INSERT INTO exercises (page, settings, locked, hidden, created_at) VALUES (?, ?, ?, ?, ?) RETURNING id",
            values).fetchone()[0])

    def exercise(self, exercise_id: int) -> Exercise | None:
        row = self._read(lambda c: c.execute(
            "SELECT * FROM exercises WHERE id = ?", (exercise_id,)).fetchone())
        if row is None:
            return None
        return Exercise(row["id"], row["page"], json.loads(row["settings"]), frozenset(json.loads(row["locked"])),
                        frozenset(json.loads(row["hidden"])))

    def get(self, run_id: int) -> StoredRun | None:
        found = self.runs(ids=[run_id])
        return found[0] if found else None

    def weights(self, run_id: int) -> dict[str, torch.Tensor] | None:
        row = self._read(lambda c: c.execute(
            "SELECT state_dict FROM weights WHERE run_id = ?", (run_id,)).fetchone())
        return torch.load(io.BytesIO(bytes(row[0])), weights_only=True) if row else None


def _stored(row: Any, epochs: list[dict[str, float]]) -> StoredRun:
    config = TrainConfig.from_dict(json.loads(row["config"]), row["params"])
    return StoredRun(row["id"], row["step"], row["seed"], config, row["config_key"], row["label"], row["source"],
                     row["device"], row["torch"], row["params"],
                     row["status"], row["reason"], row["started_at"], row["finished_at"], tuple(epochs),
                     bool(row["has_weights"]), RunTags(row["session"], row["student"], row["prediction"]))


def _to_bytes(weights: dict[str, torch.Tensor]) -> bytes:
    buffer = io.BytesIO()
    torch.save(weights, buffer)
    return buffer.getvalue()


def epochs_csv(runs: list[StoredRun]) -> str:
    """Every epoch of the given runs, one row each, with the run's id, step and seed."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("run_id", "step", "seed") + EPOCH_FIELDS)
    for run in runs:
        for e in run.epochs:
            writer.writerow((run.id, run.step, run.seed, *(e[k] for k in EPOCH_FIELDS)))
    return out.getvalue()
