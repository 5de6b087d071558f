"""The test Slurm cluster (tests/slurm_cluster.py) is a real one: batch jobs run and write their
output, and scancel ends a running job. Every command gets the cluster's environment (its
SLURM_CONF). A requeue (scontrol requeue) is tested through the workbench's own Slurm runs
(tests/jobs/test_slurm_runs.py), which requeue themselves that way. (A time limit ending a job
as TIMEOUT was seen to work too, 60 to 90 s after its start: Slurm checks limits every 30 s, and
a minute is its least; the warning signal before it came at one of those checks.)"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.slurm_cluster import SlurmCluster

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("slurm")]


def slurm(cluster: SlurmCluster, *args: str, cwd: Path | None = None) -> str:
    """Run one Slurm command against the cluster; its stdout, or an assertion error."""
    done = subprocess.run(args, env=cluster.env, cwd=cwd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{' '.join(args)} failed ({done.returncode}): {done.stderr}"
    return done.stdout


def sbatch(cluster: SlurmCluster, cwd: Path, *args: str) -> str:
    """Submit a batch job; its id."""
    return slurm(cluster, "sbatch", "--parsable", *args, cwd=cwd).strip().split(";")[0]


def job(cluster: SlurmCluster, job_id: str) -> dict[str, str]:
    """`scontrol show job`'s fields (no accounting database here, so no sacct)."""
    return dict(re.findall(r"(\w+)=(\S*)", slurm(cluster, "scontrol", "show", "job", "-o", job_id)))


def wait_for(cluster: SlurmCluster, job_id: str, until: Callable[[dict[str, str]], bool],
             what: str, timeout: float = 150) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while True:
        fields = job(cluster, job_id)
        if until(fields):
            return fields
        if time.monotonic() > deadline:
            pytest.fail(f"job {job_id} not {what} after {timeout:.0f} s: {fields}\n{cluster.logs()}")
        time.sleep(0.5)


def state_is(*states: str) -> Callable[[dict[str, str]], bool]:
    return lambda fields: fields.get("JobState") in states


def wait_for_file(path: Path, until: Callable[[str], bool], timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while True:
        text = path.read_text() if path.exists() else ""
        if until(text):
            return text
        if time.monotonic() > deadline:
            pytest.fail(f"{path} after {timeout:.0f} s: {text!r}")
        time.sleep(0.3)


def process_gone(pid: int, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.3)
    return False


def test_a_batch_job_runs_and_writes_its_output(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    states = slurm(slurm_cluster, "sinfo", "-h", "-p", slurm_cluster.partition, "-o", "%T %c").split()
    assert states[1] == str(slurm_cluster.cpus), states  # the node has this process's CPUs
    job_id = sbatch(slurm_cluster, tmp_path, f"--output={tmp_path}/out-%j.txt", "--wrap", "echo hello; hostname")
    fields = wait_for(slurm_cluster, job_id, state_is("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL"),
                      "finished")
    assert fields["JobState"] == "COMPLETED" and fields["ExitCode"] == "0:0", fields
    assert (tmp_path / f"out-{job_id}.txt").read_text().split() == ["hello", slurm_cluster.node]


def test_scancel_ends_a_running_job_as_cancelled(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    job_id = sbatch(slurm_cluster, tmp_path, f"--output={tmp_path}/out-%j.txt", "--wrap",
                    "echo $$ > pid; exec sleep 300")
    wait_for(slurm_cluster, job_id, state_is("RUNNING"), "running")
    pid = int(wait_for_file(tmp_path / "pid", lambda text: text.endswith("\n")))
    assert "sleep" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(), "the job's process is this machine's"

    slurm(slurm_cluster, "scancel", job_id)
    fields = wait_for(slurm_cluster, job_id, state_is("CANCELLED"), "cancelled", timeout=60)
    assert fields["Reason"] == "None", fields
    assert process_gone(pid), f"the job's sleep (pid {pid}) still runs after scancel"
