"""Creating runs, and launching, watching and cancelling their worker processes (no torch here)."""

from workbench.jobs.runner import Runner, cancel_run, reconcile, resume_run
from workbench.jobs.submit import create_run

__all__ = ["Runner", "cancel_run", "create_run", "reconcile", "resume_run"]
