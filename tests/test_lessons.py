"""The lesson text lives in assets/lessons/, is short where the step page shows it, and is the
same text LIFECYCLE.md prints."""

import pytest

from core.report.lessons import bullets, fill_facts, load_lesson, parse_sections
from core.report.views import lesson_facts
from core.report.ablation import ablation_facts
from core.results.ablation import load_ablation
from core.training.steps import STEPS

ROOT_MD = __import__("pathlib").Path(__file__).resolve().parents[1] / "LIFECYCLE.md"


@pytest.mark.parametrize("step", STEPS, ids=lambda s: f"step{s.number}")
def test_every_step_has_a_short_target_and_analysis(step):
    lesson = load_lesson(step.number)
    for part in (lesson.target, lesson.analysis):
        assert 1 <= len(part) <= 3  # a few bullets: the long reasoning is one click away
        assert all(len(b.split()) <= 40 for b in part), [len(b.split()) for b in part]
    assert len(lesson.in_depth.split()) >= 30


def test_lifecycle_md_carries_the_lesson_text():
    text = ROOT_MD.read_text()
    held = load_ablation()
    measured = ablation_facts(held[1], held[0]) if held else {}
    for step in STEPS:
        lesson = fill_facts(load_lesson(step.number), measured | lesson_facts(step.number))  # as the report fills it
        assert "{" not in " ".join(lesson.target + lesson.analysis) + lesson.in_depth.splitlines()[0]
        assert all(b in text for b in lesson.target + lesson.analysis)
        assert lesson.in_depth.splitlines()[0] in text


def test_parsing_joins_wrapped_bullets_and_names_a_missing_section(tmp_path, monkeypatch):
    sections = parse_sections("## Target\n- one\n  two\n- three\n\n## Analysis\n- four\n")
    assert bullets(sections["Target"]) == ("one two", "three") and bullets(sections["Analysis"]) == ("four",)
    import core.report.lessons as lessons
    (tmp_path / "step_1.md").write_text("## Target\n- only this\n")
    monkeypatch.setattr(lessons, "LESSONS_DIR", tmp_path)
    lessons.load_lesson.cache_clear()
    try:
        with pytest.raises(ValueError, match="## Analysis"):
            lessons.load_lesson(1)
    finally:
        lessons.load_lesson.cache_clear()
