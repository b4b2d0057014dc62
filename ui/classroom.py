"""Who is using this browser: its student id (a student may change only their own runs; kept across
reloads and tabs in a signed cookie, core.serving.identity), the name
typed for the class board, the teacher's key, the class the teacher started and a teacher's
exercise link. Pages call these; core.classroom decides what they mean."""

from __future__ import annotations

import os
import re

import streamlit as st

from core.classroom import KeyGate, Prediction, may_change_run
from core.serving.identity import (
    COOKIE,
    MAX_AGE_S,
    new_student,
    server_secret,
    sign,
    verify,
)
from core.serving.store import (
    MAX_NAME,
    ClassInfo,
    Exercise,
    RunStore,
    RunTags,
    StoreError,
)

KEY_ENV = "LIFECYCLE_TEACHER_KEY"
_MARKUP = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:&])")


def plain(text: str) -> str:
    """What a student or teacher typed, safe inside markdown: every character that markdown, HTML
    or Streamlit's :icon: and $math$ syntax would act on is escaped, so it shows as typed."""
    return _MARKUP.sub(r"\\\1", text)


def session_id() -> str:
    """This browser's student id: read from its signed cookie on a session's first page (a reload,
    another tab), else a new one, which the browser is then asked to keep (remember_student)."""
    if "session_id" not in st.session_state:
        known = verify(browser_cookie(COOKIE), server_secret())
        if known is None:
            st.session_state["session_id"] = new_student()
            st.session_state["_cookie_due"] = True
        else:
            st.session_state["session_id"], st.session_state["student_name"] = known
    return st.session_state["session_id"]


def browser_cookie(name: str) -> str | None:
    try:
        return st.context.cookies.get(name)
    except Exception:  # no browser behind this session (a test's or a bare script run)
        return None


def remember_student() -> None:
    """Ask the browser to keep this student's signed id and name (after a new id or a new name).
    The token is URL-safe base64 and hex only, so it goes into the script as it is."""
    session_id()
    slot = st.empty()  # drawn on every run, so that the elements after it keep their places (and a tab its choice)
    if not st.session_state.pop("_cookie_due", False):
        return
    token = sign(session_id(), student_name(), server_secret())
    with slot:  # our own script and a token of URL-safe characters: nothing a student typed goes in unescaped
        st.iframe(f"<script>document.cookie = '{COOKIE}={token}; path=/; max-age={MAX_AGE_S}; "
                  "SameSite=Strict';</script>", height=1)


def teacher_key() -> str | None:
    """The key set when the server started: $LIFECYCLE_TEACHER_KEY, else `teacher_key` in
    Streamlit's secrets; None: no key (one user on a laptop, every action allowed)."""
    key = os.environ.get(KEY_ENV)
    if key:
        return key
    try:
        return st.secrets.get("teacher_key") or None
    except Exception:  # no secrets file at all: Streamlit raises rather than returning nothing
        return None


def is_teacher() -> bool:
    """Every action is allowed without a key; with one, only after it was typed in this session."""
    return teacher_key() is None or st.session_state.get("teacher", False)


@st.cache_resource
def key_gate() -> KeyGate:
    return KeyGate()


def try_key(given: str) -> bool | None:
    """The key typed, compared in its turn (core.classroom.KeyGate); None: too many tries just now."""
    outcome = key_gate().check(teacher_key(), given)
    st.session_state["teacher"] = bool(outcome)
    return outcome


def may_change(run_session: str) -> bool:
    return may_change_run(run_session, session_id(), st.session_state.get("teacher", False), teacher_key() is not None)


def student_name() -> str:
    return st.session_state.get("student_name", "")


def name_input(where=st) -> None:
    """The optional name shown on the class board, kept for this browser session (its own key, so
    it survives pages that do not draw the widget)."""
    def keep() -> None:
        st.session_state["student_name"] = st.session_state.get("_name_widget", "").strip()[:MAX_NAME]
        st.session_state["_cookie_due"] = True  # the name travels in the signed cookie too

    st.session_state["_name_widget"] = student_name()
    where.text_input("Your name on the class board", key="_name_widget", on_change=keep, max_chars=MAX_NAME,
                     placeholder="optional")


def run_tags(page: str) -> RunTags:
    """What a run started from `page` carries to the store: this session, its name, and the
    prediction written down for it."""
    prediction: Prediction = st.session_state.get(f"prediction_{page}", Prediction())
    return RunTags(session_id(), student_name(), prediction.to_text())


def current_class(store: RunStore | None) -> ClassInfo | None:
    if store is None:
        return None
    try:
        return store.current_class()
    except StoreError:
        return None


def exercise_of_link(store: RunStore | None, page: str) -> Exercise | None:
    """The teacher's exercise named by the link (`?exercise=N`), if it belongs to this page."""
    raw = st.query_params.get("exercise")
    if store is None or raw is None or not raw.isdigit():
        return None
    try:
        found = store.exercise(int(raw))
    except StoreError:
        return None
    return found if found is not None and found.page == page else None


def exercise_banner(exercise: Exercise | None) -> None:
    if exercise is None:
        return
    fixed = sorted(exercise.locked | exercise.hidden)
    st.caption(f":material/lock: Exercise {exercise.id}: the teacher fixed {', '.join(fixed) or 'nothing'}"
               + (f" ({len(exercise.hidden)} hidden)" if exercise.hidden else "") + "; the rest is yours to change.")


def exercise_maker(store: RunStore | None, page: str, shown: dict[str, str]) -> None:
    """Teacher: turn this page, as it is set now, into an exercise link that fixes chosen controls."""
    if store is None or not is_teacher():
        return
    with st.expander("Teacher: make an exercise of this page", icon=":material/school:"):
        keys = sorted(k for k in shown if k not in ("net", "from"))
        st.multiselect("Students may change", keys, key=f"_exercise_open_{page}",
                       help="Every other control is fixed at its value on this page now")
        hide = st.toggle("Hide the fixed controls (instead of showing them locked)", key=f"_exercise_hide_{page}")
        fixed = [k for k in keys if k not in st.session_state.get(f"_exercise_open_{page}", [])]
        st.button("Make the exercise link", key=f"_exercise_make_{page}", on_click=_make_exercise,
                  args=(store, page, dict(shown), [] if hide else fixed, fixed if hide else []))
        number = st.session_state.get(f"_exercise_made_{page}")
        if isinstance(number, str):
            st.error(number)
        elif number is not None:
            st.markdown("Send the class this link (after the server's address):")
            st.code(f"/{page}?exercise={number}", language=None)


def _make_exercise(store: RunStore, page: str, settings: dict[str, str], locked: list[str], hidden: list[str]) -> None:
    if not is_teacher():  # checked again at the click
        return
    try:
        st.session_state[f"_exercise_made_{page}"] = store.add_exercise(page, settings, locked, hidden)
    except StoreError as exc:
        st.session_state[f"_exercise_made_{page}"] = str(exc)
