"""The method registry: the one place a method is looked up by name.

A method is one package `workbench.methods.<name>` (the name is written once: the package's):
its `__init__` holds `Config`, the run config (a `TrainConfig` dataclass, free of torch, so
the GUI's form and the command line read it), and its `method` module holds `METHOD`, the
`Method` subclass (torch). A method from outside the workbench is one module that defines
both, named in `WORKBENCH_METHODS` (comma-separated module paths): nothing else to edit.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from workbench import config
from workbench.config import TrainConfig
from workbench.errors import ConfigError

if TYPE_CHECKING:
    from workbench.methods.base import Method

METHOD_CONFIGS: dict[str, type[TrainConfig]] = {}  # name -> config class, in discovery order
_METHOD_MODULES: dict[str, str] = {}  # name -> the module that defines METHOD (imported on first use)


def _register(name: str, module: ModuleType, method_module: str) -> None:
    cls = getattr(module, "Config", None)
    if not (isinstance(cls, type) and issubclass(cls, TrainConfig)):
        raise ConfigError("method", f"method module {module.__name__} defines no Config (a TrainConfig subclass)")
    if name in METHOD_CONFIGS:
        raise ConfigError("method", f"two methods are named {name!r} ({module.__name__} and "
                                    f"{_METHOD_MODULES[name]})")
    cls.method = name
    METHOD_CONFIGS[name] = cls
    _METHOD_MODULES[name] = method_module


def _discover() -> None:
    for info in pkgutil.iter_modules(__path__):
        if info.ispkg:
            _register(info.name, importlib.import_module(f"{__name__}.{info.name}"), f"{__name__}.{info.name}.method")
    for path in filter(None, (p.strip() for p in os.environ.get("WORKBENCH_METHODS", "").split(","))):
        try:
            _register(path.rsplit(".", 1)[-1], importlib.import_module(path), path)
        except (ImportError, ConfigError) as exc:  # the built-in methods still work; say what was left out
            print(f"workbench: WORKBENCH_METHODS names {path!r}, left out: {exc}", file=sys.stderr)
    ordered = sorted(METHOD_CONFIGS.items(), key=lambda item: (item[1].position, item[0]))
    METHOD_CONFIGS.clear()
    METHOD_CONFIGS.update(ordered)  # lists show methods in their `position` order


def method_names() -> list[str]:
    return sorted(METHOD_CONFIGS)


def config_class(method: str) -> type[TrainConfig]:
    try:
        return METHOD_CONFIGS[method]
    except KeyError:
        raise ConfigError("method", f"unknown method {method!r}; choose one of "
                                    f"{', '.join(sorted(METHOD_CONFIGS))}") from None


def get_method(name: str) -> "type[Method]":
    """The `Method` class of `name` (torch loads here, not when listing methods)."""
    config_class(name)  # a clear error for an unknown name
    return importlib.import_module(_METHOD_MODULES[name]).METHOD


def make_config(method: str, preset: str | None = None, overrides: Mapping[str, Any] | Iterable[str] = (),
                inherited: Mapping[str, Any] | None = None) -> TrainConfig:
    """Defaults, then a preset, then values inherited from parents, then overrides; validated."""
    return config.compose(config_class(method), preset, overrides, inherited)


def config_from_dict(method: str, data: Mapping[str, Any], *, strict: bool = True) -> TrainConfig:
    """A stored or edited config of `method`, validated (`strict=False` drops removed fields)."""
    return config.build(config_class(method), data, strict=strict)


_discover()
