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
    reference_values,
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
from workbench.studies.templates import (
    BUDGETS,
    FOLLOW_UPS,
    TEMPLATES,
    Claim,
    Side,
    claims_for,
    sweep_spec,
    template_spec,
)
from workbench.studies.verdicts import (
    CONTRADICTED,
    HELD,
    VERDICT_HEADER,
    VERDICT_RULE,
    Verdict,
    to_csv_with,
    to_markdown_with,
    verdict_markdown,
    verdict_rows,
    verdicts,
)

__all__ = ["BUDGETS", "CONTRADICTED", "FOLLOW_UPS", "HELD", "TEMPLATES", "VERDICT_HEADER", "VERDICT_RULE", "Claim",
           "Column", "Overview", "Side", "Stage", "StudySpec", "Table", "Verdict", "advance", "cancel_study",
           "claims_for", "common_overrides", "create_study", "delete_study", "grid", "kept_values", "overview",
           "parse_sweep", "plan", "point_values", "reference_values", "results", "resume_study", "seed_means",
           "start_queued", "sweep_spec", "template_spec", "tick", "to_csv", "to_csv_with", "to_markdown",
           "to_markdown_with", "verdict_markdown", "verdict_rows", "verdicts", "wait_for"]
