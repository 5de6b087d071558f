"""Studies: named groups of runs made from a sweep and/or a pipeline of stages, scheduled as
their parents finish, with a results table that reproduces a paper's ablation. No torch, no Qt."""

from workbench.studies.plan import (
    Column,
    Stage,
    StudySpec,
    common_overrides,
    create_study,
    delete_study,
    grid,
    kept_values,
    parse_sweep,
    plan,
)
from workbench.studies.results import (
    Overview,
    Table,
    overview,
    point_values,
    results,
    seed_means,
    to_csv,
    to_markdown,
)
from workbench.studies.scheduler import (
    advance,
    cancel_study,
    resume_study,
    start_queued,
    tick,
    wait_for,
)
from workbench.studies.templates import FOLLOW_UPS, TEMPLATES, sweep_spec, template_spec

__all__ = ["FOLLOW_UPS", "TEMPLATES", "Column", "Overview", "Stage", "StudySpec", "Table", "advance", "cancel_study",
           "common_overrides", "create_study", "delete_study", "grid", "kept_values", "overview", "parse_sweep", "plan", "results",
           "point_values", "resume_study", "seed_means", "start_queued", "sweep_spec", "template_spec", "tick", "to_csv", "to_markdown",
           "wait_for"]
