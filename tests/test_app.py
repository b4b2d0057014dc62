"""Every page through streamlit's AppTest: renders without exceptions, toggles change the
numbers shown, and a tiny training run started from a step page completes on generated data."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.lifecycle import describe_step
from core.train import TrainConfig

STEP9_PARAMS = describe_step(9)["params"]
APP = str(Path(__file__).resolve().parents[1] / "app.py")
PAGES = [f"pages/step_{n}.py" for n in range(1, 10)] + ["pages/receptive_field.py", "pages/augmentation.py",
                                                          "pages/data.py"]


@pytest.fixture
def app(monkeypatch, mnist_root):
    monkeypatch.setenv("MNIST_DIR", str(mnist_root))
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception
    return at


def open_page(at: AppTest, page: str) -> AppTest:
    at.switch_page(page)
    at.run()
    assert not at.exception, at.exception
    return at


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_home_shows_the_challenge_and_all_steps(app):
    text = " ".join(m.value for m in app.markdown)
    assert "10,000 parameters" in text and "99.4 %" in text and "15 epochs" in text
    table = app.dataframe[0].value
    assert list(table["step"]) == list(range(1, 10))
    assert table["params"].iloc[8] < 10_000


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders(app, page):
    at = open_page(app, page)
    assert not at.error, [e.value for e in at.error]


def test_toggles_change_params_and_table(app):
    at = open_page(app, "pages/step_3.py")
    before = metric(at, "Parameters")
    rows_before = len(at.dataframe[0].value)
    at.toggle(key="s3_bn").set_value(True).run()
    with_bn = metric(at, "Parameters")
    assert int(with_bn.replace(",", "")) == int(before.replace(",", "")) + 2 * 94  # 94 normalised channels
    assert len(at.dataframe[0].value) > rows_before  # the BN rows appear
    at.toggle(key="s3_gap").set_value(True).run()
    assert int(metric(at, "Parameters").replace(",", "")) < int(with_bn.replace(",", ""))
    at.slider(key="s3_dropout").set_value(0.2).run()
    assert "dropout" in set(at.dataframe[0].value["what"].str.split().str[0])


def test_rf_calculator_reports_a_collapsing_stack(app):
    at = open_page(app, "pages/receptive_field.py")
    assert metric(at, "Final receptive field") == "28×28"
    at.number_input[0].set_value(8).run()  # the default stack cannot fit an 8x8 input
    assert not at.exception
    assert any("collapses below 1x1" in e.value for e in at.error)


def test_missing_data_is_explained_and_other_pages_still_work(monkeypatch, tmp_path):
    monkeypatch.setenv("MNIST_DIR", str(tmp_path / "nothing"))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at = open_page(at, "pages/augmentation.py")
    assert any("MNIST is not available" in w.value for w in at.warning)
    at = open_page(at, "pages/step_9.py")
    assert metric(at, "Parameters") == f"{STEP9_PARAMS:,}"
    assert any("train-images-idx3-ubyte" in w.value for w in at.warning)


def test_tiny_training_run_from_a_step_page(app):
    at = open_page(app, "pages/step_9.py")
    epochs = next(w for w in at.number_input if w.label == "Epochs")
    epochs.set_value(1).run()
    recipe = TrainConfig.for_step(9)
    assert at.slider(key="s9_clean").value == recipe.clean_fraction
    assert at.selectbox(key="s9_ema").value == recipe.ema  # the page offers the recipe's own decay
    at.selectbox(key="s9_ema").set_value(0.99).run()
    at.button(key="job_9_train").click().run()
    assert not at.exception
    job = at.session_state["job_9"]
    assert job.config.ema == 0.99  # the widget reaches the trainer
    job.join(timeout=600)  # wait on the thread itself: a slow, shared CI machine must not fail a poll deadline
    snap = job.snapshot()
    assert not snap.running, f"still running after 600 s: {snap.progress:.0%} done, {len(snap.epochs)} epochs"
    assert snap.status == "finished", (snap.status, snap.reason)
    at.run()
    assert not at.exception
    results = [s.value for s in at.success] + [w.value for w in at.warning]
    assert any("Best test accuracy" in r and f"{STEP9_PARAMS:,} parameters" in r for r in results), (
        results, [e.value for e in at.error], [i.value for i in at.info])
    # the committed step-9 reference run is drawn beside the live curves (same toggles)
    assert any("Dashed: this step's reference run" in c.value for c in at.caption)
    assert not at.error
