"""The project's JSON result files (reference runs, the ablation, the frontier): one reader, one
merge. Each file is written atomically and merged under a lock, so that two processes filling one
file lose nothing; runs of one setting are kept per seed."""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Hashable, Iterator, Protocol, Sequence, TypeVar

from filelock import FileLock


class Seeded(Protocol):
    @property
    def seed(self) -> int: ...


R = TypeVar("R", bound=Seeded)
E = TypeVar("E")  # an entry of a result file: a step's reference, an ablation variant, a frontier candidate
K = TypeVar("K", bound=Hashable)


class ResultFileError(ValueError):
    """A result file exists but cannot be read; the message names the file and what remakes it."""


def read_result_file(path: str | Path, what: str, fmt: int, remake: str) -> dict[str, Any] | None:
    """The file's document, or None when there is no file yet. A file that is not JSON, or not of
    format `fmt`, raises ResultFileError saying which file and the command (`remake`) that writes it."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ResultFileError(f"cannot read the {what} in {path}: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != fmt:
        raise ResultFileError(f"{path} is not a format-{fmt} {what} file: rerun `{remake}`")
    return doc


def parse_entries(path: str | Path, raws: Any, parse: Callable[[Any], E]) -> list[E]:
    """Each raw entry parsed; a damaged one raises ResultFileError naming the file."""
    try:
        return [parse(raw) for raw in raws]
    except (KeyError, TypeError, ValueError) as exc:
        raise ResultFileError(f"{path} has a damaged entry ({type(exc).__name__}: {exc})") from exc


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


def merge_runs(path: Path, held: Callable[[], dict[K, E]], key: K, entry: E, same: Callable[[E, E], bool],
                write: Callable[[dict[K, E]], None]) -> dict[K, E]:
    """The one merge of every result file, under the file's lock: read what the file holds
    (`held`), put `entry` under `key` -- keeping the old entry's runs of other seeds when the two
    are the same setting (`same`), so a rerun with new seeds adds them, and a changed setting starts
    afresh -- then `write` it all and return it."""
    with locked(path):
        entries = held()
        old = entries.get(key)
        if old is not None and same(old, entry):
            entry = replace(entry, runs=merge_by_seed(old.runs, entry.runs))  # type: ignore[attr-defined]
        entries[key] = entry
        write(entries)
        return entries
