"""Windows and macOS laptops: nothing may need a Unix-only module. Each check runs in a fresh
interpreter in which `fcntl` cannot be imported (as on Windows)."""

import subprocess
import sys
from pathlib import Path

from conftest import project_modules

ROOT = Path(__file__).resolve().parents[1]
BLOCK = "import sys; sys.modules['fcntl'] = None  # import fcntl now raises ImportError, as on Windows\n"
MODULES = project_modules("core", "ui")


def python(code: str, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK + code, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def test_every_module_imports_without_fcntl():
    assert "core.serving.store" in MODULES and "ui.step_page" in MODULES
    code = "import importlib\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\nprint('ok')"
    result = python(code, *MODULES)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
    assert "fcntl" not in "".join(p.read_text() for folder in ("core", "ui", "pages") for p in (ROOT / folder).rglob("*.py"))


def test_the_cli_runs_without_fcntl(tmp_path):
    code = "import runpy\nsys.argv = ['core', 'steps', '--json']\nrunpy.run_module('core', run_name='__main__')"
    result = python(code)
    assert result.returncode == 0 and '"number": 9' in result.stdout, result.stderr


def test_the_app_and_every_page_render_without_fcntl(mnist_root, tmp_path):
    code = f"""
import os
os.environ["MNIST_DIR"] = {str(mnist_root)!r}
os.environ["LIFECYCLE_RUNS"] = {str(tmp_path / "runs.sqlite3")!r}
from streamlit.testing.v1 import AppTest
at = AppTest.from_file({str(ROOT / "app.py")!r}, default_timeout=120)
at.run()
assert not at.exception, at.exception
for page in ["app_pages/step_9.py", "app_pages/runs.py", "app_pages/data.py", "app_pages/design.py"]:
    at.switch_page(page)
    at.run()
    assert not at.exception, (page, at.exception)
print("ok")
"""
    result = python(code, timeout=600)
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-3000:]
