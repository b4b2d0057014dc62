"""The reference-run file: a typed round trip, merging seeds of one setting, replacing a changed
setting, a clear error for a damaged file, and the committed file agreeing with today's specs."""

import json
import re
from dataclasses import replace

import pytest

from core.report.views import describe_step
from core.results.reference import (
    Provenance,
    ReferenceFileError,
    ReferenceRun,
    StepReference,
    load_references,
    merge_step,
    same_setting,
)
from core.training.config import TrainConfig


def record(seed: int, **overrides) -> ReferenceRun:
    config = TrainConfig.for_step(9, seed=seed, **overrides)
    epochs = tuple({"epoch": e, "train_loss": 0.1, "train_acc": 99.0, "test_loss": 0.02, "test_acc": 99.3 + e / 100 + seed / 1000,
                    "lr": 0.01, "seconds": 1.0, "images_per_s": 1.0} for e in range(1, 16))
    return ReferenceRun(config, epochs, "completed", Provenance("python -m core reproduce", "cpu", "2.x", "3.11",
                                                               "2026-11-22", 1.0, "full: ..."))


def entry(*runs: ReferenceRun, params: int = 9032) -> StepReference:
    return StepReference(9, "t", params, 28, 1, tuple(runs))


def test_round_trip_and_summaries(tmp_path):
    path = tmp_path / "ref.json"
    merge_step(path, entry(record(1), record(2)), keep_others=False)
    (loaded,) = load_references(path).values()
    assert loaded.seeds == [1, 2] and loaded.first.config == TrainConfig.for_step(9, seed=1)
    assert loaded.min_last_spread.n == 2 and loaded.min_last_spread.low == pytest.approx(99.431)
    assert loaded.all_passed and not loaded.reduced


def test_merging_adds_seeds_and_a_changed_setting_replaces(tmp_path):
    path = tmp_path / "ref.json"
    merge_step(path, entry(record(1), record(2)), keep_others=False)
    merge_step(path, entry(record(3)), keep_others=True)
    assert load_references(path)[9].seeds == [1, 2, 3]
    merge_step(path, entry(record(2, max_batches=5)), keep_others=True)  # other limits: not the same setting
    assert load_references(path)[9].seeds == [2]
    assert same_setting(TrainConfig.for_step(9, seed=1, device="cpu"), TrainConfig.for_step(9, seed=7))
    assert not same_setting(TrainConfig.for_step(9), TrainConfig.for_step(9, ema=0.0))


def test_a_damaged_file_is_named(tmp_path):
    path = tmp_path / "ref.json"
    path.write_text("{not json")
    with pytest.raises(ReferenceFileError, match=str(path)):
        load_references(path)
    path.write_text(json.dumps({"format": 1, "runs": []}))
    with pytest.raises(ReferenceFileError, match="format-2"):
        load_references(path)
    assert load_references(tmp_path / "absent.json") == {}


@pytest.mark.parametrize("kind", ["reference", "ablation", "frontier"])
def test_every_result_file_is_read_by_one_reader_that_names_a_damaged_file(tmp_path, kind):
    """The reference, ablation and frontier files share one reader: an absent file is "nothing yet", and
    a file that is not JSON, of another format, or with a damaged entry is refused naming the file and
    the command that writes it."""
    from core.results.ablation import load_ablation
    from core.results.files import ResultFileError
    from core.results.frontier import load_frontier

    load, empty, command, fmt, entries = {
        "reference": (load_references, {}, "python -m core reproduce", 2, "steps"),
        "ablation": (load_ablation, None, "python -m core ablate", 1, "variants"),
        "frontier": (load_frontier, [], "python -m core search", 1, "candidates"),
    }[kind]
    path = tmp_path / f"{kind}.json"
    assert load(path) == empty
    path.write_text("{not json")
    with pytest.raises(ResultFileError, match=f"cannot read .* in {path}"):
        load(path)
    path.write_text(json.dumps({"format": 99}))
    with pytest.raises(ResultFileError, match=f"{path} is not a format-{fmt} .* rerun `{command}`"):
        load(path)
    path.write_text(json.dumps({"format": fmt, "step": 9, entries: [{"runs": "not runs"}]}))
    with pytest.raises(ResultFileError, match=f"{path} has a damaged entry"):
        load(path)


def test_the_committed_reference_runs_match_todays_specs():
    """A reference run is evidence only for the network it trained: the committed file must describe
    the steps as the specs define them now (parameters, receptive field, multiply-adds, recipe)."""
    refs = load_references()
    assert sorted(refs) == list(range(1, 10))
    for number, ref in refs.items():
        doc = describe_step(number)
        assert (ref.params, ref.rf, ref.macs) == (doc["params"], doc["rf"], doc["macs"]), number
        default = TrainConfig.for_step(number)
        for run in ref.runs:
            recipe = run.config.recipe
            # fewer epochs than the recipe's only in a run labelled reduced (step 1 on a CPU)
            assert recipe.epochs == default.recipe.epochs or run.provenance.reduced, (number, run.seed)
            assert run.config.toggles == default.toggles and replace(recipe, epochs=default.recipe.epochs) \
                == default.recipe, (number, run.seed)
            assert len(run.epochs) == recipe.epochs and run.reason == "completed"
    assert len(refs[9].runs) >= 20 and all(len(refs[n].runs) >= 3 for n in range(2, 9))


def test_the_challenge_command_trains_exactly_the_reference_setting():
    """The step-9 reference seeds stand for `python -m core train --step 9 --epochs 15 --seed S`: that
    command must build the same configuration (only the seed and device may differ)."""
    from core.cli import build_parser, train_config

    refs = load_references()
    for seed in (1, 7, 23):
        args = build_parser().parse_args(["train", "--step", "9", "--epochs", "15", "--seed", str(seed),
                                          "--data-dir", "somewhere", "--no-download", "--json"])
        config = train_config(args)
        assert config.seed == seed
        assert all(same_setting(config, run.config) for run in refs[9].runs)


def _with_low(seed: int, low: float) -> ReferenceRun:
    run = record(seed)
    epochs = tuple(dict(e, test_acc=low) for e in run.epochs)
    return ReferenceRun(run.config, epochs, run.reason, run.provenance)


def test_a_step_change_is_judged_against_both_steps_seed_spread():
    from core.report.markdown import step_change

    before = entry(_with_low(1, 99.10), _with_low(2, 99.20), _with_low(3, 99.30))
    assert step_change(before, entry(_with_low(1, 99.35), _with_low(2, 99.40), _with_low(3, 99.45))) == \
        "+0.20 points of min(last 3), beyond the seed spread"
    assert step_change(before, entry(_with_low(1, 99.25), _with_low(2, 99.30), _with_low(3, 99.35))).endswith(
        "within the seed spread (ranges overlap)")
    assert step_change(entry(_with_low(1, 99.10)), before) == "+0.10 points of min(last 3) (1 seed against 3: spread unknown)"
    assert step_change(entry(_with_low(1, 99.20)), entry(_with_low(1, 99.20))).startswith("+0.00 points")


def test_the_unseen_seed_runs_are_the_challenge_setting_on_new_seeds_and_the_readme_quotes_them():
    """assets/unseen_seeds.json backs docs/results.md's 'seeds never used before': each run must be step 9 as the
    challenge command trains it, on a seed the reference runs never used, run in full; docs/results.md's
    figures for them (how many held, the lowest and the mean min(last 3)) must be the file's."""
    from pathlib import Path

    unseen = load_references(Path(__file__).resolve().parents[1] / "assets" / "unseen_seeds.json")[9]
    reference_seeds = {run.seed for run in load_references()[9].runs}
    seeds = [run.seed for run in unseen.runs]
    assert len(seeds) == len(set(seeds)) >= 10 and not set(seeds) & reference_seeds
    lows = []
    for run in unseen.runs:  # in seed order
        assert same_setting(run.config, TrainConfig.for_step(9, seed=run.seed)), run.seed
        assert run.config.full_data and run.reason == "completed" and len(run.epochs) == 15, run.seed
        assert run.provenance.seeds_together == 1 and run.provenance.processor, run.seed
        lows.append(run.min_last)
    held = sum(run.verdict(unseen.params)[0] for run in unseen.runs)
    readme = " ".join((Path(__file__).resolve().parents[1] / "docs" / "results.md").read_text(encoding="utf-8").split())
    paragraph = readme[readme.index(f"**Seeds {seeds[0]}-{seeds[-1]} on a fourth**"):readme.index("seeds so far, on four")]
    # the paragraph's figures, in order: each seed's min(last 3) in seed order, then their mean
    quoted = re.findall(r"\b\d\d\.\d\d\b", paragraph)
    assert quoted == [f"{low:.2f}" for low in lows] + [f"{sum(lows) / len(lows):.2f}"]
    lowest = min(unseen.runs, key=lambda run: run.min_last)
    assert f"**{lowest.min_last:.2f}** (seed {lowest.seed})" in paragraph
    words = {10: "ten", 20: "twenty", 30: "thirty", 40: "forty"}
    if held == len(seeds):
        assert f"**all {words[len(seeds)]} held**" in paragraph
    else:  # the seeds below the line are named with their figure
        assert f"**{held} of {len(seeds)} held**" in paragraph
        for run in unseen.runs:
            if not run.verdict(unseen.params)[0]:
                assert f"**{run.min_last:.2f}** (seed {run.seed})" in paragraph, run.seed
    earlier = 46  # seeds 1-46: the reference runs and the unseen seeds 21-46 quoted above the paragraph
    assert paragraph.endswith(f"{earlier + held} of {earlier + len(seeds)} ")


def test_the_lesson_quotes_the_unseen_seeds_from_their_file_misses_included(tmp_path):
    from pathlib import Path

    from core.report.unseen import unseen_facts
    from core.results.reference import UNSEEN_FILE

    doc = json.loads(Path(UNSEEN_FILE).read_text(encoding="utf-8"))
    runs = doc["steps"][0]["runs"]
    for run in runs:  # every seed held, but the second one, whose last epoch falls below the line
        for epoch in run["epochs"][-3:]:
            epoch["test_acc"] = 99.5
    runs[1]["epochs"][-1]["test_acc"] = 99.1
    path = tmp_path / "unseen.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    missed = runs[1]["config"]["seed"]
    text = unseen_facts(path)["unseen:seeds"]
    assert text.startswith(f"{len(runs) - 1} of {len(runs)} held (seeds {min(r['config']['seed'] for r in runs)}")
    assert f"lowest 99.10 % on seed {missed}, mean " in text
    assert text.endswith(f"below the line: seed {missed} (99.10 %)")

    assert unseen_facts(tmp_path / "absent.json") == {}  # no file yet: the lesson says "(not measured yet)"
    path.write_text("{not json", encoding="utf-8")
    assert unseen_facts(path) == {}  # a damaged file costs the sentence, not the page


def _seeds_named(seeds: list[int]) -> str:
    """'seed 49', 'seeds 2 and 10', 'seeds 68, 69 and 87'."""
    if len(seeds) == 1:
        return f"seed {seeds[0]}"
    return "seeds " + ", ".join(map(str, seeds[:-1])) + f" and {seeds[-1]}"


def _lowest(lows: dict[int, float]) -> str:
    low = min(lows.values())
    return f"lowest {low:.2f} % ({_seeds_named(sorted(s for s, v in lows.items() if v == low))})"


def test_sep28_on_unseen_seeds_is_its_candidate_with_step_9s_recipe_and_the_readme_quotes_it():
    """assets/sep28_unseen_seeds.json backs docs/results.md's 'Then on unseen seeds' for sep28-wd-alone: each run
    is that candidate's network with step 9's recipe, run in full on a seed the search never used; every
    figure of the paragraph (each seed, how many held, mean, lowest, step 9 on the same seeds from
    assets/unseen_seeds.json, the seed-by-seed difference) must be the files'."""
    import statistics
    from pathlib import Path

    from core.results.frontier import CONFIRM_SEEDS, get_candidate, load_frontier
    from core.results.reference import UNSEEN_FILE
    from core.results.summary import seed_list

    root = Path(__file__).resolve().parents[1]
    doc = json.loads((root / "assets" / "sep28_unseen_seeds.json").read_text(encoding="utf-8"))
    candidate = get_candidate("sep28-wd-alone")
    lows: dict[int, float] = {}
    for run in doc["runs"]:
        config = TrainConfig.from_dict(run["config"])
        assert config.seed not in lows and config.seed not in CONFIRM_SEEDS, config.seed
        assert config.net == candidate.net and same_setting(config, TrainConfig.for_step(9, seed=config.seed,
                                                                                          net=candidate.net))
        assert config.full_data and run["stopped_reason"] == "completed" and len(run["epochs"]) == 15, config.seed
        lows[config.seed] = min(e["test_acc"] for e in run["epochs"][-3:])
    step9 = {run.seed: run.min_last for run in load_references(UNSEEN_FILE)[9].runs}
    seeds = sorted(lows)
    assert set(seeds) <= set(step9)  # compared seed by seed, so only seeds step 9 was trained on
    values = [f"{lows[s]:.2f}" for s in seeds]
    held = sum(lows[s] >= 99.4 for s in seeds)
    diffs = [lows[s] - step9[s] for s in seeds]

    readme = " ".join((root / "docs" / "results.md").read_text(encoding="utf-8").split())
    start = readme.index("**Then on unseen seeds, ")
    paragraph = readme[start:readme.index("standard error", start) + 30]
    assert paragraph.startswith(f"**Then on unseen seeds, {seed_list(seeds)}**")
    assert f"**{held} of {len(seeds)} held**, min(last 3) " + ", ".join(values[:-1]) + f" and {values[-1]} %" \
        in paragraph
    assert f"mean **{statistics.mean(lows.values()):.2f} %**, {_lowest(lows)}" in paragraph
    same = {s: step9[s] for s in seeds}
    assert f"step 9 on the same seeds: mean {statistics.mean(same.values()):.2f} %, {_lowest(same)}" in paragraph
    ahead, behind = sum(d > 0.005 for d in diffs), sum(d < -0.005 for d in diffs)
    assert (f"Seed by seed {statistics.mean(diffs):+.2f} on average ({min(diffs):+.2f} to {max(diffs):+.2f}, "
            f"ahead on {ahead}, behind on {behind}; standard error "
            f"{statistics.stdev(diffs) / len(diffs) ** 0.5:.3f})") in paragraph

    # then without the seeds picked because step 9 missed them, and over every seed both trained alone
    rest = [lows[s] - step9[s] for s in seeds if step9[s] >= 99.4]
    after = readme[start:readme.index("*Command line*", start)]
    assert (f"still ahead by {statistics.mean(rest):+.2f} (standard error "
            f"{statistics.stdev(rest) / len(rest) ** 0.5:.3f}; ahead on {sum(d > 0.005 for d in rest)}, behind on "
            f"{sum(d < -0.005 for d in rest)})") in after
    frontier = next(e for e in load_frontier() if e.candidate.name == candidate.name)
    both = lows | {r.seed: r.min_last for r in frontier.runs}
    dense = {s: low for s, low in step9.items() if s in lows} | {r.seed: r.min_last for r in load_references()[9].runs}
    assert set(both) == set(dense)
    assert (f"sep28 held on {sum(v >= 99.4 for v in both.values())} of {len(both)}, its lowest "
            f"{min(both.values()):.2f} %** (") in after
    assert f"mean {statistics.mean(both.values()):.2f} %; step 9 held on {sum(v >= 99.4 for v in dense.values())}, " \
           f"lowest {min(dense.values()):.2f} %, mean {statistics.mean(dense.values()):.2f} %" in after


def test_the_lesson_sets_a_design_on_unseen_seeds_beside_the_final_step_on_the_same_seeds(tmp_path):
    from pathlib import Path

    from core.report.unseen import design_unseen_facts
    from core.results.reference import UNSEEN_FILE, unseen_points

    step9 = json.loads(Path(UNSEEN_FILE).read_text(encoding="utf-8"))
    step_runs = step9["steps"][0]["runs"][:3]
    for run, low in zip(step_runs, (99.45, 99.39, 99.50)):
        for epoch in run["epochs"][-3:]:
            epoch["test_acc"] = low
    step9["steps"][0]["runs"] = step_runs
    step_path = tmp_path / "unseen.json"
    step_path.write_text(json.dumps(step9), encoding="utf-8")
    seeds = [run["config"]["seed"] for run in step_runs]

    def train_output(seed: int, low: float, reason: str = "completed") -> dict:
        epochs = [{"epoch": e, "test_acc": 99.0} for e in range(1, 13)] + [{"epoch": e, "test_acc": low}
                                                                          for e in range(13, 16)]
        return {"params": 5832, "config": {"seed": seed}, "epochs": epochs, "stopped_reason": reason}

    design = tmp_path / "design.json"
    design.write_text(json.dumps({"candidate": "wide", "runs": [train_output(seeds[0], 99.52),
                                                                train_output(seeds[1], 99.38),
                                                                train_output(seeds[2], 99.60, "stopped")]}))
    text = design_unseen_facts(design, step_path)["unseen:design"]
    first, second = text.split(". Step 9 on the same seeds: ")  # a stopped run counts for neither
    assert first == (f"wide (5,832 parameters): 1 of 2 held (seeds {seeds[0]}, {seeds[1]}; lowest 99.38 % on seed "
                     f"{seeds[1]}, mean 99.45 %); below the line: seed {seeds[1]} (99.38 %)")
    assert second == (f"1 of 2 held (seeds {seeds[0]}, {seeds[1]}; lowest 99.39 % on seed {seeds[1]}, mean 99.42 %); "
                      f"below the line: seed {seeds[1]} (99.39 %)")

    rows = unseen_points(step_path, design)  # the chart's: every seed of step 9, the design's on those only
    assert [(r["network"], r["seed"], r["held"]) for r in rows] == \
        [("step 9 · 5,648", seeds[0], True), ("step 9 · 5,648", seeds[1], False), ("step 9 · 5,648", seeds[2], True),
         ("wide · 5,832", seeds[0], True), ("wide · 5,832", seeds[1], False)]

    assert design_unseen_facts(tmp_path / "absent.json", step_path) == {}
    design.write_text("{not json", encoding="utf-8")
    assert design_unseen_facts(design, step_path) == {}  # a damaged file costs the sentence, not the page
    assert [r["network"] for r in unseen_points(step_path, design)] == ["step 9 · 5,648"] * 3  # and its row


def test_the_home_table_shows_a_reduced_run_for_what_it_is_and_never_none():
    """Step 1 trains 2 of 15 epochs on a CPU: the home table shows its best test accuracy and how many
    epochs it ran instead of a min(last 3) it does not have, and compares no step with it."""
    from core.report.markdown import overview_rows
    from core.report.views import step_overview

    def steps(number: int, *runs: ReferenceRun) -> StepReference:
        return replace(entry(*runs), step=number)

    def reduced(seed: int) -> ReferenceRun:
        run = record(seed)
        return ReferenceRun(run.config, run.epochs[:2], run.reason, replace(run.provenance, limits="reduced: 2 of 15"))

    refs = {1: steps(1, reduced(1)), 2: steps(2, _with_low(1, 99.10), _with_low(2, 99.20)),
            3: steps(3, _with_low(1, 99.30), _with_low(2, 99.36))}
    rows = {r["step"]: r for r in overview_rows(step_overview(), refs)}
    assert rows[1]["best %"] == "99.32" and rows[1]["min last 3 %"] == "— (2 of 15 epochs)" and rows[1]["seeds"] == "1: —"
    assert rows[2]["vs step before"] == "—" and rows[2]["seeds"] == "2: 99.10-99.20"
    assert rows[3]["min last 3 %"] == "99.33" and rows[3]["vs step before"] == "+0.18, beyond the seeds"
    assert rows[4]["min last 3 %"] == "not run yet" and rows[4]["best %"] == "—" and rows[4]["vs step before"] == "—"
    assert not any(value is None for row in rows.values() for value in row.values())
