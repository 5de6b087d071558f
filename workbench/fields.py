"""One config field's value: text from the CLI or a form made a typed value, and the checks
that need no other field (type, choices, range), with messages that name the field. The config
schema itself (`TrainConfig`, its cross-field rules) is `workbench.config`'s."""

from __future__ import annotations

import functools
import math
import shlex
import typing
from dataclasses import fields
from typing import TYPE_CHECKING, Any, Iterable

from workbench.errors import ConfigError

if TYPE_CHECKING:
    from workbench.config import TrainConfig

_KIND_NAMES = {int: "a whole number", float: "a number", bool: "true or false", str: "text"}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def parse_overrides(cls: type[TrainConfig], items: Iterable[str]) -> dict[str, Any]:
    """Turn CLI `key=value` strings into typed values, naming the field on error."""
    hints = type_hints(cls)
    known = {f.name for f in fields(cls)}
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep:
            raise ConfigError(key or item, f"expected key=value, got {item!r}")
        if key not in known:
            raise ConfigError(key, unknown_field(cls, key))
        out[key] = _coerce(key, hints[key], raw.strip())
    return out


def given_once(items: Iterable[str]) -> list[str]:
    """A person's `key=value` strings (`--set`, a study's common values), refusing a key given twice
    with two values (`--set lr=1e-3 lr=1e-4`: which one was meant cannot be told). Code that
    composes overrides, where a later value wins, calls `parse_overrides` directly."""
    items, seen = list(items), {}
    for item in items:
        key, _, raw = (part.strip() for part in item.partition("="))
        if seen.setdefault(key, raw) != raw:
            raise ConfigError(key, f"given twice ({seen[key]} and {raw}); give it once")
    return items


def check_field(cls: type[TrainConfig], name: str, value: Any) -> None:
    """One field's type, choices and range (the rules that need no other field)."""
    f = next(f for f in fields(cls) if f.name == name)
    _check_type(name, type_hints(cls)[name], value)
    meta = f.metadata
    if meta.get("choices") and value not in meta["choices"]:
        raise ConfigError(name, f"{value!r} is not one of {', '.join(meta['choices'])}")
    lo, hi = meta.get("min"), meta.get("max")
    if lo is not None and value < lo or hi is not None and value > hi:
        raise ConfigError(name, f"{value!r} is outside the allowed range {_range(lo, hi)}")


@functools.cache
def type_hints(cls: type) -> dict[str, Any]:
    """Each field's type (the annotations are strings under `from __future__ import annotations`);
    read once per class: evaluating them is ~4 ms, and a study's plan checks thousands of fields."""
    return typing.get_type_hints(cls)


def unknown_field(cls: type[TrainConfig], key: str) -> str:
    """Why `key` is refused, with the fields this method does know."""
    names = sorted(f.name for f in fields(cls))
    return f"unknown field for method {cls.method}; known fields: {', '.join(names)}"


def _range(lo: float | None, hi: float | None) -> str:
    return f"[{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}]"


def _check_type(name: str, kind: Any, value: Any) -> None:
    if kind is bool:
        ok = type(value) is bool
    elif kind is float:
        ok = isinstance(value, (int, float)) and type(value) is not bool
        if ok and not math.isfinite(value):  # nan passes every range check, inf most
            raise ConfigError(name, f"{value!r} is not a finite number")
    elif kind is int:
        ok = isinstance(value, int) and type(value) is not bool
    else:
        ok = isinstance(value, kind)
    if not ok:
        raise ConfigError(name, f"{value!r} is not {_KIND_NAMES.get(kind, kind.__name__)}")


def _coerce(name: str, kind: Any, raw: str) -> Any:
    try:
        if kind is bool:
            low = raw.lower()
            if low in _TRUE | _FALSE:
                return low in _TRUE
            raise ValueError
        return kind(raw)
    except ValueError:
        raise ConfigError(name, f"{raw!r} is not {_KIND_NAMES.get(kind, kind.__name__)}") from None


def sbatch_flags(text: str) -> dict[str, str | bool]:
    """`--key=value` and `--flag` words (the `slurm_sbatch` field) as submitit's
    `additional_parameters`: {"constraint": "a100", "exclusive": True}."""
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise ConfigError("slurm_sbatch", f"{text!r} cannot be read as sbatch flags ({exc})") from None
    flags: dict[str, str | bool] = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not key.startswith("--") or len(key) < 3:
            raise ConfigError("slurm_sbatch", f"{word!r} is not an sbatch flag of the form --key=value or --flag "
                                              f"(short forms such as -C are not taken)")
        flags[key[2:]] = value if sep else True
    return flags
