"""The home folder: WORKBENCH_HOME wins; otherwise platformdirs' per-user data folder (XDG on
Linux). The cores a run divides are the ones its process may use."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from workbench import paths


def test_the_home_is_the_users_data_folder_unless_set(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("WORKBENCH_HOME", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert paths.home() == tmp_path / "xdg" / "vit-workbench" and paths.home().is_dir()
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "mine"))
    assert paths.home() == tmp_path / "mine"
    assert paths.run_dir(7, create=False) == tmp_path / "mine" / "runs" / "000007"


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity on this OS")
def test_a_run_given_one_core_trains_on_one_thread(tmp_path: Path) -> None:
    """taskset, a Slurm job's cpuset or a container give a process fewer cores than the machine
    has: its threads are sized by those (the machine's count would oversubscribe them)."""
    one = min(os.sched_getaffinity(0))
    code = ("import torch\nfrom workbench import paths\nfrom workbench.engine.device import CpuShare\n"
            "from workbench.store import Store\nCpuShare(Store())\nprint(paths.cpus(), torch.get_num_threads())")
    child = subprocess.run([sys.executable, "-c", code], env={**os.environ, "WORKBENCH_HOME": str(tmp_path)},
                           preexec_fn=lambda: os.sched_setaffinity(0, {one}), capture_output=True, text=True)
    assert child.returncode == 0, child.stderr
    assert child.stdout.split() == ["1", "1"]
