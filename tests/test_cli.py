"""The command line as a user runs it: a subprocess, JSON on stdout, one-line errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYER_KEYS = {"name", "type", "kernel_size", "stride", "padding", "dilation", "out_shape", "params", "rf", "jump"}


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={**os.environ, **(env or {})})


def ok_json(*args: str, **kw):
    result = cli(*args, "--json", **kw)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_steps():
    steps = ok_json("steps")
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


def test_rf_stack():
    stack = [{"type": "conv", "out_channels": 8, "kernel_size": 3, "padding": 0, "stride": 1, "dilation": 1},
             {"type": "maxpool", "kernel_size": 2}, {"type": "gap"}]
    doc = ok_json("rf", "--layers", json.dumps(stack))
    assert doc["params"] == 72
    assert [(r["rf"], r["jump"], r["out_shape"]) for r in doc["layers"]] == [
        (3, 1, [8, 26, 26]), (4, 2, [8, 13, 13]), (28, 26, [8, 1, 1])]


def test_train_json(mnist_root):
    doc = ok_json("train", "--step", "9", "--epochs", "2", "--max-batches", "3", "--data-dir", str(mnist_root),
                  "--no-download", "--device", "cpu", "--seed", "3")
    assert {"params", "device", "config", "epochs", "stopped_reason"} <= set(doc)
    assert doc["stopped_reason"] == "completed" and doc["config"]["seed"] == 3
    assert [e["epoch"] for e in doc["epochs"]] == [1, 2]
    for e in doc["epochs"]:
        assert {"epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds"} <= set(e)
        assert 0 <= e["test_acc"] <= 100


def test_train_uses_mnist_dir_env(mnist_root):
    doc = ok_json("train", "--step", "5", "--epochs", "1", "--max-batches", "2", "--no-download", "--device", "cpu",
                  env={"MNIST_DIR": str(mnist_root)})
    assert doc["stopped_reason"] == "completed"


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
    (["bogus"], "invalid choice"),
])
def test_bad_input_is_one_clear_line(args, words):
    result = cli(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], result.stderr


def test_missing_and_corrupt_data(tmp_path, fresh_mnist_root):
    result = cli("train", "--data-dir", str(tmp_path / "none"), "--no-download", "--device", "cpu")
    assert result.returncode == 2 and "train-images-idx3-ubyte" in result.stderr and "Traceback" not in result.stderr
    (fresh_mnist_root / "MNIST" / "raw" / "t10k-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03" + b"\x00" * 40)
    result = cli("train", "--data-dir", str(fresh_mnist_root), "--no-download", "--device", "cpu")
    assert result.returncode == 2 and "t10k-images-idx3-ubyte" in result.stderr and "Traceback" not in result.stderr


def test_core_never_imports_streamlit():
    code = ("import sys, core.cli, core.train, core.lifecycle, core.augment, core.data, core.bench, core.reproduce; "
            "print('streamlit' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stderr
    for path in (ROOT / "core").glob("*.py"):
        assert "import streamlit" not in path.read_text() and "from streamlit" not in path.read_text(), path


def test_reproduce_writes_reference_and_markdown(mnist_root, tmp_path):
    out, md = tmp_path / "ref.json", tmp_path / "LIFECYCLE.md"
    result = cli("reproduce", "--data-dir", str(mnist_root), "--no-download", "--steps", "3,9", "--budget", "4",
                 "--device", "cpu", "--output", str(out), "--markdown", str(md))
    assert result.returncode == 0, result.stderr
    runs = json.loads(out.read_text())["runs"]
    assert [r["step"] for r in runs] == [3, 9]
    for r in runs:
        assert len(r["epochs"]) == 15 and {"command", "seed", "device", "torch", "date", "wall_seconds",
                                           "label"} <= set(r["provenance"])
        assert r["summary"]["min_last3_test_acc"] == min(e["test_acc"] for e in r["epochs"][-3:])
    text = md.read_text()
    assert "| 3 | Lighter model |" in text and "not run" in text  # steps not run are marked as such


def test_reproduce_with_several_seeds_reports_each_and_the_spread(mnist_root, tmp_path):
    out, md = tmp_path / "ref.json", tmp_path / "LIFECYCLE.md"
    result = cli("reproduce", "--data-dir", str(mnist_root), "--no-download", "--steps", "9", "--seeds", "1,2",
                 "--budget", "3", "--device", "cpu", "--output", str(out), "--markdown", str(md))
    assert result.returncode == 0, result.stderr
    (run,) = json.loads(out.read_text())["runs"]
    assert [s["seed"] for s in run["seeds"]] == [1, 2]
    mins = [s["summary"]["min_last3_test_acc"] for s in run["seeds"]]
    assert mins == [min(s["test_acc"][-3:]) for s in run["seeds"]]
    assert run["across_seeds"]["min_last3_min"] == min(mins)
    assert run["across_seeds"]["min_last3_mean"] == round(sum(mins) / 2, 3)
    assert run["seeds"][0]["test_acc"] != run["seeds"][1]["test_acc"]  # the seeds really differ
    text = md.read_text()
    assert "## Step 9 across seeds" in text and "*Measured here:*" in text


@pytest.mark.parametrize("seeds", ["1,x", "1,1", "-1", ","])
def test_reproduce_rejects_bad_seed_lists(seeds, tmp_path):
    result = cli("reproduce", "--seeds", seeds, "--steps", "9", "--data-dir", str(tmp_path))
    assert result.returncode == 2 and "--seeds" in result.stderr and "Traceback" not in result.stderr


def test_bench_seed_model_matches_the_seed_notebook():
    from core.bench import seed_final_model
    from core.model import count_params

    model = seed_final_model()
    assert count_params(model) == 9_964  # the seed notebook's torchsummary total
    import torch
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_two_reproduce_processes_fill_one_file_without_losing_steps(mnist_root, tmp_path):
    out, md = tmp_path / "ref.json", tmp_path / "LIFECYCLE.md"
    args = ["--data-dir", str(mnist_root), "--no-download", "--budget", "2", "--device", "cpu", "--threads", "1",
            "--output", str(out), "--markdown", str(md), "--merge"]
    procs = [subprocess.Popen([sys.executable, "-m", "core", "reproduce", "--steps", steps, *args], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for steps in ("3,4", "8,9")]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    runs = json.loads(out.read_text())["runs"]
    assert [r["step"] for r in runs] == [3, 4, 8, 9]
    assert all(r["provenance"]["device"] == "CPU (1 thread)" for r in runs)
    text = md.read_text()
    assert all(f"| {r['step']} | {r['title']} | {r['params']:,} |" in text for r in runs), text


def test_reproduce_markdown_only_renders_without_training(tmp_path):
    md = tmp_path / "LIFECYCLE.md"
    result = cli("reproduce", "--markdown-only", "--output", str(ROOT / "assets" / "reference_runs.json"),
                 "--markdown", str(md))
    assert result.returncode == 0, result.stderr
    assert md.read_text().startswith("# The lifecycle, measured")
    missing = cli("reproduce", "--markdown-only", "--output", str(tmp_path / "none.json"), "--markdown", str(md))
    assert missing.returncode == 2 and "no reference runs" in missing.stderr and "Traceback" not in missing.stderr


def test_bench_prints_both_pipelines(mnist_root):
    from core.train import TrainConfig

    doc = ok_json("bench", "--data-dir", str(mnist_root), "--no-download", "--batches", "2", "--device", "cpu")
    assert doc["seed_style"]["params"] == 9_964 and doc["ours"]["params"] < 10_000
    for side in ("ours", "seed_style"):
        assert doc[side]["images_timed"] == 2 * (TrainConfig.for_step(9).batch_size if side == "ours" else 128)
        assert doc[side]["train_images_per_s"] > 0 and doc[side]["seconds_per_epoch"] > 0
    assert doc["speedup_per_epoch"] == round(doc["seed_style"]["seconds_per_epoch"] / doc["ours"]["seconds_per_epoch"], 2)
