"""The lesson text of each step lives in `assets/lessons/step_N.md`, not in Python: the step pages
and LIFECYCLE.md both read it from there. A lesson file has three sections, `## Target` and
`## Analysis` (short bullet lists) and `## In depth` (free markdown, shown one click away)."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from core.project import ASSETS

LESSONS_DIR = ASSETS / "lessons"
SECTIONS = ("Target", "Analysis", "In depth")


@dataclass(frozen=True)
class Lesson:
    target: tuple[str, ...]
    analysis: tuple[str, ...]
    in_depth: str


def lesson_path(number: int) -> Path:
    return LESSONS_DIR / f"step_{number}.md"


@lru_cache(maxsize=None)
def load_lesson(number: int) -> Lesson:
    """Parse one lesson file; a missing file or section is an error that names it."""
    path = lesson_path(number)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FileNotFoundError(f"lesson text for step {number} is missing: {path} ({exc.strerror})") from exc
    sections = parse_sections(text)
    missing = [name for name in SECTIONS if name not in sections]
    if missing:
        raise ValueError(f"{path}: missing section(s) {', '.join('## ' + m for m in missing)}")
    return Lesson(bullets(sections["Target"]), bullets(sections["Analysis"]), sections["In depth"].strip())


def parse_sections(text: str) -> dict[str, str]:
    """'## Name' headings -> the text under each."""
    parts = re.split(r"^## +(.+?) *$", text, flags=re.MULTILINE)
    return {name.strip(): body for name, body in zip(parts[1::2], parts[2::2])}


def bullets(text: str) -> tuple[str, ...]:
    """A markdown bullet list -> one string per bullet (continuation lines joined)."""
    items: list[str] = []
    for line in text.strip().splitlines():
        stripped = line.strip()
        if stripped.startswith("- "):
            items.append(stripped[2:])
        elif stripped and items:
            items[-1] += " " + stripped
    return tuple(items)


FACT = re.compile(r"\{(\w+):([\w-]+)\}")


def fill_facts(lesson: Lesson, facts: dict[str, str]) -> Lesson:
    """Replace `{kind:name}` placeholders (e.g. `{ablation:no-ema}`) with measured figures, so the
    prose quotes the project's own numbers; a figure not measured yet says so."""
    def sub(text: str) -> str:
        return FACT.sub(lambda m: facts.get(f"{m.group(1)}:{m.group(2)}", "(not measured yet)"), text)
    return replace(lesson, target=tuple(map(sub, lesson.target)), analysis=tuple(map(sub, lesson.analysis)),
                   in_depth=sub(lesson.in_depth))
