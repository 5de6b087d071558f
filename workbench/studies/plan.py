"""A study's plan: its stages, its sweep points, and the validated config of every run it will
make, all worked out before anything is written (a refused study writes nothing).

A study is a pipeline of stages (each a method whose parents are earlier stages or existing
runs) and a sweep: a list of points, each a dict of field values applied to the one `swept`
stage. The swept stage and every stage below it run once per point; the others (a DeiT
teacher, a BEiT tokenizer, a ViT from scratch) are shared by the points. A point's `seed`
(repeats of a study) seeds the stages below the swept one too, and a shared stage runs once
per seed, shared by that seed's points, so each repeat is a whole, independent chain.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from workbench.config import PRESETS, ParentInfo, check_field, parse_overrides
from workbench.errors import ConfigError, StoreError, WorkbenchError
from workbench.fields import given_once
from workbench.jobs.submit import checked_config
from workbench.methods import METHOD_CONFIGS, config_class, config_from_dict
from workbench.studies.results import overview
from workbench.studies.scheduler import advance

if TYPE_CHECKING:
    from workbench.store import Store, Study

MAX_POINTS = 64  # a typo in a range must not queue a thousand runs


@dataclass(frozen=True)
class Stage:
    """One step of a study. `parents`: role -> an earlier stage's name, or an existing run's id."""

    name: str
    method: str
    overrides: Mapping[str, Any] = field(default_factory=dict)
    parents: Mapping[str, str | int] = field(default_factory=dict)
    swept: bool = False  # the sweep's values apply to this stage
    # a shared stage shown as a row of its own, filling the result columns of the stage named here:
    # a teacher beside its students, a from-scratch baseline beside fine-tunes
    reference: str = ""


@dataclass(frozen=True)
class Column:
    """A result column: the final value of `key` in the runs of `stage`."""

    stage: str
    key: str
    label: str


@dataclass
class StudySpec:
    """Everything a study is made from; templates build one, so does a custom sweep."""

    stages: list[Stage]
    sweep_fields: list[str] = field(default_factory=list)
    points: list[dict[str, Any]] = field(default_factory=lambda: [{}])
    columns: list[Column] = field(default_factory=list)
    budget: str | None = "tiny"  # the study's budget; its stages start from this preset (None: defaults)...
    preset: str = ""  # ...unless this one is set: a budget that is no preset itself (a template's `cpu`: tiny)
    common: dict[str, Any] = field(default_factory=dict)  # set in every stage that has the field
    name: str = ""
    template: str = ""
    description: str = ""
    paper_trend: str = ""
    parallel: int = 2

    @property
    def start_preset(self) -> str | None:
        """The preset every stage starts from."""
        return self.preset or self.budget

    def saved(self) -> dict[str, Any]:
        """What the database keeps of the spec beyond stages and members (results read it)."""
        return {"sweep_fields": self.sweep_fields, "points": self.points,
                "columns": [asdict(c) for c in self.columns], "common": self.common,
                "description": self.description, "paper_trend": self.paper_trend}


def common_overrides(items: Sequence[str]) -> dict[str, Any]:
    """`KEY=VALUE` strings for every stage of a study, typed by whichever method has the field
    (all methods type a shared field alike); an unknown field is refused."""
    out: dict[str, Any] = {}
    for item in given_once(items):
        key = item.partition("=")[0].strip()
        owner = next((cls for cls in METHOD_CONFIGS.values() if key in {f.name for f in fields(cls)}), None)
        if owner is None:
            raise ConfigError(key or item, "no method has this field; `workbench methods` lists them")
        value = parse_overrides(owner, [item])[key]
        check_field(owner, key, value)
        out[key] = value
    return out


def label(values: Mapping[str, Any]) -> str:
    """{'mask_ratio': 0.75} -> 'mask_ratio=0.75'."""
    return " ".join(f"{k}={v}" for k, v in values.items())


# ------------------------------------------------------------------ sweeps
def parse_sweep(method: str, text: str) -> tuple[str, list[Any]]:
    """'mask_ratio=0.25,0.5,0.75' (values) or 'lr=1e-4:1e-2:3[:log]' (a range: start, stop, count,
    linear or geometric) -> the field and its typed values, naming the field when one is wrong."""
    cls = config_class(method)
    name, sep, raw = text.partition("=")
    name = name.strip()
    if sep and name and not raw.strip():
        raise ConfigError(name, f"give the values to try: {name}=A,B,C (a list) or {name}=START:STOP:COUNT (a range)")
    if not sep or not raw.strip():
        raise ConfigError(name or "sweep", f"expected FIELD=V1,V2,... or FIELD=START:STOP:COUNT, got {text!r}")
    parts = [p.strip() for p in raw.split(":")]
    if len(parts) in (3, 4) and "," not in raw and _is_number(parts[0]):  # a range; cuda:0,cuda:1 is a list
        items = _range_items(name, parts)
    else:
        items = [v.strip() for v in raw.split(",") if v.strip()]
    values = [parse_overrides(cls, [f"{name}={item}"])[name] for item in items]
    if len(values) < 2:
        raise ConfigError(name, f"a sweep needs at least two values, got {raw!r}")
    if len(set(map(repr, values))) != len(values):
        raise ConfigError(name, f"{raw!r} repeats a value")
    return name, values


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _range_items(name: str, parts: list[str]) -> list[str]:
    if len(parts) not in (3, 4) or (len(parts) == 4 and parts[3] not in ("lin", "log")):
        raise ConfigError(name, "a range is START:STOP:COUNT, optionally :log for geometric steps (lr=1e-4:1e-2:3:log)")
    try:
        start, stop, count = float(parts[0]), float(parts[1]), int(parts[2])
    except ValueError:
        raise ConfigError(name, f"{':'.join(parts)!r} is not START:STOP:COUNT with numbers") from None
    if not 2 <= count <= MAX_POINTS:
        raise ConfigError(name, f"a range needs between 2 and {MAX_POINTS} values, got {count}")
    if len(parts) == 4 and parts[3] == "log":
        if start <= 0 or stop <= 0:
            raise ConfigError(name, "a :log range needs positive START and STOP")
        values = [math.exp(math.log(start) + (math.log(stop) - math.log(start)) * i / (count - 1)) for i in range(count)]
    else:
        values = [start + (stop - start) * i / (count - 1) for i in range(count)]
    return [f"{v:.6g}" for v in values]


def grid(axes: Sequence[tuple[str, Sequence[Any]]]) -> list[dict[str, Any]]:
    """Every combination of the axes' values: [('a', [1, 2]), ('b', [3])] -> [{a:1,b:3}, {a:2,b:3}]."""
    points = [dict(zip([name for name, _ in axes], combo)) for combo in itertools.product(*(v for _, v in axes))]
    if len(points) > MAX_POINTS:
        raise ConfigError(axes[0][0], f"this sweep has {len(points)} points; at most {MAX_POINTS} per study")
    return points


# -------------------------------------------------------------------- plan
def plan(store: Store, spec: StudySpec) -> list[dict[str, Any]]:
    """Every member run of the study, in creation order, with its validated config; raises
    `ConfigError` (naming the stage and the point) before anything is written."""
    _check_shape(spec)
    # Shared stages run once per seed: a claim against a reference row (the ViT from scratch, the
    # untrained encoder's probe) then has n = seeds on that side too, so a standard error.
    # Parents (a DeiT teacher, a BEiT tokenizer) follow the same rule, each seed's chain using
    # its own: with one teacher for every seed, all repeats would share that teacher's luck,
    # and their spread (so the SE) would leave out the variance the teacher brings to what the
    # paper compares.
    seeds = list(dict.fromkeys(p.get("seed") for p in spec.points))  # [None]: no repeats
    per_point: dict[str, bool] = {}  # stage -> runs once per sweep point (else once per seed)
    members: list[dict[str, Any]] = []
    index: dict[tuple[str, int | None], int] = {}  # (stage, its point, or for a shared stage its seed)
    for stage in spec.stages:
        cls = config_class(stage.method)
        known = {f.name for f in fields(cls)}
        per_point[stage.name] = stage.swept or any(isinstance(src, str) and per_point[src]
                                                   for src in stage.parents.values())
        places = ([(p, spec.points[p].get("seed")) for p in range(len(spec.points))] if per_point[stage.name]
                  else [(None, seed) for seed in seeds])
        for point, seed in places:
            values = (spec.points[point] if stage.swept else {}) | ({"seed": seed} if seed is not None else {})
            shown = spec.points[point] if point is not None else values  # what tells this member apart
            where = stage.name + (f" ({label(shown)})" if shown else "")
            overrides = {k: v for k, v in spec.common.items() if k in known} | dict(stage.overrides) | values
            infos, parents = {}, {}
            for role, src in stage.parents.items():
                if isinstance(src, str):
                    ref = index[(src, point if per_point[src] else seed)]
                    parent = members[ref]
                    infos[role] = ParentInfo(0, parent["method"], "finished",
                                             config_from_dict(parent["method"], parent["config"]))
                    parents[role] = {"member": ref}
                else:
                    try:
                        run = store.get_run(src)
                    except StoreError:
                        raise ConfigError(f"parent:{role}", f"stage {stage.name}: there is no run {src}") from None
                    # an existing parent may still be training: the member waits for it
                    infos[role] = ParentInfo(run.id, run.method, "finished",
                                             config_from_dict(run.method, run.config, strict=False))
                    parents[role] = {"run": run.id}
            try:
                cfg = checked_config(store, stage.method, preset=spec.start_preset, overrides=overrides, parents=infos)
            except ConfigError as exc:
                raise ConfigError(exc.field, f"stage {where}: {exc.reason}") from None
            index[(stage.name, point if per_point[stage.name] else seed)] = len(members)
            members.append(dict(stage=stage.name, point=point, values=values, method=stage.method,
                                config=cfg.to_dict(), parents=parents,
                                name=stage.name + (f" {label(shown)}" if shown else "")))
    return members


def _check_shape(spec: StudySpec) -> None:
    names = [s.name for s in spec.stages]
    if not names:
        raise ConfigError("stages", "a study needs at least one stage")
    if len(set(names)) != len(names):
        raise ConfigError("stages", f"stage names repeat: {names}")
    if spec.start_preset is not None and spec.start_preset not in PRESETS:
        raise ConfigError("budget", f"unknown budget {spec.start_preset!r}; choose one of {', '.join(PRESETS)}")
    if not 1 <= spec.parallel <= 64:
        raise ConfigError("parallel", f"{spec.parallel} runs at once is outside 1-64")
    seen: set[str] = set()
    for stage in spec.stages:
        for role, src in stage.parents.items():
            if isinstance(src, str) and src not in seen:
                raise ConfigError(f"parent:{role}", f"stage {stage.name}'s {role} is stage {src!r}, which does not "
                                                    f"come before it (stages: {', '.join(names)})")
        seen.add(stage.name)
    swept = [s for s in spec.stages if s.swept]
    if len(swept) > 1:
        raise ConfigError("stages", f"only one stage can be swept, not {', '.join(s.name for s in swept)}")
    if not spec.points:
        raise ConfigError("sweep", "a study needs at least one point")
    if len(spec.points) > MAX_POINTS:
        raise ConfigError("sweep", f"{len(spec.points)} points; at most {MAX_POINTS} per study")
    if spec.points != [{}] and not swept:
        raise ConfigError("sweep", "a sweep needs a stage to apply to (mark one stage swept)")
    if swept:
        known = {f.name for f in fields(config_class(swept[0].method))}
        for name in {k for p in spec.points for k in p} - known:
            raise ConfigError(name, f"method {swept[0].method} (stage {swept[0].name}) has no field {name!r}; "
                                    f"`workbench methods {swept[0].method}` lists them")
    every = set().union(*({f.name for f in fields(config_class(s.method))} for s in spec.stages))
    for name in set(spec.common) - every:
        raise ConfigError(name, f"no stage of this study has a field {name!r}")
    _check_common_is_free(spec)
    for column in spec.columns:
        if column.stage not in names:
            raise ConfigError("columns", f"result column {column.label!r} reads stage {column.stage!r}, "
                                         f"which this study does not have")


def _check_common_is_free(spec: StudySpec) -> None:
    """A study-wide value of a field the study sweeps, or that every stage having the field pins,
    would be dropped without a word: refuse it, naming who sets the field."""
    swept = {k for p in spec.points for k in p}
    for name, value in spec.common.items():
        if name in swept:
            values = ", ".join(dict.fromkeys(str(p[name]) for p in spec.points if name in p))  # each once
            raise ConfigError(name, f"the study sweeps {name} ({values}), so {name}={value} would be ignored; "
                                    f"leave it out, or make a custom sweep of the values you want")
        having = [s for s in spec.stages if name in {f.name for f in fields(config_class(s.method))}]
        if having and all(name in s.overrides for s in having):
            pins = ", ".join(f"stage {s.name}: {name}={s.overrides[name]}" for s in having)
            raise ConfigError(name, f"this study sets {name} itself ({pins}), so {name}={value} would be "
                                    f"ignored; leave it out, or make a custom study")


def kept_values(spec: StudySpec) -> list[str]:
    """Study-wide values some stage overrules with its own recipe (said when the study starts)."""
    return [f"stage {s.name} keeps its own {name}={s.overrides[name]} (not {value})"
            for name, value in spec.common.items() for s in spec.stages
            if name in s.overrides and s.overrides[name] != value]


def create_study(store: Store, spec: StudySpec) -> Study:
    """Validate the whole plan, store the study with its stages and members, and queue the runs
    that need no parent. Later stages are queued by `advance` as their parents finish."""
    members = plan(store, spec)
    stages = [dict(name=s.name, method=s.method, parents=dict(s.parents), swept=s.swept, reference=s.reference)
              for s in spec.stages]
    study = store.create_study(name=spec.name.strip(), template=spec.template, budget=spec.budget or "",
                               spec=spec.saved(), parallel=spec.parallel, stages=stages, members=members)
    advance(store, study.id)
    return store.get_study(study.id)


def delete_study(store: Store, study_id: int) -> None:
    """Forget a study (its runs stay, as ordinary runs); a running one is refused: cancel it first."""
    if overview(store, study_id).status == "running":
        raise WorkbenchError(f"study {study_id} is running; cancel it first (`workbench study cancel {study_id}`)")
    store.delete_study(study_id)
