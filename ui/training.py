"""Train, Train 3 seeds and Stop; the runs this session started on a step, drawn live on the same
charts as the runs picked for comparison. Every run goes through the server's one queue and
trains in its worker process; this page only watches."""

from __future__ import annotations

import time
from typing import Any, Callable

import streamlit as st

from core.architecture.challenge import CHALLENGE, min_last
from core.classroom import OUTCOMES, Prediction, outcome
from core.results.compare import (
    Group,
    Run,
    differing_table,
    group_runs,
    noise_verdicts,
    run_size,
)
from core.serving.run_queue import Job, LimitError, Snapshot
from core.training.config import TrainConfig
from core.training.device import device_label
from core.words import counted
from ui.charts import batch_chart, history_specs, show_history
from ui.classroom import name_input, plain, run_tags, session_id
from ui.controls import Choice
from ui.inside import draw_inside, live_samples, metric_choice, stored_samples
from ui.slow_motion import draw_step, slow_motion_buttons, slow_motion_state
from ui.state import (
    allow_download,
    data_dir,
    device,
    hide_cluster_address,
    references,
    run_queue,
    run_store,
    runs_db,
)

SEEDS_PER_GROUP = 3
PageKey = int | str  # a step's number, or "design": it keys the page's runs and widgets in the session


def live_key(page: PageKey) -> str:
    return f"live_jobs_{page}"


def live_jobs(page: PageKey) -> list[Job]:
    """This page's runs in this session; on a session's first visit (a reload, another tab), the
    student's runs from this page still queued or training, so their live view goes on."""
    key = live_key(page)
    if key not in st.session_state:
        st.session_state[key] = [job for job in run_queue().active_jobs()
                                 if job.tags.session == session_id() and job.page == str(page)]
    return st.session_state[key]


def submit(page: PageKey, choice: Choice, seeds: int) -> None:
    """Queue `seeds` runs (seed, seed+1, ...), trained side by side. The runs shown until now move
    to 'Compare with', so the new run is drawn beside the last one."""
    keep = [f"run {s.run_id}" for s in (j.snapshot() for j in live_jobs(page)) if s.run_id is not None]
    picked = st.session_state.get(compare_key(page), [])
    st.session_state[compare_key(page)] = list(dict.fromkeys(picked + keep))
    jobs = [Job(choice.config.with_overrides(seed=choice.config.seed + offset, device=str(device())), data_dir(),
                allow_download(), limits=choice.label, estimate_s=choice.estimate_s, db=runs_db(), source="app",
                tags=run_tags(str(page)), page=str(page)) for offset in range(seeds)]
    try:  # the seeds train side by side, as one grouped network
        jobs = run_queue().submit_seeds(jobs)
    except LimitError as exc:  # the page said so already; a second guard for a page drawn before a change
        st.toast(f"Not queued: {plain(str(exc))}", icon=":material/block:")
        jobs = []
    st.session_state[live_key(page)] = jobs


def stop_all(page: PageKey) -> None:
    for job in live_jobs(page):
        job.stop()


def buttons_key(page: PageKey) -> str:
    return f"_buttons_active_{page}"


def train_buttons(page: PageKey, choice: Choice) -> None:
    active = any(j.snapshot().active for j in live_jobs(page))
    st.session_state[buttons_key(page)] = active  # LiveView.follow redraws them once the runs end
    for problem in choice.problems:
        st.warning(hide_cluster_address(f"Not on this server: {problem}."), icon=":material/block:")
    queue = run_queue()
    one, group = (queue.share_problem(session_id(), n) for n in (1, SEEDS_PER_GROUP))
    if one and not active:  # the queue checks again when a run is submitted: this only explains the button
        st.info(f"Not now: {one}.", icon=":material/hourglass_top:")
    if queue.paused:
        st.info("The teacher paused the queue: queued runs wait until it goes on.", icon=":material/pause:")
    blocked = active or bool(choice.problems) or bool(one)
    b1, b2, b3 = st.columns([2, 3, 2])
    # one active request per session and step, and a fair share per student across tabs and pages
    b1.button("Train", type="primary", key=f"train_{page}", on_click=submit, args=(page, choice, 1),
              width="stretch", icon=":material/play_arrow:", disabled=blocked)
    b2.button(f"Train {SEEDS_PER_GROUP} seeds", key=f"train3_{page}", width="stretch", disabled=blocked or bool(group),
              on_click=submit, args=(page, choice, SEEDS_PER_GROUP),
              help=f"Not now: {group}" if group and not one else
              f"Seeds {choice.config.seed}-{choice.config.seed + SEEDS_PER_GROUP - 1}: the same settings three "
              "times, to see how much of a difference the random seed alone makes")
    b3.button("Stop", key=f"stop_{page}", disabled=not active, on_click=stop_all, args=(page,), width="stretch",
              icon=":material/stop:", help="A training run stops after its current batch (its epochs so far are "
                                           "kept); a run still in the queue leaves it")
    jobs = live_jobs(page)
    slow_motion_buttons(jobs, [job.snapshot() for job in jobs])
    prediction_controls(page)
    waiting, wait_s = run_queue().load()
    queue_note = f" · {waiting} run{'s' if waiting != 1 else ''} in the queue now, about {wait_s:.0f} s" if waiting else ""
    st.caption(f"{choice.label} ({choice.sizing}); about {choice.estimate_s:.0f} s once it starts on "
               f"{device_label(device())}{queue_note}")


def prediction_key(page: PageKey) -> str:
    return f"prediction_{page}"


def prediction_controls(page: PageKey) -> None:
    """Write down what you expect before you train: it is stored with the run, and the result
    is shown beside it (and on the class board, beside the class's)."""
    held: Prediction = st.session_state.get(prediction_key(page), Prediction())
    label = "Predict first" if held.empty else f"Your prediction: {held.describe()}"

    def keep() -> None:
        versus = st.session_state.get(f"_versus_{page}")
        figure = st.session_state.get(f"_figure_{page}")
        st.session_state[prediction_key(page)] = Prediction(figure, versus)

    with st.popover(label, icon=":material/psychology:", width="stretch"):
        name_input()
        st.session_state[f"_versus_{page}"] = held.versus_default
        st.session_state[f"_figure_{page}"] = held.min_last
        st.radio("Against the step's default settings, this run will do", OUTCOMES, index=None, horizontal=True,
                 key=f"_versus_{page}", on_change=keep,
                 help="Judged on the step's reference seeds: 'same' while the result stays within their range")
        st.number_input(f"The min(last {CHALLENGE.last_epochs}) test accuracy I expect (%)", 0.0, 100.0, value=None,
                        step=0.05, format="%.2f", key=f"_figure_{page}", on_change=keep)


def predicted_or_trained(page: PageKey) -> bool:
    """Has this session written a prediction on the page, or trained there?"""
    return not st.session_state.get(prediction_key(page), Prediction()).empty or bool(live_jobs(page))


# --- the live area: charts of live + compared runs, status ----------------------------------------

def compare_key(page: PageKey) -> str:
    return f"compare_{page}"


class LiveView:
    """The charts and the status of this session's runs on a step page.

    `draw` lays them out with the rest of the page; `follow`, the page script's last call, keeps
    them current while a run is queued or training: it looks at the runs four times a second and
    sends the browser only what changed, and what changes all the time (percentage, time left,
    place in the queue, the curves) every few seconds. A page that redraws only on news costs its
    browser and the server almost nothing between updates, where a rerun of the page (or of a
    fragment) every second made the browser re-process every element of it each time. Any click on
    the page interrupts `follow` (Streamlit reruns the script)."""

    # Seconds between redraws of what changes all the time; a new state (queued -> training -> done)
    # is drawn at once. Every redraw makes the browser re-process the page: on a step page in
    # Chromium a progress update costs about 0.1 s of CPU, which a 2-core server shares with training.
    REDRAW_EVERY_S = {"status": 5.0, "batches": 3.0, "charts": 5.0}

    def __init__(self, page: PageKey, compared: Callable[[], list[Run]], chart_height: int = 250) -> None:
        self.page, self.compared, self.height = page, compared, chart_height
        self.jobs = live_jobs(page)
        self._charts, self._status = st.empty(), st.empty()
        # a widget is drawn at most once per script run, so each queued run's Cancel has a slot of its own
        self._cancels = {job.id: st.empty() for job in self.jobs}
        self._batches = st.empty()
        self._slow = st.empty()  # the batch a paused run was last stepped through
        self._shown: dict[str, Any] = {}
        self._drawn_at: dict[str, float] = {}
        self._waits: dict[int, float] = {}  # job id -> the start estimate shown
        self._drew_active = False  # did the last draw show a run queued or training?
        self._slow_motion_state: tuple[str, bool] | None = None

    def _due(self, part: str, value: Any, urgent: bool) -> bool:
        """Whether `part` should be redrawn with `value`: when it changed, and either the change
        matters (urgent) or its last redraw is old enough."""
        if part in self._shown and self._shown[part] is value:
            return False
        if part in self._shown and self._shown[part] == value:
            return False
        if not urgent and time.monotonic() - self._drawn_at.get(part, 0.0) < self.REDRAW_EVERY_S[part]:
            return False
        self._shown[part], self._drawn_at[part] = value, time.monotonic()
        return True

    def draw(self) -> list[Snapshot]:
        snaps = [j.snapshot() for j in self.jobs]
        self._drew_active = any(s.active for s in snaps)
        self._slow_motion_state = slow_motion_state(self.jobs, snaps)
        specs = _charts(self.page, self.jobs, snaps, self.compared, self.height)[1]
        settled = not any(s.status == "running" for s in snaps)
        if self._due("charts", specs, urgent=settled or "charts" not in self._shown):
            with self._charts.container():
                show_history(specs)
        rows = status_rows(self.jobs, snaps, self._waits)
        if self._due("status", rows, urgent=[r[0] for r in rows] != [r[0] for r in self._shown.get("status", [])]):
            with self._status.container():
                show_status(rows)
                finished = [(j, s) for j, s in zip(self.jobs, snaps) if s.status == "completed" and s.epochs]
                if finished:
                    verdict_line(finished)
        for job, snap in zip(self.jobs, snaps):
            drawn = self._shown.get(f"cancel {job.id}")
            if snap.status == "queued" and drawn is None:
                self._cancels[job.id].button(f"Cancel seed {job.config.seed}", key=f"cancel_{job.id}",
                                             on_click=job.stop, icon=":material/close:")
                self._shown[f"cancel {job.id}"] = True
            elif snap.status != "queued" and drawn:
                self._cancels[job.id].empty()
                self._shown[f"cancel {job.id}"] = False
        stepped = next((s for s in snaps if s.last_step is not None), None)
        if stepped is not None and self._due("slow", stepped.steps_shown, urgent=True):
            with self._slow.container():
                draw_step(stepped.last_step, stepped.steps_shown)
        first = next((s for s in snaps if s.status == "running" and s.batches and not s.epochs), None)
        drawn = self._shown.get("batches", 0)
        if self._due("batches", len(first.batches) if first is not None else 0, urgent=first is None or not drawn):
            if first is not None:  # until the first epoch is drawn, the loss per batch shows the run has begun
                with self._batches.container():
                    batch_chart(first.batches, height=60,
                                title="training loss per batch (this run, until its first epoch)")
            else:
                self._batches.empty()
        return snaps

    def follow(self, interval: float = 0.25) -> None:
        """While a run is queued or training: redraw what changed; once none is, rerun the page
        (its buttons, tables and run list follow). What counts is what this script run drew, not the
        runs now: a run that ended since (a Stop lands within a batch) must still be drawn ended."""
        buttons_active = st.session_state.pop(buttons_key(self.page), False)  # as this script run drew them
        if not (self._drew_active or buttons_active):
            return
        drawn = self._slow_motion_state  # the Pause button as this script run drew it
        while True:
            time.sleep(interval)
            st.session_state.get(live_key(self.page))  # a yield point: a click on the page interrupts here
            snaps = self.draw()
            # a run that ended, or that started or stopped being paused (Pause appears once it trains)
            if not any(s.active for s in snaps) or self._slow_motion_state != drawn:
                st.rerun()


def _charts(page: PageKey, jobs: list[Job], snaps: list[Snapshot], compared: Callable[[], list[Run]],
            height: int) -> tuple[list[Group], list]:
    """Groups and chart specs, rebuilt only when an epoch arrived or the picks changed (kept per
    session and step). What does not change during a run is built once: the compared runs (once per
    pick) and each group's band of seeds (once per group and epoch count)."""
    picks = tuple(st.session_state.get(compare_key(page), []))
    key = (picks, height, tuple((j.id, len(s.epochs), s.run_id) for j, s in zip(jobs, snaps)))
    cache_key = f"charts_{page}"
    held = st.session_state.get(cache_key)
    if held is not None and held["key"] == key:
        return held["groups"], held["specs"]
    same_picks = held is not None and held["key"][0] == picks
    static = held["static"] if same_picks else compared()
    bands = held["bands"] if same_picks else {}
    live = [Run(f"live {i}", j.config, s.epochs, "live") for i, (j, s) in enumerate(zip(jobs, snaps)) if s.epochs]
    own_ids = {f"run {s.run_id}" for s in snaps if s.run_id is not None}
    others = [r for r in static if r.key not in own_ids]
    groups = group_runs(live + others) if live or others else []
    specs = history_specs(groups, height, bands)
    st.session_state[cache_key] = {"key": key, "groups": groups, "specs": specs, "static": static, "bands": bands}
    st.session_state[f"groups_{page}"] = groups  # for the comparison table below the charts
    return groups, specs


def _steady(shown: dict[int, float], job_id: int, seconds: float) -> float:
    """A countdown that does not flicker: the estimate moves as each batch reports progress, so a
    new figure replaces the one shown only when it differs by more than 10 % (or 5 s)."""
    old = shown.get(job_id)
    if old is None or abs(seconds - old) > max(5.0, 0.1 * old):
        shown[job_id] = seconds
    return shown[job_id]


def _about(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 30 else f"{5 * round(seconds / 5):.0f} s"


def threads_text(threads: tuple[int, ...]) -> str:
    """The CPU threads a run trained with: "2 CPU threads", or "1-2 CPU threads (cores shared with other
    runs)" when the server's share changed while it trained."""
    low, high = min(threads), max(threads)
    if low == high:
        return counted(low, "CPU thread")
    return f"{low}–{high} CPU threads (the cores were shared with other runs)"


def _soon(seconds: float) -> str:
    """A wait in the queue, in words that change about once a minute (each change is a redraw)."""
    return "within a minute" if seconds < 60 else f"in about {round(seconds / 60):.0f} min"


def status_rows(jobs: list[Job], snaps: list[Snapshot], waits: dict[int, float] | None = None) -> list[tuple[str, str, float]]:
    """(kind, text, progress) per line: what the status area shows, comparable between redraws."""
    waits = {} if waits is None else waits
    rows = []
    for job, snap in zip(jobs, snaps):
        name = f"seed {job.config.seed}"
        if snap.status == "queued":
            wait = f", starts {_soon(_steady(waits, job.id, snap.starts_in))}" if snap.starts_in is not None else ""
            rows.append(("info", f"{name}: queued, {snap.ahead} run{'s' if snap.ahead != 1 else ''} ahead{wait}.", 0.0))
        elif snap.status == "running" and snap.paused:
            rows.append(("progress", f"{name}: {snap.progress:.0%}, paused (slow motion)", min(round(snap.progress, 2), 1.0)))
        elif snap.status == "running":
            eta = f", about {_about(_steady(waits, job.id, snap.eta))} left" if snap.eta is not None else ", starting"
            threads = f" · {threads_text(snap.threads[-1:])}" if snap.threads else ""
            rows.append(("progress", f"{name}: {snap.progress:.0%}{eta}{threads}", min(round(snap.progress, 2), 1.0)))
        elif snap.status == "failed":
            rows.append(("error", f"{name}: training stopped: {snap.reason}", 0.0))
        elif snap.status == "interrupted":
            done = counted(len(snap.epochs), "epoch")
            rows.append(("error", f"{name}: interrupted after {done}: {snap.reason}", 0.0))
        elif snap.status == "cancelled":
            rows.append(("caption", f"{name}: cancelled before it started.", 0.0))
        elif snap.status == "stopped" and not snap.epochs:
            rows.append(("info", f"{name}: stopped before its first epoch ended; no epoch to keep.", 0.0))
        elif snap.status == "stopped":
            done = counted(len(snap.epochs), "epoch")
            rows.append(("info", f"{name}: stopped after {done}; the history so far is kept.", 0.0))
        rows += [("warning", warning, 0.0) for warning in snap.warnings]
    return rows


def show_status(rows: list[tuple[str, str, float]]) -> None:
    for kind, text, progress in rows:
        if kind == "progress":
            st.progress(progress, text=text)
        elif kind == "info":
            st.info(text, icon=":material/hourglass_top:" if "queued" in text else None)
        else:
            getattr(st, kind)(text)


def verdict_line(finished: list[tuple[Job, Snapshot]]) -> None:
    kind, text = result_message([(j.config, s) for j, s in finished])
    getattr(st, kind)(text)
    reveal(finished)


def result_message(finished: list[tuple[TrainConfig, Snapshot]]) -> tuple[str, str]:
    """What the finished runs reached, and the challenge's verdict where there can be one: a quick run
    trains on fewer images, so it is reported but not judged (as on the class board). Returns the
    kind of box (info, success, warning) and its text."""
    accs = [[e["test_acc"] for e in s.epochs] for _, s in finished]
    config, snap = finished[0]
    text = (f"Best test accuracy {max(map(max, accs)):.2f} % · {snap.params or 0:,} parameters · "
            f"{max(s.elapsed for _, s in finished):.0f} s")
    if snap.threads and snap.device.lower().startswith("cpu"):
        text += f" on {threads_text(snap.threads)}"
    if len(finished) > 1:
        lows = [(c.seed, min_last(a)) for (c, _), a in zip(finished, accs)]
        text += f" · min(last {CHALLENGE.last_epochs}) by seed: " + ", ".join(
            f"{seed}: {low:.2f} %" if low is not None else f"{seed}: —" for seed, low in lows)
    if not all(c.full_data for c, _ in finished):
        return "info", (f"{text}. A quick run ({run_size(config)}) is not judged against the challenge: only a "
                        "full run, on every image, is.")
    results = [CHALLENGE.verdict(s.params or 0, a, c.recipe.epochs) for (c, s), a in zip(finished, accs)]
    met = sum(passed for passed, _ in results)
    verdict = (results[0][1] if len(results) == 1
               else f"{met} of {len(results)} seeds met the challenge ({CHALLENGE.describe()}).")
    return ("success" if met == len(results) else "warning"), f"{text}. {verdict}"


def reveal(finished: list[tuple[Job, Snapshot]]) -> None:
    """The prediction written before training, beside what happened."""
    job = finished[0][0]
    prediction = Prediction.from_text(job.tags.prediction)
    if prediction.empty:
        return
    figures = [min_last([e["test_acc"] for e in s.epochs]) for _, s in finished]
    figures = [f for f in figures if f is not None]
    if not figures:
        st.caption(f"You predicted {prediction.describe()}; the run was too short to tell "
                   f"(min(last {CHALLENGE.last_epochs}) needs {CHALLENGE.last_epochs} epochs).")
        return
    worst = min(figures)
    parts = [f"Min(last {CHALLENGE.last_epochs}) came out at {worst:.2f} %"
             + (" (worst seed)" if len(figures) > 1 else "")]
    if prediction.min_last is not None:
        parts.append(f"{worst - prediction.min_last:+.2f} points from your {prediction.min_last:.2f} %")
    if prediction.versus_default is not None:
        result = outcome(worst, references().get(job.config.step))
        if result is not None:
            parts.append(f"{result} than the step's default (judged on its reference seeds; you said "
                         f"{prediction.versus_default})")
    st.info("You predicted " + prediction.describe() + ". " + "; ".join(parts) + ".",
            icon=":material/psychology:")


def compare_tables(page: PageKey) -> None:
    groups: list[Group] = st.session_state.get(f"groups_{page}", [])
    if len(groups) < 2:
        st.caption("Pick runs under *Compare with* (or train twice) to see what differs and by how much.")
        return
    st.dataframe(differing_table(groups), hide_index=True, placeholder="—", width="stretch")
    verdicts = noise_verdicts(groups)
    for sentence in verdicts:
        st.markdown(sentence)
    if not verdicts:
        st.caption(f"With {SEEDS_PER_GROUP} or more seeds on each side (*Train {SEEDS_PER_GROUP} seeds*), a sentence "
                   "here says whether two settings differ by more than the seeds do.")


def live_batches(page: PageKey) -> None:
    jobs = live_jobs(page)
    snaps = [j.snapshot() for j in jobs]
    current = next((s for s in snaps if s.status == "running"), None) or next(
        (s for s in reversed(snaps) if s.batches), None)
    if current is None:
        st.caption("The per-batch training loss of this session's latest run appears here.")
        return
    batch_chart(current.batches)


def inside_tab(page: PageKey) -> None:
    """This session's latest run, inside: live from its batches while it trains, then every sample the
    run store kept."""
    jobs = live_jobs(page)
    latest = next(((j, s) for j, s in ((j, j.snapshot()) for j in reversed(jobs)) if s.batches or s.run_id), None)
    if latest is None:
        st.caption("Train, and each layer's activations, gradients and updates appear here as the run goes "
                   "(a *Train 3 seeds* group trains side by side and is not looked inside).")
        return
    job, snap = latest
    samples = live_samples(snap.batches) if snap.active else stored_samples(run_store(), snap.run_id)
    samples = samples or live_samples(snap.batches)
    metric = metric_choice(f"inside_metric_{page}")
    name = f"run {snap.run_id} · " if snap.run_id is not None else ""
    draw_inside([(f"{name}step {job.config.step}, seed {job.config.seed}" + (" (training)" if snap.active else ""),
                  samples)], metric)
