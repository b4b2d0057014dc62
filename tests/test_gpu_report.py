"""The GPU report runs end to end (reduced, on the CPU), writes every part with its provenance, and
refuses to pass off a CPU run as the report."""

import json

from conftest import run_cli

import core.experiments.gpu_report as report
from core.results.frontier import load_frontier, widest_margin
from core.results.reference import load_references


def test_without_a_gpu_only_a_reduced_check_runs(tiny_mnist_root, tmp_path):
    out = run_cli("bench", "--gpu-report", "--data-dir", str(tiny_mnist_root), "--no-download",
                  "--report", str(tmp_path / "r.json"))
    assert out.returncode != 0 and "needs a CUDA GPU" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "r.json").exists()


def test_a_reduced_report_measures_every_part(tiny_mnist_root, tmp_path, monkeypatch):
    full_config = report._config
    monkeypatch.setattr(report, "_config", lambda step, batches, device, **o: full_config(
        step, batches, device, **({"epochs": 3} | o)))  # 3 epochs: enough for a min(last 3)
    refs = tmp_path / "refs.json"
    out = run_cli("bench", "--gpu-report", "--data-dir", str(tiny_mnist_root), "--no-download", "--batches", "1",
                  "--report", str(tmp_path / "r.json"), "--references", str(refs))
    assert out.returncode == 0, out.stderr
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["reduced"] is True and doc["device"].startswith("CPU") and "bench gpu" in doc["command"]  # recorded in the new spelling
    parts = doc["parts"]
    assert list(parts) == ["step9", "seeds20", "step1", "train_to_first_chart", "runs_per_gpu", "widest_margin_design"]
    shared = parts["runs_per_gpu"]  # on a CPU, the stand-in for a GPU's: 1 and 2 worker processes at once
    assert [r["runs"] for r in shared["rows"]] == [1, 2] and all(r["images_per_s"] > 0 for r in shared["rows"])
    assert shared["best_runs_per_device"] in (1, 2) and shared["device"] == "cpu"
    assert parts["step9"]["limits"].startswith("reduced") and parts["step9"]["wall_s"] > 0
    assert parts["seeds20"]["of"] == 20 and len(parts["seeds20"]["min_last"]) == 20
    assert parts["step1"]["reason"] == "completed"
    assert parts["train_to_first_chart"]["first_epoch_on_page_s"] > 0
    widest = parts["widest_margin_design"]  # the committed frontier's widest margin, timed as step 9 was
    assert widest["candidate"] == widest_margin(load_frontier()).candidate.name and widest["wall_s"] > 0
    (step1,) = load_references(refs).values()
    assert step1.step == 1 and step1.first.provenance.limits.startswith("reduced")
