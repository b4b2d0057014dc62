"""The run store: what a run records and when, the schema and its migrations, and the bad days --
a killed process, a damaged file, a read-only file, many writers at once."""

import io
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from conftest import run_cli, wait_for

import core.serving.store as store_module
from core.serving.record import RunRecorder
from core.serving.store import RunStore, StoreError, epochs_csv, resolve_db
from core.training.config import TrainConfig
from core.training.events import EPOCH_FIELDS
from core.training.loop import build_for

ROOT = Path(__file__).resolve().parents[1]


def row(epoch: int, acc: float = 99.0) -> dict:
    return {"epoch": epoch, "train_loss": 0.1, "train_acc": 98.0, "test_loss": 0.05, "test_acc": acc, "lr": 0.01,
            "seconds": 1.5, "images_per_s": 4000.0}


def test_a_run_is_recorded_from_start_to_end(store_at):
    store = RunStore(store_at)
    config = TrainConfig.for_step(9, seed=4)
    run_id = store.start_run(config, "cli", "CPU (2 threads)", 5824, "full: 15 epochs")
    (found,) = store.runs()
    assert (found.id, found.status, found.step, found.seed, found.source) == (run_id, "running", 9, 4, "cli")
    assert found.config == config and found.torch == torch.__version__ and found.finished_at is None
    store.add_epoch(run_id, row(1, 98.9))
    store.add_epoch(run_id, row(2, 99.3))
    assert [e["test_acc"] for e in store.get(run_id).epochs] == [98.9, 99.3]  # visible as soon as written
    weights = build_for(config).state_dict()
    store.finish_run(run_id, "completed", "completed", weights)
    done = store.get(run_id)
    assert done.status == "completed" and done.has_weights and done.finished_at >= done.started_at
    assert done.best_test == 99.3 and done.min_last is None  # fewer than 3 epochs: no challenge figure
    loaded = store.weights(run_id)
    assert loaded.keys() == weights.keys() and all(torch.equal(loaded[k], weights[k]) for k in weights)
    blob = store._read(lambda c: c.execute("SELECT state_dict FROM weights").fetchone()[0])
    assert torch.load(io.BytesIO(bytes(blob)), weights_only=True).keys() == weights.keys()  # in the database, no pickle


def test_missing_folders_are_created_and_the_file_is_wal(tmp_path):
    store = RunStore(tmp_path / "a" / "b" / "runs.sqlite3")
    conn = sqlite3.connect(store.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == store_module.SCHEMA_VERSION


def test_schema_version_and_filters(store_at):
    store = RunStore(store_at)
    assert store._db.version() == store_module.SCHEMA_VERSION
    a = store.start_run(TrainConfig.for_step(3), "app", "cpu", 1, "x")
    b = store.start_run(TrainConfig.for_step(9), "cli", "cpu", 1, "x")
    store.finish_run(b, "stopped", "stopped by request")
    assert [r.id for r in store.runs(step=3)] == [a]
    assert [r.id for r in store.runs(status="stopped")] == [b]
    assert [r.id for r in store.runs(source="app")] == [a]
    assert [r.id for r in store.runs()] == [b, a]  # newest first
    store.add_epoch(a, row(1))
    assert store.delete_run(a) and not store.delete_run(a)
    assert store._read(lambda c: c.execute("SELECT COUNT(*) FROM epochs WHERE run_id = ?", (a,)).fetchone()[0]) == 0


def test_a_future_migration_moves_an_old_store_forward(store_at, monkeypatch):
    old = RunStore(store_at)
    run_id = old.start_run(TrainConfig.for_step(9), "cli", "cpu", 1, "x")
    old.close()
    migrations = store_module.MIGRATIONS + ["ALTER TABLE runs ADD COLUMN note TEXT NOT NULL DEFAULT ''"]
    monkeypatch.setattr(store_module, "MIGRATIONS", migrations)
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", len(migrations))
    new = RunStore(store_at)
    assert new._db.version() == len(migrations)
    assert new._read(lambda c: c.execute("SELECT note FROM runs WHERE id = ?", (run_id,)).fetchone()[0]) == ""
    assert new.get(run_id).step == 9  # the old run survived the upgrade


def test_a_store_made_before_the_inside_table_gains_it_and_an_older_program_refuses_the_new_one(store_at, monkeypatch):
    """Migration 3 (the looks inside) both ways: a version-2 store moves forward with its runs and
    epochs intact and takes samples; the version-2 program then refuses the store it cannot read whole."""
    from core.training.inside import Sample

    full = list(store_module.MIGRATIONS)
    monkeypatch.setattr(store_module, "MIGRATIONS", full[:2])
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", 2)
    old = RunStore(store_at)
    run_id = old.start_run(TrainConfig.for_step(4), "cli", "cpu", 1, "x")
    old.add_epoch(run_id, dict.fromkeys(EPOCH_FIELDS, 1.0))
    old.close()
    monkeypatch.setattr(store_module, "MIGRATIONS", full)
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", len(full))
    new = RunStore(store_at)
    assert new._db.version() == 3
    assert new.get(run_id).step == 4 and len(new.get(run_id).epochs) == 1
    assert new.inside(run_id) == []  # a run from before: nothing inside, no error
    new.add_inside(run_id, [Sample(10, 1, {"conv1": {"act_std": 0.5}})])
    assert new.inside(run_id) == [Sample(10, 1, {"conv1": {"act_std": 0.5}})]
    new.close()
    monkeypatch.setattr(store_module, "MIGRATIONS", full[:2])
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", 2)
    with pytest.raises(StoreError, match="newer than this program"):
        RunStore(store_at)


def test_a_runs_looks_inside_are_kept_in_step_order_replaced_by_step_and_deleted_with_it(store_at):
    from core.training.inside import Sample

    store = RunStore(store_at)
    run_id = store.start_run(TrainConfig.for_step(9), "app", "cpu", 1, "x")
    other = store.start_run(TrainConfig.for_step(9, seed=2), "app", "cpu", 1, "x")
    store.add_inside(run_id, [Sample(20, 1, {"relu1": {"zero_frac": 0.25}}), Sample(10, 1, {"relu1": {"zero_frac": 0.5}})])
    store.add_inside(run_id, [Sample(20, 1, {"relu1": {"zero_frac": 0.75}})])  # a step written again replaces
    store.add_inside(other, [Sample(10, 1, {"conv1": {"grad_norm": 2.0}})])
    store.add_inside(other, [])
    assert [(s.step, s.layers["relu1"]["zero_frac"]) for s in store.inside(run_id)] == [(10, 0.5), (20, 0.75)]
    assert store.delete_run(run_id) and store.inside(run_id) == []
    assert store.inside(other) == [Sample(10, 1, {"conv1": {"grad_norm": 2.0}})]


def test_a_store_from_a_newer_program_is_refused(store_at):
    store = RunStore(store_at)
    store._write(lambda c: store._db.set_version(c, store_module.SCHEMA_VERSION + 1))
    store.close()
    with pytest.raises(StoreError, match="newer than this program"):
        RunStore(store_at)


def test_a_damaged_file_gives_one_clear_message(tmp_path):
    path = tmp_path / "runs.sqlite3"
    path.write_bytes(b"this is not a database" * 200)
    with pytest.raises(StoreError) as info:
        RunStore(path)
    assert str(path) in str(info.value) and "damaged" in str(info.value)
    assert path.read_bytes().startswith(b"this is not a database")  # nothing overwritten


def test_many_threads_write_at_once(store_at):
    store = RunStore(store_at)
    ids = [store.start_run(TrainConfig.for_step(9, seed=s), "app", "cpu", 1, "x") for s in range(4)]
    errors = []

    def write(run_id: int) -> None:
        try:
            for epoch in range(1, 41):
                store.add_epoch(run_id, row(epoch))
            store.finish_run(run_id, "completed", "completed")
        except Exception as exc:  # collected: an exception in a thread would not fail the test
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert all(len(r.epochs) == 40 and r.status == "completed" for r in store.runs())


CHILD = """
import sys, time
sys.path.insert(0, {root!r})
from core.serving.store import RunStore
from core.training.loop import TrainConfig
store = RunStore({db!r})
run_id = store.start_run(TrainConfig.for_step(9), "cli", "cpu", 5824, "full")
store.add_epoch(run_id, {row!r})
store.add_epoch(run_id, {row2!r})
print(run_id, flush=True)
time.sleep(600)
"""


def test_a_killed_process_leaves_an_interrupted_run_with_its_epochs(store_at):
    db = store_at
    code = CHILD.format(root=str(ROOT), db=str(db), row=row(1), row2=row(2))
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    run_id = int(child.stdout.readline())
    store = RunStore(db)
    assert store.get(run_id).status == "running"  # its process is alive: not interrupted
    child.send_signal(signal.SIGKILL)
    child.wait(30)
    # PostgreSQL lets go of a killed client's lock once its server process has seen the connection close,
    # which on a busy machine can be a moment after the client is gone
    wait_for(lambda: store.get(run_id).status != "running", 30)
    found = store.get(run_id)
    assert found.status == "interrupted" and len(found.epochs) == 2 and "process ended" in found.reason
    assert store.mark_interrupted() == 0  # marked once


def test_recorder_reports_a_failing_store_once_and_lets_training_go_on(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite3")
    warnings = []
    recorder = RunRecorder(store, warnings.append)
    recorder.start(TrainConfig.for_step(9), "cli", "cpu", 1, "x")
    store.path.unlink()  # the file vanishes mid-run (a cleaned-up folder, a yanked USB stick)
    store.path.mkdir()  # ...and something else takes its place
    store.close()
    for epoch in range(1, 4):
        recorder.epoch(row(epoch))
    recorder.finish("completed", "completed")
    assert len(warnings) == 1 and "Training goes on without history" in warnings[0]  # told once, not per epoch
    assert recorder.store is None  # and no longer tried


def test_resolve_db_order(monkeypatch, tmp_path):
    monkeypatch.setenv("LIFECYCLE_RUNS", str(tmp_path / "env.sqlite3"))
    assert resolve_db("explicit.sqlite3") == Path("explicit.sqlite3")
    assert resolve_db(None) == tmp_path / "env.sqlite3"
    monkeypatch.delenv("LIFECYCLE_RUNS")
    assert resolve_db(None) == ROOT / "runs" / "runs.sqlite3"


def test_epochs_csv(store_at):
    store = RunStore(store_at)
    run_id = store.start_run(TrainConfig.for_step(9, seed=2), "app", "cpu", 1, "x")
    store.add_epoch(run_id, row(1, 99.12))
    lines = epochs_csv(store.runs()).splitlines()
    assert lines[0].split(",") == ["run_id", "step", "seed", *EPOCH_FIELDS]
    assert lines[1].split(",")[:3] == [str(run_id), "9", "2"] and "99.12" in lines[1]


def make_read_only(paths: list[Path]) -> None:
    """Read-only even for root (which ignores file modes): the immutable attribute; else chmod."""
    for path in paths:
        if os.geteuid() == 0:
            if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(path)]).returncode != 0:
                pytest.skip("running as root on a file system without chattr +i: cannot make a read-only file")
        else:
            path.chmod(0o555 if path.is_dir() else 0o444)


def make_writable(paths: list[Path]) -> None:
    for path in paths:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(path)], capture_output=True)
        else:
            path.chmod(0o755 if path.is_dir() else 0o644)


@pytest.mark.parametrize("folder_too", [False, True])
def test_a_read_only_store_keeps_history_readable_and_training_going(tmp_path, mnist_root, folder_too):
    folder = tmp_path / "store"
    db = folder / "runs.sqlite3"
    store = RunStore(db)
    run_id = store.start_run(TrainConfig.for_step(9), "cli", "cpu", 1, "x")
    store.add_epoch(run_id, row(1))
    store.finish_run(run_id, "completed", "completed")
    store.close()
    locked = [db, folder] if folder_too else [db]
    make_read_only(locked)
    try:
        env = {"LIFECYCLE_RUNS": str(db)}
        listed = run_cli("runs", "list", "--json", env=env)
        assert listed.returncode in (0, 2) and "Traceback" not in listed.stderr, listed.stderr
        if listed.returncode == 0:  # SQLite could read it without writing: the history is all there
            assert [r["id"] for r in json.loads(listed.stdout)] == [run_id]
        else:  # one line that names the file and says what to do
            assert str(db) in listed.stderr and len(listed.stderr.strip().splitlines()) == 1, listed.stderr
        trained = run_cli("train", "--epochs", "1", "--max-batches", "2", "--data-dir", str(mnist_root),
                          "--no-download", "--device", "cpu", "--json", env=env)
        assert trained.returncode == 0, trained.stderr
        assert json.loads(trained.stdout)["stopped_reason"] == "completed"
        assert "Traceback" not in trained.stderr, trained.stderr
        assert "without history" in trained.stderr or "not recorded" in trained.stderr, trained.stderr
    finally:
        make_writable(locked)


def test_two_processes_creating_the_file_at_once_wait_for_each_other_instead_of_losing_a_run():
    """SQLite answers the second of two connections switching a new file to WAL 'database is locked' at
    once, without its busy timeout: the store waits, as the timeout would (a lost run before: 1 in 4 of
    test_cli's two-process test), and gives up only on another error."""
    import sqlite3

    from core.serving.store_backends import _wal_mode

    class Busy:
        def __init__(self, refusals: int, error: str = "database is locked") -> None:
            self.refusals, self.error, self.calls = refusals, error, 0

        def execute(self, sql: str):
            self.calls += 1
            if self.calls <= self.refusals:
                raise sqlite3.OperationalError(self.error)
            return sqlite3.connect(":memory:").execute("SELECT 'wal'")

    conn = Busy(3)
    assert _wal_mode(conn) == "wal" and conn.calls == 4
    with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
        _wal_mode(Busy(1, "disk I/O error"))


# --- PostgreSQL's own bad days ----------------------------------------------------------------------

def test_an_unreachable_postgres_gives_one_message_without_the_password():
    pytest.importorskip("psycopg")
    url = "postgresql://teacher:s3cret@127.0.0.1:9/runs"  # port 9 (discard): nothing listens there
    with pytest.raises(StoreError) as info:
        RunStore(url)
    text = str(info.value)
    assert "postgresql://teacher:***@127.0.0.1:9/runs" in text and "s3cret" not in text
    assert "reachable" in text and len(text.splitlines()) == 1


def test_postgres_without_psycopg_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if not installed
    with pytest.raises(StoreError, match="requirements-cluster.txt"):
        RunStore("postgresql://u:p@127.0.0.1/runs")


def test_a_recorder_on_an_unreachable_postgres_warns_once_and_training_goes_on(monkeypatch):
    pytest.importorskip("psycopg")
    from core.serving.record import open_store

    warnings = []
    assert open_store("postgresql://u:p@127.0.0.1:9/runs", warnings.append) is None
    assert len(warnings) == 1 and "Runs are not recorded" in warnings[0]


def test_a_postgres_restart_mid_run_loses_no_epoch_and_the_run_stays_alive():
    """A restart ends every connection (here: pg_terminate_backend, what a restart does to its clients).
    The recording store opens them again and retakes its owner lock; another server that looked in
    the meantime and marked the run interrupted sees it running again at the next epoch."""
    from conftest import postgres_database

    url, drop = postgres_database()
    try:
        recording, watching = RunStore(url), RunStore(url)
        run_id = recording.start_run(TrainConfig.for_step(9), "app", "cpu", 1, "x")
        recording.add_epoch(run_id, row(1))
        watching._read(lambda c: c.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid != pg_backend_pid()").fetchall())
        # its owner's lock goes with its connection, once the terminated backend has exited (asynchronous:
        # pg_terminate_backend only signals it, and CI once looked before it was gone)
        deadline = time.monotonic() + 10
        while watching.get(run_id).status != "interrupted" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert watching.get(run_id).status == "interrupted"
        recording.add_epoch(run_id, row(2))  # the connection is opened again: the epoch is kept
        found = watching.get(run_id)
        assert found.status == "running" and len(found.epochs) == 2  # and the run is alive again
        assert watching.mark_interrupted() == 0  # its owner lock is held once more
        recording.finish_run(run_id, "completed", "completed")
        assert watching.get(run_id).status == "completed"
        recording.close(), watching.close()
    finally:
        drop()


def test_a_class_opening_a_fresh_store_at_once_all_get_in(store_at):
    """A class's first runs (each its own process on a cluster) open an empty store together; every
    one of them must get in (PostgreSQL: two CREATE TABLE IF NOT EXISTS at once can collide)."""
    opened, failed = [], []
    start = threading.Barrier(8)

    def open_it() -> None:
        start.wait()
        try:
            opened.append(RunStore(store_at).runs())
        except Exception as exc:  # what the test is about: none may fail
            failed.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=open_it) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert failed == [] and opened == [[]] * 8


def test_a_run_recorded_before_configs_named_their_network_loads_with_the_network_it_trained(store_at):
    store = RunStore(store_at)
    config = TrainConfig.for_step(9, seed=2)
    old_id = store.start_run(config, "cli", "CPU (2 threads)", 9032, "full: 15 epochs")
    new_id = store.start_run(config, "cli", "CPU (2 threads)", 5648, "full: 15 epochs")
    # as a store written before 2026-12-02 holds them: configs without `net`
    raw = {k: v for k, v in config.as_dict().items() if k != "net"}
    store._write(lambda c: c.execute("UPDATE runs SET config = ?", (json.dumps(raw),)))
    old, new = store.get(old_id), store.get(new_id)
    assert old.config.net == "c8,c8,M,c16,c16,c16,c16,G"  # step 9 as it was, found by its 9,032 weights
    assert sum(p.numel() for p in build_for(old.config).parameters()) == 9032
    assert new.config.net == config.net == "c8,c8,M,c12,c12,c12,c12,G"  # today's, found by its 5,648
