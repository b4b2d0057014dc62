"""Widgets whose values live in the URL (Streamlit's `bind="query-params"`), so a copied link
reopens the same configuration: `/step_4?bn=false&dropout=0.2`.

Streamlit drops a link value it cannot use (unknown option, out of range, not a number) and the
widget falls back to its default. `LinkedWidgets` remembers what the link asked for, compares it
with what each widget ended up with, and says once which values were ignored."""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import streamlit as st

from core.serving.store import Exercise
from ui.classroom import plain

RESERVED = {"embed", "embed_options", "exercise"}  # Streamlit's own query parameters; a teacher's exercise id
LOCK = ":material/lock:"


class LinkedWidgets:
    """The page's URL-bound widgets. With a teacher's exercise (core.serving.store.Exercise), its locked
    controls are drawn disabled at the exercise's values and its hidden ones are not drawn: neither
    is bound to the URL, so no link can change them."""

    def __init__(self, page: str, exercise: Exercise | None = None) -> None:
        self.page = page
        self.exercise = exercise
        self.asked = {key: st.query_params.get_all(key)[-1] for key in st.query_params.keys()}
        self.shown: dict[str, str] = {}  # key -> the value as the URL would write it

    def _bind(self, key: str, value: Any, as_text: Callable[[Any], str]) -> Any:
        self.shown[key] = as_text(value)
        return value

    def _fixed(self, key: str, default: Any, read: Callable[[str], Any]) -> tuple[bool, Any]:
        """(is the control fixed by the exercise, its value there)."""
        if self.exercise is None or not self.exercise.fixes(key):
            return False, None
        raw = self.exercise.settings.get(key)
        try:
            return True, default if raw is None else read(raw)
        except (TypeError, ValueError):
            return True, default

    def _draw_fixed(self, key: str) -> bool:
        return self.exercise is not None and key in self.exercise.locked

    def toggle(self, where, label: str, default: bool, key: str, **kw: Any) -> bool:
        as_text = lambda v: "true" if v else "false"  # noqa: E731
        fixed, value = self._fixed(key, default, lambda raw: raw == "true")
        if fixed:
            if self._draw_fixed(key):
                where.toggle(label, value=value, key=f"{key}__locked", disabled=True)
            return self._bind(key, value, as_text)
        return self._bind(key, where.toggle(label, value=default, key=key, bind="query-params", **kw), as_text)

    def slider(self, where, label: str, low: float, high: float, default: float, step: float, key: str,
               **kw: Any) -> float:
        fixed, value = self._fixed(key, default, lambda raw: min(high, max(low, type(default)(float(raw)))))
        if fixed:
            if self._draw_fixed(key):
                where.slider(label, low, high, value, step, key=f"{key}__locked", disabled=True,
                             help="Locked by this exercise")
            return self._bind(key, value, repr)
        return self._bind(key, where.slider(label, low, high, default, step, key=key, bind="query-params", **kw), repr)

    def number(self, where, label: str, low: Any, high: Any, default: Any, key: str, **kw: Any) -> Any:
        fixed, value = self._fixed(key, default, lambda raw: min(high, max(low, type(default)(float(raw)))))
        if fixed:
            if self._draw_fixed(key):
                where.number_input(label, low, high, value, key=f"{key}__locked", disabled=True,
                                   help="Locked by this exercise", **{k: v for k, v in kw.items() if k == "format"})
            return self._bind(key, value, repr)
        return self._bind(key, where.number_input(label, low, high, default, key=key, bind="query-params", **kw),
                          repr)

    def select(self, where, label: str, options: Sequence[Any], default: Any, key: str,
               format_func: Callable[[Any], str] = str, radio: bool = False, **kw: Any) -> Any:
        widget = where.radio if radio else where.selectbox

        def read(raw: str) -> Any:
            return next(o for o in options if format_func(o) == raw or str(o) == raw)

        fixed, value = self._fixed(key, default, lambda raw: _or_raise(read, raw))
        if fixed:
            if self._draw_fixed(key):
                widget(label, options, index=list(options).index(value), key=f"{key}__locked", format_func=format_func,
                       disabled=True, help="Locked by this exercise",
                       **{k: v for k, v in kw.items() if k == "horizontal"})
            return self._bind(key, value, format_func)
        value = widget(label, options, index=list(options).index(default), key=key, format_func=format_func,
                       bind="query-params", **kw)
        return self._bind(key, value, format_func)

    def ignored(self) -> list[str]:
        """Link values that were not used: not valid for their widget, or naming no widget here."""
        problems = []
        for key, raw in self.asked.items():
            if key in RESERVED:
                continue
            if self.exercise is not None and self.exercise.fixes(key):
                problems.append(f"`{key}` (fixed by the teacher's exercise)")
                continue
            if key not in self.shown:
                problems.append(f"{key} (not a setting of this page)")
            elif not _same(raw, self.shown[key]):
                problems.append(f"{key}={raw} (using {self.shown[key]})")
        return problems

    def notice(self) -> None:
        """One short notice per page visit with a link that asked for something unusable."""
        problems = self.ignored()
        marker = f"_link_notice_{self.page}"
        if problems and st.session_state.get(marker) != self.asked:
            st.session_state[marker] = dict(self.asked)
            st.toast(plain("Some link settings were not valid, so the step's defaults are used for: "
                           + ", ".join(problems)), icon=":material/link_off:", duration="long")


def _same(raw: str, shown: str) -> bool:
    if raw.strip().lower() == shown.lower():
        return True
    try:
        a, b = float(raw), float(shown)
    except ValueError:
        return False
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def _or_raise(read: Callable[[str], Any], raw: str) -> Any:
    try:
        return read(raw)
    except StopIteration:
        raise ValueError(raw) from None
