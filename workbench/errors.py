"""User-facing errors: each message says what is wrong and what to do about it."""


class WorkbenchError(Exception):
    """An error the user can fix; the CLI prints it without a traceback."""


class ConfigError(WorkbenchError):
    """A config value is wrong. `field` names it so a form can point at its widget."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message


class StoreError(WorkbenchError):
    """The run database cannot be used (locked, newer schema, missing run...)."""


class StoreUnreachable(StoreError):
    """The database server cannot be reached (down, network lost): worth retrying, not the user's doing."""


class DataError(WorkbenchError):
    """A dataset cannot be loaded (missing, empty, unreadable)."""


class RunEnded(WorkbenchError):
    """The run ended (cancelled, or judged interrupted) before its worker started training it: the
    worker stops and leaves the run as it is."""


class NoCheckpointError(WorkbenchError):
    """A run that has trained has no checkpoint to continue from: resuming it would start it again
    from step 0 and replace its metrics, which only the user's consent (`--from-scratch`, or yes
    to the window's question) allows."""

    def __init__(self, run_id: int, step: int, lost: str = "") -> None:
        """`lost`: what became of the checkpoints it wrote ("gone from FOLDER"); empty: it wrote none."""
        why = f"its checkpoint files are {lost}" if lost else f"it stopped at step {step} before writing one"
        super().__init__(f"run {run_id} has no checkpoint left ({why}); `workbench resume {run_id} --from-scratch` "
                         f"starts it again from step 0 and replaces its metrics")
        self.run_id, self.why = run_id, why
