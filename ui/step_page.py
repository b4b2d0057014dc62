"""One lifecycle step, laid out so the toggle-and-see loop fits one screen (1280x720 and up):
left, the target and the controls; right, the network's figures and the charts of the live and
compared runs. The result, the analysis, the layer table and the comparison table follow below."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import altair as alt
import pandas as pd
import streamlit as st

from core.architecture.challenge import CHALLENGE
from core.architecture.spec import SpecError
from core.report.lessons import Lesson, fill_facts, load_lesson
from core.report.views import describe_step, lesson_facts
from core.report.ablation import ablation_facts, measured_on
from core.report.frontier import FrontierProvenance, frontier_facts, frontier_provenance
from core.results.ablation import ablation_rows
from core.results.frontier import FrontierEntry, frontier_points, frontier_rows
from core.results.reference import DESIGN_UNSEEN_FILE, UNSEEN_FILE, StepReference
from core.results.summary import seed_list
from core.training.config import TrainConfig
from core.training.data import DataError
from core.training.steps import FINAL_STEP, get_step
from core.words import counted
from ui.charts import static_chart
from ui.classroom import (
    current_class,
    exercise_banner,
    exercise_maker,
    exercise_of_link,
)
from ui.compare import compare_picker
from ui.controls import budget_controls, link_params, step_controls
from ui.layout import STEP_LAYOUT
from ui.link import LinkedWidgets
from ui.state import (
    ablation,
    assets_stamp,
    data_problem,
    device,
    frontier,
    references,
    run_store,
    show_data_problem,
    unseen,
    unseen_rows,
    warm_workers,
)
from ui.tables import layer_table
from ui.training import (
    LiveView,
    compare_key,
    compare_tables,
    inside_tab,
    live_batches,
    predicted_or_trained,
    train_buttons,
)


def safe(fn, *args: Any, **kwargs: Any) -> Any:
    """Run a page section; a bad setting becomes a message, never a traceback."""
    try:
        return fn(*args, **kwargs)
    except (SpecError, ValueError, DataError) as exc:
        st.error(str(exc))
        return None


@st.cache_data(max_entries=256, show_spinner=False)
def cached_description(number: int, batchnorm: bool, dropout: float, gap: bool) -> dict[str, Any]:
    return describe_step(number, batchnorm, dropout, gap)


def figures(doc: dict[str, Any]) -> None:
    ok = CHALLENGE.params_ok(doc["params"])
    badge = (f":green-badge[:material/check: under {CHALLENGE.max_params:,}]" if ok
             else f":red-badge[:material/close: over {CHALLENGE.max_params:,}]")
    st.markdown(f"**{doc['params']:,}** parameters {badge} &nbsp;·&nbsp; receptive field **{doc['rf']}×{doc['rf']}** "
                f"&nbsp;·&nbsp; **{doc['macs'] / 1e6:.2f} M** multiply-adds per image")


def render(number: int) -> None:
    step = get_step(number)
    exercise = exercise_of_link(run_store(), f"step_{number}")
    link = LinkedWidgets(f"step_{number}", exercise)
    st.markdown(f"#### Step {number} · {step.title}")
    exercise_banner(exercise)
    left, right = st.container(key=STEP_LAYOUT).columns([1, 2], gap="medium")
    with left:
        st.markdown("\n".join(f"- {t}" for t in lesson_for(number).target))
        config = safe(step_controls, number, link)
        choice = None
        if config is not None:
            problem = data_problem()
            if problem:
                show_data_problem(problem)
            else:
                warm_workers()
                choice = safe(budget_controls, config, link, device().type == "cuda")
            if choice is not None:
                train_buttons(number, choice)
        if config is not None and exercise is None:  # an exercise keeps the class on its page
            open_in_design(config)
    with right:
        doc = safe(cached_description, number, config.toggles.batchnorm, config.toggles.dropout,
                   config.toggles.gap) if config is not None else None
        if doc is not None:
            figures(doc)
        hide = folded(number)
        if hide:  # the reference runs on the chart would give the result away
            st.caption("*Compare with* (the step's reference runs and the class's runs) opens with the result.")
        chosen = (lambda: []) if hide else compare_picker(number, compare_key(number))
        live = LiveView(number, chosen)
        live.draw()
    link.notice()
    st.divider()
    result, layers, table, batches, inside = st.tabs(["Result and analysis", "Layers", "Compare: what differs",
                                                      "Per-batch loss", "Inside the network"])
    with result:
        if hide:
            st.info("**Predict first.** In this class the measured result and the analysis open once you have "
                    "written down a prediction (*Predict first*, under Train) or trained this step.",
                    icon=":material/psychology:")
        else:
            result_section(number)
    with layers:
        if doc is not None:
            layer_table(doc["layers"])
    with table:
        compare_tables(number)
    with batches:
        live_batches(number)
    with inside:
        inside_tab(number)
    exercise_maker(run_store(), f"step_{number}", link.shown)
    live.follow()  # last: keeps the charts and status current while this session's runs go on


def folded(number: int) -> bool:
    """In a class the teacher started with 'predict first', a step's result waits for the student."""
    klass = current_class(run_store())
    return klass is not None and klass.predict_first and not predicted_or_trained(number)


def open_in_design(config: TrainConfig) -> None:
    """A link to the Design page with this network and these settings (the page's own link
    values: both pages share the controls), ready to change."""
    params = {k: st.query_params[k] for k in st.query_params} | {"net": config.net, "from": str(config.step)}
    st.page_link("app_pages/design.py", label="Open this network in Design", icon=":material/design_services:",
                 query_params=params)


def lesson_for(number: int) -> Lesson:
    """The step's lesson with its `{ablation:...}` figures filled in from assets/ablation.json (and the final
    step's from the frontier and the unseen seeds), worked out once per change of the asset files."""
    step_of_ablation, results = ablation()
    final = number == FINAL_STEP
    return _filled_lesson(number, assets_stamp(), results if step_of_ablation == number else None,
                          frontier() if final else None, unseen() if final else None)


@st.cache_resource(max_entries=32, show_spinner=False)
def _filled_lesson(number: int, stamp: tuple, _ablation_results: list | None, _frontier: list[FrontierEntry] | None,
                   _unseen: dict[str, str] | None) -> Lesson:
    # the underscored arguments are not hashed: `stamp` says when they change
    facts = ablation_facts(_ablation_results, number) if _ablation_results is not None else {}
    facts |= (frontier_facts(_frontier) if _frontier is not None else {}) | (_unseen or {})
    return fill_facts(load_lesson(number), facts | cached_lesson_facts(number))


@st.cache_data(show_spinner=False)
def cached_lesson_facts(number: int) -> dict[str, str]:
    return lesson_facts(number)


def result_section(number: int) -> None:
    step = get_step(number)
    lesson = lesson_for(number)
    c1, c2 = st.columns(2)
    with c1:
        st.markdown("**Result**")
        w = step.writeup
        st.markdown(f"- *The write-up reported:* {w.params} parameters, best train {w.best_train_acc} %, best test "
                    f"{w.best_test_acc} %" + (f" ({w.note})" if w.note else "") + ".")
        reference_summary(references().get(number))
    with c2:
        st.markdown("**Analysis**")
        st.markdown("\n".join(f"- {t}" for t in lesson.analysis))
    ref = references().get(number)
    if ref is not None and ref.judgeable:
        seed_distribution(ref)
    step_of_ablation, results = ablation()
    if step_of_ablation == number and results:
        ablation_table(results, measured_on(number, results))
    if number == FINAL_STEP:
        st.page_link("app_pages/frontier.py", label="How small can it get? The frontier search, and step 9 on seeds "
                     "it never saw", icon=":material/query_stats:")
    with st.expander("In depth"):
        st.markdown(lesson.in_depth)


def render_frontier() -> None:
    """The research behind the last step, on a page of its own so the step page stays a lesson: the
    frontier search's candidates and the seeds the reference runs never used."""
    st.markdown("#### How small can it get?")
    st.caption(f"Research beyond step {FINAL_STEP}: every figure here was recorded by the project's own commands "
               "(shown below each part).")
    unseen_section(unseen_rows())
    frontier_section(frontier(), references().get(FINAL_STEP))


def seed_distribution(ref: StepReference) -> None:
    """Many seeds of the reference recipe: the spread the challenge is judged on."""
    st.markdown(ref.distribution())
    static_chart(f"seed strip {ref.step}", assets_stamp(), lambda: seed_strip(ref))


def unseen_section(rows: list[dict[str, Any]]) -> None:
    """Seeds the reference runs never used: the final step and a design with more room, seed for seed."""
    if not rows:
        return
    frame = pd.DataFrame(rows)
    st.markdown(f"**Seeds never used before** ({seed_list(sorted(set(frame['seed'])))}), each trained alone with "
                "the challenge command (the design with its network given): a dot at each min(last "
                f"{CHALLENGE.last_epochs}), larger where more seeds landed. How far the worst seeds sit above the "
                "line tells more about the next seed than the mean does.")
    static_chart("unseen seeds", assets_stamp(), lambda: unseen_chart(frame))
    st.caption(f"assets/{UNSEEN_FILE.name} · assets/{DESIGN_UNSEEN_FILE.name} (commands, devices and dates inside)")


UNSEEN_VERDICTS = {True: ("held", "#0068c9"), False: ("below the line", "#ff8700")}


def unseen_chart(frame: pd.DataFrame) -> alt.LayerChart:
    """A row per network, a dot per min(last 3) on its axis, as large as the seeds that landed there (many
    share a value to the hundredth), beside the challenge's dashed line."""
    order = list(dict.fromkeys(frame["network"]))
    dots = (frame.groupby(["network", "min_last", "held"], sort=False)["seed"]
            .agg(seeds=lambda seeds: seed_list(sorted(seeds)), count="size").reset_index())
    dots["verdict"] = [UNSEEN_VERDICTS[bool(h)][0] for h in dots["held"]]
    labels, colours = zip(*UNSEEN_VERDICTS.values())
    marks = alt.Chart(dots).mark_circle(opacity=0.7).encode(
        x=alt.X("min_last:Q", title=f"min of last {CHALLENGE.last_epochs} (%)", scale=alt.Scale(zero=False),
                axis=alt.Axis(format=".2f", tickMinStep=0.05)),
        y=alt.Y("network:N", sort=order, title=None, axis=alt.Axis(labelLimit=300)),
        size=alt.Size("count:Q", title="seeds", scale=alt.Scale(range=[40, 400]), legend=None),
        color=alt.Color("verdict:N", scale=alt.Scale(domain=list(labels), range=list(colours)),
                        legend=alt.Legend(orient="bottom", title=None)),
        tooltip=["network", alt.Tooltip("min_last:Q", format=".2f"), "seeds", "count"])
    return (_challenge_line("x") + marks).properties(height=36 * len(order),
                                                    autosize=alt.AutoSizeParams(type="fit-x", contains="padding"))


def seed_strip(ref: StepReference) -> alt.LayerChart:
    """One dot per seed on a min(last 3) axis, with the challenge's line."""
    frame = pd.DataFrame([{"seed": r.seed, "min of last 3 (%)": r.min_last} for r in ref.runs])
    dots = alt.Chart(frame).mark_circle(size=70, opacity=0.7).encode(
        x=alt.X("min of last 3 (%):Q", scale=alt.Scale(zero=False), axis=alt.Axis(format=".2f")), y=alt.value(15),
        tooltip=["seed", "min of last 3 (%)"])
    # the same field name as the dots', so the shared axis keeps one title
    rule = alt.Chart(pd.DataFrame({"min of last 3 (%)": [CHALLENGE.min_acc]})).mark_rule(
        color="#e4572e", strokeDash=[4, 3]).encode(x="min of last 3 (%):Q")
    # fit-x: the 30 px are the dots' own strip; Streamlit's default autosize counts the axis in them
    return (rule + dots).properties(height=30, autosize=alt.AutoSizeParams(type="fit-x", contains="padding"))


def frontier_section(entries: list[FrontierEntry], ref: StepReference | None) -> None:
    """How small can it get? Every candidate of the frontier search, one dot per seed: parameters
    against min(last 3) and a row per candidate, beside this step's own reference seeds."""
    if not entries:
        st.caption("How small can the network get? No frontier search recorded yet (`python -m core search`).")
        return
    st.markdown("**How small can it get?** The frontier search: each seed of each candidate a dot at the lowest of "
                f"its last {CHALLENGE.last_epochs} test accuracies, against the candidate's parameters; dashed: the "
                "challenge's line. Below, the same seeds a row per candidate.")
    stamp = assets_stamp()
    static_chart("frontier by params", stamp, lambda: frontier_params_chart(frontier_frame(entries, ref)))
    static_chart("frontier by candidate", stamp, lambda: frontier_chart(frontier_frame(entries, ref)))
    table, made = _frontier_table(stamp, entries)
    st.dataframe(table, hide_index=True, placeholder="—", width="stretch",
                 column_config={"open": st.column_config.LinkColumn("open", display_text="Design"),
                                "params": st.column_config.NumberColumn("params", format="localized")}
                 | {k: st.column_config.NumberColumn(k, format="%.2f") for k in ("lowest seed", "mean")})
    st.caption(f"Recorded {made.dates} on {', '.join(made.devices)}, torch {', '.join(made.torches)}; "
               f"{'; '.join(made.limits)}.")
    # one command a line: dozens of them strung into one caption could not be read or copied
    with st.expander(f"The {len(made.commands)} commands that recorded these runs"):
        st.code("\n".join(made.commands), language="bash", wrap_lines=True)


def frontier_frame(entries: list[FrontierEntry], ref: StepReference | None) -> pd.DataFrame:
    """The frontier's points, a row per seed of each candidate, and this step's own reference seeds."""
    rows = frontier_points(entries)
    if ref is not None:
        # no `held`: a reference row's colour is its own (with_verdicts looks at the stage first)
        rows += [{"candidate": f"step {ref.step} (reference)", "net": ref.first.config.net, "params": ref.params,
                  "seed": r.seed, "min_last": r.min_last, "stage": "reference"} for r in ref.runs if r.min_last]
    return pd.DataFrame(rows)


@st.cache_resource(max_entries=2, show_spinner=False)
def _frontier_table(stamp: tuple, _entries: list[FrontierEntry]) -> tuple[pd.DataFrame, FrontierProvenance]:
    """The frontier's table (shared by every session: nothing changes it) and its provenance."""
    table = pd.DataFrame(frontier_rows(_entries))
    # each candidate opens in Design with its network and recipe, ready to train or change
    table.insert(0, "open", [f"design?{urlencode(link_params(e.candidate.config(), 'full'))}" for e in _entries])
    return table, frontier_provenance(_entries)


FRONTIER_VERDICTS = {"reference": ("step 9's reference runs", "#29b09d"),
                     "held": ("held on every seed trained", "#0068c9"),  # and its design nowhere missed
                     "missed": ("missed on a seed", "#ff8700")}
FRONTIER_ROW_PX = 16


def with_verdicts(frame: pd.DataFrame) -> pd.DataFrame:
    """The frontier points with each candidate's row label and its verdict (frontier_points' `held`), or
    step 9's own reference runs."""
    frame = frame.assign(design=[f"{c} · {p:,}" for c, p in zip(frame["candidate"], frame["params"])])
    kind = ["reference" if stage == "reference" else "held" if ok else "missed"
            for stage, ok in zip(frame["stage"], frame["held"])]
    return frame.assign(verdict=[FRONTIER_VERDICTS[k][0] for k in kind])


def _verdict_colour(legend: bool) -> alt.Color:
    labels, colours = zip(*FRONTIER_VERDICTS.values())
    return alt.Color("verdict:N", scale=alt.Scale(domain=list(labels), range=list(colours)),
                     legend=alt.Legend(orient="bottom", title=None) if legend else None)


def _challenge_line(channel: str) -> alt.Chart:
    rule = alt.Chart(pd.DataFrame({"min_last": [CHALLENGE.min_acc]})).mark_rule(color="#e4572e", strokeDash=[4, 3])
    return rule.encode(**{channel: "min_last:Q"})


FRONTIER_TOOLTIP = ["candidate", "net", alt.Tooltip("params:Q", format=","), "seed",
                    alt.Tooltip("min_last:Q", format=".2f")]


def frontier_params_chart(frame: pd.DataFrame) -> alt.LayerChart:
    """Parameters against min(last 3), a dot per seed, coloured by its candidate's verdict (the candidate
    is in the tooltip: a dozen of them share 3,822 parameters)."""
    dots = alt.Chart(with_verdicts(frame)).mark_circle(size=40, opacity=0.5).encode(
        x=alt.X("params:Q", title="parameters", scale=alt.Scale(zero=False, padding=12),
                axis=alt.Axis(format=",.0f")),
        y=alt.Y("min_last:Q", title=f"min of last {CHALLENGE.last_epochs} (%)", scale=alt.Scale(zero=False),
                axis=alt.Axis(format=".2f", tickMinStep=0.05)),
        color=_verdict_colour(legend=False), tooltip=FRONTIER_TOOLTIP)
    return (_challenge_line("y") + dots).properties(
        height=220, autosize=alt.AutoSizeParams(type="fit-x", contains="padding"))


def frontier_chart(frame: pd.DataFrame) -> alt.LayerChart:
    """One row per candidate, largest at the top, each seed a dot on the min(last 3) axis beside the
    challenge's dashed line: where a design's worst seed falls below the line is where it breaks. (One
    colour per candidate could not tell thirty-odd apart, and a params axis piles up the dozen that share 3,822.)"""
    frame = with_verdicts(frame)
    order = frame.sort_values(["params", "candidate"], ascending=[False, True])["design"].unique().tolist()
    x = alt.X("min_last:Q", title=f"min of last {CHALLENGE.last_epochs} (%)", scale=alt.Scale(zero=False),
              axis=alt.Axis(format=".2f", orient="top", tickMinStep=0.05))
    dots = alt.Chart(frame).mark_circle(size=45, opacity=0.75).encode(
        x=x, y=alt.Y("design:N", sort=order, title=None, axis=alt.Axis(labelLimit=300)),
        color=_verdict_colour(legend=True), tooltip=FRONTIER_TOOLTIP)
    # fit-x: the rows keep their height; Streamlit's default autosize would squeeze them under the legend
    return (_challenge_line("x") + dots).properties(height=FRONTIER_ROW_PX * len(order),
                                                   autosize=alt.AutoSizeParams(type="fit-x", contains="padding"))


def ablation_table(results, earlier: str | None) -> None:
    first = results[0].runs[0].provenance
    st.markdown("**What each part of the recipe is worth** — the recipe with one part taken away, same seeds:")
    if earlier:
        st.caption(f"Measured on {earlier}; not yet rerun on the step as it is (`python -m core ablate`).")
    two_places = {k: st.column_config.NumberColumn(k, format="%.2f")
                  for k in ("min last 3: mean", "lowest seed", "highest seed")}
    st.dataframe(pd.DataFrame(ablation_rows(results)), hide_index=True, placeholder="—",
                 width="stretch", column_config=two_places | {
                     "params": st.column_config.NumberColumn("params", format="localized"),
                     "vs full recipe": st.column_config.NumberColumn("vs full recipe", format="%+.2f")})
    st.caption(f"`{first.command}` · {first.device} · torch {first.torch} · {first.date} · {first.limits}")


def reference_summary(ref: StepReference | None) -> None:
    if ref is None:
        st.markdown("- *Measured here:* no reference run yet (`python -m core reproduce` makes them).")
        return
    p = ref.first.provenance
    held = (f"min of the last {CHALLENGE.last_epochs} epochs {ref.min_last_spread}" if ref.min_last_spread
            else f"no min of the last {CHALLENGE.last_epochs} epochs ({len(ref.first.epochs)} run)")
    st.markdown(f"- *Measured here* ({p.limits}): {held}, best test "
                f"{ref.best_spread}; the challenge met by {sum(r.verdict(ref.params)[0] for r in ref.runs)} of "
                f"{counted(len(ref.runs), 'seed')}.")
    st.caption(f"`{p.command}` · {p.device} · torch {p.torch} · {p.date}")
    if len(ref.runs) > 1:
        st.dataframe(pd.DataFrame([{"seed": r.seed, "last 3 test %": " / ".join(f"{t:.2f}" for t in r.test_accs[-3:]),
                                    "min last 3": r.min_last, "best": r.best_test,
                                    "met": r.verdict(ref.params)[0]} for r in ref.runs]),
                     hide_index=True, placeholder="—", width="stretch", height="content",
                     column_config={k: st.column_config.NumberColumn(k, format="%.2f") for k in ("min last 3", "best")})
