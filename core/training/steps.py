"""The nine lifecycle steps as data: each one a network body, default toggles and a training recipe.

What the write-up this project grew from reported for each step (its lifecycle table) is kept in
`WriteupResult`, labelled as such; the lesson prose is in `assets/lessons/` (see core.report.lessons).
Bodies hold only convolutions and pools: BatchNorm, dropout and the head come from the toggles
(see `core.architecture.spec.expand`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from core.architecture.spec import ArchSpec, Layer, SpecError, Toggles, conv, expand, maxpool
from core.training.augmentation import AugmentConfig
from core.training.recipe import Recipe


@dataclass(frozen=True)
class WriteupResult:
    """What the write-up's lifecycle table reports for a step (not measured here)."""

    params: str
    best_train_acc: float
    best_test_acc: float
    note: str = ""


@dataclass(frozen=True)
class Step:
    number: int
    title: str
    spec: ArchSpec
    toggles: Toggles
    recipe: Recipe
    writeup: WriteupResult
    # bodies the step had before stored runs named their network (configs carry `net` since
    # 2026-12-02): a run recorded without one is matched to its body by its parameter count
    earlier: tuple[ArchSpec, ...] = ()

    def layers(self, toggles: Toggles | None = None) -> list[Layer]:
        return expand(self.spec, toggles or self.toggles)



# --- bodies -----------------------------------------------------------------------------------

# Step 1: the unconstrained baseline. Channels double every layer up to 1024; padded convs keep
# 28x28 for the first block, so it is both huge (6.4M weights) and slow.
BASELINE = ArchSpec(body=(
    conv(32, padding=1, bias=True), conv(64, padding=1, bias=True), maxpool(),
    conv(128, padding=1, bias=True), conv(256, padding=1, bias=True), maxpool(),
    conv(512, bias=True), conv(1024, bias=True),
), bias_in_head=True)

# Step 2: the skeleton we keep: expand (3x3) -> pool at RF 8 -> squeeze (1x1) -> expand again.
SKELETON = ArchSpec(body=(
    conv(16), conv(32), conv(64), maxpool(),
    conv(16, 1), conv(32), conv(64), conv(10, 1),
))

# Steps 3-6: the same skeleton with roughly a quarter of the weights.
LIGHT = ArchSpec(body=(
    conv(10), conv(16), conv(16), maxpool(),
    conv(10, 1), conv(16), conv(16), conv(10),
))

# Steps 7-8: pool earlier (at RF 6 instead of 8) and spend the saved weights after it.
EARLY_POOL = ArchSpec(body=(
    conv(10), conv(16), maxpool(),
    conv(10, 1), conv(20), conv(20), conv(16), conv(16),
))

# Step 9: no padding anywhere (every 3x3 conv trims the border MNIST leaves empty), pool at RF 6,
# four 3x3 convs after it (cheap on 12x12 grids and smaller) to RF 22, then GAP. 12 channels after
# the pool, not 16: with weight decay in the recipe this 5,648-parameter network held on every seed
# the 9,032-parameter one did (assets/frontier.json, narrow12-wd). The lesson file says why.
FINAL = ArchSpec(body=(
    conv(8), conv(8), maxpool(),
    conv(12), conv(12), conv(12), conv(12),
))
# step 9 until 2026-12-03: 16 channels after the pool (9,032 parameters), no weight decay
FINAL_16 = ArchSpec(body=(
    conv(8), conv(8), maxpool(),
    conv(16), conv(16), conv(16), conv(16),
))

# --- recipes ----------------------------------------------------------------------------------

PLAIN = Recipe()
ROTATE = Recipe(augment=AugmentConfig(rotation=7.0))
# Augment hard for the first 75 % of the run, finish on clean digits, test a weight average. Weight
# decay behind BatchNorm does not shrink what the network computes; it raises the effective step size.
FINAL_RECIPE = Recipe(lr=0.1, schedule="onecycle", batch_size=64,
                      augment=AugmentConfig(rotation=10.0, translate=0.08, scale=0.05),
                      clean_fraction=0.25, ema=0.998, weight_decay=1e-4)

BN = Toggles(batchnorm=True)
BN_DROPOUT = Toggles(batchnorm=True, dropout=0.1)
BN_DROPOUT_GAP = Toggles(batchnorm=True, dropout=0.1, gap=True)

STEPS: tuple[Step, ...] = (
    Step(1, "Code setup", BASELINE, Toggles(), PLAIN, WriteupResult("6.3M", 99.99, 99.24)),
    Step(2, "Basic skeleton", SKELETON, Toggles(), PLAIN, WriteupResult("51k", 99.45, 98.90)),
    Step(3, "Lighter model", LIGHT, Toggles(), PLAIN, WriteupResult("12k", 98.96, 98.45)),
    Step(4, "BatchNorm", LIGHT, BN, PLAIN, WriteupResult("12.2k", 99.98, 99.35)),
    Step(5, "Dropout", LIGHT, BN_DROPOUT, PLAIN,
         WriteupResult("12.2k", 98.98, 99.36, "the write-up's text says 99.38")),
    Step(6, "Global average pooling", LIGHT, BN_DROPOUT_GAP, PLAIN,
         WriteupResult("9.8k", 96.70, 99.36, "a wider variant (11.2k) reached 99.28")),
    Step(7, "Receptive-field restructure", EARLY_POOL, BN_DROPOUT_GAP, PLAIN,
         WriteupResult("12.5k", 98.97, 99.45, "the write-up's text says 99.25")),
    Step(8, "Data augmentation", EARLY_POOL, BN_DROPOUT_GAP, ROTATE, WriteupResult("12.5k", 99.25, 99.35)),
    Step(9, "More augmentation, fewer parameters, one-cycle LR", FINAL, Toggles(batchnorm=True, gap=True),
         FINAL_RECIPE, WriteupResult("9.2k", 97.76, 99.41, "the write-up's final notebook model has 9,964 parameters"),
         earlier=(FINAL_16,)),
)
FINAL_STEP = STEPS[-1].number  # the step that meets the challenge: the default everywhere a step is not named


def get_step(number: int) -> Step:
    if not isinstance(number, int) or isinstance(number, bool) or not 1 <= number <= len(STEPS):
        raise SpecError(f"unknown step {number!r}: steps are numbered 1 to {len(STEPS)}")
    return STEPS[number - 1]


def with_toggles(step: Step, batchnorm: bool | None = None, dropout: float | None = None,
                 gap: bool | None = None) -> Toggles:
    """The step's default toggles with any given override applied."""
    overrides = {"batchnorm": batchnorm, "dropout": dropout, "gap": gap}
    return replace(step.toggles, **{k: v for k, v in overrides.items() if v is not None})
