"""The class together, below the pages: who started a run, the board's one query, the leaderboard
judged on seeds, predictions against outcomes, exercises, and who may change which run."""

import json
import sqlite3
import time

import pytest

import core.serving.store as store_module
from core.architecture.challenge import CHALLENGE
from core.classroom import (
    Prediction,
    SettingCache,
    board,
    class_frontier_points,
    key_matches,
    leaderboard,
    may_change_run,
    outcome,
    prediction_table,
    reference_marks,
    setting_of,
)
from core.experiments.board_bench import fill_store
from core.results.reference import load_references
from core.serving.store import RunStore, RunTags
from core.training.config import TrainConfig

HOSTILE = ["<script>alert(1)</script>", "**bold** [link](http://x)", "'; DROP TABLE runs; --", "名前 🙂", ""]


def row(epoch: int, acc: float) -> dict:
    return {"epoch": epoch, "train_loss": 0.1, "train_acc": 98.0, "test_loss": 0.05, "test_acc": acc, "lr": 0.01,
            "seconds": 1.5, "images_per_s": 4000.0}


def record(store: RunStore, config: TrainConfig, accs: list[float], tags: RunTags = RunTags(),
           status: str = "completed", params: int = 5000) -> int:
    run_id = store.start_run(config, "app", "cpu", params, "full: all images", tags)
    for epoch, acc in enumerate(accs, start=1):
        store.add_epoch(run_id, row(epoch, acc))
    if status != "running":
        store.finish_run(run_id, status, status)
    return run_id


def epochs_ending(*last: float, epochs: int = 15) -> list[float]:
    """A whole run's test accuracies (the step's 15 epochs) that end with `last`."""
    return [98.0] * (epochs - len(last)) + list(last)


def full_run(net: str = "c8,c8,M,c12,c12,c12,G", seed: int = 1) -> TrainConfig:
    return TrainConfig.for_step(9, net=net, seed=seed)


# --- the store's part ------------------------------------------------------------------------------

def test_each_epoch_keeps_the_runs_summary_current(store_at):
    store = RunStore(store_at)
    run_id = store.start_run(full_run(), "app", "cpu", 5000, "full", RunTags("s1", "Ada", ""))
    accs = [98.0, 99.5, 99.1, 99.6, 99.45]
    for epoch, acc in enumerate(accs, start=1):
        store.add_epoch(run_id, row(epoch, acc))
        (seen,) = store.board(0.0)
        assert seen.epochs_done == epoch and seen.best_acc == max(accs[:epoch])
        last = accs[:epoch][-CHALLENGE.last_epochs:]
        assert seen.min_last == (min(last) if epoch >= CHALLENGE.last_epochs else None)
    assert seen.tags == RunTags("s1", "Ada", "")


def test_an_old_store_is_moved_forward_with_its_summaries_filled_in(tmp_path, monkeypatch):
    path = tmp_path / "runs.sqlite3"
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", 1)
    old = RunStore(path)  # a file as the program before the class board wrote it
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO runs (step, seed, config, config_key, label, source, device, torch, params, status, "
                 "owner, started_at) VALUES (9, 1, ?, 'k', 'full', 'cli', 'cpu', 't', 9000, 'completed', 'o', 1.0)",
                 (json.dumps(full_run().as_dict()),))
    run_id = conn.execute("SELECT MAX(id) FROM runs").fetchone()[0]
    conn.executemany("INSERT INTO epochs (run_id, epoch, test_acc) VALUES (?, ?, ?)",
                     [(run_id, e, a) for e, a in enumerate([97.0, 99.5, 99.2, 99.7], start=1)])
    conn.commit()
    old.close()
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", len(store_module.MIGRATIONS))
    (moved,) = RunStore(path).board(0.0)
    assert (moved.epochs_done, moved.best_acc, moved.min_last) == (4, 99.7, 99.2)
    assert moved.tags == RunTags()


def test_the_board_counts_from_the_class_start_newest_first(store_at):
    store = RunStore(store_at)
    before = record(store, full_run(), [99.0] * 3)
    assert store.current_class() is None
    time.sleep(0.01)
    class_id = store.start_class("3B", predict_first=True)
    klass = store.current_class()
    assert (klass.id, klass.name, klass.predict_first) == (class_id, "3B", True)
    time.sleep(0.01)
    names = []
    for i, name in enumerate(HOSTILE):
        record(store, full_run(seed=i + 1), [99.5] * 3, RunTags(f"s{i}", name, ""))
        names.append(name)
    entries = board(store, klass.started_at, SettingCache())
    assert [e.row.tags.student for e in entries] == names[::-1]  # verbatim, newest first
    assert before not in [e.row.id for e in entries]
    assert [e.as_row()["name"] for e in entries] == names[::-1]
    assert len(board(store, 0.0, SettingCache())) == len(HOSTILE) + 1  # the store keeps everything


def test_a_name_longer_than_the_limit_is_refused():
    with pytest.raises(ValueError, match="student"):
        RunTags("s", "x" * (store_module.MAX_NAME + 1), "")


def test_an_exercise_round_trips(store_at):
    store = RunStore(store_at)
    number = store.add_exercise("step_5", {"dropout": "0.2", "bn": "true"}, ["bn"], ["dropout"])
    exercise = store.exercise(number)
    assert exercise.page == "step_5" and exercise.settings == {"dropout": "0.2", "bn": "true"}
    assert exercise.fixes("bn") and exercise.fixes("dropout") and not exercise.fixes("gap")
    assert store.exercise(number + 1) is None


# --- the leaderboard --------------------------------------------------------------------------------

def test_a_design_counts_only_once_it_holds_on_enough_seeds(store_at):
    store = RunStore(store_at)
    small, big, lucky, shaky = "c8,M,c12,c12,G", "c12,c12,M,c16,c16,c16,G", "c6,M,c8,c8,G", "c4,M,c8,G"
    for seed in range(1, CHALLENGE.min_seeds + 1):
        record(store, full_run(small, seed), epochs_ending(99.0, 99.5, 99.45, 99.5), params=4000)
        record(store, full_run(big, seed), epochs_ending(99.6, 99.6, 99.6), params=9000)
        record(store, full_run(shaky, seed), epochs_ending(99.5, 99.5, 99.3 if seed == 2 else 99.5), params=3000)
    record(store, full_run(lucky, 1), epochs_ending(99.7, 99.7, 99.7), params=2000)
    record(store, full_run(small, 1).with_overrides(max_batches=10), epochs_ending(99.9, 99.9, 99.9), params=4000)  # a quick run: not judged
    record(store, full_run(lucky, 2), [99.7, 99.7], status="stopped", params=2000)  # unfinished: not judged
    counted, short = leaderboard(store, 0.0, SettingCache())
    assert [s.setting.config.net for s in counted] == [small, big]  # ranked by parameters
    assert counted[0].worst == 99.45 and counted[0].best == 99.45 and sorted(counted[0].seeds) == [1, 2, 3]
    assert [s.setting.config.net for s in short] == [lucky]  # holds on one seed: "verify on 3 seeds"
    assert short[0].seeds_missing == [2, 3]
    assert shaky not in [s.setting.config.net for s in counted + short]  # one seed below 99.4


def test_a_seed_trained_twice_counts_with_its_better_run(store_at):
    store = RunStore(store_at)
    for seed in range(1, CHALLENGE.min_seeds + 1):
        record(store, full_run(seed=seed), epochs_ending(99.5, 99.5, 99.5))
    record(store, full_run(seed=1), epochs_ending(99.0, 99.0, 99.0))
    (standing,), _ = leaderboard(store, 0.0, SettingCache())
    assert standing.seeds[1] == 99.5


def test_the_final_steps_reference_stands_as_the_mark_to_beat():
    references = load_references()
    (mark,) = reference_marks(references)
    final = references[9]
    assert mark.params == final.params and len(mark.seeds) == len(final.runs) and mark.counts
    assert mark.worst == pytest.approx(final.min_last_spread.low)


def test_setting_says_what_differs_from_its_step():
    assert setting_of(TrainConfig.for_step(5)).differs == "" and setting_of(TrainConfig.for_step(5)).is_default
    changed = setting_of(TrainConfig.for_step(5, dropout=0.2))
    assert changed.differs == "dropout 0.20" and changed.what == "step 5" and changed.macs > 0
    design = setting_of(full_run())
    assert design.what == "design c8,c8,M,c12,c12,c12" and not design.is_default


def test_a_setting_knows_its_size_before_any_run_is_stored():
    """A queued run's row on the board has its parameters, as it has its multiply-adds: both from the
    config's own network (checked against torch's count of the built model's weights)."""
    from core.architecture.builder import build_model
    from core.architecture.notation import parse_net
    from core.architecture.spec import expand

    config = TrainConfig.for_step(5, dropout=0.2)
    model = build_model(expand(parse_net(config.net).spec, config.toggles))
    setting = setting_of(config)
    # dropout has no weights: the step's reference runs recorded the same count
    assert setting.params == sum(p.numel() for p in model.parameters()) == load_references()[5].params
    assert setting_of(full_run()).params < setting.params


# --- predictions ------------------------------------------------------------------------------------

def test_a_prediction_round_trips_and_junk_reads_as_none():
    p = Prediction(99.3, "better")
    assert Prediction.from_text(p.to_text()) == p and Prediction().to_text() == ""
    for junk in ("{", "[1]", '{"min_last": 140}', '{"versus_default": "amazing"}', "null"):
        assert Prediction.from_text(junk).empty
    with pytest.raises(ValueError, match="percentage between 0 and 100"):
        Prediction(float("nan"))
    with pytest.raises(ValueError, match="better"):
        Prediction(versus_default="much better")


def test_outcomes_are_judged_on_the_defaults_seeds():
    ref = load_references()[9]
    span = ref.min_last_spread
    assert outcome(span.high + 0.01, ref) == "better" and outcome(span.low - 0.01, ref) == "worse"
    assert outcome((span.low + span.high) / 2, ref) == "same" and outcome(99.0, None) is None


def test_the_class_predictions_are_set_against_what_happened(store_at):
    store = RunStore(store_at)
    references = load_references()
    low = references[9].min_last_spread.low
    record(store, TrainConfig.for_step(9, dropout=0.1), epochs_ending(low - 1, low - 1, low - 1),
           RunTags("a", "A", Prediction(99.0, "better").to_text()))
    record(store, TrainConfig.for_step(9, dropout=0.1), epochs_ending(low - 1, low - 1, low - 1),
           RunTags("b", "B", Prediction(versus_default="worse").to_text()))
    record(store, TrainConfig.for_step(9, dropout=0.1), [99.5] * 3)  # no prediction: not counted
    (group,) = prediction_table(board(store, 0.0, SettingCache(), predicted_only=True), references)
    assert group["change"] == "dropout 0.10"
    assert (group["predicted better"], group["predicted worse"], group["was worse"]) == (1, 1, 2)
    assert group["runs with a figure"] == 1
    assert group["mean (result - prediction), points"] == pytest.approx(round(low - 1 - 99.0, 2))


# --- who may do what --------------------------------------------------------------------------------

@pytest.mark.parametrize("run_session, mine, teacher, key_set, allowed", [
    ("a", "a", False, True, True),  # my own run
    ("b", "a", False, True, False),  # someone else's
    ("", "a", False, True, False),  # a command-line run
    ("b", "a", True, True, True),  # the teacher
    ("b", "a", False, False, True),  # no key set: one user, everything allowed
    ("", "", False, True, False),  # a session without an id owns nothing
])
def test_who_may_cancel_or_delete_a_run(run_session, mine, teacher, key_set, allowed):
    assert may_change_run(run_session, mine, teacher, key_set) is allowed


def test_the_teachers_key_is_compared_exactly():
    assert key_matches("s3cret", "s3cret")
    assert not key_matches("s3cret", "s3cre") and not key_matches("s3cret", "S3CRET")
    assert not key_matches(None, "") and not key_matches("", "")


def test_a_big_store_reads_as_one_board(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite3")
    fill_store(store, 500, settings=12)
    cache = SettingCache()
    entries = board(store, 0.0, cache)
    assert len(entries) == 500 and all(e.row.epochs_done == 15 for e in entries)
    assert [e.row.started_at for e in entries] == sorted((e.row.started_at for e in entries), reverse=True)
    assert store.board_counts(0.0) == (500, 0, len({e.row.tags.session for e in entries}))
    counted, short = leaderboard(store, 0.0, cache)
    assert counted and all(len(s.seeds) >= CHALLENGE.min_seeds and s.worst >= CHALLENGE.min_acc for s in counted)
    newest = entries[99].row.started_at
    assert len(board(store, newest, cache)) == 100


def test_the_frontier_draws_every_step_and_says_which_reference_is_reduced():
    references = load_references()
    points = class_frontier_points(reference_marks(references), references)
    steps = {p["step"]: p for p in points if p["kind"].startswith("lifecycle step")}
    # every step with a min(last 3) is drawn; one whose reference ran fewer epochs than that has none
    assert sorted(steps) == sorted(n for n, ref in references.items() if ref.min_last_spread is not None)
    for number, ref in ((n, r) for n, r in references.items() if n in steps):
        assert steps[number]["kind"].endswith("(reduced run)") is ref.reduced
        assert steps[number]["params"] == ref.params and steps[number]["low"] <= steps[number]["min_last"]
    (mark,) = [p for p in points if not p["kind"].startswith("lifecycle step")]
    assert mark["seeds"] == len(references[9].runs)


@pytest.mark.parametrize("params, accs, epochs", [
    (9000, [99.5, 99.4, 99.45], 15), (10_000, [99.5] * 3, 15), (9000, [99.5, 99.39, 99.5], 15),
    (9000, [99.5] * 3, 16), (9000, [99.5, 99.5], 15)])
def test_the_boards_rule_is_the_challenges_sentence(params, accs, epochs):
    from core.architecture.challenge import min_last
    assert CHALLENGE.meets(params, min_last(accs), epochs) is CHALLENGE.verdict(params, accs, epochs)[0]


def test_key_tries_take_turns_for_every_session_at_once_and_a_flood_is_refused():
    """Twelve tabs try a key at the same moment: each waits for its own slot of one second, in turn
    (a right key is not answered sooner, so guessing runs at one try a second), and tries whose slot is
    more than ten seconds away are refused at once. Later, with the slots passed, a try waits for nothing."""
    import threading

    from core.classroom import KeyGate

    now, slept, lock = [100.0], [], threading.Lock()

    def sleep(seconds: float) -> None:
        with lock:
            slept.append(seconds)

    gate = KeyGate(delay=1.0, most_wait=10.0, sleep=sleep, clock=lambda: now[0])
    outcomes: list = []
    tries = [threading.Thread(target=lambda i=i: outcomes.append(gate.check("s3cret", f"guess {i}")))
             for i in range(12)]
    for t in tries:
        t.start()
    for t in tries:
        t.join()
    assert sorted(slept) == [float(k) for k in range(11)]  # one second apart, none together
    assert outcomes.count(False) == 11 and outcomes.count(None) == 1 and gate.refused == 1
    assert gate.check("s3cret", "s3cret") is None  # right, but its slot is still more than 10 s away
    now[0] += 60
    slept.clear()
    assert gate.check("s3cret", "s3cret") is True and slept == [0.0]
