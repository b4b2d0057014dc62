"""The live charts are plain Vega-Lite dicts (cheap to resend every second): they must be valid
specs (checked against altair's Vega-Lite schema) and show what the groups hold."""

import altair as alt
import pytest

from core.results.compare import Run, group_runs
from core.training.config import TrainConfig
from ui.charts import LEGEND_CHARS, batch_spec, history_specs, wrap_label


def epochs(accs):
    return [{"epoch": i + 1, "train_loss": 0.5 / (i + 1), "train_acc": a - 1, "test_loss": 0.4 / (i + 1),
             "test_acc": a} for i, a in enumerate(accs)]


@pytest.fixture
def groups():
    base = TrainConfig.for_step(9)
    reference = [Run(f"reference seed {s}", base.with_overrides(seed=s), epochs([98.0 + s / 10, 99.0 + s / 10]),
                     "reference") for s in (1, 2, 3)]
    live = Run("live 0", base.with_overrides(batchnorm=False), epochs([97.5]), "live")
    return group_runs([live, *reference])


def test_history_specs_are_valid_vega_lite_and_hold_every_group(groups):
    acc, loss = history_specs(groups, height=200)
    for spec in (acc, loss):
        alt.LayerChart.from_dict(spec)  # raises on a spec the schema does not allow
        assert spec["height"] >= 200  # the plot's 200 px, plus a row per legend entry
    values = acc["data"]["values"]
    assert {v["group"] for v in values} == {g.label for g in groups}
    assert {v["curve"] for v in values} == {"test", "train"}
    band = next(v for v in values if v["n"] == 3 and v["curve"] == "test" and v["epoch"] == 2)
    assert (band["low"], band["high"]) == (99.1, 99.3)  # the reference seeds' spread
    low, high = acc["layer"][1]["encoding"]["y"]["scale"]["domain"]
    assert low < 97.5 and 99.3 < high <= 100  # zoomed on the test curves, every one of them inside
    assert loss["layer"][1]["encoding"]["y"]["scale"] == {"type": "log"}


def test_a_long_legend_label_wraps_instead_of_running_off_the_chart():
    """A quick live run's label ("live: 2,560 images/epoch, tested on 7,724, seed 1") ran past a step
    page's half-width chart at 1280x720 and was cut; it is drawn as lines that fit."""
    config = TrainConfig.for_step(5).with_overrides(max_batches=20, test_limit=7724)
    reference = [Run(f"reference seed {s}", TrainConfig.for_step(5).with_overrides(seed=s), epochs([98.0, 99.0]),
                     "reference") for s in (1, 2)]
    groups = group_runs([Run("live 0", config, epochs([97.0]), "live"), *reference])
    long_label = groups[0].label
    assert len(long_label) > LEGEND_CHARS
    lines = wrap_label(long_label)
    assert len(lines) > 1 and all(len(line) <= LEGEND_CHARS for line in lines) and " ".join(lines) == long_label
    acc, _ = history_specs(groups, height=200)
    alt.LayerChart.from_dict(acc)
    color = acc["layer"][1]["encoding"]["color"]
    assert color["scale"]["domain"] == ["\n".join(lines), groups[1].label]
    assert color["legend"]["labelExpr"] == "split(datum.label, '\\n')"  # Vega draws the array as lines
    one_line, _ = history_specs(groups[1:], height=200)
    assert acc["height"] > one_line["height"] + 22  # room for the second entry and its second line


def test_nothing_to_draw_gives_no_chart():
    assert history_specs([]) == [None, None]


def test_the_batch_chart_is_valid_vega_lite():
    spec = batch_spec([{"step": 10, "epoch": 1, "loss": 1.2, "acc": 50.0, "lr": 0.01}], 110)
    alt.Chart.from_dict(spec)
    assert spec["data"]["values"][0]["loss"] == 1.2
    # Streamlit's default autosize ("fit") would count the title and axes in the height: a short live chart
    # then had a plot of no height (seen at 1280x720 during a run); fit-x keeps the height for the plot
    assert spec["autosize"] == {"type": "fit-x", "contains": "padding"} and spec["height"] == 110


def test_the_seed_strip_keeps_its_height_for_the_dots():
    """Step 9's twenty seeds on one min(last 3) axis: with Streamlit's default autosize the 30 px strip
    also held the axis, and the dots sat on the tick labels (seen at 1280x720)."""
    from core.results.reference import load_references
    from ui.step_page import seed_strip

    spec = seed_strip(load_references()[9]).to_dict()
    alt.LayerChart.from_dict(spec)
    assert spec["autosize"] == {"type": "fit-x", "contains": "padding"} and spec["height"] == 30
    assert sorted(len(rows) for rows in spec["datasets"].values()) == [1, 20]  # the line, one dot per seed


def test_a_chart_built_once_is_the_altair_chart_without_the_theme_altair_merges_in():
    """The step pages' static charts are sent as the Vega-Lite spec of their altair chart, built once: the
    same spec (valid under altair's schema) less the 300x300 view of altair's default theme, which
    st.altair_chart leaves out too."""
    from core.results.reference import load_references
    from ui.charts import vega_lite_spec
    from ui.step_page import seed_strip

    chart = seed_strip(load_references()[9])
    spec, full = vega_lite_spec(chart), chart.to_dict()
    alt.LayerChart.from_dict(spec)
    assert full["config"] == alt.theme.get()()["config"] and "config" not in spec
    assert spec == {k: v for k, v in full.items() if k != "config"}
    configured = vega_lite_spec(chart.configure_view(strokeWidth=0))  # a chart's own config stays
    assert configured["config"]["view"]["strokeWidth"] == 0


def test_points_below_the_zoomed_accuracy_axis_are_marked_on_its_edge():
    """Augmented train accuracy can sit far below the test curves the axis zooms on: those points are
    clamped to the bottom edge, and a triangle there says they lie below it (a flat line alone does not)."""
    base = TrainConfig.for_step(9)
    run = Run("live 0", base, epochs([99.0, 99.3, 99.4]), "live")  # train accuracy 98.0-98.4
    acc, loss = history_specs(group_runs([run]))
    alt.LayerChart.from_dict(acc)
    low, _ = acc["layer"][1]["encoding"]["y"]["scale"]["domain"]
    marks = acc["layer"][2]
    below = [v for v in acc["data"]["values"] if v["mean"] < low]
    assert {v["curve"] for v in below} == {"train"} and len(below) == 3
    assert marks["mark"]["shape"] == "triangle-down" and marks["transform"][0] == {"filter": f"datum.mean < {low!r}"}
    assert len(loss["layer"]) == 2  # a log scale leaves nothing out
    inside = Run("live 1", base, [{"epoch": 1, "train_loss": 0.1, "train_acc": 99.35, "test_loss": 0.1,
                                   "test_acc": 99.3}], "live")
    assert len(history_specs(group_runs([inside]))[0]["layer"]) == 2  # nothing below: no extra layer


def test_the_unseen_seed_chart_sets_the_two_networks_side_by_side_and_colours_each_seed():
    """Step 9's page: a row per network, a dot per min(last 3) as large as the seeds that share it, coloured
    by whether they held, the challenge's line beside."""
    import pandas as pd

    from ui.step_page import unseen_chart

    rows = [{"network": "step 9 · 5,648", "seed": s, "min_last": low, "held": low >= 99.4}
            for s, low in ((47, 99.47), (48, 99.47), (49, 99.47), (68, 99.39))] + \
           [{"network": "wide · 5,832", "seed": s, "min_last": low, "held": True}
            for s, low in ((47, 99.54), (68, 99.5))]
    spec = unseen_chart(pd.DataFrame(rows)).to_dict()
    alt.LayerChart.from_dict(spec)
    dots = next(rows for rows in spec["datasets"].values() if len(rows) == 4)
    assert [(d["min_last"], d["seeds"], d["count"], d["verdict"]) for d in dots] == [
        (99.47, "47-49", 3, "held"), (99.39, "68", 1, "below the line"), (99.54, "47", 1, "held"),
        (99.5, "68", 1, "held")]
    assert spec["layer"][1]["encoding"]["y"]["sort"] == ["step 9 · 5,648", "wide · 5,832"]  # step 9 on top
    assert spec["height"] == 72


def test_a_compared_run_keeps_its_colour_when_a_live_run_joins_it(groups):
    """The class watched the reference curve in one colour: pressing Train must not repaint it. The live
    run has a colour of its own, whatever its place in the legend."""
    def colours(spec):
        scale = spec["layer"][1]["encoding"]["color"]["scale"]
        return dict(zip(scale["domain"], scale["range"]))

    reference = next(g for g in groups if not g.live)
    before = colours(history_specs([reference])[0])
    during = colours(history_specs(groups)[0])
    live = next(g for g in groups if g.live)
    assert during[reference.label] == before[reference.label]
    assert during[live.label] not in before.values() and len(set(during.values())) == len(during)


def test_the_inside_picture_is_valid_vega_lite_and_averages_each_span_of_steps():
    """A layer x time heat map: each cell the mean of its span's samples (checked by hand here), layers in
    the network's order, a diverged (NaN) sample left out, and a spec altair's schema accepts."""
    from core.training.inside import Sample, layer_grid, layer_order
    from ui.inside import inside_spec, shared_domain

    samples = [Sample(step, 1, {"conv1": {"act_std": float(step)}, "relu1": {"act_std": 1.0, "zero_frac": 0.5}})
               for step in range(10, 130, 10)]  # 12 samples, steps 10..120
    samples[3] = Sample(40, 1, {"conv1": {"act_std": float("nan")}, "relu1": {"act_std": 1.0, "zero_frac": 0.5}})
    cells = layer_grid(samples, "act_std", columns=4)  # 12 samples in 4 runs of 3
    conv = sorted((c["start"], c["end"], c["value"]) for c in cells if c["layer"] == "conv1")
    # (10+20+30)/3; (50+60)/2 without the NaN; ...; each cell ends where the next begins, the last a sample later
    assert conv == [(10, 40, 20.0), (40, 70, 55.0), (70, 100, 80.0), (100, 130, 110.0)]
    assert sorted((c["start"], c["end"]) for c in layer_grid(samples[:3], "act_std") if c["layer"] == "relu1") == [
        (10, 20), (20, 30), (30, 40)]  # fewer samples than columns: a cell each
    assert layer_order(samples) == ["conv1", "relu1"]
    assert layer_grid(samples, "grad_norm") == [] and layer_grid([], "act_std") == []
    domain = shared_domain([cells, layer_grid(samples[:2], "act_std")], "act_std")
    assert domain == (1.0, 110.0)
    for metric in ("act_std", "act_mean", "zero_frac"):
        spec = inside_spec(layer_grid(samples, metric), metric, layer_order(samples), domain, "run 1")
        alt.Chart.from_dict(spec)
    assert inside_spec(cells, "zero_frac", ["conv1"], domain, "t")["encoding"]["color"]["scale"]["domain"] == [0, 1]
    assert inside_spec(cells, "act_std", layer_order(samples), domain, "t")["encoding"]["y"]["sort"] == ["conv1", "relu1"]


def test_the_filters_picture_puts_each_filter_in_its_place_in_its_colour_and_the_weights_chart_is_valid():
    """Red for the largest positive weight, blue for the most negative, white for zero, a column per filter and
    a row per snapshot; the weight bands are a faceted spec altair's schema accepts."""
    from core.training.inside import Sample
    from ui.inside import CELL, GAP, filters_image, weight_band_rows, weights_spec

    up = [[1.0, 0.0], [0.0, 0.0]]
    down = [[-0.5, 0.0], [0.0, -1.0]]
    snapshots = [Sample(1, 1, {}, [up, down]), Sample(9, 1, {}, [down, up])]
    image = filters_image(snapshots)
    side = 2 * CELL
    assert image.shape == (2 * side + GAP, 2 * side + GAP, 3)
    assert tuple(image[0, 0]) == (255, 0, 0) and tuple(image[side - 1, side - 1]) == (255, 255, 255)  # 1, then 0
    assert tuple(image[side - 1, side + GAP + side - 1]) == (0, 0, 255)  # filter 2's -1, bottom right
    assert tuple(image[side + GAP, 0]) == (127, 127, 255)  # the second snapshot's first filter starts at -0.5
    assert tuple(image[side, 0]) == (255, 255, 255)  # the gap between rows
    rows = weight_band_rows([Sample(10, 1, {"conv1": {"w_p05": -0.2, "w_p25": -0.1, "w_p50": 0.0, "w_p75": 0.1,
                                                      "w_p95": 0.2}, "relu1": {"zero_frac": 0.5}})])
    assert rows == [{"layer": "conv1", "step": 10, "w_p05": -0.2, "w_p25": -0.1, "w_p50": 0.0, "w_p75": 0.1, "w_p95": 0.2}]
    alt.FacetChart.from_dict(weights_spec(rows, ["conv1", "relu1"]))
