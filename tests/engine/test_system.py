"""What a run ran on: the environment a worker records at its start (and a resume on other
software warned of), and the sys/... series it logs beside its metrics."""

import os
import platform
import re
import subprocess
import sys

import psutil
import pytest
import torch

from workbench import fmt, paths
from workbench.engine.reporter import Reporter
from workbench.engine.trainer import train
from workbench.jobs import create_run
from workbench.store import RunStatus, Store


def test_a_run_records_its_environment_and_logs_system_metrics(store: Store) -> None:
    run = create_run(store, "vit", preset="tiny", overrides=["max_steps=10", "log_every=5", "eval_every=10"])
    assert train(store, run.id, log=lambda _: None) == RunStatus.FINISHED
    done = store.get_run(run.id)
    env = done.environment
    assert env["torch"] == torch.__version__ and env["python"] == platform.python_version()
    assert env["host"] == paths.host() and env["workbench"] == "0.1.0" and "timm" in env
    assert re.fullmatch(r"[0-9a-f]{12} \(\d+ packages\)", env["packages"])
    assert f"torch {torch.__version__}" in fmt.environment(done) and "environment" not in done.results
    assert {"sys/cpu_percent", "sys/rss_gb"} <= set(store.metric_keys(run.id))
    (rss,) = [row[4] for row in store.metrics(run.id, key="sys/rss_gb")][:1]  # sampled every 5 s: once here
    assert 0.05 < rss < 64  # this process holds torch and a model: tens of MB at least, GB at most
    assert all(v >= 0 for *_, v, _ in store.metrics(run.id, key="sys/cpu_percent"))


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or (psutil.cpu_count() or 1) < 2,
                    reason="needs CPU affinity and two cores")
def test_the_environment_gives_the_cores_a_run_may_use_beside_the_machines() -> None:
    """A run given one core (taskset, a Slurm cpuset) records "1 of N", not the machine's N."""
    one = min(os.sched_getaffinity(0))
    child = subprocess.run([sys.executable, "-c", "from workbench.engine.system import environment; "
                            "print(environment()['cpus'])"], preexec_fn=lambda: os.sched_setaffinity(0, {one}),
                           capture_output=True, text=True)
    assert child.stdout.strip() == f"1 of {psutil.cpu_count()}", child.stderr


def test_a_resume_on_other_software_than_the_last_start_is_a_warning(store: Store) -> None:
    run = store.create_run("vit", {})
    reporter = Reporter(store, run.id)
    first = {"workbench": "0.1.0", "torch": "2.14.1", "host": "gpu1"}
    reporter.environment(first)
    reporter.environment({**first, "host": "gpu2", "cpus": "8 of 64"})  # another machine, same software: no warning
    assert store.get_run(run.id).warnings == []
    reporter.environment({**first, "torch": "2.13.0"})
    (warning,) = store.get_run(run.id).warnings
    assert warning == "resumed on other software than its last start: torch 2.14.1 vs 2.13.0"
    assert store.get_run(run.id).environment["torch"] == "2.13.0"
