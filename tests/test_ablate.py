"""The ablation: the final recipe with one part taken away, over seeds, with provenance; its table
and the figures the lesson text quotes come from the same file."""

import json
from pathlib import Path

import pytest
from conftest import run_cli

from core.report.lessons import fill_facts, load_lesson
from core.report.ablation import ablation_facts, ablation_markdown
from core.results.ablation import ABLATIONS, ablation_rows, load_ablation
from core.training.config import TrainConfig

ROOT = Path(__file__).resolve().parents[1]


cli = run_cli


def test_every_ablation_changes_exactly_what_it_says():
    full = TrainConfig.for_step(9)
    names = [a.name for a in ABLATIONS]
    assert names[0] == "full" and len(set(names)) == len(names)
    for a in ABLATIONS[1:]:
        changed = full.with_overrides(**a.overrides)
        assert changed != full, a.name
        assert changed.seed == full.seed and changed.recipe.epochs == full.recipe.epochs


def test_ablate_writes_runs_with_provenance_and_merges_seeds(tiny_mnist_root, tmp_path):
    out = tmp_path / "ablation.json"
    common = ["--data-dir", str(tiny_mnist_root), "--no-download", "--device", "cpu", "--budget", "600",
              "--only", "full,no-ema", "--output", str(out)]  # full runs on the small generated set
    first = cli("ablate", "--seeds", "1,2", *common, "--json")
    assert first.returncode == 0, first.stderr
    rows = json.loads(first.stdout)
    assert [r["taken away"] for r in rows] == ["the full recipe", "no weight average (the raw weights are tested)"]
    assert cli("ablate", "--seeds", "3", "--merge", *common).returncode == 0
    step, results = load_ablation(out)
    assert step == 9 and [r.ablation.name for r in results] == ["full", "no-ema"]
    for r in results:
        assert [run.seed for run in r.runs] == [1, 2, 3]
        assert all(run.provenance.command.startswith("python -m core ablate") and not run.provenance.reduced
                   for run in r.runs)
        assert len({tuple(run.test_accs) for run in r.runs}) == 3  # three different seeds
    assert results[1].runs[0].config.recipe.ema == 0.0 and results[0].runs[0].config.recipe.ema > 0
    table = ablation_rows(results)
    assert table[1]["vs full recipe"] == pytest.approx(table[1]["min last 3: mean"] - table[0]["min last 3: mean"],
                                                        abs=0.011)
    lows = [[min(run.test_accs[-3:]) for run in r.runs] for r in results]  # each seed's min(last 3), by hand
    apart = max(lows[0]) < min(lows[1]) or max(lows[1]) < min(lows[0])
    assert table[1]["beyond the seed spread?"] == ("yes" if apart else "no (ranges overlap)")
    assert any("no weight average" in line for line in ablation_markdown(results))
    facts = ablation_facts(results)
    assert "ablation:no-ema" in facts and "points of min(last 3)" in facts["ablation:no-ema"]
    lesson = fill_facts(load_lesson(9), facts)
    assert "{ablation:" not in lesson.in_depth


def test_unknown_variant_is_one_clear_line():
    result = cli("ablate", "--only", "no-magic", "--no-download")
    assert result.returncode == 2 and "unknown ablation 'no-magic'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_bench_variants_print_every_option(mnist_root):
    result = cli("bench", "--data-dir", str(mnist_root), "--no-download", "--batches", "3", "--device", "cpu",
                 "--variants", "--skip", "compile", "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    names = [r["variant"] for r in doc["variants"]["train"]]
    assert any("as the trainer runs it" in n for n in names) and any("channels_last" in n for n in names)
    assert all(r["train_images_per_s"] > 0 for r in doc["variants"]["train"])
    assert [e["variant"].split(",")[0].split(" (")[0] for e in doc["variants"]["eval"]][:5] == [
        "batch 250", "batch 500", "batch 1000", "batch 2000", "batch 10000"]
    assert sum("(the trainer's)" in e["variant"] for e in doc["variants"]["eval"]) == 1
    assert "folded" in doc["variants"]["eval"][-1]["variant"]
    bad = cli("bench", "--variants", "--skip", "warp", "--data-dir", str(mnist_root), "--no-download", "--batches", "1")
    assert bad.returncode == 2 and "--skip" in bad.stderr


def _runs(*lows: float):
    from core.results.reference import Provenance, ReferenceRun

    def one(seed: int, low: float) -> ReferenceRun:
        accs = [99.0] * 12 + [low + 0.02, low, low + 0.01]
        epochs = tuple({"epoch": i + 1, "test_acc": a} for i, a in enumerate(accs))
        return ReferenceRun(TrainConfig.for_step(9, seed=seed), epochs, "completed",
                            Provenance("python -m core ablate", "cpu", "2.x", "3.11", "2026-11-22", 1.0, "full"))
    return tuple(one(s + 1, low) for s, low in enumerate(lows))


def test_facts_name_the_parts_beyond_and_within_the_seed_spread():
    from core.results.ablation import AblationResult, get_ablation

    results = [AblationResult(get_ablation("full"), 9032, _runs(99.45, 99.50, 99.55)),
               AblationResult(get_ablation("no-bn"), 8872, _runs(99.20, 99.30, 99.38)),
               AblationResult(get_ablation("no-ema"), 9032, _runs(99.449, 99.501, 99.55))]
    facts = ablation_facts(results)
    assert facts["ablation:beyond-spread"] == "no BatchNorm"
    assert facts["ablation:within-spread"] == "no weight average"
    assert facts["ablation:seeds"] == "seeds 1, 2, 3"
    assert "below 99.4 %" in facts["ablation:no-bn"] and "below" not in facts["ablation:no-ema"]
    assert facts["ablation:no-ema"].startswith("+0.00 points")  # never "-0.00"
    assert ablation_rows(results)[2]["vs full recipe"] == 0.0


def test_an_ablation_of_an_earlier_step_9_says_what_it_was_measured_on():
    """After step 9 changed, its ablation's figures are of the step as it was: the facts, the table's
    caption and LIFECYCLE.md say on what, and say nothing while the ablation is of the step as it is."""
    from dataclasses import replace

    from core.report.ablation import measured_on
    from core.results.ablation import AblationResult, get_ablation

    now = [AblationResult(get_ablation("full"), 5648, _runs(99.45, 99.50, 99.55))]
    assert measured_on(9, now) is None and "measured on" not in ablation_facts(now, 9)["ablation:seeds"]
    earlier_runs = tuple(replace(r, config=replace(r.config, net="c8,c8,M,c16,c16,c16,c16,G",
                                                   recipe=replace(r.config.recipe, weight_decay=0.0)))
                         for r in _runs(99.45, 99.50, 99.55))
    earlier = [AblationResult(get_ablation("full"), 9032, earlier_runs)]
    said = measured_on(9, earlier)
    assert said.startswith("step 9 as it was: c8,c8,M,c16,c16,c16,c16,G, 9,032 parameters")
    assert f"weight decay 0.0 (now {TrainConfig.for_step(9).recipe.weight_decay})" in said
    assert ablation_facts(earlier, 9)["ablation:seeds"] == f"seeds 1, 2, 3; measured on {said}, not yet rerun on the step as it is"
    assert any(f"Measured on {said}" in line for line in ablation_markdown(earlier, 9))
    assert ablation_facts(earlier, 9)["ablation:subject"].startswith(said)
    assert ablation_facts(now, 9)["ablation:subject"] == "this step as it is"
