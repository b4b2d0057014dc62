"""The frontier search: candidates trained as seed groups, every run recorded with its provenance,
a rerun training only the seeds not yet recorded, and the app's chart drawn from the file."""

import json

import altair as alt
import pandas as pd
import pytest
from conftest import run_cli

from core.architecture.builder import count_params, macs
from core.experiments.search import promising
from core.results.frontier import CANDIDATES, get_candidate, load_frontier
from core.training.loop import build_for


def test_every_candidate_builds_and_sits_under_the_challenges_limit():
    names = [c.name for c in CANDIDATES]
    assert len(set(names)) == len(names)
    for candidate in CANDIDATES:
        assert count_params(build_for(candidate.config())) < 10_000, candidate.name
    with pytest.raises(ValueError, match="unknown candidate 'nope'"):
        get_candidate("nope")


def test_search_records_each_seed_with_provenance_and_a_rerun_adds_only_new_seeds(tiny_mnist_root, tmp_path):
    out = tmp_path / "frontier.json"
    args = ["search", "--data-dir", str(tiny_mnist_root), "--no-download", "--device", "cpu", "--only", "narrow10",
            "--output", str(out)]
    first = run_cli(*args, "--seeds", "1-2")
    assert first.returncode == 0, first.stderr
    (entry,) = load_frontier(out)
    model = build_for(get_candidate("narrow10").config())
    assert entry.params == count_params(model) and entry.macs == macs(model)
    assert [r.seed for r in entry.runs] == [1, 2]
    for run in entry.runs:
        assert run.config.net == get_candidate("narrow10").net and len(run.epochs) == 15
        assert run.provenance.seeds_together == 2 and "search" in run.provenance.command
        assert run.provenance.limits.startswith("full")

    again = run_cli(*args, "--seeds", "1-3")
    assert again.returncode == 0, again.stderr
    assert "seeds 3" in again.stderr and "seeds 1, 2, 3" not in again.stderr  # 1 and 2 are recorded already
    (entry,) = load_frontier(out)
    assert [r.seed for r in entry.runs] == [1, 2, 3] and entry.runs[2].provenance.seeds_together == 1
    raw = json.loads(out.read_text())
    assert raw["challenge"]["min_acc"] == 99.4 and raw["candidates"][0]["candidate"]["name"] == "narrow10"

    listed = run_cli("search", "--list", "--output", str(out))
    assert listed.returncode == 0 and "narrow10" in listed.stderr and "3 seed(s)" in listed.stderr
    assert "not trained yet" in listed.stderr  # the rest of the family


def test_confirm_takes_the_smallest_candidate_whose_seeds_all_held(tiny_mnist_root, tmp_path):
    out = tmp_path / "frontier.json"
    empty = run_cli("search", "--confirm", "1", "--output", str(out))
    assert empty.returncode != 0 and "nothing to confirm" in empty.stderr and "Traceback" not in empty.stderr
    for name in ("narrow12", "narrow10"):
        done = run_cli("search", "--data-dir", str(tiny_mnist_root), "--no-download", "--device", "cpu", "--only",
                       name, "--seeds", "1", "--output", str(out))
        assert done.returncode == 0, done.stderr
    entries = load_frontier(out)
    held = [e for e in entries if e.runs[0].min_last >= 99.4]
    expected = min(held, key=lambda e: e.params).candidate.name if held else None
    picked = promising(entries, 1)
    assert [c.name for c in picked] == ([expected] if expected else [])


def test_the_frontier_chart_is_valid_vega_lite():
    from ui.step_page import frontier_chart

    frame = pd.DataFrame([{"candidate": "a", "net": "c8,G", "params": 5000, "seed": 1, "min_last": 99.41,
                           "stage": "screened", "held": True}])
    alt.LayerChart.from_dict(frontier_chart(frame).to_dict())  # raises on a spec the schema does not allow


def test_the_frontier_chart_gives_each_recorded_candidate_a_row_coloured_as_the_table_counts_it():
    """Thirty candidates, ten of them at 3,822 parameters: one colour each, on a params axis, was an unreadable
    pile squeezed under its legend (seen at 1280x720). Each candidate is a row of its seeds' dots, coloured by
    whether it held as the table counts it (every seed, and its design nowhere missed), and the rows keep their
    height."""
    from core.results.frontier import frontier_points, missed_elsewhere
    from ui.step_page import (
        FRONTIER_ROW_PX,
        FRONTIER_VERDICTS,
        frontier_chart,
        frontier_params_chart,
    )

    entries = load_frontier()
    reference = [{"candidate": "step 9 (reference)", "net": "c8,G", "params": 5648, "seed": 1, "min_last": 99.5,
                  "stage": "reference", "held": True}]
    frame = pd.DataFrame(frontier_points(entries) + reference)
    wide = frontier_params_chart(frame).to_dict()  # the frontier itself: params against accuracy
    alt.LayerChart.from_dict(wide)
    assert wide["autosize"] == {"type": "fit-x", "contains": "padding"}
    assert wide["layer"][1]["encoding"]["x"]["field"] == "params"
    spec = frontier_chart(frame).to_dict()
    assert spec["autosize"] == {"type": "fit-x", "contains": "padding"}
    assert spec["height"] == FRONTIER_ROW_PX * (len(entries) + 1)
    dots = next(rows for rows in spec["datasets"].values() if len(rows) > 1)
    verdicts = {row["candidate"]: row["verdict"] for row in dots}
    for e in entries:
        held = min(r.min_last for r in e.runs) >= 99.4 and not missed_elsewhere(e, entries)
        assert verdicts[e.candidate.name] == FRONTIER_VERDICTS["held" if held else "missed"][0], e.candidate.name
    assert verdicts["narrow10-wd"] == FRONTIER_VERDICTS["missed"][0]  # 3/3 side by side, but missed alone
    assert verdicts["step 9 (reference)"] == FRONTIER_VERDICTS["reference"][0]
    assert {row["design"] for row in dots} >= {f"{e.candidate.name} · {e.params:,}" for e in entries}


def test_step_9_and_the_frontier_page_draw_the_recorded_frontier(tiny_mnist_root, tmp_path, monkeypatch, mnist_root):
    from streamlit.testing.v1 import AppTest
    from test_app import APP, open_page

    import ui.state

    out = tmp_path / "frontier.json"
    done = run_cli("search", "--data-dir", str(tiny_mnist_root), "--no-download", "--device", "cpu", "--only",
                   "narrow10", "--seeds", "1-2", "--output", str(out))
    assert done.returncode == 0, done.stderr
    monkeypatch.setenv("MNIST_DIR", str(mnist_root))
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    open_page(at, "app_pages/step_9.py")
    recorded = len(load_frontier())
    assert any(f"{recorded} candidates from" in m.value for m in at.markdown)  # the project's own frontier
    # another frontier file while the app runs: the lesson, built once per change of the files, follows it
    monkeypatch.setattr(ui.state, "FRONTIER_FILE", out)
    at.run()
    assert any("How small can it get?" in m.value for m in at.markdown)
    assert any("1 candidate of 3,822 parameters" in m.value for m in at.markdown)
    assert not any(f"{recorded} candidates from" in m.value for m in at.markdown)
    assert not [d for d in at.dataframe if "held on" in d.value.columns]  # the step page is a lesson: the rows
    assert any("frontier" in str(p.proto.page) for p in at.get("page_link"))  # live on the Frontier page
    open_page(at, "app_pages/frontier.py")
    table = next(d.value for d in at.dataframe if "held on" in d.value.columns)
    assert list(table["candidate"]) == ["narrow10"] and list(table["seeds"]) == [2]
    from urllib.parse import parse_qs, urlparse
    link = parse_qs(urlparse(table["open"][0]).query)  # opens the candidate in Design, recipe and all
    assert table["open"][0].startswith("design?") and link["net"] == [get_candidate("narrow10").net]
    assert link["from"] == ["9"] and link["epochs"] == ["15"] and link["budget"] == ["full"]
    assert any("search" in c.value and "--only narrow10" in c.value for c in at.code)  # its provenance


def test_the_lesson_and_lifecycle_quote_the_frontier_file(tiny_mnist_root, tmp_path):
    from core.report.markdown import lifecycle_markdown
    from core.report.frontier import frontier_facts, frontier_markdown

    out = tmp_path / "frontier.json"
    for name, seeds in (("narrow10", "1-2"), ("narrow12", "1")):
        done = run_cli("search", "--data-dir", str(tiny_mnist_root), "--no-download", "--device", "cpu", "--only",
                       name, "--seeds", seeds, "--output", str(out))
        assert done.returncode == 0, done.stderr
    entries = load_frontier(out)
    facts = frontier_facts(entries)
    sizes = sorted(e.params for e in entries)
    assert facts["frontier:tried"].startswith(f"2 candidates from {sizes[0]:,} to {sizes[1]:,} parameters")
    assert facts["frontier:smallest"] == "no candidate has yet held on all 20 seeds"  # none has 20 seeds
    # a candidate that held on every seed it trained, but on fewer than 20, is still open (not broken)
    held_all = [e for e in entries if e.runs and e.holding == len(e.runs)]
    assert facts["frontier:open"] == "none" if not held_all else "still to train" in facts["frontier:open"]
    assert all(e.candidate.name not in facts["frontier:broke"] for e in held_all)
    lines = frontier_markdown(entries)
    assert sum(line.startswith("| narrow") for line in lines) == 2 and any("--only narrow10" in line for line in lines)
    text = lifecycle_markdown({}, [], entries)
    assert "## How small can it get?" in text
    assert "(not measured yet)" not in text.split("How small can it get?**")[1][:400]


def _runs(candidate, lows: dict[int, float]):
    from core.results.reference import Provenance, ReferenceRun

    provenance = Provenance("python -m core search", "cpu", "2.x", "3.11", "2026-12-03", 1.0, "full: ...")
    return tuple(ReferenceRun(candidate.config(seed=seed), tuple(
        {"epoch": e, "train_loss": 0.1, "train_acc": 99.0, "test_loss": 0.02, "test_acc": 99.6 if e < 13 else low,
         "lr": 0.01, "seconds": 1.0, "images_per_s": 1.0} for e in range(1, 16)), "completed", provenance)
        for seed, low in lows.items())


def _entry(name: str, params: int, lows: dict[int, float]):
    """A recorded candidate with one min(last 3) per seed."""
    from core.results.frontier import FrontierEntry

    return FrontierEntry(get_candidate(name), params, 1, _runs(get_candidate(name), lows))


def test_a_design_that_held_side_by_side_but_missed_alone_does_not_count_as_holding():
    """Seeds trained side by side meet other rounding than seeds trained alone (as Train does): a
    design that held on twenty seeds one way and missed a seed the other way is not the answer."""
    from core.report.frontier import frontier_facts
    from core.results.frontier import FrontierEntry, frontier_rows, smallest_holding

    wide, alone, narrow = get_candidate("wide13"), get_candidate("wide13-alone"), get_candidate("narrow12")
    assert alone.alone and not wide.alone and alone.config() == wide.config()  # one setting, trained two ways
    side_by_side = FrontierEntry(wide, 5995, 1, _runs(wide, {s: 99.45 for s in range(1, 21)}))
    narrower = FrontierEntry(narrow, 5648, 1, _runs(narrow, {s: 99.41 for s in range(1, 21)}))
    assert smallest_holding([side_by_side, narrower]) is narrower
    held_alone = FrontierEntry(alone, 5995, 1, _runs(alone, {1: 99.42, 2: 99.50}))
    assert smallest_holding([side_by_side, held_alone]) is side_by_side
    missed_alone = FrontierEntry(alone, 5995, 1, _runs(alone, {1: 99.36, 2: 99.50}))
    assert smallest_holding([side_by_side, missed_alone]) is None
    facts = frontier_facts([side_by_side, missed_alone])
    assert facts["frontier:smallest"].startswith("no candidate has yet held")
    assert "wide13-alone missed on 1 of 2 (lowest 99.36 %)" in facts["frontier:smallest"]
    assert "wide13-alone" in facts["frontier:broke"]
    # seed 1 moved 99.45 -> 99.36, seed 2 99.45 -> 99.50
    assert facts["frontier:rounding"] == "wide13-alone against wide13, 2 seeds: -0.09 to +0.05 points (mean -0.02)"
    # the table beside the chart says so too, on the row that held
    rows = {r["candidate"]: r["held on"] for r in frontier_rows([side_by_side, missed_alone])}
    assert rows == {"wide13": "20/20 (does not count: wide13-alone 1/2)", "wide13-alone": "1/2"}
    assert {r["candidate"]: r["held on"] for r in frontier_rows([side_by_side, held_alone])}["wide13"] == "20/20"
    # a screen that held side by side is no longer open once the same design missed alone
    screened = FrontierEntry(wide, 5995, 1, _runs(wide, {1: 99.45, 2: 99.47}))
    assert "wide13 " in frontier_facts([screened, held_alone])["frontier:open"]
    assert frontier_facts([screened, missed_alone])["frontier:open"] == "none"


def test_the_frontier_provenance_names_every_device_and_date_its_runs_used():
    from dataclasses import replace

    from core.report.frontier import frontier_markdown, frontier_provenance
    from core.results.frontier import FrontierEntry

    wide, narrow = get_candidate("wide13"), get_candidate("narrow12")
    one_thread = tuple(replace(r, provenance=replace(r.provenance, device="CPU (1 thread)", date="2026-12-01"))
                       for r in _runs(narrow, {1: 99.5}))
    entries = [FrontierEntry(narrow, 5648, 1, one_thread), FrontierEntry(wide, 5995, 1, _runs(wide, {1: 99.5}))]
    made = frontier_provenance(entries)
    assert made.devices == ["CPU (1 thread)", "cpu"]
    assert made.dates == "2026-12-01 to 2026-12-03" and frontier_provenance(entries[1:]).dates == "2026-12-03"
    assert "CPU (1 thread), cpu" in "\n".join(frontier_markdown(entries))


def test_an_alone_candidate_trains_each_seed_as_its_own_run(tiny_mnist_root, tmp_path):
    out = tmp_path / "frontier.json"
    done = run_cli("search", "--data-dir", str(tiny_mnist_root), "--no-download", "--device", "cpu", "--only",
                   "wide13-alone", "--seeds", "1-2", "--output", str(out))
    assert done.returncode == 0, done.stderr
    (entry,) = load_frontier(out)
    assert entry.candidate.alone and [r.provenance.seeds_together for r in entry.runs] == [1, 1]


def test_check_trains_recorded_seeds_again_as_recorded_and_finds_a_changed_number(tiny_mnist_root, tmp_path):
    """`search --check`: the frontier file against its provenance. A seed trained in a group is trained
    again in the same group (the file names it) with the same thread count, and every epoch must match."""
    out = tmp_path / "frontier.json"
    data = ["--data-dir", str(tiny_mnist_root), "--no-download", "--device", "cpu", "--output", str(out)]
    trained = run_cli("search", *data, "--only", "narrow10", "--seeds", "1-2", "--threads", "1")
    assert trained.returncode == 0, trained.stderr
    assert [r.provenance.trained_with for r in load_frontier(out)[0].runs] == [(1, 2), (1, 2)]
    before = out.read_text()

    check = run_cli("search", "--check", *data, "--only", "narrow10", "--seeds", "2", "--json")
    assert check.returncode == 0, check.stderr
    assert "narrow10 seed 2: identical in all 15 epochs" in check.stderr
    (row,) = json.loads(check.stdout)
    assert row["group"] == [1, 2] and row["comparable"] and row["differing_epochs"] == []
    assert out.read_text() == before  # a check writes nothing

    doc = json.loads(before)  # one number changed by hand: the check must catch it
    doc["candidates"][0]["runs"][1]["epochs"][13]["test_acc"] += 0.01
    out.write_text(json.dumps(doc))
    caught = run_cli("search", "--check", *data, "--only", "narrow10", "--seeds", "2")
    assert caught.returncode == 1 and "narrow10 seed 2: DIFFERS from epoch 14 on (1 epochs)" in caught.stderr

    missing = run_cli("search", "--check", *data, "--only", "narrow10", "--seeds", "3")
    assert missing.returncode == 2 and "no recorded run for seed(s) 3 (recorded: 1, 2)" in missing.stderr


def test_a_run_recorded_on_another_kind_of_processor_is_checked_but_not_held_to_bit_for_bit(tiny_mnist_root, tmp_path):
    """Another CPU model or instruction set (AVX2 vs AVX512) rounds differently: the same single-thread
    run then differs from the file without anything being wrong, so the check says so instead of failing."""
    import torch

    from core.training.device import processor_label

    out = tmp_path / "frontier.json"
    data = ["--data-dir", str(tiny_mnist_root), "--no-download", "--device", "cpu", "--output", str(out)]
    assert run_cli("search", *data, "--only", "narrow10-wd-alone", "--seeds", "1", "--threads", "1").returncode == 0
    doc = json.loads(out.read_text())
    provenance = doc["candidates"][0]["runs"][0]["provenance"]
    here = processor_label(torch.device("cpu"))
    assert provenance["processor"] == here and torch.backends.cpu.get_cpu_capability() in here

    provenance["processor"] = "Some Other CPU, AVX2"
    doc["candidates"][0]["runs"][0]["epochs"][14]["test_acc"] += 0.01  # it would fail on this processor
    out.write_text(json.dumps(doc))
    check = run_cli("search", "--check", *data, "--only", "narrow10-wd-alone", "--seeds", "1", "--json")
    (row,) = json.loads(check.stdout)
    assert check.returncode == 0 and not row["comparable"] and row["differing_epochs"] == [15]
    assert f"not comparable bit for bit (recorded on Some Other CPU, AVX2, checked on {here}" in check.stderr

    del provenance["processor"]  # as files recorded before it was named have it
    out.write_text(json.dumps(doc))
    check = run_cli("search", "--check", *data, "--only", "narrow10-wd-alone", "--seeds", "1")
    assert check.returncode == 0 and "the file does not name the processor it was recorded on" in check.stderr


def test_check_of_a_run_recorded_before_groups_were_named_trains_its_likely_group_and_says_so(tiny_mnist_root,
                                                                                              tmp_path):
    out = tmp_path / "frontier.json"
    data = ["--data-dir", str(tiny_mnist_root), "--no-download", "--device", "cpu", "--output", str(out)]
    assert run_cli("search", *data, "--only", "narrow10", "--seeds", "1-2", "--threads", "1").returncode == 0
    doc = json.loads(out.read_text())
    for run in doc["candidates"][0]["runs"]:
        del run["provenance"]["trained_with"]  # as older files have it
    out.write_text(json.dumps(doc))
    check = run_cli("search", "--check", *data, "--only", "narrow10", "--seeds", "1", "--json")
    (row,) = json.loads(check.stdout)
    assert row["group"] == [1, 2] and not row["comparable"]  # the two runs share one provenance: that group
    assert check.returncode == 0 and "not comparable bit for bit" not in check.stderr  # it matched anyway
    assert "1 of 1 run(s) identical to the file" in check.stderr


def test_designs_with_the_same_weights_are_compared_on_the_seeds_they_share():
    from core.report.frontier import frontier_facts
    from core.results.frontier import FrontierEntry

    narrow, padded, bs32 = get_candidate("narrow12"), get_candidate("pad12-half"), get_candidate("narrow12-bs32")
    entries = [FrontierEntry(narrow, 5648, 617_000, _runs(narrow, {1: 99.43, 2: 99.53, 3: 99.49, 4: 99.30})),
               FrontierEntry(padded, 5648, 904_000, _runs(padded, {1: 99.53, 2: 99.41, 3: 99.50})),
               FrontierEntry(bs32, 5648, 617_000, _runs(bs32, {1: 99.00, 2: 99.00, 3: 99.00}))]  # another recipe
    assert frontier_facts(entries)["frontier:same_weights"] == (
        "5,648 parameters on seeds 1-3: narrow12 99.48 % (99.43-99.53; 0.62 M multiply-adds), "
        "pad12-half 99.48 % (99.41-99.53; 0.90 M multiply-adds)")  # seed 4 is narrow12's only
    assert frontier_facts(entries[:1])["frontier:same_weights"] == "not measured yet"
    # each design is held against the one of its family that computes least, on the seeds those two share;
    # designs with another recipe or trained the other way (alone) form families of their own
    late, sep, sep_pad = get_candidate("late-pool"), get_candidate("sep21-wd-alone"), get_candidate("sep21-pad-alone")
    more = [FrontierEntry(late, 5648, 1_000_000, _runs(late, {2: 99.50, 4: 99.40, 5: 99.45})),
            FrontierEntry(sep_pad, 3956, 768_000, _runs(sep_pad, {1: 99.50, 2: 99.46})),
            FrontierEntry(sep, 3956, 541_000, _runs(sep, {1: 99.44, 2: 99.38, 3: 99.51}))]
    assert frontier_facts(entries + more)["frontier:same_weights"] == (
        "3,956 parameters on seeds 1, 2: sep21-wd-alone 99.41 % (99.38-99.44; 0.54 M multiply-adds), "
        "sep21-pad-alone 99.48 % (99.46-99.50; 0.77 M multiply-adds); "
        "5,648 parameters on seeds 1-3: narrow12 99.48 % (99.43-99.53; 0.62 M multiply-adds), "
        "pad12-half 99.48 % (99.41-99.53; 0.90 M multiply-adds); "
        "5,648 parameters on seeds 2, 4: narrow12 99.41 % (99.30-99.53; 0.62 M multiply-adds), "
        "late-pool 99.45 % (99.40-99.50; 1.00 M multiply-adds)")
    # the batch-32 recipe is compared with its own network's plain recipe instead, on the seeds both trained
    assert frontier_facts(entries)["frontier:recipes"] == (
        "narrow12-bs32 99.00 % vs narrow12 99.48 % (-0.48) on seeds 1-3, held on 0 of 3")
    assert frontier_facts(entries[1:])["frontier:recipes"] == "not measured yet"  # no plain narrow12 to compare
    # a change on top of another is measured against the recipe one change short, trained the same way (alone)
    wd, lr3, wd3e4 = (get_candidate(n) for n in ("narrow10-wd-alone", "narrow10-wd-lr3-alone", "narrow10-wd3e4-alone"))
    side_by_side = get_candidate("narrow10-wd")
    alone = [FrontierEntry(wd, 3822, 1, _runs(wd, {15: 99.38, 18: 99.36})),
             FrontierEntry(lr3, 3822, 1, _runs(lr3, {15: 99.42, 18: 99.48, 12: 99.34})),
             FrontierEntry(wd3e4, 3822, 1, _runs(wd3e4, {15: 99.48})),  # a value changed, not a change added
             FrontierEntry(side_by_side, 3822, 1, _runs(side_by_side, {15: 99.60, 18: 99.60}))]
    assert frontier_facts(alone)["frontier:recipes"] == (
        "narrow10-wd-lr3-alone 99.45 % vs narrow10-wd-alone 99.37 % (+0.08) on seeds 15, 18, held on 2 of 2")


def test_candidates_keep_the_recipe_they_were_searched_with_when_step_9_moves_on():
    """A candidate's overrides apply to the recipe the search started from (no weight decay), not to
    step 9 as it stands, so its recorded runs stay runs of its setting; narrow12-wd is step 9 now."""
    from core.results.summary import same_setting
    from core.training.config import TrainConfig
    from core.training.steps import FINAL_STEP

    step_9 = TrainConfig.for_step(FINAL_STEP, seed=1, device="cpu")
    assert get_candidate("narrow12").config().recipe.weight_decay == 0.0
    assert not same_setting(get_candidate("narrow12").config(seed=1, device="cpu"), step_9)
    assert same_setting(get_candidate("narrow12-wd-alone").config(seed=1, device="cpu"), step_9)


def test_an_alone_candidate_that_a_step_became_takes_its_reference_runs(tiny_mnist_root, tmp_path):
    """`reproduce` trained step 9's seeds each alone with exactly narrow12-wd-alone's setting: the search
    takes those runs, with the provenance that names reproduce, instead of training them again; it never
    takes a run trained in a seed group, on another device, or for a candidate that is not alone."""
    from dataclasses import replace

    from core.experiments.search import search, trained_by_reproduce
    from core.results.reference import Provenance, StepReference, write_references

    alone, grouped = get_candidate("narrow12-wd-alone"), get_candidate("narrow12-wd")
    made = Provenance("python -m core reproduce --steps 9", "CPU (1 thread)", "2.x", "3.11", "2026-12-03", 1.0,
                      "full: ...", seeds_together=1, trained_with=(1,))
    runs = tuple(replace(r, config=replace(r.config, device="cpu"), provenance=replace(made, trained_with=(r.seed,)))
                 for r in _runs(alone, {1: 99.45, 2: 99.52}))
    in_a_group = replace(runs[1], provenance=replace(made, seeds_together=2, trained_with=(1, 2)))
    held = {9: StepReference(9, "step 9", 5648, 22, 1, runs)}
    refs = tmp_path / "reference_runs.json"
    write_references(refs, held)
    assert [r.seed for r in trained_by_reproduce(alone, [1, 2, 3], "cpu", held)] == [1, 2]
    assert trained_by_reproduce(grouped, [1, 2], "cpu", held) == []
    assert trained_by_reproduce(alone, [1, 2], "cuda", held) == []
    assert trained_by_reproduce(alone, [2], "cpu", {9: replace(held[9], runs=(runs[0], in_a_group))}) == []

    said: list[str] = []
    out = tmp_path / "frontier.json"
    (entry,) = search([alone], [1, 2], str(tiny_mnist_root), False, "cpu", None, str(out), ["search"], said.append,
                      references=refs)
    assert [r.seed for r in entry.runs] == [1, 2] and all("reproduce" in r.provenance.command for r in entry.runs)
    assert any("seeds 1, 2 taken from the reference runs" in line for line in said)
    assert any("every seed asked for is recorded already" in line for line in said)  # nothing trained


def test_a_reworded_candidate_is_rewritten_with_its_new_words_and_its_runs(tmp_path):
    """Only a candidate's words changed (step 9 moved on, say): the file takes the new words at its next
    write; a candidate whose network changed keeps what was recorded for it."""
    from dataclasses import replace

    from core.results.frontier import FrontierEntry, merge_entry

    narrow, narrow10 = get_candidate("narrow12"), get_candidate("narrow10")
    out = tmp_path / "frontier.json"
    merge_entry(out, FrontierEntry(replace(narrow, why="old words"), 5648, 1, _runs(narrow, {1: 99.5})))
    entries = merge_entry(out, FrontierEntry(narrow10, 3822, 1, _runs(narrow10, {1: 99.3})))
    assert {e.candidate.name: e.candidate.why for e in entries}["narrow12"] == narrow.why
    changed = replace(narrow, why="other words", net="c8,c8,M,c12,c12,c12,G")
    merge_entry(out, FrontierEntry(changed, 4000, 1, _runs(changed, {1: 99.5})))
    entries = merge_entry(out, FrontierEntry(narrow10, 3822, 1, _runs(narrow10, {2: 99.3})))
    assert {e.candidate.name: e.candidate.why for e in entries}["narrow12"] == "other words"


def test_the_nearest_a_smaller_design_came_is_the_one_that_held_on_most_of_the_twenty():
    from core.report.frontier import frontier_facts
    from core.results.frontier import closest_below

    holds = _entry("narrow12-wd-alone", 5648, {s: 99.45 for s in range(1, 21)})
    near = _entry("narrow10-wd-lr3-alone", 3822, {s: 99.30 if s in (12, 13, 7) else 99.45 for s in range(1, 21)})
    worse = _entry("narrow10-wd3e4-alone", 3822, {s: 99.30 if s <= 10 else 99.50 for s in range(1, 21)})
    screened = _entry("narrow10-wd-lr4-alone", 3822, {12: 99.43})  # one seed held: not a twenty-seed result
    bigger = _entry("wide13-alone", 5995, {s: 99.39 if s == 1 else 99.50 for s in range(1, 21)})
    assert closest_below([holds, near, worse, screened, bigger]) is near
    assert frontier_facts([holds, near, worse])["frontier:closest"] == (
        "narrow10-wd-lr3-alone (c6,c6,M,c10,c10,c10,c10,G, 3,822 parameters) held on 17 of 20 seeds "
        "(mean 99.43 %, lowest 99.30 %)")
    assert closest_below([holds]) is None and frontier_facts([holds])["frontier:closest"].startswith("none")
    assert closest_below([near, bigger]) is bigger  # nothing holds: the nearest of them all (19 of 20)


def test_the_lesson_names_the_holding_design_with_the_widest_margin_not_only_the_smallest():
    """A design that holds at the line is likelier to miss an unseen seed than one that holds with room:
    of the designs that hold, the one whose worst seed sits highest, a refuted design never."""
    from core.report.frontier import frontier_facts
    from core.results.frontier import widest_margin

    step9 = _entry("narrow12-wd-alone", 5648, {s: 99.40 if s == 15 else 99.50 for s in range(1, 21)})
    sep28 = _entry("sep28-wd-alone", 5832, {s: 99.45 for s in range(1, 21)})
    refuted = _entry("wide13", 5995, {s: 99.60 for s in range(1, 21)})  # side by side, and ...
    missed = _entry("wide13-alone", 5995, {1: 99.36})  # ... it missed alone: does not hold
    assert widest_margin([step9, sep28, refuted, missed]) is sep28
    facts = frontier_facts([step9, sep28, refuted, missed])
    assert facts["frontier:smallest"].startswith("narrow12-wd-alone")
    assert facts["frontier:widest"] == (
        "sep28-wd-alone (c8,c8,M,c28k1,c28g28,c28k1,c28g28,c28k1,c28g28,c28k1,c28g28,c28k1,G, 5,832 parameters), "
        "lowest seed 99.45 % and mean 99.45 % over 20 seeds")
    assert frontier_facts([step9])["frontier:widest"].endswith("over 20 seeds (the smallest, too)")
    assert widest_margin([missed]) is None and frontier_facts([missed])["frontier:widest"] == "none yet"


def _table_from(lines: list[str], header: str) -> list[str]:
    start = lines.index(header)
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return lines[start:end]


def test_the_results_frontier_table_is_the_one_the_recorded_runs_give():
    """docs/results.md shows LIFECYCLE.md's frontier table: every row must still be what the recorded runs say."""
    from pathlib import Path

    from core.report.frontier import frontier_markdown

    generated = frontier_markdown(load_frontier())
    header = next(line for line in generated if line.startswith("| candidate |"))
    readme = (Path(__file__).resolve().parent.parent / "docs" / "results.md").read_text().splitlines()
    assert header in readme, "docs/results.md has no frontier table"
    assert _table_from(readme, header) == _table_from(generated, header)


def test_every_committed_frontier_run_is_what_its_candidate_and_its_command_say():
    """The frontier file is evidence only if each run trained what its candidate names today and what its
    recorded command asks for: the same setting (only the seed differs), the parameters and multiply-adds
    of the built network, a full 15-epoch run on all the data, and a command that this project's own
    parser reads and whose seeds (and --only, where given) include the run's."""
    import shlex
    from dataclasses import replace

    from core.cli import build_parser
    from core.experiments.reproduce import parse_seeds
    from core.results.summary import same_setting

    entries = load_frontier()
    assert len(entries) == len({e.candidate.name for e in entries}) >= 20
    for entry in entries:
        candidate = get_candidate(entry.candidate.name)
        assert replace(candidate, why=entry.candidate.why) == entry.candidate, candidate.name
        model = build_for(candidate.config())
        assert (entry.params, entry.macs) == (count_params(model), macs(model)), candidate.name
        seeds = [run.seed for run in entry.runs]
        assert len(set(seeds)) == len(seeds) >= 1, candidate.name
        for run in entry.runs:
            where = (candidate.name, run.seed)
            assert same_setting(run.config, candidate.config(seed=run.seed)), where
            assert run.config.full_data and run.reason == "completed" and len(run.epochs) == 15, where
            made = run.provenance
            assert made.limits.startswith("full") and made.date.startswith("2026-") and made.device, where
            assert made.seeds_together == 1 if candidate.alone else made.seeds_together >= 1, where
            if made.trained_with:
                assert run.seed in made.trained_with and len(made.trained_with) == made.seeds_together, where
            words = shlex.split(made.command)
            assert words[:3] == ["python", "-m", "core"], where
            args = build_parser().parse_args(words[3:])
            assert run.seed in parse_seeds(args.seeds), where
            assert set(made.trained_with) <= set(parse_seeds(args.seeds)), where
            if args.command == "search" and args.only:
                assert candidate.name in args.only.split(","), where
            else:  # the runs a step's reference trained (step 9 is a candidate of the family)
                assert args.command == "search" or args.steps == "9", where


def test_seed_lists_in_the_lesson_write_three_or_more_seeds_in_a_row_as_a_range():
    from core.results.summary import seed_list

    assert seed_list([1, 2, 3, 4, 11, 15, 16]) == "1-4, 11, 15, 16"
    assert seed_list([1, 2]) == "1, 2" and seed_list([1, 7, 17]) == "1, 7, 17" and seed_list([5]) == "5"
    assert seed_list([1, 2, 3, 5, 6, 7, 9]) == "1-3, 5-7, 9"


def test_the_setting_key_worked_out_once_per_config_is_the_one_computed_afresh():
    """Pages compare every pair of designs on each rerun, so the key is cached per config: the cached key
    must be the key, for equal configs built apart, for configs that differ only outside the setting, and
    for configs that differ in it."""
    from core.results.summary import _setting_key, setting_key

    base = get_candidate("sep28-wd-alone").config(seed=1, device="cpu")
    configs = [base, get_candidate("sep28-wd-alone").config(seed=1, device="cpu"),
               get_candidate("sep28-wd-alone").config(seed=7, device="cpu"),
               get_candidate("sep21-wd-alone").config(seed=1, device="cpu"), base.with_overrides(lr=0.2)]
    keys = [setting_key(c) for c in configs]
    assert keys == [_setting_key(c) for c in configs] == [setting_key(c) for c in configs]
    assert keys[0] == keys[1] == keys[2] and len({keys[0], keys[3], keys[4]}) == 3


def test_a_new_experiment_is_a_new_entry_in_the_candidates_file(tmp_path):
    """The family searched is data: an entry added to the file is a candidate, with its recipe read back."""
    import json

    from core.results.frontier import CANDIDATES_FILE, load_candidates

    raw = json.loads(CANDIDATES_FILE.read_text(encoding="utf-8"))
    raw["candidates"].append({"name": "tiny-test", "net": "c4,c4,M,c8,c8,G", "why": "a test",
                              "recipe": {"lr": 0.2, "augment": {"rotation": 5.0, "translate": 0.05}}, "alone": True})
    path = tmp_path / "candidates.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    candidates, base = load_candidates(path)
    (added,) = [c for c in candidates if c.name == "tiny-test"]
    config = added.config(seed=3)
    assert added.alone and config.net == "c4,c4,M,c8,c8,G" and config.recipe.lr == 0.2 and config.seed == 3
    assert config.recipe.augment.rotation == 5.0 and config.recipe.weight_decay == base["weight_decay"]
    assert len(candidates) == len(CANDIDATES) + 1
