"""Train, Train 3 seeds and Stop; the runs this session started on a step, drawn live on the same
charts as the runs picked for comparison. Every run goes through the server's one queue."""

from __future__ import annotations

from typing import Callable

import streamlit as st

from core.challenge import CHALLENGE
from core.compare import Group, Run, differing_table, group_runs, noise_verdicts
from core.model import device_label
from core.queue import Job, Snapshot
from ui.charts import batch_chart, history_charts
from ui.controls import Choice
from ui.state import data_loader, device, run_queue, runs_db

SEEDS_PER_GROUP = 3


def live_key(number: int) -> str:
    return f"live_jobs_{number}"


def live_jobs(number: int) -> list[Job]:
    return st.session_state.get(live_key(number), [])


def submit(number: int, choice: Choice, seeds: int) -> None:
    """Queue `seeds` runs (seed, seed+1, ...). The runs shown until now move to 'Compare with',
    so the new run is drawn beside the last one."""
    keep = [f"run {s.run_id}" for s in (j.snapshot() for j in live_jobs(number)) if s.run_id is not None]
    picked = st.session_state.get(compare_key(number), [])
    st.session_state[compare_key(number)] = list(dict.fromkeys(picked + keep))
    dev = device()
    loader = data_loader(dev)
    jobs = []
    for offset in range(seeds):
        config = choice.config.with_overrides(seed=choice.config.seed + offset, device=str(dev))
        jobs.append(run_queue().submit(Job(config, loader, label=choice.label, estimate_s=choice.estimate_s,
                                           db=runs_db(), source="app")))
    st.session_state[live_key(number)] = jobs


def stop_all(number: int) -> None:
    for job in live_jobs(number):
        job.stop()


def train_buttons(number: int, choice: Choice) -> None:
    active = any(j.snapshot().active for j in live_jobs(number))
    b1, b2, b3 = st.columns([2, 3, 2])
    # one active request per session and step: a class sharing one machine cannot flood its queue
    b1.button("Train", type="primary", key=f"train_{number}", on_click=submit, args=(number, choice, 1),
              width="stretch", icon=":material/play_arrow:", disabled=active)
    b2.button(f"Train {SEEDS_PER_GROUP} seeds", key=f"train3_{number}", width="stretch", disabled=active,
              on_click=submit, args=(number, choice, SEEDS_PER_GROUP),
              help=f"Seeds {choice.config.seed}-{choice.config.seed + SEEDS_PER_GROUP - 1}: the same settings three "
                   "times, to see how much of a difference the random seed alone makes")
    b3.button("Stop", key=f"stop_{number}", disabled=not active, on_click=stop_all, args=(number,), width="stretch",
              icon=":material/stop:")
    st.caption(f"{choice.label}; about {choice.estimate_s:.0f} s per run on {device_label(device())}")


# --- the live area: charts of live + compared runs, status ----------------------------------------

def compare_key(number: int) -> str:
    return f"compare_{number}"


def live_area(number: int, compared: Callable[[], list[Run]], chart_height: int = 250) -> None:
    """A fragment that redraws every second while this session has a run queued or running."""
    jobs = live_jobs(number)
    active = any(j.snapshot().active for j in jobs)

    @st.fragment(run_every=1.0 if active else None)
    def view() -> None:
        snaps = [j.snapshot() for j in jobs]
        live = [Run(f"live {i}", j.config, s.epochs, "live") for i, (j, s) in enumerate(zip(jobs, snaps)) if s.epochs]
        own_ids = {f"run {s.run_id}" for s in snaps if s.run_id is not None}
        others = [r for r in compared() if r.key not in own_ids]
        groups = group_runs(live + others) if live or others else []
        history_charts(groups, chart_height)
        status_lines(jobs, snaps)
        st.session_state[f"groups_{number}"] = groups
        was = st.session_state.get(f"was_active_{number}")
        now = any(s.active for s in snaps)
        st.session_state[f"was_active_{number}"] = now
        if was and not now:
            st.rerun()  # refresh the buttons and the tables below once the runs end

    view()


def status_lines(jobs: list[Job], snaps: list[Snapshot]) -> None:
    for job, snap in zip(jobs, snaps):
        name = f"seed {job.config.seed}"
        if snap.status == "queued":
            c1, c2 = st.columns([5, 1])
            wait = f", starts in about {snap.starts_in:.0f} s" if snap.starts_in is not None else ""
            c1.info(f"{name}: queued, {snap.ahead} run{'s' if snap.ahead != 1 else ''} ahead{wait}.",
                    icon=":material/hourglass_top:")
            c2.button("Cancel", key=f"cancel_{id(job)}", on_click=job.stop)
        elif snap.status == "running":
            eta = f", about {snap.eta:.0f} s left" if snap.eta is not None else ""
            st.progress(min(snap.progress, 1.0), text=f"{name}: {snap.progress:.0%}{eta} ({snap.elapsed:.0f} s)")
        elif snap.status == "failed":
            st.error(f"{name}: training stopped: {snap.reason}")
        elif snap.status == "cancelled":
            st.caption(f"{name}: cancelled before it started.")
        elif snap.status == "stopped":
            st.info(f"{name}: stopped after {len(snap.epochs)} epoch(s); the history so far is kept.")
        for warning in snap.warnings:
            st.warning(warning)
    finished = [(j, s) for j, s in zip(jobs, snaps) if s.status == "finished" and s.epochs]
    if finished:
        verdict_line(finished)


def verdict_line(finished: list[tuple[Job, Snapshot]]) -> None:
    results = [CHALLENGE.verdict(s.params or 0, [e["test_acc"] for e in s.epochs], j.config.recipe.epochs)
               for j, s in finished]
    if len(finished) == 1:
        (_, snap), (passed, verdict) = finished[0], results[0]
        best = max(e["test_acc"] for e in snap.epochs)
        (st.success if passed else st.warning)(f"Best test accuracy {best:.2f} % · {snap.params:,} parameters · "
                                               f"{snap.elapsed:.0f} s. {verdict}")
        return
    met = sum(p for p, _ in results)
    (st.success if met == len(results) else st.warning)(
        f"{met} of {len(results)} seeds met the challenge ({CHALLENGE.describe()}).")


def compare_tables(number: int) -> None:
    groups: list[Group] = st.session_state.get(f"groups_{number}", [])
    if len(groups) < 2:
        st.caption("Pick runs under *Compare with* (or train twice) to see what differs and by how much.")
        return
    st.dataframe(differing_table(groups), hide_index=True, width="stretch")
    verdicts = noise_verdicts(groups)
    for sentence in verdicts:
        st.markdown(sentence)
    if not verdicts:
        st.caption(f"With {SEEDS_PER_GROUP} or more seeds on each side (*Train {SEEDS_PER_GROUP} seeds*), a sentence "
                   "here says whether two settings differ by more than the seeds do.")


def live_batches(number: int) -> None:
    jobs = live_jobs(number)
    snaps = [j.snapshot() for j in jobs]
    current = next((s for s in snaps if s.status == "running"), None) or next(
        (s for s in reversed(snaps) if s.batches), None)
    if current is None:
        st.caption("The per-batch training loss of this session's latest run appears here.")
        return
    batch_chart(current.batches)

