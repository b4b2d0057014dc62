"""The Class board, made for the projector: every run of this class from every browser session
(live while they train), the leaderboard judged on seeds, the frontier of parameters against
min(last 3), and the class's predictions against what happened.

A refresh of a view reads the run store's runs table with one query for what it shows (plus one
for the class's start, which another session may have moved); what each setting means is computed
once per setting and server (SettingCache)."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from core.architecture.challenge import CHALLENGE
from core.classroom import (
    BoardEntry,
    SettingCache,
    Standing,
    board,
    class_frontier_points,
    leaderboard,
    prediction_table,
    reference_marks,
    setting_of,
    writeup_mark,
)
from core.results.reference import StepReference
from core.results.summary import setting_key
from core.serving.limits import server_limits
from core.serving.run_queue import Job, LimitError
from core.serving.store import RunStore, StoreError
from core.training.budget import describe_limits, estimate_seconds, modelled_speed
from core.words import counted
from ui.classroom import (
    current_class,
    is_teacher,
    may_change,
    name_input,
    plain,
    run_tags,
    session_id,
    teacher_key,
    try_key,
)
from ui.controls import link_params
from ui.state import (
    allow_download,
    data_dir,
    device,
    references,
    run_queue,
    run_store,
    runs_db,
)

REFRESH_S = 4.0  # the runs and leaderboard views redraw this often
SHOWN_RUNS = 300  # the newest runs in the table (the leaderboard counts every run of the class)
VIEWS = {"runs": "Runs", "leaderboard": "Leaderboard", "frontier": "Frontier", "predictions": "Predictions"}
LAST = f"min(last {CHALLENGE.last_epochs})"
FRONTIER_FLOOR = 97.0  # % : lower marks are clamped, so the region the challenge is about stays readable


@st.cache_resource(show_spinner=False, max_entries=4)
def settings_cache(path: str) -> SettingCache:  # one per store file and server
    return SettingCache()


def render() -> None:
    store = run_store()
    if store is None:
        st.error("The class board needs the run store (see the *Data and run history* page).")
        return
    klass = current_class(store)
    since = klass.started_at if klass is not None else 0.0
    st.markdown("#### Class board" + (f" · {plain(klass.name)}" if klass is not None and klass.name else ""))
    top_left, top_right = st.columns([1, 1], gap="medium")
    with top_left:
        name_input()
        st.caption(("Counting runs since " + time.strftime("%H:%M on %d %b", time.localtime(since))
                    if klass is not None else "Counting every stored run (the teacher can start a class)")
                   + f" · refreshes every {REFRESH_S:.0f} s")
    with top_right:
        teacher_controls(store)
    view = st.segmented_control("Show", list(VIEWS), format_func=VIEWS.get, default="runs", key="board_view",
                                label_visibility="collapsed") or "runs"
    if view in ("runs", "leaderboard"):
        live_board(store, view)
    else:  # a chart to click and a table of outcomes: drawn once per visit, not every few seconds
        draw_view(store, since, view)


def teacher_controls(store: RunStore) -> None:
    if teacher_key() is not None and not st.session_state.get("teacher", False):
        with st.popover("Teacher", icon=":material/key:"):
            st.text_input("Teacher's key", type="password", key="_teacher_key")
            st.button("Unlock", key="unlock", on_click=_unlock)
            if st.session_state.get("_wrong_key") == "busy":
                st.error("Too many keys are being tried on this server just now: press *Unlock* again in a minute.")
            elif st.session_state.get("_wrong_key"):
                st.error("That is not the key this server was started with.")
        return
    with st.popover("Start a new class", icon=":material/restart_alt:"):
        st.caption("The board then counts only the runs from now on; the run store keeps everything.")
        st.text_input("Class name (optional)", key="_class_name", max_chars=40)
        st.checkbox("Predict first: step pages keep their result folded until a student has predicted or trained",
                    key="_predict_first")
        st.button("Start the class", type="primary", key="start_class", on_click=_start_class, args=(store,))
    if st.session_state.get("_class_error"):
        st.error(st.session_state.pop("_class_error"))
    queue_tools()


def queue_tools() -> None:
    """The teacher's hold on the queue: pause it, clear it, stop one student's runs, set each one's share."""
    queue = run_queue()
    with st.popover("Queue", icon=":material/queue:"):
        st.number_input("Runs per student (queued or training at once)", 1, 30,
                        queue.limits.runs_per_student if queue.limits else 3, key="_runs_per_student",
                        on_change=_set_share, help="Train 3 seeds counts 3")
        c1, c2 = st.columns(2)
        c1.button("Go on" if queue.paused else "Pause", key="queue_pause", width="stretch",
                  icon=":material/play_arrow:" if queue.paused else ":material/pause:", on_click=_pause,
                  args=(not queue.paused,))
        c2.button("Clear", key="queue_clear", width="stretch", icon=":material/clear_all:",
                  on_click=_clear, help="Cancel every queued run; runs training now go on")
        students = {}
        for job in queue.active_jobs():
            students.setdefault(job.tags.session, f"{job.tags.student or 'no name'} ({job.tags.session[:6]})")
        if students:
            picked = st.selectbox("A student's runs", list(students), format_func=students.get, key="_stop_student_pick")
            st.button("Stop all of this student's runs", key="stop_student", on_click=_stop_student, args=(picked,),
                      icon=":material/stop_circle:")
        done = st.session_state.get("_queue_done")
        if done:
            st.caption(done)


def _set_share() -> None:
    if is_teacher():  # checked again at the change
        queue = run_queue()
        queue.set_limits(replace(queue.limits or server_limits(), runs_per_student=int(st.session_state["_runs_per_student"])))


def _pause(paused: bool) -> None:
    if is_teacher():
        run_queue().pause(paused)
        st.session_state["_queue_done"] = "Paused: queued runs wait." if paused else "The queue goes on."


def _clear() -> None:
    if is_teacher():
        st.session_state["_queue_done"] = f"Cancelled {counted(run_queue().clear(), 'queued run')}."


def _stop_student(student: str) -> None:
    if is_teacher():
        st.session_state["_queue_done"] = f"Stopped {counted(run_queue().stop_student(student), 'run')} of that student."


def _unlock() -> None:
    outcome = try_key(st.session_state.get("_teacher_key", ""))
    st.session_state["_wrong_key"] = {True: None, False: "wrong", None: "busy"}[outcome]


def _start_class(store: RunStore) -> None:
    if not is_teacher():  # checked again at the click
        return
    try:
        store.start_class(st.session_state.get("_class_name", "").strip(), st.session_state.get("_predict_first", False))
    except StoreError as exc:
        st.session_state["_class_error"] = str(exc)


@st.fragment(run_every=REFRESH_S)
def live_board(store: RunStore, view: str) -> None:
    klass = current_class(store)  # the teacher may start a class from another browser meanwhile
    draw_view(store, klass.started_at if klass is not None else 0.0, view)


def draw_view(store: RunStore, since: float, view: str) -> None:
    """One view of the board: each reads the run store with one query for what it shows."""
    settings = settings_cache(str(store.path))
    try:
        if view == "runs":
            runs_view(store, since, settings)
        elif view == "leaderboard":
            leaderboard_view(*leaderboard(store, since, settings))
        elif view == "frontier":
            frontier_view(*leaderboard(store, since, settings))
        else:
            predictions_view(board(store, since, settings, predicted_only=True))
    except StoreError as exc:  # its message names the store: the teacher's to read
        st.warning("The run store could not be read" + (f": {exc}" if is_teacher() else "."))


# --- runs --------------------------------------------------------------------------------------------

def queued_rows() -> list[dict[str, Any]]:
    """Runs waiting in the queue (not in the store until they start): on a cluster, every server's."""
    rows = []
    for place, (name, config) in enumerate(run_queue().queued(), start=1):
        setting = setting_of(config)
        rows.append({"run": None, "name": name, "what": setting.what, "differs": setting.differs,
                     "seed": config.seed, "params": setting.params, "multiply-adds": setting.macs,
                     "status": f"queued ({place})", "progress": 0.0, LAST: None, "verdict": "", "predicted": ""})
    return rows


def runs_view(store: RunStore, since: float, settings: SettingCache) -> None:
    total, training, sessions = store.board_counts(since)
    entries = board(store, since, settings, limit=SHOWN_RUNS)
    queued = queued_rows()
    st.caption(f"{counted(total, 'run')} from {counted(sessions, 'browser session')} · {training} training now · "
               f"{len(queued)} queued"
               + (f" · the newest {SHOWN_RUNS} shown" if total > SHOWN_RUNS else ""))
    rows = queued + [e.as_row() for e in entries]
    if not rows:
        st.info("No runs yet in this class. Runs appear here as soon as anyone presses Train.")
        return
    st.dataframe(pd.DataFrame(rows), hide_index=True, placeholder="—", width="stretch",
                 height=min(38 + 35 * len(rows), 560),
                 column_config={
                     "run": st.column_config.NumberColumn("run", format="%d", width="small"),
                     "seed": st.column_config.NumberColumn("seed", width="small"),
                     "params": st.column_config.NumberColumn("params", format="localized"),
                     "multiply-adds": st.column_config.NumberColumn("multiply-adds", format="compact"),
                     "verdict": st.column_config.TextColumn(
                         "verdict", width="medium", help=f"Against the challenge ({CHALLENGE.describe()}); a quick "
                         "run, on fewer images, is not judged"),
                     "progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0,
                                                                 format="percent"),
                     LAST: st.column_config.NumberColumn(LAST, format="%.2f %%"),
                 })
    stop_control()


def stop_control() -> None:
    """Stop a training run or cancel a queued one: the teacher any, a student their own."""
    queue = run_queue()
    active: list[tuple[str, Job]] = []
    for job in queue.active_jobs():
        if not may_change(job.tags.session):
            continue
        what = setting_of(job.config).what
        who = job.tags.student or "no name"
        run_id = job.snapshot().run_id
        active.append((f"{'run ' + str(run_id) if run_id else 'queued'}: {what}, seed {job.config.seed} ({who})", job))
    # the labels hold typed names: a selectbox shows them as text; the toast below does not repeat them
    if not active:
        return
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    labels = [label for label, _ in active]
    picked = c1.selectbox("Stop a run (training: after its current batch; queued: it leaves the queue)", labels,
                          key="board_stop_pick")
    c2.button("Stop it", key="board_stop", icon=":material/stop:", width="stretch", on_click=_stop,
              args=(dict(active)[picked],))


def _stop(job: Job) -> None:
    if may_change(job.tags.session):  # checked again at the click
        job.stop()
        st.toast(f"Stopping seed {job.config.seed} of {plain(setting_of(job.config).what)}", icon=":material/stop:")


# --- leaderboard --------------------------------------------------------------------------------------

def standing_row(rank: str, s: Standing) -> dict[str, Any]:
    own = f"step {s.setting.config.step}'s recipe" if s.setting.config.is_design else "the step's own"
    return {"rank": rank, "design": s.mark or s.setting.what, "settings": s.setting.differs or own,
            "params": s.params, "multiply-adds": s.setting.macs, "seeds": len(s.seeds),
            f"worst seed {LAST}": s.worst, f"best seed {LAST}": s.best}


def leaderboard_view(ranked: list[Standing], short: list[Standing]) -> None:
    marks = reference_marks(references())
    st.caption(f"A design counts once it holds ≥ {CHALLENGE.min_acc} % in each of its last {CHALLENGE.last_epochs} "
               f"epochs on at least {CHALLENGE.min_seeds} seeds (every seed run, all images, ≤ {CHALLENGE.max_epochs} "
               f"epochs, < {CHALLENGE.max_params:,} parameters); ranked by parameters, then multiply-adds. The worst "
               "seed is the one that counts.")
    rows = [standing_row(str(i), s) for i, s in enumerate(ranked, start=1)]
    rows += [standing_row("mark", m) for m in marks]
    w = writeup_mark()
    rows.append({"rank": "mark", "design": "the write-up's final network", "settings": w["note"],
                 "params": None, "multiply-adds": None, "seeds": 1, f"worst seed {LAST}": None,
                 f"best seed {LAST}": None})
    frame = pd.DataFrame(rows).sort_values("params", na_position="last", kind="stable")
    st.dataframe(frame, hide_index=True, placeholder="—", width="stretch",
                 column_config={"params": st.column_config.NumberColumn("params", format="localized"),
                                "multiply-adds": st.column_config.NumberColumn("multiply-adds", format="compact"),
                                "settings": st.column_config.TextColumn("settings", width="medium"),
                                # short headers, so the table fits a projector's width without scrolling
                                f"worst seed {LAST}": st.column_config.NumberColumn(
                                    "worst seed", format="%.2f %%", help=f"the lowest seed's {LAST}: what counts"),
                                f"best seed {LAST}": st.column_config.NumberColumn(
                                    "best seed", format="%.2f %%", help=f"the highest seed's {LAST}")})
    st.caption(f"The write-up reports {w['params']} parameters and a best test accuracy of {w['best_test']} % on one "
               "run, without per-epoch figures, so it is listed as reported and not judged here.")
    if not short:
        return
    st.markdown(f"**Holding so far, short of {CHALLENGE.min_seeds} seeds**")
    for s in short[:10]:
        c1, c2 = st.columns([3, 1], vertical_alignment="center")
        c1.markdown(f"{s.setting.what} · {s.params:,} parameters · seeds {sorted(s.seeds)} · worst {s.worst:.2f} %")
        c1.caption(s.setting.differs or "the step's own settings")
        missing = s.seeds_missing
        c2.button(f"Verify on seeds {', '.join(map(str, missing))}", key=f"verify_{s.setting.config.net}_"
                  f"{setting_key(s.setting.config)}", on_click=verify, args=(s, missing), width="stretch")


def verify(standing: Standing, seeds: list[int]) -> None:
    """Queue the seeds a design is missing, as this session's runs."""
    queue = run_queue()
    share = queue.share_problem(session_id(), len(seeds))  # all the seeds, or none: no half-verified design
    if share:
        st.toast(f"Not queued: {plain(share)}", icon=":material/block:")
        return
    for seed in seeds:
        config = standing.setting.config.with_overrides(seed=seed, device=str(device()))
        try:
            queue.submit(Job(config, data_dir(), allow_download(), limits=describe_limits(config),
                             estimate_s=estimate_seconds(config, modelled_speed(config)), db=runs_db(),
                             source="app", tags=run_tags("board")))
        except LimitError as exc:
            st.toast(f"Not queued: {plain(str(exc))}", icon=":material/block:")
            return
    st.toast(f"Queued seeds {', '.join(map(str, seeds))}: they appear on the board as they train.",
             icon=":material/playlist_add:")


# --- frontier ------------------------------------------------------------------------------------------

def frontier_chart(points: list[dict[str, Any]]) -> alt.LayerChart:
    frame = pd.DataFrame(points)
    pick = alt.selection_point(name="design", fields=["net", "step"], on="click")
    x = alt.X("params:Q", scale=alt.Scale(type="log"), title="parameters (log scale)")
    floor = FRONTIER_FLOOR if frame["low"].min() < FRONTIER_FLOOR else None
    scale = alt.Scale(domain=[floor, 100.0], clamp=True) if floor is not None else alt.Scale(zero=False)
    y = alt.Y("min_last:Q", scale=scale, title=f"{LAST} test accuracy, %")
    legend = alt.Legend(orient="bottom", labelLimit=400)
    base = alt.Chart(frame).encode(x=x, color=alt.Color("kind:N", title=None, legend=legend))
    bars = base.mark_rule().encode(y=alt.Y("low:Q", scale=scale), y2="high:Q")
    dots = base.mark_point(filled=True, size=90).encode(
        y=y, tooltip=["label:N", alt.Tooltip("params:Q", format=","), alt.Tooltip("min_last:Q", format=".2f"),
                      alt.Tooltip("low:Q", format=".2f"), alt.Tooltip("high:Q", format=".2f"), "seeds:Q"],
        opacity=alt.condition(pick, alt.value(1.0), alt.value(0.5))).add_params(pick)
    numbers = base.transform_filter(alt.expr.indexof(alt.datum.kind, "lifecycle step") == 0).mark_text(dx=9, dy=-9, fontSize=12).encode(
        y=y, text="step:N")
    target = alt.Chart(pd.DataFrame({"y": [CHALLENGE.min_acc]})).mark_rule(strokeDash=[4, 4], color="gray").encode(y="y:Q")
    budget = alt.Chart(pd.DataFrame({"x": [CHALLENGE.max_params]})).mark_rule(strokeDash=[4, 4], color="gray").encode(x="x:Q")
    return alt.layer(bars, dots, numbers, target, budget).properties(height=420)


def frontier_view(ranked: list[Standing], short: list[Standing]) -> None:
    points = class_frontier_points(ranked + short + reference_marks(references()), references())
    if not points:
        st.info("No finished full runs yet: the frontier fills as designs finish.")
        return
    st.caption(f"One mark per design (the class's full runs, mean of its seeds, the bar spans them) and per lifecycle "
               f"step (its reference runs). Dashed: {CHALLENGE.min_acc} % and {CHALLENGE.max_params:,} parameters; "
               "the challenge is the upper left. Click a mark to open that design."
               + (f" Marks below {FRONTIER_FLOOR:g} % sit on the bottom edge (their tooltip has the figure)."
                  if min(p["low"] for p in points) < FRONTIER_FLOOR else "")
               + "".join(_reference_caveat(n, ref) for n, ref in sorted(references().items())))
    event = st.altair_chart(frontier_chart(points), on_select="rerun", key="frontier", width="stretch")
    picked = (event.selection.get("design") or [None])[0] if event and event.selection else None
    if picked:
        target = next((p for p in points if p["net"] == picked.get("net") and p["step"] == picked.get("step")), None)
        if target is not None:
            open_design(target)


def _reference_caveat(number: int, ref: StepReference) -> str:
    """What the chart's caption owes about a step's reference: left out, or drawn but not comparable."""
    if ref.min_last_spread is None:
        return f" Step {number} is not drawn: its reference has no {LAST} ({ref.first.provenance.limits})."
    return f" Step {number}'s reference is a reduced run, not comparable with the others." if ref.reduced else ""


def open_design(point: dict[str, Any]) -> None:
    from core.training.config import TrainConfig

    config = TrainConfig.for_step(int(point["step"]), net=point["net"])
    st.switch_page("app_pages/design.py", query_params=link_params(config, "full"))


# --- predictions ---------------------------------------------------------------------------------------

def predictions_view(entries: list[BoardEntry]) -> None:
    table = prediction_table(entries, references())
    if not table:
        st.info("No predictions yet. Before training, a student can write one down beside the Train button.")
        return
    st.caption("Per step and change: what the class predicted against what happened. A change counts as *better* or "
               "*worse* only beyond the range of the step's reference seeds; within it, *same*.")
    st.dataframe(pd.DataFrame(table), hide_index=True, placeholder="—", width="stretch")
