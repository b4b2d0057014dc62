"""What the pages share: this session's settings (data folder, run store) and the process-wide
resources every session uses (device, MNIST tensors, the training queue, the run store)."""

from __future__ import annotations

import atexit
import os
from pathlib import Path
from typing import Any

import streamlit as st

from core.report.unseen import design_unseen_facts, unseen_facts
from core.results.ablation import ABLATION_FILE, load_ablation
from core.results.frontier import FRONTIER_FILE, FrontierEntry, load_frontier
from core.results.reference import (
    DESIGN_UNSEEN_FILE,
    REFERENCE_FILE,
    UNSEEN_FILE,
    ReferenceFileError,
    StepReference,
    load_references,
    unseen_points,
)
from core.serving.cluster import (
    ClusterChoice,
    ClusterError,
    UnavailableExecutor,
    local_executor,
    make_executor,
)
from core.serving.limits import server_limits
from core.serving.run_queue import RunQueue
from core.serving.store import (
    RunStore,
    StoreError,
    check_chosen_location,
    public_db_label,
    resolve_db,
)
from core.training.data import (
    FILES,
    DataError,
    MNISTTensors,
    load_cached,
    raw_dir,
    resolve_root,
    validate,
)
from core.training.device import pick_device
from core.training.download import TOTAL_MB, fetch_mnist
from ui.classroom import is_teacher, plain

# --- the server's settings ------------------------------------------------------------------------
# Where MNIST lives, whether the server may download it and where runs are kept are the server's, one
# for every session: set when it starts ($MNIST_DIR, $MNIST_DOWNLOAD=0, $LIFECYCLE_RUNS) and changed from
# a browser only by the teacher (by anyone when no key is set: one user on a laptop).

DOWNLOAD_ENV = "MNIST_DOWNLOAD"


@st.cache_resource
def _server_settings() -> dict[str, Any]:
    """What the teacher changed from the Data page; what is absent comes from the environment."""
    return {}


def change_setting(name: str, value: Any) -> str | None:
    """Change one server setting for every session; the reason when it is refused. The teacher's
    check lives here, where the change happens, not only in the disabled widget."""
    if not is_teacher():
        return "only the teacher changes the server's settings (type the key on the Class board)"
    if isinstance(value, str):
        value = value.strip()  # what is checked is what is kept
    if name == "runs_db":
        try:
            check_chosen_location(value)
        except StoreError as exc:
            return str(exc)
    _server_settings()[name] = value
    return None


def data_dir() -> str:
    """The teacher's setting, else $MNIST_DIR, else ./data (see core.training.data.resolve_root)."""
    return _server_settings().get("data_dir") or str(resolve_root(None))


def allow_download() -> bool:
    return _server_settings().get("allow_download", os.environ.get(DOWNLOAD_ENV, "1") != "0")


def data_problem() -> str | None:
    """None when the MNIST files are in place, else what is wrong."""
    try:
        validate(resolve_root(data_dir()))
        return None
    except DataError as exc:
        return str(exc)


def load_data(device: Any) -> MNISTTensors:
    """MNIST for this session's pages (augmentation viewer, inspect), loaded once per process;
    raises DataError. Training loads its own copy in the worker process."""
    return load_cached(data_dir(), download=allow_download(), device=device)


def missing_files() -> list[str]:
    folder = raw_dir(resolve_root(data_dir()))
    return [name for name in FILES if not (folder / name).exists() and not (folder / f"{name}.gz").exists()]


def show_data_problem(problem: str) -> None:
    """Why the page cannot train or show digits yet, and the control that fixes it here: a download
    button when the files are missing and the server may fetch them."""
    if missing_files() and allow_download():
        _offer_download()
        return
    if is_teacher():
        st.warning(f"**MNIST is not available.** {problem}" + ("" if allow_download() else
                   "\n\nDownloading is turned off on this server (the Data page's switch, or $MNIST_DOWNLOAD=0)."))
        st.page_link("app_pages/data.py", label="Data and run history: the MNIST folder", icon=":material/folder:")
    else:
        st.warning("**MNIST is not available.** The server's MNIST files are missing or damaged, and only the "
                   "teacher can put them in place.")
    st.caption("Pages that need no data (architecture, receptive fields, parameter counts) still work.")
    st.button("Check again", key="_check_mnist", icon=":material/refresh:")


def _offer_download() -> None:
    st.info(f"**MNIST is not on this server yet.** The app can fetch it now: four files, about "
            f"{TOTAL_MB:.0f} MB, checked against their published checksums. This page goes on (with *Train* on "
            "the step and Design pages) as soon as they are in place.", icon=":material/cloud_download:")
    st.button(f"Download MNIST (about {TOTAL_MB:.0f} MB)", key="_fetch_mnist_button", type="primary",
              on_click=_ask_for_download, icon=":material/download:")
    if st.session_state.get("_fetch_mnist"):  # kept until the download ends: a click meanwhile restarts it
        _download_now()
    failed = st.session_state.get("_fetch_failed")
    if failed:
        st.error(f"**The download failed.** {failed}\n\nPress *Download MNIST* to try again.")


def _ask_for_download() -> None:
    st.session_state["_fetch_mnist"] = True


def _download_now() -> None:
    """Fetch in this rerun with a progress bar (a second session pressing meanwhile waits for the
    same files instead of fetching them again), then rerun so that Train appears."""
    bar = st.progress(0.0, text="Connecting…")

    def progress(done: int, total: int, name: str) -> None:
        bar.progress(done / max(total, 1), text=f"{name}.gz · {done / 1e6:.1f} of {total / 1e6:.1f} MB")

    try:
        fetch_mnist(resolve_root(data_dir()), progress)
    except DataError as exc:
        st.session_state["_fetch_mnist"] = False
        st.session_state["_fetch_failed"] = (plain(str(exc)) if is_teacher() else
                                             "No mirror could be reached or sent a good copy; if it keeps "
                                             "failing, ask the teacher.")
        bar.empty()
        return
    st.session_state["_fetch_mnist"] = False
    st.session_state.pop("_fetch_failed", None)
    st.rerun()


@st.cache_resource
def device() -> Any:
    return pick_device("auto")


# --- training queue and run store ---------------------------------------------------------------

@st.cache_resource
def _cluster_setting() -> dict[str, Any]:
    """Where this server's runs train, for every session: RAY_ADDRESS etc. (ClusterChoice.from_env) until
    the Data page changes it; `attempt` counts the Data page's 'Connect again'."""
    return {"choice": ClusterChoice.from_env(), "attempt": 0}


def cluster_choice() -> ClusterChoice:
    return _cluster_setting()["choice"]


def set_cluster_choice(choice: ClusterChoice | None = None) -> None:
    """A new choice (None: try the current one again); runs already queued finish where they are, and
    then the old queue hands back its workers."""
    if not is_teacher():  # checked here, where the server's setting changes, as well as at the button
        return
    setting = _cluster_setting()
    old = run_queue()
    if choice is not None:
        setting["choice"] = choice
    setting["attempt"] += 1
    setting["carried"] = (old.limits, old.paused)  # the teacher's share and pause go on in the new queue
    old.pause(False)  # its queued runs finish where they are, even if the queue was paused
    old.close_when_idle()


@st.cache_resource(show_spinner="Starting the training queue...")
def _queue_for(choice: ClusterChoice, attempt: int) -> RunQueue:
    notes: list[str] = []
    try:
        executor = make_executor(choice, local_executor, notes.append)
    except ClusterError as exc:  # refuse every run with the reason; never train here unless that was chosen
        executor = UnavailableExecutor(f"{exc}. Fix the address on the Data page, or allow training on this "
                                       "machine when the cluster cannot be reached")
    limits, paused = _cluster_setting().get("carried", (server_limits(), False))
    queue = RunQueue(executor, limits=limits)
    queue.paused = paused
    queue.notes = notes
    queue.start()
    atexit.register(queue.close)
    return queue


def hide_cluster_address(text: str) -> str:
    """A student sees "the cluster", not its address: Ray takes work from anyone who can reach it."""
    address = cluster_choice().address
    return text if is_teacher() or not address else text.replace(f" at {address}", "").replace(address, "the cluster")


def run_queue() -> RunQueue:
    """One queue for every browser session of this server; its workers (on this machine) start now,
    so the first Train does not wait for them, and are handed back when the server stops."""
    setting = _cluster_setting()
    return _queue_for(setting["choice"], setting["attempt"])


@st.cache_resource(max_entries=4)  # bounded: a key per MNIST folder the server was set to
def _warmed(folder: str, download: bool) -> bool:
    run_queue().executor.warm(folder, download)
    return True


def warm_workers() -> None:
    """Have the training workers load this session's MNIST folder before anyone presses Train
    (call it once the folder is known to be usable)."""
    _warmed(data_dir(), allow_download())


def runs_db() -> Path | str:
    """The server's run store: the teacher's setting, else $LIFECYCLE_RUNS, else runs/ (a file, or a
    postgresql:// URL)."""
    return resolve_db(_server_settings().get("runs_db") or None)


@st.cache_resource(show_spinner=False, max_entries=4)  # bounded: a key per store the server was set to
def _store(path: str) -> RunStore | str:
    try:
        return RunStore(path)
    except StoreError as exc:
        return str(exc)


def run_store() -> RunStore | None:
    """The session's run store, or None after a one-line warning when it cannot be used (runs
    still train; they are not kept)."""
    store = _store(str(runs_db()))
    if isinstance(store, str):
        why = store if is_teacher() else f"the server's run store ({public_db_label(runs_db())}) cannot be used"
        st.warning(f"Run history is off: {why}", icon=":material/history_toggle_off:")
        return None
    return store


def stored_runs(store: RunStore | None, **filters: Any) -> list:
    """Stored runs, or [] with a warning when the store fails while reading."""
    if store is None:
        return []
    try:
        return store.runs(**filters)
    except StoreError as exc:
        st.warning("Run history could not be read" + (f": {exc}" if is_teacher() else "."))  # names the store
        return []


# --- reference runs ---------------------------------------------------------------------------

# The asset files below are read once per change (their mtime is the key) and shared by every session
# without a copy: st.cache_data unpickled the frontier's 300 runs on every call, ~20 ms, three times a
# rerun. What they hold is read-only: frozen dataclasses and lists that no page changes.


@st.cache_resource(show_spinner=False, max_entries=2)
def _references(path: str, mtime: float) -> dict[int, StepReference] | str:  # mtime: reload when the file changes
    try:
        return load_references(Path(path))
    except ReferenceFileError as exc:
        return str(exc)


def references() -> dict[int, StepReference]:
    try:
        mtime = REFERENCE_FILE.stat().st_mtime
    except OSError:
        return {}
    refs = _references(str(REFERENCE_FILE), mtime)
    if isinstance(refs, str):
        st.warning(f"Reference runs unavailable: {refs}")
        return {}
    return refs


@st.cache_resource(show_spinner=False, max_entries=2)
def _ablation(path: str, mtime: float) -> tuple[int | None, list] | str:
    try:
        held = load_ablation(Path(path))
    except ValueError as exc:
        return str(exc)
    return held if held else (None, [])


def ablation() -> tuple[int | None, list]:
    """(step, results) of assets/ablation.json; (None, []) before `python -m core ablate` has run."""
    try:
        mtime = ABLATION_FILE.stat().st_mtime
    except OSError:
        return None, []
    held = _ablation(str(ABLATION_FILE), mtime)
    if isinstance(held, str):
        st.warning(f"Ablation results unavailable: {held}")
        return None, []
    return held


@st.cache_resource(show_spinner=False, max_entries=2)
def _frontier(path: str, mtime: float) -> list[FrontierEntry] | str:
    try:
        return load_frontier(Path(path))
    except ValueError as exc:
        return str(exc)


@st.cache_resource(show_spinner=False, max_entries=2)
def _unseen(mtimes: tuple[float, float]) -> tuple[dict[str, str], list[dict[str, Any]]]:
    return (unseen_facts(UNSEEN_FILE) | design_unseen_facts(DESIGN_UNSEEN_FILE, UNSEEN_FILE),
            unseen_points(UNSEEN_FILE, DESIGN_UNSEEN_FILE))


def _unseen_now() -> tuple[dict[str, str], list[dict[str, Any]]]:
    """Read again only when either file changed (a new seed merged while the app runs)."""
    return _unseen(tuple(_mtime(path) for path in (UNSEEN_FILE, DESIGN_UNSEEN_FILE)))


def unseen() -> dict[str, str]:
    """`{unseen:seeds}` and `{unseen:design}`: the final step, and a design with more room, on seeds its
    reference runs never used (assets/unseen_seeds.json, assets/sep28_unseen_seeds.json)."""
    return _unseen_now()[0]


def unseen_rows() -> list[dict[str, Any]]:
    """The same seeds, a row per network and seed (core.results.reference.unseen_points), for the chart."""
    return _unseen_now()[1]


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0  # absent: the facts say so, and a file that appears later changes the key


def frontier() -> list[FrontierEntry]:
    """The candidates of assets/frontier.json; [] before `python -m core search` has run."""
    try:
        mtime = FRONTIER_FILE.stat().st_mtime
    except OSError:
        return []
    held = _frontier(str(FRONTIER_FILE), mtime)
    if isinstance(held, str):
        st.warning(f"Frontier search unavailable: {held}")
        return []
    return held


def assets_stamp() -> tuple[tuple[str, float], ...]:
    """When any asset file a page derives its figures from last changed: a key for what is built once from
    them (the step pages' charts and filled-in lessons) and rebuilt when a run is merged while the app runs."""
    return tuple((str(path), _mtime(path)) for path in (REFERENCE_FILE, ABLATION_FILE, FRONTIER_FILE, UNSEEN_FILE,
                                                         DESIGN_UNSEEN_FILE))
