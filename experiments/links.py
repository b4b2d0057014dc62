"""The largest design link the notation accepts, on every page that shows a design: how long the
server takes to answer it and how much its memory grows. `python -m experiments.links` prints one
row a page; the goal is under 200 ms and under 50 MB, whatever the link.

Each page is opened once with an ordinary link first (so imports and caches are warm, as on a running
server), then with the largest link; the time is the second run's, the memory the growth of the
process's peak resident size (`ru_maxrss`) across it, which counts torch's allocations too.
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.architecture.notation import LARGEST_NET, MAX_CHANNELS, MAX_TOKENS  # noqa: E402

PAGES = ["design", "step_9", "runs", "board", "inspect"]


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def open_largest(at, page: str) -> tuple[float, float, str]:
    """(ms, peak MB grown, what the page said) of `page` opened with the largest link, after a warm view."""
    at.switch_page(f"app_pages/{page}.py")
    at.query_params.clear()
    at.run()  # warm
    at.query_params.update({"net": LARGEST_NET})
    before, start = peak_mb(), time.perf_counter()
    at.run()
    ms, grown = 1000 * (time.perf_counter() - start), peak_mb() - before
    said = next((e.value for e in at.error), None) or next((t.value for t in at.toast), None) or "(ignored)"
    return ms, grown, said


def main() -> None:
    from streamlit.testing.v1 import AppTest

    os.environ.setdefault("LIFECYCLE_RUNS", str(Path(tempfile.mkdtemp()) / "runs.sqlite3"))
    os.environ["LIFECYCLE_TEACHER_KEY"] = "a student's server"
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.run()
    print(f"the largest link: {len(LARGEST_NET)} characters, {MAX_TOKENS - 1} convolutions of {MAX_CHANNELS} channels")
    print(f"{'page':<10}{'ms':>8}{'peak MB +':>11}  what it said")
    for page in PAGES:
        ms, grown, said = open_largest(at, page)
        print(f"{page:<10}{ms:>8.0f}{grown:>11.1f}  {said[:90]}")


if __name__ == "__main__":
    main()
