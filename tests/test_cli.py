"""The command line as a user runs it: JSON on stdout, one-line errors, exit codes. Most calls run
`main` in this process (`run_cli`); the real `python -m core` process is started where it matters:
the first test, two processes sharing a file, and the imports."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import project_modules, run_cli

ROOT = Path(__file__).resolve().parents[1]
LAYER_KEYS = {"name", "type", "kernel_size", "stride", "padding", "dilation", "groups", "out_shape", "params", "rf",
              "jump"}


cli = run_cli


def cli_process(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={**os.environ, **(env or {})})


def ok_json(*args: str, **kw):
    result = cli(*args, "--json", **kw)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_steps_as_a_real_process():
    result = cli_process("steps", "--json")
    assert result.returncode == 0, result.stderr
    steps = json.loads(result.stdout)
    assert [s["number"] for s in steps] == list(range(1, 10))
    assert all({"number", "title", "params", "rf"} <= set(s) for s in steps)
    assert steps[8]["params"] < 10_000 and steps[0]["params"] > 6_000_000


def test_summary_and_toggles():
    base = ok_json("summary", "--step", "3")
    assert all(set(row) >= LAYER_KEYS for row in base["layers"])
    assert sum(row["params"] for row in base["layers"]) == base["params"]
    types = {row["type"] for row in base["layers"]}
    assert types <= {"conv", "maxpool", "avgpool", "gap", "bn", "relu", "dropout", "flatten", "linear", "softmax"}
    with_all = ok_json("summary", "--step", "3", "--bn", "--dropout", "0.1", "--gap")
    assert {"bn", "dropout", "gap"} <= {row["type"] for row in with_all["layers"]}
    assert with_all["params"] < base["params"]
    gap_row = next(row for row in with_all["layers"] if row["type"] == "gap")
    assert gap_row["kernel_size"] == 5 and gap_row["out_shape"][1:] == [1, 1]
    relu = next(row for row in with_all["layers"] if row["type"] == "relu")
    assert relu["kernel_size"] == 1 and relu["stride"] == 1
    assert ok_json("summary", "--step", "9", "--no-bn")["params"] < ok_json("summary", "--step", "9")["params"]


def test_summary_shows_each_convolutions_groups():
    doc = ok_json("summary", "--net", "c8,c16g8,c16g16,G")
    assert [r["groups"] for r in doc["layers"] if r["type"] == "conv"] == [1, 8, 16, 1]
    text = cli("summary", "--net", "c8,c16g8,G")
    assert text.returncode == 0, text.stderr
    header, _, _, _, grouped = text.stdout.splitlines()[:5]
    assert header.split()[5] == "g" and grouped.split()[0] == "conv2" and grouped.split()[5] == "8"


def test_rf_stack():
    stack = [{"type": "conv", "out_channels": 8, "kernel_size": 3, "padding": 0, "stride": 1, "dilation": 1},
             {"type": "maxpool", "kernel_size": 2}, {"type": "gap"}]
    doc = ok_json("rf", "--layers", json.dumps(stack))
    assert doc["params"] == 72
    assert [(r["rf"], r["jump"], r["out_shape"]) for r in doc["layers"]] == [
        (3, 1, [8, 26, 26]), (4, 2, [8, 13, 13]), (28, 26, [8, 1, 1])]


def test_train_json_and_its_record(mnist_root, private_run_store):
    doc = ok_json("train", "--step", "9", "--epochs", "2", "--max-batches", "3", "--data-dir", str(mnist_root),
                  "--no-download", "--device", "cpu", "--seed", "3")
    assert {"params", "device", "config", "epochs", "stopped_reason", "run_id", "challenge"} <= set(doc)
    assert doc["stopped_reason"] == "completed" and doc["config"]["seed"] == 3
    assert doc["config"]["recipe"]["batch_size"] == 64 and doc["config"]["toggles"]["batchnorm"] is True
    assert [e["epoch"] for e in doc["epochs"]] == [1, 2]
    for e in doc["epochs"]:
        assert set(e) == {"epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds", "images_per_s"}
        assert 0 <= e["test_acc"] <= 100
    shown = ok_json("runs", "show", str(doc["run_id"]))
    assert shown["status"] == "completed" and shown["source"] == "cli" and shown["has_weights"]
    assert [e["test_acc"] for e in shown["epochs"]] == [e["test_acc"] for e in doc["epochs"]]
    assert shown["config"] == doc["config"]


def test_every_recipe_setting_has_a_flag_that_reaches_the_run(mnist_root, private_run_store):
    doc = ok_json("train", "--step", "9", "--epochs", "3", "--max-batches", "2", "--data-dir", str(mnist_root),
                  "--no-download", "--device", "cpu", "--no-record", "--label-smoothing", "0.05",
                  "--settle-fraction", "0.4", "--weight-decay", "0.0005", "--batch-size", "32")
    recipe = doc["config"]["recipe"]
    assert (recipe["label_smoothing"], recipe["settle_fraction"], recipe["weight_decay"], recipe["batch_size"]) == (
        0.05, 0.4, 0.0005, 32)
    assert doc["epochs"][-1]["lr"] == doc["epochs"][-2]["lr"]  # the last 40 % at one-cycle's lowest rate
    bad = cli("train", "--step", "9", "--settle-fraction", "0.9", "--data-dir", str(mnist_root), "--no-download")
    assert bad.returncode != 0 and "settled fraction" in bad.stderr and "Traceback" not in bad.stderr


def test_train_uses_mnist_dir_env(mnist_root):
    doc = ok_json("train", "--step", "5", "--epochs", "1", "--max-batches", "2", "--no-download", "--device", "cpu",
                  env={"MNIST_DIR": str(mnist_root)})
    assert doc["stopped_reason"] == "completed"


def test_the_one_cycle_run_of_five_steps_that_used_to_crash(mnist_root):
    doc = ok_json("train", "--step", "9", "--epochs", "1", "--max-batches", "5", "--data-dir", str(mnist_root),
                  "--no-download", "--device", "cpu")
    assert doc["stopped_reason"] == "completed" and len(doc["epochs"]) == 1


def test_no_record_leaves_the_store_alone(mnist_root, private_run_store):
    doc = ok_json("train", "--epochs", "1", "--max-batches", "1", "--data-dir", str(mnist_root), "--no-download",
                  "--device", "cpu", "--no-record")
    assert doc["run_id"] is None and not private_run_store.exists()


def test_runs_list_filters_and_delete(mnist_root, tmp_path):
    db = str(tmp_path / "other.sqlite3")
    for step in (3, 9):
        ok_json("train", "--step", str(step), "--epochs", "1", "--max-batches", "1", "--data-dir", str(mnist_root),
                "--no-download", "--device", "cpu", "--runs-db", db)
    rows = ok_json("runs", "list", "--runs-db", db)
    assert [r["step"] for r in rows] == [9, 3] and {r["status"] for r in rows} == {"completed"}
    assert {"id", "step", "seed", "status", "source", "started", "epochs", "best_test_acc", "min_last3_test_acc"} <= set(rows[0])
    assert [r["step"] for r in ok_json("runs", "list", "--step", "3", "--runs-db", db)] == [3]
    assert ok_json("runs", "list", "--status", "failed", "--runs-db", db) == []
    assert ok_json("runs", "delete", str(rows[0]["id"]), "--runs-db", db) == {"deleted": rows[0]["id"]}
    assert [r["step"] for r in ok_json("runs", "list", "--runs-db", db)] == [3]
    missing = cli("runs", "show", "999", "--runs-db", db)
    assert missing.returncode == 2 and "no run 999" in missing.stderr and "Traceback" not in missing.stderr


def test_two_cli_runs_write_one_database_at_once(mnist_root, tmp_path):
    db = str(tmp_path / "shared.sqlite3")
    args = ["--epochs", "3", "--max-batches", "4", "--data-dir", str(mnist_root), "--no-download", "--device", "cpu",
            "--runs-db", db, "--json"]
    procs = [subprocess.Popen([sys.executable, "-m", "core", "train", "--seed", str(s), *args], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "OMP_NUM_THREADS": "1"}) for s in (1, 2)]
    docs = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        docs.append(json.loads(out))
    rows = ok_json("runs", "list", "--runs-db", db)
    assert sorted(r["seed"] for r in rows) == [1, 2] and all(r["epochs"] == 3 for r in rows)
    assert {r["id"] for r in rows} == {d["run_id"] for d in docs}


@pytest.mark.parametrize("args, words", [
    (["summary", "--step", "0"], "unknown step"),
    (["summary", "--step", "12"], "unknown step"),
    (["summary", "--step", "x"], "invalid int"),
    (["summary", "--step", "3", "--dropout", "-0.2"], "dropout"),
    (["summary", "--step", "3", "--dropout", "1"], "dropout"),
    (["rf", "--layers", "[{\"type\":\"conv\",\"out_channels\":4,\"kernel_size\":7},{\"type\":\"maxpool\"},"
      "{\"type\":\"maxpool\"},{\"type\":\"maxpool\"},{\"type\":\"conv\",\"out_channels\":4,\"kernel_size\":3}]"],
     "layer 5"),
    (["rf", "--layers", "[{\"type\": conv}]"], "not valid JSON"),
    (["rf", "--layers", "[{\"type\":\"warp\"}]"], "unknown type"),
    (["train", "--device", "tpu", "--no-download"], "unknown device"),
    (["train", "--step", "9", "--epochs", "0", "--no-download"], "epochs"),
    (["train", "--clean-fraction", "2", "--no-download"], "un-augmented fraction"),
    (["train", "--ema", "1", "--no-download"], "EMA decay"),
    (["train", "--lr", "nan", "--no-download"], "learning rate"),
    (["train", "--batch-size", "0", "--no-download"], "batch size"),
    (["runs", "show"], "needs a run id"),
    (["bench", "queue", "--sessions", "0"], "--sessions"),
    (["reproduce", "--steps", "1-x"], "--steps"),
    (["search", "--seeds", "3-1"], "empty range"),
    (["search", "--only", "nope"], "unknown candidate 'nope'"),
    (["search", "--only", "narrow10", "--confirm", "1"], "either --only or --confirm"),
    (["bench", "groups", "--sizes", "0"], "group sizes"),
    (["bench", "process", "--repeats", "0"], "1 to 20 repeats"),
    (["bogus"], "invalid choice"),
])
def test_bad_input_is_one_clear_line(args, words):
    result = cli(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], result.stderr


def test_usage_errors_point_at_the_right_help():
    real = cli_process("bogus")
    assert real.returncode == 2 and real.stderr == cli("bogus").stderr  # in process and for real: the same line
    top = real.stderr
    assert "(see `python -m core --help`)" in top and "core core" not in top
    assert "(see `python -m core train --help`)" in cli("train", "--epochs", "x").stderr


def test_missing_and_corrupt_data(tmp_path, fresh_mnist_root):
    result = cli("train", "--data-dir", str(tmp_path / "none"), "--no-download", "--device", "cpu")
    assert result.returncode == 2 and "train-images-idx3-ubyte" in result.stderr and "Traceback" not in result.stderr
    (fresh_mnist_root / "MNIST" / "raw" / "t10k-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03" + b"\x00" * 40)
    result = cli("train", "--data-dir", str(fresh_mnist_root), "--no-download", "--device", "cpu")
    assert result.returncode == 2 and "t10k-images-idx3-ubyte" in result.stderr and "Traceback" not in result.stderr


def test_core_never_imports_streamlit():
    modules = project_modules("core")
    assert "core.serving.store" in modules and "core.training.loop" in modules
    code = f"import sys, {', '.join(modules)}; print('streamlit' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stderr
    for path in (ROOT / "core").rglob("*.py"):
        assert "import streamlit" not in path.read_text() and "from streamlit" not in path.read_text(), path


def test_reproduce_writes_reference_weights_and_markdown(mnist_root, tmp_path):
    out, md, weights = tmp_path / "ref.json", tmp_path / "LIFECYCLE.md", tmp_path / "models"
    result = cli("reproduce", "--data-dir", str(mnist_root), "--no-download", "--steps", "3,9", "--budget", "4",
                 "--device", "cpu", "--output", str(out), "--markdown", str(md), "--weights-dir", str(weights))
    assert result.returncode == 0, result.stderr
    from core.results.reference import load_references
    refs = load_references(out)
    assert sorted(refs) == [3, 9]
    for ref in refs.values():
        (run,) = ref.runs
        assert len(run.epochs) == 15 and run.seed == 1 and run.provenance.reduced
        assert run.provenance.command.startswith("python -m core reproduce") and run.provenance.date
        assert run.min_last == min(e["test_acc"] for e in run.epochs[-3:])
        assert run.weights == str(weights / f"step_{ref.step}_seed_1.pt") and Path(run.weights).exists()
    text = md.read_text()
    assert "| 3 | Lighter model |" in text and "not run" in text  # steps not run are marked as such


def test_reproduce_adds_seeds_to_an_entry_and_reports_the_spread(tiny_mnist_root, tmp_path):
    out, md = tmp_path / "ref.json", tmp_path / "LIFECYCLE.md"
    # a budget the small generated set always fits in: the runs are full, so the second call's setting
    # cannot differ from the first's through a speed measured on a busy machine
    common = ["--data-dir", str(tiny_mnist_root), "--no-download", "--steps", "9", "--budget", "600", "--device", "cpu",
              "--output", str(out), "--markdown", str(md), "--weights-dir", ""]
    assert cli("reproduce", "--seeds", "1,2", *common).returncode == 0
    assert cli("reproduce", "--seeds", "3", "--merge", *common).returncode == 0  # a later call adds seed 3
    from core.results.reference import load_references
    ref = load_references(out)[9]
    assert ref.seeds == [1, 2, 3]
    mins = [r.min_last for r in ref.runs]
    assert ref.min_last_spread.low == min(mins) and ref.min_last_spread.high == max(mins) and ref.min_last_spread.n == 3
    assert len({tuple(r.test_accs) for r in ref.runs}) == 3  # the seeds really differ
    text = md.read_text()
    assert "## Step 9, every seed" in text and "*Measured here:*" in text


@pytest.mark.parametrize("seeds", ["1,x", "1,1", "-1", ","])
def test_reproduce_rejects_bad_seed_lists(seeds, tmp_path):
    result = cli("reproduce", "--seeds", seeds, "--steps", "9", "--data-dir", str(tmp_path))
    assert result.returncode == 2 and "--seeds" in result.stderr and "Traceback" not in result.stderr


def test_bench_writeup_model_matches_the_writeup_notebook():
    import torch

    from core.architecture.builder import count_params
    from core.architecture.writeup import writeup_final_model

    model = writeup_final_model()
    assert count_params(model) == 9_964  # the write-up notebook's torchsummary total
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_two_reproduce_processes_fill_one_file_without_losing_steps(mnist_root, tmp_path):
    out, md = tmp_path / "ref.json", tmp_path / "LIFECYCLE.md"
    args = ["--data-dir", str(mnist_root), "--no-download", "--budget", "2", "--device", "cpu", "--threads", "1",
            "--output", str(out), "--markdown", str(md), "--merge", "--weights-dir", ""]
    procs = [subprocess.Popen([sys.executable, "-m", "core", "reproduce", "--steps", steps, *args], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for steps in ("3,4", "8,9")]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    from core.results.reference import load_references
    refs = load_references(out)
    assert sorted(refs) == [3, 4, 8, 9]
    assert all(r.first.provenance.device == "CPU (1 thread)" for r in refs.values())
    text = md.read_text()
    assert all(f"| {r.step} | {r.title} | {r.params:,} |" in text for r in refs.values()), text


def test_reproduce_markdown_only_renders_without_training(tmp_path):
    md = tmp_path / "LIFECYCLE.md"
    result = cli("reproduce", "--markdown-only", "--output", str(ROOT / "assets" / "reference_runs.json"),
                 "--markdown", str(md))
    assert result.returncode == 0, result.stderr
    assert md.read_text() == (ROOT / "LIFECYCLE.md").read_text()  # the committed file is what the data says
    missing = cli("reproduce", "--markdown-only", "--output", str(tmp_path / "none.json"), "--markdown", str(md))
    assert missing.returncode == 2 and "no reference runs" in missing.stderr and "Traceback" not in missing.stderr


def test_bench_prints_both_pipelines(mnist_root):
    from core.training.config import TrainConfig

    doc = ok_json("bench", "--data-dir", str(mnist_root), "--no-download", "--batches", "2", "--device", "cpu")
    assert doc["writeup_recipe"]["params"] == 9_964 and doc["ours"]["params"] < 10_000
    for side in ("ours", "writeup_recipe"):
        assert doc[side]["images_timed"] == 2 * (TrainConfig.for_step(9).recipe.batch_size if side == "ours" else 128)
        assert doc[side]["train_images_per_s"] > 0 and doc[side]["seconds_per_epoch"] > 0
    assert doc["speedup_per_epoch"] == round(doc["writeup_recipe"]["seconds_per_epoch"] / doc["ours"]["seconds_per_epoch"], 2)


def test_bench_whole_process_times_both_as_processes(tiny_mnist_root):
    doc = ok_json("bench", "--whole-process", "1", "--data-dir", str(tiny_mnist_root), "--net", "c4,M,c8,G")
    assert len(doc["ours_s"]) == len(doc["writeup_s"]) == 1 and doc["ours_s"][0] > 0 and doc["writeup_s"][0] > 0
    assert doc["speedup"] == [round(doc["writeup_s"][0] / doc["ours_s"][0], 2)]
    assert "--clean-fraction 0" in doc["ours_command"] and doc["net"] == "c4,M,c8,G"
    assert doc["untimed_first"]  # the first process after a while reads torch from disk: not what is compared


def test_bench_seed_groups_prints_each_size(tiny_mnist_root):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)  # as on a CPU with several threads, also in a test worker of one
    try:
        doc = ok_json("bench", "groups", "--sizes", "1,2", "--batches", "2", "--data-dir", str(tiny_mnist_root),
                      "--no-download")
    finally:
        torch.set_num_threads(before)
    assert [r["seeds"] for r in doc["rows"]] == [1, 2] and all(r["seed_images_per_s"] > 0 for r in doc["rows"])
    assert doc["rows"][0]["time_vs_one_seed"] is None and doc["rows"][1]["time_vs_one_seed"] > 0
    # several threads: one seed on one thread is the arithmetic's own floor
    floor = 2 * doc["one_seed_one_thread_seconds"] / doc["threads"] / doc["rows"][0]["seconds"]
    # rel: the tiny run's seconds are rounded to hundredths
    assert doc["rows"][1]["every_thread_busy_vs_one_seed"] == pytest.approx(floor, rel=0.25)


def test_bench_inside_times_each_step_with_the_probe_and_without(tiny_mnist_root):
    doc = ok_json("bench", "inside", "--steps", "4,9", "--batches", "10", "--repeats", "1", "--data-dir",
                  str(tiny_mnist_root), "--no-download")
    assert [r["step"] for r in doc["rows"]] == [4, 9]
    for row in doc["rows"]:
        assert row["plain_step_ms"] > 0 and row["armed_step_ms"] > 0
        share = 100 * (row["armed_step_ms"] - row["plain_step_ms"]) / (row["log_every"] * row["plain_step_ms"])
        assert row["overhead_percent"] == pytest.approx(share, abs=0.1)
        assert isinstance(row["whole_run_overhead_percent"], float)
    bad = run_cli("bench", "inside", "--repeats", "0", "--data-dir", str(tiny_mnist_root), "--no-download")
    assert bad.returncode != 0 and "--repeats" in bad.stderr and "Traceback" not in bad.stderr


def test_bench_sessions_goes_through_the_queue(mnist_root):
    from core.experiments.bench import threads

    with threads(1):  # back to back with the one thread the queue's worker has (one core, conftest): the same sums
        doc = ok_json("bench", "queue", "--sessions", "3", "--data-dir", str(mnist_root), "--no-download")
    assert doc["sessions"] == 3 and doc["workers"] == 1 and doc["identical_results"] is True
    # the ratio and both times are printed to 3 decimals: their rounding, not the ratio, limits the match
    assert doc["ratio"] == pytest.approx(doc["queued_seconds"] / doc["back_to_back_seconds"], rel=0.002, abs=6e-4)


@pytest.mark.parametrize("old,new", [
    ("bench --browsers 4,8 --watchers 0,1", "bench browsers --pages 4,8 --watchers 0,1"),
    ("bench --sessions 8 --batches 30", "bench queue --sessions 8 --batches 30"),
    ("bench --seed-groups 1,3 --batches 5", "bench groups --sizes 1,3 --batches 5"),
    ("bench --whole-process 2 --net c4,M,c8,G", "bench process --repeats 2 --net c4,M,c8,G"),
    ("bench --gpu-report --batches 3", "bench gpu --batches 3"),
    ("bench --board 400", "bench board --runs 400"),
    ("bench --cost-model", "bench cost-model"),
    ("bench --batches 2 --variants", "bench epoch --batches 2 --variants"),
    ("bench --board=400", "bench board --runs 400"),
])
def test_bench_keeps_its_old_spellings_as_the_subcommands(old, new):
    from core.cli import build_parser, modern_bench

    rewritten, said = modern_bench(old.split())
    assert rewritten == new.split() and said == f"python -m core {new}"
    assert vars(build_parser().parse_args(rewritten)) == vars(build_parser().parse_args(new.split()))
    assert modern_bench(new.split()) == (new.split(), None)  # the new spelling is left as it is


@pytest.mark.parametrize("args", [["bench", "board", "--runs", "10", "--watchers", "1"],
                                  ["bench", "epoch", "--pages", "4"], ["bench", "gpu", "--sessions", "3"]])
def test_each_bench_subcommand_takes_only_its_own_options(args):
    result = cli(*args)
    assert result.returncode == 2 and "unrecognized arguments" in result.stderr and "Traceback" not in result.stderr


def test_an_old_bench_spelling_says_the_new_one():
    result = cli("bench", "--board", "0")
    assert "`python -m core bench board --runs 0`" in result.stderr and "--runs takes 1 to 1,000,000" in result.stderr


def test_bench_board_times_each_view_of_a_filled_store():
    doc = ok_json("bench", "board", "--runs", "400")
    assert doc["runs_in_store"] == 400
    every, newest = doc["class of every run"], doc["class of the newest 300 runs"]
    assert every["runs"] == 400 and newest["runs"] == 300
    assert all(row[k] > 0 for row in (every, newest) for k in ("first_ms", "runs_view_ms", "leaderboard_view_ms"))


LAYERS = {"project": 0, "words": 0, "architecture": 1, "training": 2, "results": 3, "serving": 4, "classroom": 5,
          "analysis": 5, "report": 5, "experiments": 6, "cli": 7, "__main__": 8}


def test_core_imports_in_one_direction():
    """architecture <- training <- results <- serving <- classroom, analysis, report <- experiments <- cli: no
    subpackage imports one above it, not even inside a function, so the layers can be read (and tested) from the bottom up."""
    import ast

    upward = []
    for path in (ROOT / "core").rglob("*.py"):
        parts = path.relative_to(ROOT / "core").with_suffix("").parts
        source = parts[0]  # a subpackage, or a top-level module (cli, __main__, project)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("core."):
                target = node.module.split(".")[1]
                if target != source and LAYERS[target] >= LAYERS[source]:
                    upward.append(f"{path.relative_to(ROOT)}: {node.module}")
    assert upward == []
    assert set(LAYERS) >= {p.stem for p in (ROOT / "core").iterdir() if p.name != "__pycache__" and p.stem != "__init__"}


def test_every_command_the_docs_show_parses():
    """The commands of docs/cli.md are what users copy: each one, in its first block and quoted in the text
    of the docs (`--seed S` standing for any seed), must name a real command and real options."""
    import re
    import shlex

    from core.cli import build_parser, modern_bench

    section = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    text = "\n".join(path.read_text(encoding="utf-8") for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])
    block = section[section.index("```bash") + len("```bash"):]
    lines = [line for line in block[:block.index("```")].splitlines() if line.startswith("python -m core")]
    quoted = re.findall(r"`(python -m core [^`]*)`", " ".join(text.split()))
    assert len(lines) >= 20 and len(quoted) >= 20
    for line in lines + [q for q in quoted if q != "python -m core --help"]:
        try:
            build_parser().parse_args(modern_bench(shlex.split(line.replace("--seed S ", "--seed 1 "), comments=True)[3:])[0])
        except SystemExit:
            pytest.fail(f"the docs' `{line}` does not parse")


def test_the_results_quote_the_browser_benchmark_file_they_name():
    """The class benchmark's figures in docs/results.md (each row's wall, back-to-back, ratio and first chart)
    are the ones the benchmark wrote to the file it names, not typed in apart from it."""
    text = " ".join((ROOT / "docs" / "results.md").read_text(encoding="utf-8").split())
    doc = json.loads((ROOT / "assets" / "bench" / "browsers_2_4_amd_avx2.json").read_text(encoding="utf-8"))
    assert "`assets/bench/browsers_2_4_amd_avx2.json`" in text
    eight = json.loads((ROOT / "assets" / "bench" / "browsers_8_amd_avx2.json").read_text(encoding="utf-8"))
    assert "`assets/bench/browsers_8_amd_avx2.json`" in text
    for row in doc["sessions"] + doc["then"]["sessions"] + doc["before_lower_priority"]["sessions"] + eight["sessions"]:
        quoted = (f"{row['sessions']} pages {row['wall_seconds']:.1f} s against {row['back_to_back_seconds']:.1f} s "
                  f"({'**' if row['ratio'] <= 1.2 else ''}{row['ratio']:.2f}x")
        assert quoted in text, quoted
        assert f"**{row['train_to_first_chart_seconds']:.2f} s**" in text
