"""The method registry. A method is one module `workbench.methods.<name>` that defines
`METHOD` (a `Method` subclass) and whose config is registered in `workbench.config`.
Modules import lazily: listing methods (GUI, CLI) never imports torch."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from workbench.config import METHOD_CONFIGS, config_class

if TYPE_CHECKING:
    from workbench.methods.base import Method


def method_names() -> list[str]:
    return sorted(METHOD_CONFIGS)


def get_method(name: str) -> "type[Method]":
    config_class(name)  # a clear error for an unknown name
    return importlib.import_module(f"workbench.methods.{name}").METHOD
