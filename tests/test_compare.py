"""Comparing runs: labels say only what differs, seeds of one setting become a band, and two
settings are judged against their seeds' spread."""

from core.results.compare import (
    Run,
    describe,
    differing,
    differing_table,
    flat,
    group_runs,
    noise_verdicts,
)
from core.training.augmentation import AugmentConfig
from core.training.config import TrainConfig


def epochs(*test_accs):
    return [{"epoch": i + 1, "train_loss": 0.1, "train_acc": 98.0, "test_loss": 0.05, "test_acc": a, "lr": 0.01,
             "seconds": 1.0, "images_per_s": 1.0} for i, a in enumerate(test_accs)]


def test_only_the_differing_fields_name_a_run():
    a = TrainConfig.for_step(5, seed=1)
    b = TrainConfig.for_step(5, seed=2, batchnorm=False, dropout=0.1)
    c = TrainConfig.for_step(5, seed=1, augment=AugmentConfig(rotation=7.0))
    assert differing([a, b]) == ["toggles.batchnorm", "seed"]  # dropout 0.1 is step 5's own default
    assert describe(b, differing([a, b])) == "BN off, seed 2"
    assert describe(c, differing([a, c])) == "augment rot ±7°"
    assert describe(a, differing([a, c])) == "no augmentation"
    assert describe(a, []) == "same settings"
    assert "device" not in flat(a) and "log_every" not in flat(a)


def test_seeds_of_one_setting_form_one_group_with_a_band():
    runs = [Run(f"run {s}", TrainConfig.for_step(4, seed=s), epochs(98.0 + s / 10, 99.0 + s / 10)) for s in (1, 2, 3)]
    runs.append(Run("run 9", TrainConfig.for_step(4, seed=1, batchnorm=False), epochs(97.0)))
    groups = group_runs(runs)
    assert [g.label for g in groups] == ["BN on (3 seeds)", "BN off, seed 1"]
    band = {(r["epoch"], r["metric"]): r for r in groups[0].band()}
    assert band[(2, "test_acc")]["low"] == 99.1 and band[(2, "test_acc")]["high"] == 99.3
    assert abs(band[(2, "test_acc")]["mean"] - 99.2) < 1e-9 and band[(2, "test_acc")]["n"] == 3
    assert band[(1, "test_acc")]["n"] == 3 and (2, "test_acc") not in {(r["epoch"], r["metric"]) for r in groups[1].band()}


def test_live_and_reference_runs_are_labelled_as_such():
    config = TrainConfig.for_step(9)
    groups = group_runs([Run("live 0", config, epochs(99.0), "live"),
                         Run("reference seed 1", config, epochs(99.2), "reference")])
    assert [g.label for g in groups] == ["live run, seed 1", "reference run, seed 1"]


def test_table_lists_only_what_differs_plus_the_scores():
    runs = [Run("a", TrainConfig.for_step(9, seed=1), epochs(99.0, 99.4, 99.5, 99.45)),
            Run("b", TrainConfig.for_step(9, seed=1, ema=0.0), epochs(99.0, 99.3, 99.35, 99.5))]
    rows = differing_table(group_runs(runs))
    assert [set(r) for r in rows] == [{"run", "ema", "seeds", "best test %", "min last 3 %"}] * 2
    assert rows[0]["min last 3 %"] == "99.40" and rows[1]["best test %"] == 99.5


def test_noise_verdicts_need_three_seeds_a_side():
    def group(bn, accs):
        return [Run(f"{bn}{s}", TrainConfig.for_step(4, seed=s, batchnorm=bn), epochs(a, a, a)) for s, a in enumerate(accs)]

    apart = group_runs(group(True, [99.3, 99.35, 99.32]) + group(False, [98.9, 99.0, 98.95]))
    (sentence,) = noise_verdicts(apart)
    assert "do not overlap" in sentence and "larger than the seed noise" in sentence
    close = group_runs(group(True, [99.3, 99.35, 99.32]) + group(False, [99.25, 99.31, 99.2]))
    assert "within seed noise" in noise_verdicts(close)[0]
    too_few = group_runs(group(True, [99.3, 99.35]) + group(False, [98.9, 99.0, 98.95]))
    assert noise_verdicts(too_few) == []
