"""Command line: `python -m core {steps,summary,rf,train,runs,inspect,export,bench,ablate,reproduce} ...`.

With --json, exactly one JSON document goes to stdout; progress and messages go to stderr.
Bad input ends with exit code 2 and one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any, Sequence

from core.architecture.spec import MNIST_SIDE, SpecError
from core.results.ablation import ABLATIONS
from core.results.reference import ReferenceFileError
from core.serving.cluster import ClusterError
from core.serving.store import SOURCES, STATUSES, StoreError
from core.training.augmentation import AugmentConfig
from core.training.data import DataError
from core.training.recipe import OPTIMIZERS, SCHEDULES
from core.training.steps import FINAL_STEP

EXIT_BAD_INPUT = 2
NET_HELP = ("a network in the notation c<channels>[k<kernel>][s<stride>][p<padding>][d<dilation>][g<groups>][b] "
            "(convolution; g<channels> is depthwise), "
            "M / A[<size>] (max / average pool), and last G (GAP + 1x1) or F (one convolution over the last grid), "
            "comma-separated, e.g. 'c8,c8,M,c12,c12,c12,c12,G' (see docs/cli.md)")


class CleanParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (not usage + error)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"error: {message} (see `{self.prog} --help`)\n")


def _add_toggles(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bn", dest="batchnorm", action=argparse.BooleanOptionalAction, default=None,
                   help="BatchNorm after every convolution (default: the step's own setting)")
    p.add_argument("--dropout", type=float, default=None, metavar="P",
                   help="dropout rate after every convolution block, 0 = off (default: the step's)")
    p.add_argument("--gap", action=argparse.BooleanOptionalAction, default=None,
                   help="global-average-pooling head; --no-gap uses one convolution over the whole last grid")


def _add_data(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", default=None, help="MNIST root (holds MNIST/raw/); default $MNIST_DIR or ./data")
    p.add_argument("--no-download", action="store_true", help="never try to download MNIST")


def _add_recipe(p: argparse.ArgumentParser) -> None:
    p.add_argument("--epochs", type=int, default=None, help="default: the step's recipe (15)")
    p.add_argument("--lr", type=float, default=None, help="(peak) learning rate; default: the step's recipe")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=None)
    p.add_argument("--schedule", choices=SCHEDULES, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--weight-decay", type=float, default=None)
    p.add_argument("--no-augment", action="store_true", help="train without the step's augmentation")
    p.add_argument("--clean-fraction", type=float, default=None,
                   help="train the last fraction of the run on un-augmented images; default: the step's recipe")
    p.add_argument("--ema", type=float, default=None,
                   help="test a moving average of the weights with this decay (0 = off); default: the step's recipe")
    p.add_argument("--label-smoothing", type=float, default=None,
                   help="aim for 1 - S on the true class, S spread over all ten (0 = off); default: the step's recipe")
    p.add_argument("--settle-fraction", type=float, default=None,
                   help="one-cycle: end the anneal this fraction of the run early and keep its lowest rate "
                        "(0 = off); default: the step's recipe")


def _add_model(p: argparse.ArgumentParser) -> None:
    p.add_argument("--step", type=int, default=FINAL_STEP, help="a step's shipped reference weights (assets/models/)")
    p.add_argument("--run", type=int, default=None, help="instead: a stored run (see `python -m core runs list`)")
    p.add_argument("--runs-db", default=None)


def _steps_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("steps", help="list the nine lifecycle steps")
    p.add_argument("--json", action="store_true")


def _summary_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("summary", help="per-layer table of one step or design: shapes, params, receptive field")
    p.add_argument("--step", type=int, default=None, help="a lifecycle step (or give --net)")
    p.add_argument("--net", default=None, help=NET_HELP)
    _add_toggles(p)
    p.add_argument("--json", action="store_true")


def _rf_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("rf", help="receptive-field table of any layer stack given as JSON",
                       description="Layers: conv (out_channels, kernel_size=3, stride=1, padding=0, dilation=1, "
                                   "groups=1, bias=false), maxpool/avgpool (kernel_size=2, stride=kernel_size, "
                                   "padding=0), "
                                   "gap, bn, relu, dropout (p), flatten, linear (out_features), softmax. "
                                   "Input is 1 channel. Example: "
                                   '\'[{"type":"conv","out_channels":8},{"type":"maxpool"},{"type":"gap"}]\'')
    p.add_argument("--layers", default=None, help="JSON list of layer objects, or @file.json")
    p.add_argument("--net", default=None, help="instead of --layers: " + NET_HELP)
    p.add_argument("--input-size", type=int, default=MNIST_SIDE)
    p.add_argument("--json", action="store_true")


def _train_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train one step or design on MNIST (recorded in the run store)")
    p.add_argument("--step", type=int, default=FINAL_STEP, help="the step (with --net: the step whose recipe the design uses)")
    p.add_argument("--net", default=None, help="train this network instead of the step's own: " + NET_HELP)
    _add_toggles(p)
    _add_recipe(p)
    p.add_argument("--seed", type=int, default=1)
    _add_data(p)
    p.add_argument("--max-batches", type=int, default=None, help="cap on batches per epoch, for quick runs")
    p.add_argument("--train-fraction", type=float, default=None, help="use this fraction of the 60k training images")
    p.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps")
    p.add_argument("--runs-db", default=None, help="run store: a file or a postgresql:// URL; default $LIFECYCLE_RUNS "
                                                   "or runs/runs.sqlite3")
    p.add_argument("--no-record", action="store_true", help="do not record this run in the run store")
    _add_cluster(p)
    p.add_argument("--json", action="store_true")


def _add_cluster(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cluster", default=None, metavar="HOST:PORT",
                   help="train on this Ray cluster (default $RAY_ADDRESS; unset: this machine)")
    p.add_argument("--fallback-local", action="store_true",
                   help="when the cluster cannot be reached, train on this machine instead of stopping")
    p.add_argument("--cpus-per-run", type=int, default=None, help="CPUs a run asks the cluster for (default 1)")


def _runs_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("runs", help="the run store: list, show or delete recorded runs")
    p.add_argument("action", choices=("list", "show", "delete"))
    p.add_argument("id", nargs="?", type=int, help="run id (show, delete)")
    p.add_argument("--step", type=int, default=None)
    p.add_argument("--status", choices=STATUSES, default=None)
    p.add_argument("--source", choices=SOURCES, default=None)
    p.add_argument("--runs-db", default=None)
    p.add_argument("--json", action="store_true")


def _inspect_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("inspect", help="a trained network on all test images: accuracy, confusion, mistakes, timing")
    _add_model(p)
    _add_data(p)
    p.add_argument("--preprocess-check", action="store_true",
                   help="also push every test digit, padded, shifted and rescaled, through the drawing/upload "
                        "preprocessing and count how many correct predictions it keeps")
    p.add_argument("--json", action="store_true")


def _export_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="write a trained network's weights, a standalone model.py and its config")
    _add_model(p)
    p.add_argument("--out", required=True, help="folder for weights.pt, model.py and config.json (created if missing)")
    p.add_argument("--json", action="store_true")


# `bench` has one subcommand per benchmark, each with only its own options. The spellings of before
# (`bench --browsers 4,8`, one parser of 22 options with eight "instead" modes) still work: `modern_bench`
# rewrites them, and the command says the new one.
BENCH_MODES = {"--browsers": ("browsers", "--pages"), "--sessions": ("queue", "--sessions"),
               "--seed-groups": ("groups", "--sizes"), "--whole-process": ("process", "--repeats"),
               "--gpu-report": ("gpu", None), "--board": ("board", "--runs"), "--cost-model": ("cost-model", None)}
BENCH_SUBCOMMANDS = ("epoch", "queue", "browsers", "groups", "process", "gpu", "inside", "board", "cost-model",
                     "threads", "class")


def modern_bench(argv: list[str]) -> tuple[list[str], str | None]:
    """`bench` argv in the old spelling -> the subcommand's (and the new spelling, to say), else as is."""
    if not argv or argv[0] != "bench" or (len(argv) > 1 and argv[1] in BENCH_SUBCOMMANDS + ("-h", "--help")):
        return argv, None
    rest = list(argv[1:])
    mode, index = next(((BENCH_MODES[a.split("=")[0]], i) for i, a in enumerate(rest) if a.split("=")[0] in BENCH_MODES),
                       (("epoch", None), None))
    if index is not None:
        flag = rest.pop(index)
        if mode[1] is not None:
            value = flag.split("=", 1)[1] if "=" in flag else rest.pop(index) if index < len(rest) else ""
            rest[index:index] = [mode[1], value]
    new = ["bench", mode[0], *rest]
    return new, "python -m core " + " ".join(shlex.quote(a) for a in new)


def _bench_command(sub: argparse._SubParsersAction) -> None:
    bench = sub.add_parser("bench", help="benchmarks that print figures: `bench epoch`, `bench browsers`, ... "
                                         "(`bench SUBCOMMAND --help` for each one's options)")
    modes = bench.add_subparsers(dest="bench", required=True, parser_class=CleanParser)

    def mode(name: str, text: str, data: bool = True) -> argparse.ArgumentParser:
        p = modes.add_parser(name, help=text)
        if data:
            _add_data(p)
        p.add_argument("--json", action="store_true")
        return p

    p = mode("epoch", "images/s and s/epoch: this project's pipeline against the write-up's recipe")
    p.add_argument("--batches", type=int, default=None, help="time only this many training batches per pipeline")
    p.add_argument("--device", default="cpu")
    p.add_argument("--variants", action="store_true",
                   help="also time every speed option (threads, channels_last, torch.compile, augmentation kernel, "
                        "evaluation batch size, folded BatchNorm) side by side")
    p.add_argument("--skip", default="", help="variants to leave out, e.g. compile")
    p = mode("queue", "this many quick runs submitted at once through the app's run queue, against the same runs "
                      "back to back")
    p.add_argument("--sessions", type=int, required=True)
    p.add_argument("--batches", type=int, default=None, help="batches per run (default 60)")
    p.add_argument("--cluster", default=None, metavar="HOST:PORT", help="submit the runs to this Ray cluster")
    p.add_argument("--cpus-per-run", type=int, default=1, help="with --cluster: CPUs each run asks for")
    p = mode("browsers", "real Chromium sessions against a fresh app server: N pages press Train at once, timed "
                         "against the same runs back to back; then one run with --watchers pages watching")
    p.add_argument("--pages", required=True, metavar="N,N", help="pages pressing Train at once, e.g. 4,8")
    p.add_argument("--watchers", default="0,1,5", help="extra watching pages to time one run with")
    p.add_argument("--step", type=int, default=FINAL_STEP, help="the step page to train on")
    p.add_argument("--query", default="", help="the page's link settings, e.g. 'epochs=2&budget=full'")
    p = mode("groups", "seed-images/s of step 9 trained as one group of G seeds")
    p.add_argument("--sizes", required=True, metavar="G,G", help="group sizes, e.g. 1,3,8,20")
    p.add_argument("--batches", type=int, default=None, help="batches per seed (default 100)")
    p.add_argument("--device", default="cpu")
    p = mode("process", "one epoch as a whole process (start-up included), `python -m core train` against the "
                        "write-up's recipe, alternating")
    p.add_argument("--repeats", type=int, required=True, help="times each (1 to 20)")
    p.add_argument("--net", default=None, help="train this network as step 9")
    p = mode("gpu", "the GPU report (step 9 for 15 epochs, 20 seeds at once, step 1's full run, Train to first "
                    "chart) -> --report; needs a CUDA GPU unless --batches cuts every run short")
    p.add_argument("--batches", type=int, default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--report", default="assets/bench/gpu_report.json")
    p.add_argument("--references", default="assets/reference_runs.json",
                   help="where step 1's full run is merged ('' = nowhere)")
    p = mode("inside", "what looking inside the network costs: training images/s with and without the probe")
    p.add_argument("--steps", default=str(FINAL_STEP), metavar="N,N", help="the steps to time, e.g. 1,4,9")
    p.add_argument("--batches", type=int, default=200, help="batches per timing")
    p.add_argument("--repeats", type=int, default=3, help="alternating timings of each")
    p = mode("board", "the class board's refresh on a store of this many runs (no data needed)", data=False)
    p.add_argument("--runs", type=int, required=True)
    mode("cost-model", "time training and evaluation of many networks and fit the cost model that sizes quick runs "
                       "(core/training/budget.py)")
    p = mode("threads", "images/s of step 9 against threads, and against runs at once splitting the cores: the curve a "
                        "CPU server shares its cores by (--save: assets/bench/threads.json)")
    p.add_argument("--cores", type=int, default=None, help="the cores to split (default: this machine's)")
    p.add_argument("--batches", type=int, default=400, help="batches of 64 a timing")
    p.add_argument("--repeats", type=int, default=3, help="timings of each (the median is kept)")
    p.add_argument("--save", action="store_true", help="write the curve the server reads")
    p.add_argument("--expect", default=None, metavar="N,N",
                   help="measure nothing: what the saved curve's model expects on servers of N cores, e.g. 8,16,64")
    p.add_argument("--students", type=int, default=30, help="with --expect: quick step-9 runs pressed at once")
    p = mode("class", "N students press Train on a quick step-9 run at once: some as real Chromium pages, the rest "
                      "submitted from pages that then close; with the cores shared, then one run at a time")
    p.add_argument("--students", type=int, required=True)
    p.add_argument("--browsers", type=int, default=None, help="students with a Chromium page that watches (default: all)")
    p.add_argument("--query", default="", help="the step page's link settings, e.g. 'epochs=1'")
    p.add_argument("--settings", default="shared,one-at-a-time",
                   help="the server settings to time, in order; repeat them to alternate (the medians are compared)")


def _ablate_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ablate", help="the final recipe with one part taken away at a time, over several seeds")
    _add_data(p)
    p.add_argument("--step", type=int, default=FINAL_STEP)
    p.add_argument("--seeds", default="1,2,3")
    p.add_argument("--only", default=None, help="comma-separated variants (default: all): "
                   + ", ".join(a.name for a in ABLATIONS))
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--budget", type=float, default=None, help="cap each run at about this many seconds (labelled)")
    p.add_argument("--output", default="assets/ablation.json")
    p.add_argument("--merge", action="store_true", help="keep other variants and seeds already in --output")
    p.add_argument("--together", type=int, default=None, metavar="N",
                   help="train at most N seeds side by side as one grouped network (default: all on a GPU, 8 on a CPU)")
    p.add_argument("--json", action="store_true")


def _reproduce_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("reproduce", help="reference runs on MNIST -> assets/reference_runs.json and LIFECYCLE.md")
    _add_data(p)
    p.add_argument("--steps", default="1-9", help="e.g. 1-9, 2,5,9")
    p.add_argument("--seeds", default="1", help="one or several seeds per step, e.g. 1,2,3")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for this process (e.g. 1, to run two reproduce processes side by side)")
    p.add_argument("--budget", type=float, default=None,
                   help="cap each run at about this many seconds (fewer batches per epoch, labelled as reduced)")
    p.add_argument("--output", default="assets/reference_runs.json")
    p.add_argument("--markdown", default="LIFECYCLE.md")
    p.add_argument("--epochs", type=int, default=None,
                   help="train fewer epochs than the recipe's, on all the data (labelled reduced), e.g. step 1 "
                        "on a CPU")
    p.add_argument("--together", type=int, default=None, metavar="N",
                   help="train at most N seeds side by side as one grouped network (default: all on a GPU, 8 on a CPU)")
    p.add_argument("--weights-dir", default="assets/models",
                   help="where the tested weights of the first seed go (models under 100k parameters); '' = nowhere")
    p.add_argument("--merge", action="store_true",
                   help="keep the other steps in --output, and runs of the same recipe with other seeds")
    p.add_argument("--markdown-only", action="store_true",
                   help="train nothing: regenerate --markdown from the runs already in --output")


def _search_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="the frontier search: how small a network holds the challenge on every seed "
                                      "-> assets/frontier.json")
    _add_data(p)
    p.add_argument("--only", default=None, help="comma-separated candidates (default: the whole family)")
    p.add_argument("--seeds", default="1-3", help="seeds to train each candidate on (default 1-3: the screen)")
    p.add_argument("--confirm", type=int, default=None, metavar="N",
                   help="instead of --only: the N smallest candidates whose screened seeds all held, on --seeds "
                        "(give --seeds 1-20)")
    p.add_argument("--list", action="store_true", help="train nothing: print the family and what is recorded")
    p.add_argument("--check", action="store_true",
                   help="write nothing: train the --only candidates' recorded --seeds again as the file says they "
                        "were trained (seed group, thread count) and compare every epoch; exit 1 if one differs")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--together", type=int, default=None, metavar="N",
                   help="train at most N seeds side by side as one grouped network (default: all on a GPU, 8 on a CPU)")
    p.add_argument("--output", default="assets/frontier.json")
    p.add_argument("--json", action="store_true")


def _exercises_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("exercises", help="add the ready set of exercise links, one per step, to the run store "
                                         "and print them (assets/exercises.json)")
    p.add_argument("--runs-db", default=None, help="the server's run store (default: $LIFECYCLE_RUNS or runs/)")


def _lr_find_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("lr-find", help="the learning-rate range test: a few hundred batches at a rising rate, "
                                       "the loss against the rate, and the rate where it falls fastest")
    p.add_argument("--step", type=int, default=FINAL_STEP, help="the step (its network, optimiser and batch size)")
    p.add_argument("--net", default=None, help=NET_HELP)
    _add_toggles(p)
    _add_data(p)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--batches", type=int, default=200, help="batches trained (10 to 2,000)")
    p.add_argument("--lr-min", type=float, default=1e-4)
    p.add_argument("--lr-max", type=float, default=10.0)
    p.add_argument("--output", default=None, help="also write the result, with its provenance, to this JSON file "
                                                   "(assets/lr_find/step_9.json is the one step 9's lesson quotes)")
    p.add_argument("--json", action="store_true")


def _robustness_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("inside", help="a step as it is and with one toggle or part of its recipe flipped, on the same "
                                      "seeds, looking inside the network: each layer's means, over the run and epoch by "
                                      "epoch, for the lesson (--output assets/inside/step_N.json)")
    p.add_argument("--step", type=int, required=True)
    p.add_argument("--flip", default="bn", help="what to flip: a toggle (bn, dropout, gap), or one-cycle (a constant "
                                                "0.01 instead) or augment (none instead), as the ablation does")
    p.add_argument("--seeds", default="1,2,3")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--max-batches", type=int, default=None, help="batches per epoch (default: every image)")
    p.add_argument("--output", default=None, help="write the figures, with their provenance, to this JSON file")
    _add_data(p)
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("robustness", help="a trained network's accuracy on test digits against the budget of an "
                                          "L-infinity attack (FGSM or PGD): how little it takes to fool it")
    _add_model(p)
    _add_data(p)
    p.add_argument("--digits", type=int, default=1000, help="the first N test digits (1 to 10,000)")
    p.add_argument("--budgets", default="0,0.02,0.05,0.1,0.15,0.2,0.25,0.3",
                   help="L-infinity budgets in pixel units (1 = black to white), comma-separated")
    p.add_argument("--attack", choices=("fgsm", "pgd"), default="fgsm")
    p.add_argument("--name", default=None, help="the curve's label (default: the network's, e.g. 'Run 12: step 9')")
    p.add_argument("--output", default=None, help="merge the curve, with its provenance, into this JSON file "
                                                   "(assets/robustness.json is the one the Inspect page draws)")
    p.add_argument("--json", action="store_true")


def _screenshots_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("screenshots", help="the README's and the lesson plan's pictures, from the running app "
                                           "(Chromium; trains one quick run)")
    p.add_argument("--data-dir", default=None, help="an MNIST folder (see --data-dir of train)")
    p.add_argument("--out", default="docs/img")


COMMAND_PARSERS = (_steps_command, _summary_command, _rf_command, _train_command, _runs_command, _inspect_command,
                   _export_command, _bench_command, _ablate_command, _reproduce_command, _search_command,
                   _screenshots_command, _exercises_command, _lr_find_command, _robustness_command)


def build_parser() -> argparse.ArgumentParser:
    parser = CleanParser(prog="python -m core", description="Tiny-CNN lifecycle engine: nine MNIST steps as data.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=CleanParser)
    for add_command in COMMAND_PARSERS:
        add_command(sub)
    return parser


def emit(doc: Any) -> None:
    json.dump(doc, sys.stdout, indent=2)
    sys.stdout.write("\n")


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def set_threads(threads: int | None) -> None:
    if threads is not None:
        if threads < 1:
            raise ValueError(f"--threads must be at least 1, got {threads}")
        import torch
        torch.set_num_threads(threads)


# --- commands -----------------------------------------------------------------------------------

def cmd_steps(args: argparse.Namespace) -> None:
    from core.report.views import step_overview

    rows = step_overview()
    if args.json:
        emit(rows)
        return
    print(f"{'#':>2}  {'title':<52} {'params':>10} {'RF':>4}")
    for r in rows:
        print(f"{r['number']:>2}  {r['title']:<52} {r['params']:>10,} {r['rf']:>4}")


def _print_layers(layers: list[dict[str, Any]], params: int) -> None:
    print(f"{'layer':<12} {'k':>3} {'s':>3} {'p':>3} {'d':>3} {'g':>4} {'output':>14} {'params':>10} {'RF':>5} {'jump':>5}")
    for row in layers:
        shape = "x".join(str(v) for v in row["out_shape"])
        print(f"{row['name']:<12} {row['kernel_size']:>3} {row['stride']:>3} {row['padding']:>3} {row['dilation']:>3} "
              f"{row['groups']:>4} {shape:>14} {row['params']:>10,} {row['rf']:>5} {row['jump']:>5}")
    print(f"total parameters: {params:,}")


def cmd_summary(args: argparse.Namespace) -> None:
    from core.report.views import describe_config

    if (args.step is None) == (args.net is None):
        raise ValueError("give either --step N or --net '...'")
    from core.training.config import TrainConfig

    step = FINAL_STEP if args.step is None else args.step  # a design takes the final step's recipe
    config = TrainConfig.for_step(step, net=args.net, batchnorm=args.batchnorm, dropout=args.dropout, gap=args.gap)
    doc = describe_config(config)
    emit(doc) if args.json else _print_layers(doc["layers"], doc["params"])


def cmd_rf(args: argparse.Namespace) -> None:
    from core.report.views import describe_config, describe_stack
    from core.training.config import TrainConfig

    if (args.layers is None) == (args.net is None):
        raise ValueError("give either --layers '[...]' or --net '...'")
    if args.net is not None:
        if args.input_size != MNIST_SIDE:
            raise ValueError("--net describes networks for 28x28 MNIST digits; use --layers for other input sizes")
        doc = describe_config(TrainConfig.for_step(FINAL_STEP, net=args.net))
        emit(doc) if args.json else _print_layers(doc["layers"], doc["params"])
        return
    text = args.layers
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"cannot read {text[1:]}: {exc.strerror}") from exc
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--layers is not valid JSON: {exc.msg} at character {exc.pos}") from exc
    doc = describe_stack(raw, args.input_size)
    emit(doc) if args.json else _print_layers(doc["layers"], doc["params"])


def train_config(args: argparse.Namespace):
    from core.training.config import TrainConfig

    return TrainConfig.for_step(
        args.step, net=args.net, batchnorm=args.batchnorm, dropout=args.dropout, gap=args.gap, epochs=args.epochs,
        seed=args.seed, lr=args.lr, optimizer=args.optimizer, schedule=args.schedule, batch_size=args.batch_size,
        weight_decay=args.weight_decay, max_batches=args.max_batches, train_fraction=args.train_fraction,
        device=args.device, augment=AugmentConfig() if args.no_augment else None,
        clean_fraction=args.clean_fraction, ema=args.ema, label_smoothing=args.label_smoothing,
        settle_fraction=args.settle_fraction)


def cmd_train(args: argparse.Namespace) -> int:
    from core.architecture.challenge import CHALLENGE
    from core.serving.record import CTRL_C, RunRecorder, open_store, start_recorded
    from core.training.budget import describe_limits
    from core.training.data import load_mnist
    from core.training.device import pick_device

    config = train_config(args)
    cluster = cluster_choice(args)
    if cluster.address is not None:
        return train_on_cluster(args, config, cluster)
    data = load_mnist(args.data_dir, download=not args.no_download, device=pick_device(config.device))
    store = None if args.no_record else open_store(args.runs_db, progress)
    recipe = config.recipe
    limits = describe_limits(config, len(data.train_images), len(data.test_images))
    run = start_recorded(config, data, RunRecorder(store, progress), "cli", limits)
    params = run.params
    finish = "".join([f", last {recipe.clean_fraction:.0%} of the run un-augmented" if recipe.clean_fraction else "",
                      f", learning rate settled for the last {recipe.settle_fraction:.0%}" if recipe.settle_fraction
                      else "", f", testing a weight average (EMA {recipe.ema:g})" if recipe.ema else ""])
    what = f"design {config.net} (step {config.step}'s recipe)" if config.is_design else f"step {config.step}"
    progress(f"{what}, {params:,} parameters, on {run.device}: {limits}, augment: {recipe.augment.describe()}{finish}"
             + (f"; recorded as run {run.run_id} in {store.path}" if run.run_id is not None else ""))
    epochs: list[dict[str, Any]] = []
    final = None
    try:
        for event in run.events:
            if event.kind == "epoch":
                epochs.append(event.row())
                progress(f"epoch {event.epoch:>2}  train {event.train_loss:.4f} / {event.train_acc:6.2f} %   "
                         f"test {event.test_loss:.4f} / {event.test_acc:6.2f} %   lr {event.lr:.5f}   "
                         f"{event.seconds:5.1f} s  ({event.images_per_s:,.0f} img/s)")
            elif event.kind == "done":
                final = event
    except KeyboardInterrupt:  # recorded as stopped by the recorder; the epochs so far are printed
        pass
    reason = final.reason if final else CTRL_C
    passed, verdict = CHALLENGE.verdict(params, [e["test_acc"] for e in epochs], recipe.epochs)
    doc = {"params": params, "device": run.device, "config": config.as_dict(), "epochs": epochs,
           "stopped_reason": reason, "run_id": run.run_id, "challenge": {"passed": passed, "verdict": verdict}}
    progress(f"{reason}. {verdict}")
    if args.json:
        emit(doc)
    return 0 if reason == "completed" else 1


def cluster_choice(args: argparse.Namespace):
    from core.serving.cluster import ClusterChoice

    env = ClusterChoice.from_env()
    return ClusterChoice(args.cluster or env.address, args.fallback_local or env.fallback_local,
                         args.cpus_per_run or env.cpus_per_run)


def _print_epoch(e: dict[str, Any]) -> None:
    progress(f"epoch {e['epoch']:>2}  train {e['train_loss']:.4f} / {e['train_acc']:6.2f} %   "
             f"test {e['test_loss']:.4f} / {e['test_acc']:6.2f} %   lr {e['lr']:.5f}   "
             f"{e['seconds']:5.1f} s  ({e['images_per_s']:,.0f} img/s)")


def train_on_cluster(args: argparse.Namespace, config, cluster) -> int:
    """`train` through a Ray cluster: the run is queued like the app's, placed by Ray, and its epochs
    are printed as they arrive (Ctrl-C stops it after its current batch)."""
    from core.architecture.challenge import CHALLENGE
    from core.serving.cluster import local_executor, make_executor
    from core.serving.run_queue import Job, RunQueue
    from core.training.budget import describe_limits

    executor = make_executor(cluster, local_executor, progress)  # ClusterError: one line, exit 2
    queue = RunQueue(executor)
    where = executor.describe() if hasattr(executor, "describe") else "this machine"
    limits = describe_limits(config)
    job = queue.submit(Job(config, args.data_dir, not args.no_download, limits, db=args.runs_db, source="cli",
                           record=not args.no_record))
    progress(f"queued on {where}: {limits}")
    printed = 0
    try:
        while not job.wait(0.2) or printed < len(job.snapshot().epochs):
            snap = job.snapshot()
            for row in snap.epochs[printed:]:
                _print_epoch(row)
            printed = len(snap.epochs)
    except KeyboardInterrupt:
        job.stop()
        job.wait(60)
    finally:
        queue.close()
    snap = job.snapshot()
    for warning in snap.warnings:
        progress(warning)
    reason = snap.reason or snap.status
    passed, verdict = CHALLENGE.verdict(snap.params or 0, [e["test_acc"] for e in snap.epochs], config.recipe.epochs)
    progress(f"{reason} (run {snap.run_id} on {snap.device or 'the cluster'}). {verdict}")
    if args.json:
        emit({"params": snap.params, "device": snap.device, "config": config.as_dict(), "epochs": snap.epochs,
              "stopped_reason": reason, "run_id": snap.run_id, "challenge": {"passed": passed, "verdict": verdict}})
    return 0 if snap.status == "completed" else 1


def cmd_runs(args: argparse.Namespace) -> int:
    from core.serving.store import RunStore

    store = RunStore(args.runs_db)
    if args.action == "list":
        rows = [r.summary() for r in store.runs(args.step, args.status, args.source)]
        if args.json:
            emit(rows)
        else:
            print(f"{'id':>5} {'step':>4} {'seed':>5} {'status':<11} {'source':<6} {'started':<16} {'epochs':>6} "
                  f"{'best':>6} {'min3':>6}")
            for r in rows:
                print(f"{r['id']:>5} {r['step']:>4} {r['seed']:>5} {r['status']:<11} {r['source']:<6} {r['started']:<16} "
                      f"{r['epochs']:>6} {_pct(r['best_test_acc'])} {_pct(r['min_last3_test_acc'])}")
            print(f"{len(rows)} run(s) in {store.path}")
        return 0
    if args.id is None:
        raise ValueError(f"`runs {args.action}` needs a run id, e.g. `python -m core runs {args.action} 3`")
    if args.action == "show":
        found = store.get(args.id)
        if found is None:
            raise ValueError(f"no run {args.id} in {store.path}")
        doc = found.summary() | {"config": found.config.as_dict(), "epochs": list(found.epochs),
                                 "torch": found.torch, "has_weights": found.has_weights}
        emit(doc) if args.json else print(json.dumps(doc, indent=2))
        return 0
    deleted = store.delete_run(args.id)
    if not deleted:
        raise ValueError(f"no run {args.id} in {store.path}")
    emit({"deleted": args.id}) if args.json else progress(f"deleted run {args.id} from {store.path}")
    return 0


def _pct(value: float | None) -> str:
    return f"{value:6.2f}" if value is not None else f"{'-':>6}"


def trained_model(args: argparse.Namespace):
    from core.analysis.predictions import reference_model, stored_model
    from core.results.reference import load_references
    from core.serving.store import RunStore
    from core.training.steps import get_step

    if args.run is not None:
        return stored_model(RunStore(args.runs_db), args.run)
    get_step(args.step)
    ref = load_references().get(args.step)
    if ref is None:
        raise ValueError(f"no reference run of step {args.step}: train one and use --run ID")
    return reference_model(ref)


def cmd_inspect(args: argparse.Namespace) -> None:
    from core.analysis.predictions import predict
    from core.training.data import load_mnist

    trained = trained_model(args)
    data = load_mnist(args.data_dir, download=not args.no_download)
    model = trained.network()
    predict(model, data.test_images[:1000], data.test_labels[:1000])  # warm-up, as the app's second look would be
    result = predict(model, data.test_images, data.test_labels)
    mistakes = result.mistakes()
    doc = {"model": trained.name, "provenance": trained.provenance, "test_images": len(data.test_images),
           "accuracy": round(result.accuracy, 2), "batched_pass_seconds": round(result.seconds, 3),
           "per_class_accuracy": [round(a, 2) for a in result.per_class()],
           "confusion": result.confusion().tolist(),
           "most_confident_mistakes": [{"index": i, "true": int(result.labels[i]), "predicted": int(result.predicted[i]),
                                        "confidence": round(float(result.confidence[i]), 4)} for i in mistakes[:10]]}
    progress(f"{trained.name}: {doc['accuracy']:.2f} % of {len(data.test_images):,} test images, "
             f"{len(mistakes)} mistakes; one batched pass took {result.seconds:.2f} s")
    if args.preprocess_check:
        from core.analysis.preprocess import robustness_check
        doc["preprocess_check"] = robustness_check(model, data.test_images, data.test_labels)
        c = doc["preprocess_check"]
        progress(f"preprocessing check: of {c['correct_before']:,} digits read correctly as they are, "
                 f"{c['kept']:,} ({c['kept_percent']:.2f} %) still are after padding, shifting and rescaling "
                 "and the drawing/upload preprocessing")
    if args.json:
        emit(doc)


def cmd_export(args: argparse.Namespace) -> None:
    from core.analysis.export import export

    trained = trained_model(args)
    paths = export(trained, Path(args.out))
    progress(f"{trained.name} -> " + ", ".join(str(p) for p in paths))
    if args.json:
        emit({"model": trained.name, "files": [str(p) for p in paths]})


def cmd_bench(args: argparse.Namespace) -> None:
    from core.experiments.reproduce import parse_seeds

    if args.bench == "browsers":
        from core.experiments.bench_browser import run_browser_bench
        doc = run_browser_bench(args.data_dir, not args.no_download, parse_seeds(args.pages, "--pages") or [],
                                parse_seeds(args.watchers, "--watchers") or [], args.step, args.query, progress)
    elif args.bench == "process":
        from core.experiments.bench import run_whole_process
        doc = run_whole_process(args.data_dir, args.repeats, args.net, progress)
    elif args.bench == "gpu":
        from core.experiments.gpu_report import gpu_report
        doc = gpu_report(args.data_dir, not args.no_download, args.device, args.batches, args.report,
                         args.references or None, args.argv, progress)
    elif args.bench == "groups":
        from core.experiments.bench import run_group_bench
        doc = run_group_bench(args.data_dir, not args.no_download, parse_seeds(args.sizes, "--sizes") or [],
                              args.batches or 100, args.device, progress)
    elif args.bench == "inside":
        from core.experiments.bench import run_inside_bench
        doc = run_inside_bench(args.data_dir, not args.no_download, parse_seeds(args.steps, "--steps") or [],
                               args.batches, args.repeats, progress)
    elif args.bench == "board":
        from core.experiments.board_bench import board_bench
        if not 1 <= args.runs <= 1_000_000:
            raise ValueError(f"--runs takes 1 to 1,000,000 runs, got {args.runs}")
        doc = board_bench(args.runs, progress)
    elif args.bench == "cost-model":
        from core.experiments.bench import run_cost_model
        doc = run_cost_model(args.data_dir, not args.no_download, progress)
    elif args.bench == "queue":
        from core.experiments.bench import run_queue_bench
        doc = run_queue_bench(args.data_dir, not args.no_download, args.sessions, progress, args.batches or 60,
                              cluster=args.cluster, cpus_per_run=args.cpus_per_run)
    elif args.bench == "threads":
        from core.experiments.bench_threads import expectations, run_threads_bench
        if not 1 <= args.batches <= 100_000 or not 1 <= args.repeats <= 20:
            raise ValueError("--batches takes 1 to 100,000 and --repeats 1 to 20")
        if args.expect is not None:
            cores = parse_seeds(args.expect, "--expect") or []
            if not cores or not all(1 <= c <= 1024 for c in cores) or not 1 <= args.students <= 1000:
                raise ValueError("--expect takes core counts from 1 to 1,024, and --students 1 to 1,000")
            doc = expectations(cores, args.students, progress)
        else:
            doc = run_threads_bench(args.data_dir, args.cores, args.batches, args.repeats, args.save, progress)
    elif args.bench == "class":
        from core.experiments.bench_class import run_class_bench
        doc = run_class_bench(args.data_dir, args.students, args.browsers, args.query,
                              [s.strip() for s in args.settings.split(",") if s.strip()], progress)
    else:
        doc = bench_epoch(args)
    if isinstance(doc, dict):
        doc.setdefault("command", "python -m core " + " ".join(shlex.quote(a) for a in args.argv))
    if args.json:
        emit(doc)


def bench_epoch(args: argparse.Namespace) -> dict:
    from core.experiments.bench import VARIANTS, run_bench, run_variants

    doc = run_bench(args.data_dir, not args.no_download, args.device, args.batches, progress)
    if args.variants:
        skip = tuple(v.strip() for v in args.skip.split(",") if v.strip())
        unknown = set(skip) - set(VARIANTS)
        if unknown:
            raise ValueError(f"--skip knows {', '.join(VARIANTS)}; not {', '.join(sorted(unknown))}")
        doc["variants"] = run_variants(args.data_dir, not args.no_download, args.batches, progress, skip)
    return doc


def cmd_ablate(args: argparse.Namespace) -> None:
    from core.experiments.ablate import ablate
    from core.experiments.reproduce import parse_seeds
    from core.results.ablation import ABLATIONS, ablation_rows, get_ablation
    from core.training.steps import get_step

    get_step(args.step)
    names = [n.strip() for n in args.only.split(",") if n.strip()] if args.only else [a.name for a in ABLATIONS]
    for name in names:
        get_ablation(name)
    set_threads(args.threads)
    results = ablate(args.step, names, parse_seeds(args.seeds), args.data_dir, not args.no_download, args.device,
                     args.budget, args.output, args.merge, args.argv, progress, args.together)
    rows = ablation_rows(results)
    for row in rows:
        progress(f"  {row['taken away']:<70} min(last 3) {row['min last 3: mean']} "
                 f"({row['lowest seed']}-{row['highest seed']})  {row.get('vs full recipe', '')}")
    if args.json:
        emit(rows)


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f} %"


def cmd_search(args: argparse.Namespace) -> int | None:
    from core.experiments.reproduce import parse_seeds
    from core.experiments.search import promising, search
    from core.results.frontier import (
        CANDIDATES,
        frontier_rows,
        get_candidate,
        load_frontier,
    )

    entries = load_frontier(args.output)
    if args.list:
        recorded = {row["candidate"]: row for row in frontier_rows(entries)}
        name_width, net_width = max(len(c.name) for c in CANDIDATES), max(len(c.net) for c in CANDIDATES)
        for c in CANDIDATES:
            row = recorded.get(c.name)
            status = (f"{row['params']:,} params, {row['seeds']} seed(s), lowest {_percent(row['lowest seed'])}, "
                      f"held on {row['held on']}" if row else "not trained yet")
            progress(f"  {c.name:<{name_width}} {c.net:<{net_width}} {status}")
        if args.json:
            emit(list(recorded.values()))
        return
    if args.check:
        return check_frontier(args)
    if args.confirm is not None:
        if args.only:
            raise ValueError("give either --only or --confirm, not both")
        candidates = promising(entries, args.confirm)
        if not candidates:
            raise ValueError(f"no screened candidate in {args.output} held on all its seeds: nothing to confirm")
    else:
        candidates = [get_candidate(n.strip()) for n in args.only.split(",") if n.strip()] if args.only \
            else list(CANDIDATES)
    set_threads(args.threads)
    entries = search(candidates, parse_seeds(args.seeds) or [], args.data_dir, not args.no_download, args.device,
                     args.together, args.output, args.argv, progress)
    rows = frontier_rows(entries)
    for row in rows:
        progress(f"  {row['candidate']:<18} {row['params']:>6,} params  {row['seeds']:>2} seeds  lowest "
                 f"{_percent(row['lowest seed'])}  held on {row['held on']}")
    if args.json:
        emit(rows)


def check_frontier(args: argparse.Namespace) -> int:
    """`search --check`: the frontier file against its provenance."""
    from core.experiments.reproduce import parse_seeds
    from core.experiments.search import recheck
    from core.results.frontier import get_candidate

    if not args.only:
        raise ValueError("--check needs --only (the candidates to check) and --seeds (which of their seeds)")
    candidates = [get_candidate(n.strip()) for n in args.only.split(",") if n.strip()]
    checks = recheck(candidates, parse_seeds(args.seeds) or [], args.data_dir, not args.no_download, args.device,
                     args.threads, args.output, progress)
    if args.json:
        emit([{"candidate": c.candidate, "seed": c.recorded.seed, "group": list(c.group),
               "comparable": c.comparable, "differing_epochs": c.differing_epochs,
               "recorded_min_last": c.recorded.min_last, "min_last_now": c.again.min_last} for c in checks])
    same = sum(1 for c in checks if not c.differing_epochs)
    differ = sum(1 for c in checks if c.comparable and c.differing_epochs)
    progress(f"{same} of {len(checks)} run(s) identical to the file"
             + (f", {differ} differ" if differ else "")
             + (f", {len(checks) - same - differ} not comparable bit for bit" if len(checks) - same - differ else ""))
    return 1 if differ else 0


def cmd_reproduce(args: argparse.Namespace) -> None:
    from core.experiments.reproduce import parse_seeds, parse_steps, reproduce
    from core.report.markdown import write_lifecycle
    from core.results.reference import load_references

    if args.markdown_only:
        refs = load_references(args.output)
        if not refs:
            raise ValueError(f"no reference runs in {args.output}: run `python -m core reproduce` first")
        write_lifecycle(Path(args.markdown), refs)
        progress(f"wrote {args.markdown} from {len(refs)} step(s) in {args.output}")
        return
    set_threads(args.threads)
    reproduce(parse_steps(args.steps), parse_seeds(args.seeds), data_dir=args.data_dir, download=not args.no_download,
              device=args.device, budget=args.budget, output=args.output, markdown=args.markdown, merge=args.merge,
              argv=args.argv, log=progress, weights_dir=args.weights_dir or None, together=args.together,
              epochs=args.epochs)


def cmd_exercises(args: argparse.Namespace) -> None:
    from core.classroom import add_class_exercises
    from core.serving.store import RunStore, describe_db

    store = RunStore(args.runs_db)
    try:
        added = add_class_exercises(store)
    finally:
        store.close()
    print(f"Exercise links in {describe_db(args.runs_db)} (after the server's address, e.g. http://HOST:8501):")
    for exercise, number in added:
        print(f"  step {exercise.step}: /step_{exercise.step}?exercise={number}   open: "
              f"{', '.join(k for k in ('bn', 'gap', 'dropout', 'aug') if k not in exercise.locked) or 'nothing'}")
        print(f"      ask: {exercise.ask}")


def provenance(args: argparse.Namespace) -> dict[str, str]:
    """What a recorded figure says of where it came from: the command, the date, the CPU and torch."""
    import time

    import torch

    from core.training.device import processor_label

    return {"command": "python -m core " + " ".join(shlex.quote(a) for a in args.argv),
            "date": time.strftime("%Y-%m-%d"), "processor": processor_label(torch.device("cpu")),
            "torch": torch.__version__}


def cmd_inside(args: argparse.Namespace) -> None:
    import torch

    from core.experiments.inside_run import record_inside
    from core.experiments.reproduce import parse_seeds
    from core.training.data import load_mnist

    data = load_mnist(args.data_dir, download=not args.no_download)
    doc = record_inside(args.step, args.flip, parse_seeds(args.seeds) or [], args.epochs, args.max_batches, data,
                        progress)
    doc |= {"device": "cpu", "threads": torch.get_num_threads()} | provenance(args)
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    if args.json:
        emit(doc)
        return
    for variant in doc["variants"]:
        print(", ".join(f"{k} {v}" for k, v in variant["toggles"].items()))
        for layer, metrics in variant["layers"].items():
            print(f"  {layer:8}" + "  ".join(f"{m} {v:.3g}" for m, v in metrics.items()))


def cmd_lr_find(args: argparse.Namespace) -> None:
    import torch

    from core.analysis.lr_find import lr_find
    from core.training.config import TrainConfig
    from core.training.data import load_mnist

    if not 10 <= args.batches <= 2000 or not 0 < args.lr_min < args.lr_max:
        raise ValueError("--batches takes 10 to 2,000, and --lr-min must be above 0 and below --lr-max")
    config = TrainConfig.for_step(args.step, net=args.net, batchnorm=args.batchnorm, dropout=args.dropout,
                                  gap=args.gap, seed=args.seed, device="cpu")
    data = load_mnist(args.data_dir, download=not args.no_download)
    result = lr_find(config, data, args.batches, args.lr_min, args.lr_max)
    doc = {"step": config.step, "net": config.net, "recipe_lr": config.recipe.lr, "seed": config.seed,
           "device": "cpu", "threads": torch.get_num_threads()} | provenance(args) | result.as_dict()
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    if args.json:
        emit(doc)
        return
    shown = range(0, len(result.lrs), max(1, len(result.lrs) // 25))
    for i in shown:
        print(f"lr {result.lrs[i]:10.5f}   loss {result.losses[i]:8.4f}")
    print(f"steepest fall at lr {result.suggested:.4g}; lowest loss at {result.lowest:.4g}; "
          + (f"blew up at {result.diverged_at:.4g}" if result.diverged_at else "never blew up")
          + f"; the recipe's peak is {config.recipe.lr:g} ({len(result.lrs)} batches, {result.seconds:.1f} s)")


def cmd_robustness(args: argparse.Namespace) -> None:
    from core.analysis.attacks import robustness
    from core.results.robustness import merge_curve
    from core.training.augmentation import to_float
    from core.training.data import load_mnist

    budgets = tuple(float(b) for b in args.budgets.split(",") if b.strip())
    if not 1 <= args.digits <= 10_000 or not budgets or any(not 0 <= b <= 1 for b in budgets):
        raise ValueError("--digits takes 1 to 10,000, and --budgets numbers between 0 and 1")
    trained = trained_model(args)
    data = load_mnist(args.data_dir, download=not args.no_download)
    pixels, labels = to_float(data.test_images[:args.digits]), data.test_labels[:args.digits]
    curve = robustness(trained.network(), pixels, labels, tuple(sorted(budgets)), args.attack)
    doc = {"name": args.name or trained.name, "params": sum(p.numel() for p in trained.network().parameters()),
           "weights": trained.provenance} | provenance(args) | curve.as_dict()
    if args.output:
        merge_curve(Path(args.output), doc)
    if args.json:
        emit(doc)
        return
    print(f"{trained.name}: {args.attack} on the first {curve.digits:,} test digits ({curve.seconds:.1f} s)")
    for budget, accuracy in zip(curve.budgets, curve.accuracy):
        print(f"budget {budget:5.2f}   accuracy {accuracy:6.2f} %")


def cmd_screenshots(args: argparse.Namespace) -> None:
    from core.experiments.screenshots import take_screenshots
    from core.training.data import resolve_root, validate

    validate(resolve_root(args.data_dir))  # a missing MNIST is said here, not as a page that never trains
    take_screenshots(str(resolve_root(args.data_dir)), Path(args.out), progress)


COMMANDS = {"steps": cmd_steps, "summary": cmd_summary, "rf": cmd_rf, "train": cmd_train, "runs": cmd_runs,
            "inspect": cmd_inspect, "export": cmd_export, "bench": cmd_bench, "ablate": cmd_ablate,
            "search": cmd_search, "screenshots": cmd_screenshots, "exercises": cmd_exercises,
            "lr-find": cmd_lr_find, "inside": cmd_inside, "robustness": cmd_robustness,
            "reproduce": cmd_reproduce}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    argv, new_spelling = modern_bench(argv)
    if new_spelling is not None:
        print(f"note: `bench` takes a subcommand now; this is `{new_spelling}`", file=sys.stderr)
    args = build_parser().parse_args(argv)
    args.argv = argv  # what provenance records as the command
    try:
        return COMMANDS[args.command](args) or 0
    except (SpecError, DataError, ValueError, StoreError, ReferenceFileError, FileNotFoundError, OSError,
            ClusterError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
