"""Built-in studies that mirror the papers' ablations, each with its results columns and what
the paper found, in words and as claims its results can test. Budgets (`BUDGETS`): `tiny`
(each method's tiny preset: minutes on a laptop CPU, on the built-in 32 px shapes), `cpu` (the
same tiny models, each template's stages trained as long as its method needs for the paper's
effect to have a chance, about 20 minutes a seed on 2 cores) or `paper` (the papers' geometry
and schedules, for a GPU and a real dataset: `--set dataset=NAME`).

Tiny budgets answer "does the trend show at all at this scale?", not the papers' numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from workbench.errors import ConfigError
from workbench.methods import config_class
from workbench.studies.plan import Column, Stage, StudySpec, grid

# budget -> (the preset every stage starts from, what the budget is for: the CLI's and the dialog's help)
BUDGETS: dict[str, tuple[str, str]] = {
    "tiny": ("tiny", "each method's tiny preset: minutes on a laptop CPU"),
    "cpu": ("tiny", "the tiny models trained long enough for the paper's effect to have a chance: "
                    "about 20 minutes a seed on 2 CPU cores"),
    "paper": ("paper", "the papers' recipes (224 px, hundreds of epochs), for a GPU and a real dataset"),
}

# The cpu budget's minutes per seed are estimated from these seconds per epoch on the built-in
# 5,000 32 px images on 2 cores (README's tiny studies, bench/throughput.py): tiny ViT or
# fine-tune ~7, MAE ~6 (its encoder sees the visible patches only), MPP ~8, linear probe ~4 (a
# frozen encoder), ResNet-10-T ~20, DeiT student ~12 with a teacher (run forward too), dVAE ~25,
# BEiT ~12 (its tokenizer runs forward); ~5 s to start a run. Two runs at a time share the two
# cores, so a study's time is about the sum. They put the tiny studies at 1.2-2x their measured
# times (tiny MAE mask ratio: ~8.5 min a seed estimated, ~4.5 measured): on the safe side.

# what follows a pre-training stage, per budget. The probe is MAE's (BatchNorm + linear head on the
# frozen encoder), with AdamW where MAE used LARS. At cpu: twice tiny's epochs, so the head and
# the fine-tune converge on encoders trained longer
FOLLOW_UPS: dict[str, dict[str, dict[str, Any]]] = {
    "probe": {"tiny": dict(mode="linear", epochs=5, lr=0.01, weight_decay=0.0, warmup_epochs=0.5),
              "cpu": dict(mode="linear", epochs=10, lr=0.01, weight_decay=0.0, warmup_epochs=1.0),
              "paper": dict(mode="linear", epochs=90, lr=1e-3, weight_decay=0.0, warmup_epochs=10.0, drop_path=0.0),
              "": dict(mode="linear", weight_decay=0.0)},
    "finetune": {"tiny": dict(mode="full", epochs=5, lr=2e-3, warmup_epochs=0.5),
                 "cpu": dict(mode="full", epochs=10, lr=2e-3, warmup_epochs=1.0), "": dict(mode="full")},
}
FOLLOW_UP_LABELS = {"probe": "linear probe top-1", "finetune": "fine-tune top-1"}
PROBE, FINETUNE = FOLLOW_UP_LABELS["probe"], FOLLOW_UP_LABELS["finetune"]
AVERAGED, CLS = "top-1 (cls+dist)", "cls head"  # DeiT's result columns
TOP1 = "val/top1"


@dataclass(frozen=True)
class Side:
    """One side of a claim: result column `column` (its label) in the rows whose sweep values
    include `where` (repeated seeds pooled), or in the row of reference stage `reference`."""

    column: str
    where: Mapping[str, Any] = field(default_factory=dict)
    reference: str = ""


@dataclass(frozen=True)
class Claim:
    """A paper's claim as a comparison of two sides of the results table, so a study can say
    whether it held (`workbench.studies.verdicts`). `relation`: ">" (a beats b) or "≈" (about
    equal: the sides within `margin` of each other, in the column's units). `paper`: the paper's
    own figure, empty where it gives none; `source`: where."""

    text: str
    a: Side
    b: Side
    relation: str = ">"
    paper: str = ""
    source: str = ""
    margin: float = 0.0

    def __post_init__(self) -> None:
        if self.relation not in (">", "≈"):
            raise ValueError(f"claim {self.text!r}: relation {self.relation!r} is neither '>' nor '≈'")
        if self.relation == "≈" and self.margin <= 0:  # with none, no difference is ever 'about equal'
            raise ValueError(f"claim {self.text!r}: an '≈' claim needs a margin above 0")


@dataclass(frozen=True)
class Template:
    name: str
    title: str
    description: str  # what the study runs
    paper_trend: str  # what the paper found, shown beside the plot
    build: Callable[[str], tuple[list[Stage], list[str], list[dict[str, Any]], list[Column]]]
    claims: tuple[Claim, ...] = ()  # what the paper found, as comparisons the results can test


def follow_up(kind: str, parent: str, budget: str | None) -> Stage:
    """A linear probe or a full fine-tune of the encoder trained by stage `parent`."""
    recipes = FOLLOW_UPS[kind]
    return Stage(kind, "finetune", recipes.get(budget or "", recipes[""]), parents={"encoder": parent})


def _cpu(budget: str, **recipe: Any) -> dict[str, Any]:
    """A stage's own schedule at the cpu budget; nothing at the others (their presets decide)."""
    return recipe if budget == "cpu" else {}


def _scratch(budget: str) -> Stage:
    """The same ViT trained from random weights on the fine-tuning budget: what pre-training must beat."""
    recipe = {k: v for k, v in FOLLOW_UPS["finetune"].get(budget, {}).items() if k != "mode"}
    return Stage("scratch", "vit", recipe, reference="finetune")


def _mae_mask_ratio(budget: str):
    # cpu: 20 MAE epochs (the probe trend needs pre-training most), 10-epoch probes and fine-tunes:
    # 4 x 20 x 6 + 4 x 10 x 4 + 5 x 10 x 7 s + 13 starts = ~17.5 min a seed
    stages = [Stage("pretrain", "mae", _cpu(budget, epochs=20), swept=True), follow_up("probe", "pretrain", budget),
              follow_up("finetune", "pretrain", budget), _scratch(budget)]
    columns = [Column("probe", TOP1, PROBE), Column("finetune", TOP1, FINETUNE),
               Column("pretrain", "val/loss", "MAE val loss")]
    return stages, ["mask_ratio"], [{"mask_ratio": r} for r in (0.25, 0.5, 0.75, 0.9)], columns


def _mae_mask_strategy(budget: str):
    # cpu: 40 MAE epochs (three encoders, probed only, so twice mask-ratio's): 3 x 40 x 6 + 3 x 10 x 4 s
    # + 6 starts = ~14.5 min a seed
    stages = [Stage("pretrain", "mae", {"mask_ratio": 0.75, **_cpu(budget, epochs=40)}, swept=True),
              follow_up("probe", "pretrain", budget)]
    return (stages, ["mask_strategy"], [{"mask_strategy": s} for s in ("random", "block", "grid")],
            [Column("probe", TOP1, PROBE), Column("pretrain", "val/loss", "MAE val loss")])


def _vit_pos_embed(budget: str):
    # cpu: 30 epochs; at tiny's 8 a run leaves its early plateau (~0.27) or not, by chance:
    # 4 x 30 x 7 s + 4 starts = ~14.5 min a seed
    return ([Stage("train", "vit", _cpu(budget, epochs=30), swept=True)], ["pos_embed"],
            [{"pos_embed": p} for p in ("learned-1d", "learned-2d", "sincos-2d", "none")],
            [Column("train", TOP1, "top-1")])


def _mpp_targets(budget: str):
    # cpu: 30 MPP epochs (at tiny's 8 every probe sits near the untrained floor), 10-epoch probes:
    # 3 x 30 x 8 + 4 x 10 x 4 s + 8 starts = ~15.5 min a seed
    stages = [Stage("pretrain", "mpp", _cpu(budget, epochs=30), swept=True), follow_up("probe", "pretrain", budget),
              # the floor: a probe of an encoder trained for one step
              Stage("untrained", "mpp", {"max_steps": 1}),
              Stage("untrained probe", "finetune", FOLLOW_UPS["probe"][budget], parents={"encoder": "untrained"},
                    reference="probe")]
    return (stages, ["target"], [{"target": t} for t in ("color3bit", "color3bit_4x4", "pixel_l2")],
            [Column("probe", TOP1, PROBE)])


def _deit_distill(budget: str):
    # cpu: a 10-epoch teacher (tiny's 3 reach ~69 %: a teacher wrong on a third of the images
    # teaches its errors) and 25-epoch students, long enough for what they are taught to matter:
    # 10 x 20 + 2 x 25 x 12 + 25 x 7 s + 4 starts = ~16.5 min a seed
    stages = [Stage("teacher", "cnn", _cpu(budget, epochs=10), reference="student"),
              Stage("student", "deit", _cpu(budget, epochs=25), parents={"teacher": "teacher"}, swept=True)]
    points = [{"distill": "none"}, {"distill": "hard", "alpha": 0.5}, {"distill": "soft", "alpha": 0.1}]
    columns = [Column("student", TOP1, AVERAGED), Column("student", "val/top1_cls", CLS),
               Column("student", "val/top1_dist", "dist head"),
               Column("student", "val/agreement", "agreement with teacher")]
    return stages, ["distill"], points, columns


def _beit_mask_ratio(budget: str):
    # cpu: the tiny tokenizer (6 epochs), 15 BEiT epochs, 10-epoch fine-tunes and scratch:
    # 6 x 25 + 3 x 15 x 12 + 4 x 10 x 7 s + 8 starts = ~17 min a seed
    stages = [Stage("tokenizer", "dvae"),
              Stage("pretrain", "beit", _cpu(budget, epochs=15), parents={"tokenizer": "tokenizer"}, swept=True),
              follow_up("finetune", "pretrain", budget), _scratch(budget)]
    return (stages, ["mask_ratio"], [{"mask_ratio": r} for r in (0.2, 0.4, 0.6)],
            [Column("finetune", TOP1, FINETUNE), Column("pretrain", "val/mask_acc", "masked token acc")])


def _at(column: str, **where: Any) -> Side:
    return Side(column, where)


# where the papers' figures (each checked against the paper) come from
VIT_T8 = "ViT, App. D.4, Table 8 (ViT-B/16, ImageNet 5-shot linear, %)"
DEIT_T3 = "DeiT, Table 3 (DeiT-B, ImageNet top-1 % at 224)"
MAE_T1F = "MAE, Table 1f (ViT-L, 75 % masked, linear probe top-1 %)"
MPP = "ViT, App. B.1.2, no per-target figures"

TEMPLATES: dict[str, Template] = {t.name: t for t in (
    Template("mae-mask-ratio", "MAE: mask ratio",
             "MAE pre-training at mask ratios 0.25 / 0.5 / 0.75 / 0.9, each encoder then linearly probed and "
             "fine-tuned; the same ViT trained from scratch on the fine-tuning budget for reference.",
             "He et al. 2021 (Fig. 5, ViT-L on ImageNet): a high ratio works best. Fine-tuning is good over a wide "
             "range (about 40-80 %); linear probing climbs steadily up to 75 % and falls beyond it.",
             _mae_mask_ratio,
             (Claim("fine-tune after MAE at 0.75 > ViT from scratch", _at(FINETUNE, mask_ratio=0.75),
                    Side(FINETUNE, reference="scratch"), paper="+2.4 (84.9 vs 82.5)",
                    source="MAE, §4 'Baseline: ViT-Large' (ViT-L, ImageNet top-1 %)"),
              Claim("linear probe at 0.75 > at 0.25", _at(PROBE, mask_ratio=0.75), _at(PROBE, mask_ratio=0.25),
                    source="MAE, Fig. 5 (a plot, no table)"))),
    Template("mae-mask-strategy", "MAE: masking strategy",
             "MAE pre-training at 75 % with random, block and grid masking, each encoder linearly probed.",
             "He et al. 2021 (Table 1f, Fig. 6): at 75 %, random sampling beats grid and block masking; block "
             "masking at 75 % is the worst for linear probing (the task gets too hard).",
             _mae_mask_strategy,
             (Claim("random > block", _at(PROBE, mask_strategy="random"), _at(PROBE, mask_strategy="block"),
                    paper="+9.6 (73.5 vs 63.9)", source=MAE_T1F),
              Claim("random > grid", _at(PROBE, mask_strategy="random"), _at(PROBE, mask_strategy="grid"),
                    paper="+7.5 (73.5 vs 66.0)", source=MAE_T1F))),
    Template("vit-pos-embed", "ViT: position embedding",
             "Supervised ViT with a learned 1-D, a learned 2-D (X and Y tables, the paper's), a fixed 2-D sin-cos, "
             "or no position embedding.",
             "Dosovitskiy et al. 2021 (Appendix D.4, Table 8): any position embedding beats none by about 3 points; "
             "1-D, 2-D and relative embeddings come out about equal. (Fixed sin-cos is not in the paper; MAE uses "
             "it.) The built-in shapes cannot show that gain: a shape sits anywhere in its image, so where a patch is "
             "says little about the class. Look for it on data with a layout, such as ImageNet, the paper's.",
             _vit_pos_embed,
             (Claim("learned-1d > none", _at("top-1", pos_embed="learned-1d"), _at("top-1", pos_embed="none"),
                    paper="+2.8 (64.2 vs 61.4)", source=VIT_T8),
              Claim("learned-2d > none", _at("top-1", pos_embed="learned-2d"), _at("top-1", pos_embed="none"),
                    paper="+2.6 (64.0 vs 61.4)", source=VIT_T8),
              Claim("learned-1d ≈ learned-2d", _at("top-1", pos_embed="learned-1d"),
                    _at("top-1", pos_embed="learned-2d"), relation="≈", paper="+0.2 (64.2 vs 64.0)",
                    source=VIT_T8, margin=0.02))),  # 2 points: past the 0.2 it calls equal, short of the 2.6 it calls real
    Template("mpp-targets", "ViT: masked patch prediction targets",
             "ViT masked patch prediction with a 3-bit mean colour, a 4x4 grid of 3-bit colours, or pixel L2 "
             "regression, each encoder linearly probed; a probe of an untrained encoder for reference.",
             "Dosovitskiy et al. 2021 (Appendix B.1.2): all three targets work quite well; L2 regression is slightly "
             "worse than predicting the 3-bit mean colour.",
             _mpp_targets,
             (Claim("color3bit > pixel_l2", _at(PROBE, target="color3bit"), _at(PROBE, target="pixel_l2"),
                    source=f"{MPP}: L2 'slightly worse'"),
              *(Claim(f"{t} > untrained encoder", _at(PROBE, target=t), Side(PROBE, reference="untrained probe"),
                      source=f"{MPP}: all 'work quite well'") for t in ("color3bit", "color3bit_4x4", "pixel_l2")))),
    Template("deit-distill", "DeiT: distillation",
             "A CNN teacher, then the same DeiT student with no, hard (alpha 0.5) and soft (alpha 0.1, tau 3) "
             "distillation; top-1 of the class head, the distillation head and their average.",
             "Touvron et al. 2021 (Table 3): hard distillation beats soft, which is about equal to none; the "
             "averaged heads beat either head alone; a convnet teacher beats a transformer teacher.",
             _deit_distill,
             (Claim("hard > none", _at(AVERAGED, distill="hard"), _at(AVERAGED, distill="none"),
                    paper="+1.6 (83.4 vs 81.8)", source=DEIT_T3),
              Claim("hard > soft", _at(AVERAGED, distill="hard"), _at(AVERAGED, distill="soft"),
                    paper="+1.6 (83.4 vs 81.8)", source=DEIT_T3),
              Claim("cls+dist (averaged) > cls alone", _at(AVERAGED, distill="hard"), _at(CLS, distill="hard"),
                    paper="+0.4 (83.4 vs 83.0)", source=DEIT_T3))),
    Template("beit-mask-ratio", "BEiT: mask ratio",
             "A dVAE tokenizer, then BEiT pre-training with blockwise masking at 0.2 / 0.4 / 0.6, each encoder "
             "fine-tuned; the same ViT from scratch for reference.",
             "Bao et al. 2022: blockwise masking of about 40 % of the patches (75 of 196); the paper fixes this "
             "ratio rather than sweeping it, and its ablation (Table 4) finds blockwise masking beats random "
             "masking when fine-tuning.",
             _beit_mask_ratio,
             (Claim("fine-tune after BEiT at 0.4 > ViT from scratch", _at(FINETUNE, mask_ratio=0.4),
                    Side(FINETUNE, reference="scratch"), paper="+1.4 (83.2 vs 81.8)",
                    source="BEiT, Table 1 (ViT-B, ImageNet-1K top-1 %; scratch: DeiT-B)"),)),
)}


def claims_for(template: str) -> tuple[Claim, ...]:
    """A study's claims: its template's; none for a custom sweep (or a template this version lacks)."""
    return TEMPLATES[template].claims if template in TEMPLATES else ()


def with_seeds(points: list[dict[str, Any]], fields: list[str],
               seeds: Sequence[int]) -> tuple[list[dict[str, Any]], list[str]]:
    """Every point repeated with each seed, and "seed" among the swept fields (the table then has
    a seed column and per-point means); unchanged without seeds."""
    if not seeds:
        return points, fields
    if len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ConfigError("seeds", f"seeds must be distinct whole numbers >= 0, got {list(seeds)}")
    if "seed" in fields:
        raise ConfigError("seeds", "seed is swept already; give its values there or as seeds, not both")
    return [{**p, "seed": seed} for p in points for seed in seeds], [*fields, "seed"]


def template_spec(name: str, budget: str = "tiny", *, common: dict[str, Any] | None = None, parallel: int = 2,
                  study_name: str = "", seeds: Sequence[int] = ()) -> StudySpec:
    """The study a built-in template makes at this budget; `common` fields go to every stage.
    `seeds`: repeat every point, and every shared stage, with each seed (tiny budgets are noisy:
    two or three seeds tell a trend from luck); the table gets a seed column and per-point means."""
    if name not in TEMPLATES:
        raise ConfigError("template", f"unknown study template {name!r}; choose one of {', '.join(TEMPLATES)}")
    if budget not in BUDGETS:
        raise ConfigError("budget", f"unknown budget {budget!r}; choose "
                                    + "; ".join(f"{b} ({about})" for b, (_, about) in BUDGETS.items()))
    t = TEMPLATES[name]
    stages, fields, points, columns = t.build(budget)
    points, fields = with_seeds(points, fields, seeds)
    return StudySpec(stages, fields, points, columns, budget=budget, preset=BUDGETS[budget][0],
                     common=dict(common or {}), name=study_name,
                     template=name, description=t.description, paper_trend=t.paper_trend, parallel=parallel)


def sweep_spec(method: str, axes: list[tuple[str, list[Any]]], *, budget: str | None = "tiny",
               follow_ups: tuple[str, ...] = (), parents: dict[str, int] | None = None,
               common: dict[str, Any] | None = None, parallel: int = 2, study_name: str = "",
               seeds: Sequence[int] = ()) -> StudySpec:
    """A custom study: one method swept over one or two fields (their grid), optionally followed by a
    linear probe and/or a fine-tune of each encoder; `parents` are existing runs (a teacher);
    `seeds` as in `template_spec`."""
    cls = config_class(method)
    if not 1 <= len(axes) <= 2:
        raise ConfigError("sweep", f"sweep one or two fields, not {len(axes)}")
    if len(axes) == 2 and axes[0][0] == axes[1][0]:
        raise ConfigError(axes[0][0], "is swept twice; give all its values in one list, or sweep another field")
    unknown = [k for k in follow_ups if k not in FOLLOW_UPS]
    if unknown:
        raise ConfigError("then", f"unknown follow-up {unknown[0]!r}; choose from {', '.join(FOLLOW_UPS)}")
    if follow_ups and method not in config_class("finetune").parent_roles["encoder"]:
        raise ConfigError("then", f"a {method} run is no encoder to probe or fine-tune; follow-ups need "
                                  f"{', '.join(config_class('finetune').parent_roles['encoder'])}")
    stages = [Stage(method, method, parents=dict(parents or {}), swept=True)]
    stages += [follow_up(kind, method, budget) for kind in follow_ups]
    columns = [Column(method, cls.key_metric, f"{method} {cls.key_metric}")]
    columns += [Column(kind, TOP1, FOLLOW_UP_LABELS[kind]) for kind in follow_ups]
    points, fields = with_seeds(grid(axes), [name for name, _ in axes], seeds)
    return StudySpec(stages, fields, points, columns, budget=budget,
                     common=dict(common or {}), name=study_name,
                     description=f"{method} swept over {' x '.join(name for name, _ in axes)}"
                                 + (f", then {' and '.join(follow_ups)}" if follow_ups else ""),
                     parallel=parallel)
