"""What one run trains: a step's network (or a design) with its toggles, the recipe, the seed and
how much of MNIST it sees. One frozen dataclass, shared by the CLI, the app, the queue and the store."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from core.architecture.notation import format_net, net_of, parse_net
from core.architecture.spec import Layer, Toggles, expand
from core.training.augmentation import AugmentConfig
from core.training.recipe import Recipe
from core.training.steps import FINAL_STEP, get_step


@dataclass(frozen=True)
class TrainConfig:
    """What to train (a step with toggles), how (a recipe), and how much of it (limits)."""

    step: int = FINAL_STEP  # the lifecycle step it belongs to, or a design started from (its lesson and references)
    toggles: Toggles = field(default_factory=Toggles)
    recipe: Recipe = field(default_factory=Recipe)
    seed: int = 1
    net: str | None = None  # the network in core.architecture.notation's notation; None: the step's own (filled in below)
    max_batches: int | None = None  # per epoch, for quick runs
    train_fraction: float = 1.0  # a fixed random subset of the training images
    test_limit: int | None = None  # evaluate on the first N test images (None: all)
    device: str = "auto"
    log_every: int = 10  # batches between batch events (each one syncs the GPU)

    def __post_init__(self) -> None:
        step = get_step(self.step)
        # one network string, whose head always agrees with the GAP toggle (the toggle decides)
        net = parse_net(self.net) if self.net is not None else net_of(step.spec, self.toggles.gap)
        object.__setattr__(self, "net", format_net(replace(net, gap=self.toggles.gap)))
        checks = [
            (isinstance(self.seed, int) and 0 <= self.seed < 2**63, f"seed must be a non-negative integer, got {self.seed}"),
            (0 < self.train_fraction <= 1, f"train fraction must be in (0, 1], got {self.train_fraction}"),
            (self.max_batches is None or self.max_batches >= 1, f"max batches must be >= 1, got {self.max_batches}"),
            (self.test_limit is None or self.test_limit >= 1, f"test limit must be >= 1, got {self.test_limit}"),
            (self.log_every >= 1, f"log_every must be >= 1, got {self.log_every}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    @classmethod
    def for_step(cls, number: int, **overrides: Any) -> "TrainConfig":
        """The step's own network, toggles and recipe, with any non-None override applied;
        overrides may name a field of TrainConfig, Toggles or Recipe (e.g. seed=2, batchnorm=False,
        lr=0.2, net='c8,M,c16,G')."""
        step = get_step(number)
        return cls(step=number, toggles=step.toggles, recipe=step.recipe).with_overrides(**overrides)

    def with_overrides(self, **overrides: Any) -> "TrainConfig":
        """Flat overrides routed to the dataclass that owns each name; None means 'keep'. A new
        `net` brings its head along (G: GAP on), unless `gap` is given too."""
        given = {k: v for k, v in overrides.items() if v is not None}
        if "net" in given and "gap" not in given:
            given["gap"] = parse_net(given["net"]).gap
        parts: dict[str, dict[str, Any]] = {"toggles": {}, "recipe": {}, "self": {}}
        owners = {"toggles": _names(Toggles), "recipe": _names(Recipe), "self": _names(TrainConfig)}
        for name, value in given.items():
            owner = next((o for o, names in owners.items() if name in names), None)
            if owner is None:
                raise ValueError(f"unknown training setting {name!r}")
            parts[owner][name] = value
        config = replace(self, **parts["self"])
        return replace(config, toggles=replace(config.toggles, **parts["toggles"]),
                       recipe=replace(config.recipe, **parts["recipe"]))

    def subset_size(self, n_train: int) -> int:
        """How many of the n_train training images the run draws its batches from."""
        return max(1, round(n_train * self.train_fraction))

    def batches_per_epoch(self, n_train: int) -> int:
        batches = math.ceil(self.subset_size(n_train) / self.recipe.batch_size)
        return min(batches, self.max_batches) if self.max_batches else batches

    def images_per_epoch(self, n_train: int) -> int:
        """Training images seen per epoch (the last batch of the subset may be short)."""
        images = self.subset_size(n_train)
        return min(images, self.max_batches * self.recipe.batch_size) if self.max_batches else images

    def layers(self) -> list[Layer]:
        return expand(parse_net(self.net).spec, self.toggles)

    @property
    def full_data(self) -> bool:
        """Every training image each epoch and the whole test set: a run the challenge can judge."""
        return self.max_batches is None and self.train_fraction == 1.0 and self.test_limit is None

    @property
    def is_design(self) -> bool:
        """A network other than its step's own (with the same head)."""
        return self.net != format_net(net_of(get_step(self.step).spec, self.toggles.gap))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], params: int | None = None) -> "TrainConfig":
        """Inverse of as_dict (a stored run's config); unknown keys are an error. A config recorded
        before configs named their network gets the step's network, or, given the run's parameter
        count, the earlier body of the step that has that count (not the step's network of today)."""
        raw = dict(raw)
        recipe = dict(raw.pop("recipe", {}))
        augment = AugmentConfig(**recipe.pop("augment", {}))
        config = cls(toggles=Toggles(**raw.pop("toggles", {})), recipe=Recipe(**recipe, augment=augment), **raw)
        return config if "net" in raw or params is None else config._with_body_of(params)

    def _with_body_of(self, params: int) -> "TrainConfig":
        """This config with the body (the step's own or an earlier one) that has `params` weights."""
        from core.architecture.builder import (  # only for stores older than `net`
            build_model,
            count_params,
        )

        for spec in get_step(self.step).earlier:
            config = replace(self, net=format_net(net_of(spec, self.toggles.gap)))
            if count_params(build_model(config.layers())) == params:
                return config
        return self


def _names(cls) -> set[str]:
    return {f.name for f in fields(cls)}
