"""The layers are kept by machine: import-linter's contracts (pyproject.toml) fail the suite
when an import points up, when torch reaches the GUI, studies, jobs, config or store, or when
Qt reaches anything but the GUI. Function-level imports count."""

import ast
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold() -> None:
    command = shutil.which("lint-imports")
    assert command, "import-linter is a test dependency: pip install -e '.[test]'"
    done = subprocess.run([command, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "BROKEN" not in done.stdout and done.stdout.count("KEPT") == 3


def test_jobs_know_nothing_of_studies() -> None:
    """The scheduler (studies) calls the runner (jobs), never the other way round."""
    for path in (ROOT / "workbench" / "jobs").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert "studies" not in (node.module or ""), f"{path.name} imports {node.module}"
            elif isinstance(node, ast.Import):
                assert not any("studies" in a.name for a in node.names), f"{path.name} imports studies"
