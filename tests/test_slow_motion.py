"""Slow motion: a run paused between two batches and stepped through one batch at a time is the same run
as one never paused, each step shows the batch it trained on and the first filters before and after it,
and a pause ends when the run is stopped or when nobody has clicked for PAUSE_LIMIT_S. Through the
server's queue and its worker process: only a single training run may be paused, and it keeps its place."""

from __future__ import annotations

import queue as stdlib_queue
import threading
import time

import pytest
import torch
from conftest import ROOT, wait_for

from core.serving.run_queue import Job, RunQueue
from core.training.config import TrainConfig
from core.training.data import load_mnist
from core.training.events import DoneEvent, StepEvent
from core.training.loop import build_for, fit
from core.training.slow_motion import SHOWN_DIGITS, Pause


@pytest.fixture(scope="module")
def data(tiny_mnist_root):
    return load_mnist(str(tiny_mnist_root), download=False)


def config(step: int = 4, **kw) -> TrainConfig:
    return TrainConfig.for_step(step, **{"epochs": 2, "device": "cpu", "seed": 3, "batch_size": 32, **kw})


def in_background(events_of) -> stdlib_queue.Queue:
    """Iterate a trainer on another thread (as the worker does), its events arriving on a queue."""
    out: stdlib_queue.Queue = stdlib_queue.Queue()
    threading.Thread(target=lambda: [out.put(e) for e in events_of], daemon=True).start()
    return out


def next_of(out: stdlib_queue.Queue, kind: type):
    while True:
        event = out.get(timeout=60)
        if isinstance(event, kind):
            return event


@pytest.mark.parametrize("step", [4, 9])
def test_a_paused_run_stepped_through_is_the_run_never_paused(data, step):
    """Paused before its first batch, stepped through three, then resumed: every epoch and the final weights
    equal those of the same run never paused, to the last bit. Each step's filters are the model's own,
    read while the run waits; each digit is one of the training images (augmented on step 9)."""
    plain = list(fit(config(step), data))
    model, pause = build_for(config(step)), Pause()
    pause.pause()
    out = in_background(fit(config(step), data, model=model, pause=pause))
    first_conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    steps = []
    for _ in range(3):
        before = first_conv.weight[:, 0].detach().clone()  # the run waits before its next batch
        pause.step()
        shown = next_of(out, StepEvent)
        assert torch.equal(torch.tensor(shown.filters_before), before)
        assert torch.equal(torch.tensor(shown.filters_after), first_conv.weight[:, 0])  # waiting again
        steps.append(shown)
    assert [s.step for s in steps] == [1, 2, 3] and [s.batch for s in steps] == [1, 2, 3]
    assert all(len(s.digits) == len(s.labels) == len(s.predictions) == SHOWN_DIGITS for s in steps)
    assert all(len(d) == 28 and len(d[0]) == 28 for s in steps for d in s.digits)
    if step == 4:  # no augmentation: each digit is a training image of its label, pixel for pixel
        images, labels = data.train_images, data.train_labels
        for digit, label in zip(steps[0].digits, steps[0].labels):
            same = (images == torch.tensor(digit, dtype=torch.uint8)).flatten(1).all(1)
            assert same.any() and label in labels[same].tolist()
    pause.resume()
    paused = drain(out)
    assert same_history(paused[-1], plain[-1])
    for name, tensor in plain[-1].weights.items():
        assert torch.equal(tensor, paused[-1].weights[name]), name


def drain(out: stdlib_queue.Queue) -> list:
    events = []
    while not events or not isinstance(events[-1], DoneEvent):
        events.append(out.get(timeout=300))
    assert not any(isinstance(e, StepEvent) for e in events)  # resumed: no more steps are shown
    return events


def same_history(a: DoneEvent, b: DoneEvent) -> bool:
    """Every figure of every epoch but the timings."""
    keep = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr")
    return [{k: e.row()[k] for k in keep} for e in a.history] == [{k: e.row()[k] for k in keep} for e in b.history]


def test_a_pause_ends_on_a_stop_or_when_nobody_clicks(data):
    """A stop reaches a paused run (it ends after one more batch); a pause nobody steps through ends by itself."""
    stop, pause, model = threading.Event(), Pause(), build_for(config())
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    pause.pause()
    out = in_background(fit(config(), data, stop=stop, model=model, pause=pause))
    time.sleep(0.5)
    assert out.empty()  # paused before its first batch: nothing reported, nothing trained
    assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())
    stop.set()
    done = next_of(out, DoneEvent)
    assert done.stopped and done.history == []
    forgotten = Pause(limit_s=0.2)
    forgotten.pause()
    started = time.monotonic()
    assert forgotten.wait_turn() is False and time.monotonic() - started >= 0.2 and not forgotten.paused
    idle = Pause()
    idle.step()  # a step while running does nothing
    assert idle.wait_turn() is False
    clicked_on = Pause(limit_s=0.3, total_s=0.5)  # clicks keep a pause going, but not past its total
    clicked_on.pause()
    clicks = threading.Thread(target=lambda: [time.sleep(0.1) or clicked_on.pause() for _ in range(10)], daemon=True)
    clicks.start()
    started = time.monotonic()
    assert clicked_on.wait_turn() is False and 0.5 <= time.monotonic() - started < 0.9


def test_the_time_a_run_waits_paused_is_not_its_training_time(data):
    """The queue learns its pace from runs' seconds: a pause must not count as training."""
    pause = Pause()
    pause.pause()
    started = time.perf_counter()
    out = in_background(fit(config(epochs=1), data, pause=pause))
    time.sleep(1.0)
    pause.resume()
    done = next_of(out, DoneEvent)
    wall = time.perf_counter() - started
    assert done.seconds <= wall - 0.95 and done.history[0].seconds <= wall - 0.95


def quick(**kw) -> TrainConfig:
    return TrainConfig.for_step(9, **{"epochs": 30, "device": "cpu", "log_every": 1, "seed": 0, "batch_size": 32, **kw})


def test_through_the_queue_a_single_training_run_pauses_steps_resumes_and_keeps_its_place(tiny_mnist_root):
    """The page's commands go through the server's queue to the worker process: only a run that trains,
    and not seeds side by side, may be paused; a paused run keeps its worker while the next waits."""
    queue = RunQueue()
    queue.start()
    try:
        running = queue.submit(Job(quick(), str(tiny_mnist_root), False, estimate_s=60))
        waiting = queue.submit(Job(quick(seed=1), str(tiny_mnist_root), False, estimate_s=60))
        assert waiting.slow_motion("pause") == "only a run that is training can be paused"
        wait_for(lambda: running.snapshot().status == "running" and running.snapshot().batches, 300)
        assert running.slow_motion("step") == "the run is not paused"
        assert running.slow_motion("pause") is None and running.snapshot().paused
        for shown in (1, 2):
            assert running.slow_motion("step") is None
            wait_for(lambda: running.snapshot().steps_shown == shown, 60)
        first, second = running.snapshot().last_step, None
        assert first is not None and first.digits and first.filters_after
        time.sleep(0.5)
        second = running.snapshot()
        assert second.steps_shown == 2 and second.progress == first.step / first.total_steps  # no batch unasked
        assert second.batches[-1]["step"] <= first.step
        assert waiting.snapshot().status == "queued" and waiting.snapshot().ahead == 1  # its place is kept
        assert running.slow_motion("resume") is None and not running.snapshot().paused
        wait_for(lambda: running.snapshot().batches[-1]["step"] > first.step + 5, 120)
        assert running.slow_motion("rewind") == "unknown slow-motion command 'rewind'"
        running.stop(), waiting.stop()
        assert running.wait(120) and running.snapshot().status == "stopped"
        group = queue.submit_seeds([Job(quick(seed=s), str(tiny_mnist_root), False, estimate_s=60) for s in (5, 6)])
        wait_for(lambda: group[0].snapshot().status == "running", 300)
        assert "side by side" in group[0].slow_motion("pause")
        for job in group:
            job.stop()
            assert job.wait(120)
    finally:
        queue.close()


class PausableJob(Job):
    """A training run the page draws, whose slow-motion commands are kept (the queue's own checks are tested
    above): a page test clicks Pause, Step one batch and Resume and sees what each draws."""

    def __init__(self, step: StepEvent) -> None:
        super().__init__(TrainConfig.for_step(9), status="running")
        self.commands: list[str] = []
        self.shown_step, self.paused = step, False

    def slow_motion(self, action: str) -> str | None:
        self.commands.append(action)
        if action == "step" and not self.paused:
            return "the run is not paused"
        self.paused = {"pause": True, "resume": False}.get(action, self.paused)
        return None

    def snapshot(self):
        from core.serving.run_queue import Snapshot

        stepped = self.commands.count("step") if self.paused or "resume" in self.commands else 0
        return Snapshot("running", [], [], 0.05, 10.0, 190.0, "", 5648, "CPU", None, 0, None, [], self.paused,
                        self.shown_step if stepped else None, stepped)


def test_a_step_page_pauses_steps_through_and_resumes_its_run(monkeypatch, mnist_root, data):
    from streamlit.testing.v1 import AppTest

    pause = Pause()
    pause.pause()
    out = in_background(fit(config(9), data, pause=pause))
    pause.step()
    shown = next_of(out, StepEvent)
    pause.resume()
    monkeypatch.setenv("MNIST_DIR", str(mnist_root))
    monkeypatch.setattr("ui.training.LiveView.follow", lambda self, interval=0.25: None)  # draw once, then end
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.switch_page("app_pages/step_9.py")
    at.run()
    job = PausableJob(shown)
    at.session_state["live_jobs_9"] = [job]
    at.run()
    assert not at.exception, at.exception
    at.button(key=f"pause_{job.id}").click().run()
    assert job.commands == ["pause"] and any("Paused between two batches" in c.value for c in at.caption)
    at.button(key=f"step_{job.id}").click().run()
    assert not at.exception, at.exception
    assert job.commands == ["pause", "step"]
    heading = next(m.value for m in at.markdown if "Slow motion: step" in m.value)
    assert f"step {shown.step:,} of {shown.total_steps:,}" in heading
    wrong = sum(p != label for p, label in zip(shown.predictions, shown.labels))
    assert any(f"{wrong} wrong" in c.value for c in at.caption)
    at.button(key=f"resume_{job.id}").click().run()
    assert job.commands == ["pause", "step", "resume"] and at.button(key=f"pause_{job.id}")
    assert not any("Paused between two batches" in c.value for c in at.caption)
