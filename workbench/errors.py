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


class DataError(WorkbenchError):
    """A dataset cannot be loaded (missing, empty, unreadable)."""
