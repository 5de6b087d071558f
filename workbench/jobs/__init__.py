"""Creating runs, and launching, watching and cancelling their worker processes (no torch here)."""

from workbench.jobs.runner import Runner, cancel_run, reconcile, resume_run
from workbench.jobs.submit import create_run
from workbench.jobs.trash import delete_for_good, move_to_trash, restore

__all__ = ["Runner", "cancel_run", "create_run", "delete_for_good", "move_to_trash", "reconcile", "restore",
           "resume_run"]
