"""The project's JSON result files (reference runs, the ablation): written atomically, merged under
a lock so that two processes filling one file lose nothing, with runs of one setting kept per seed."""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Protocol, Sequence, TypeVar

from filelock import FileLock


class Seeded(Protocol):
    @property
    def seed(self) -> int: ...


R = TypeVar("R", bound=Seeded)


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold the file's lock (a sibling `.lock` file) while it is read, merged and written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        yield


def write_json(path: Path, doc: Any) -> None:
    """Atomic: a reader never sees a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    tmp.replace(path)


def merge_by_seed(old: Sequence[R], new: Sequence[R]) -> tuple[R, ...]:
    """Runs of one setting: the new run of a seed replaces the old one, other seeds stay; seed order."""
    by_seed = {r.seed: r for r in old} | {r.seed: r for r in new}
    return tuple(by_seed[s] for s in sorted(by_seed))
