"""Verdicts on a study's claims, from member runs given their final results directly in the store
(nothing trains): the effect, its SE and n by hand; held, contradicted and within noise by the
2-SE rule; one seed gives the direction only; unfinished runs leave a claim pending; a reference
row (the ViT from scratch, one run per seed) is a side with n = seeds; the exports and
`workbench study show` carry them."""

from __future__ import annotations

import csv
import io
import json
import math
import statistics

import pytest

from tests.conftest import finish_queued_members
from workbench.store import Store
from workbench.studies import (
    TEMPLATES,
    Claim,
    Side,
    create_study,
    overview,
    results,
    seed_means,
    sweep_spec,
    template_spec,
    to_csv,
    to_csv_with,
    to_markdown_with,
    verdicts,
)
from workbench.studies.results import mean_sd
from workbench.studies.verdicts import (
    AGREES,
    CONTRADICTED,
    DISAGREES,
    HELD,
    INCONCLUSIVE,
    NO_DATA,
    NO_VERDICT,
    NOISE,
    PENDING,
)

# top-1 per position embedding, one value per seed: 1-D well above none, 2-D within noise of it
TOP1 = {"learned-1d": [0.50, 0.52, 0.54], "learned-2d": [0.39, 0.45, 0.42], "sincos-2d": [0.30, 0.31, 0.32],
        "none": [0.40, 0.41, 0.42]}


def pos_embed_study(store: Store, top1: dict[str, list[float]], seeds: list[int]) -> int:
    study = create_study(store, template_spec("vit-pos-embed", seeds=seeds))
    finish_queued_members(store, study.id, lambda stage, v: {"val/top1": top1[v["pos_embed"]][v.get("seed", 0)]})
    return study.id


def judged(store: Store, study_id: int) -> dict[str, object]:
    view = overview(store, study_id)
    return {v.claim.text: v for v in verdicts(results(view), TEMPLATES[view.study.template].claims)}


def se(a: list[float], b: list[float]) -> float:
    return math.sqrt(statistics.variance(a) / len(a) + statistics.variance(b) / len(b))


def test_held_contradicted_and_within_noise_by_two_standard_errors(store: Store) -> None:
    study_id = pos_embed_study(store, TOP1, [0, 1, 2])
    found = judged(store, study_id)
    one, two, same = found["learned-1d > none"], found["learned-2d > none"], found["learned-1d ≈ learned-2d"]
    assert (one.n_a, one.n_b) == (3, 3)
    assert one.effect == pytest.approx(0.52 - 0.41) and one.se == pytest.approx(se(TOP1["learned-1d"], TOP1["none"]))
    assert one.verdict == HELD and one.rule == "effect ≥ 2 SE, as claimed"  # 0.11 against an SE of 0.013
    assert two.effect == pytest.approx(0.01) and two.se == pytest.approx(se(TOP1["learned-2d"], TOP1["none"]))
    assert two.verdict == NOISE and two.rule == "|effect| < 2 SE"  # 0.01 against an SE of 0.018
    assert same.effect == pytest.approx(0.10) and same.verdict == CONTRADICTED  # "≈", yet 0.10 against 0.021
    assert one.effect_text() == f"+0.1100 ± {one.se:.4f}" and one.as_dict()["paper"] == "+2.8 (64.2 vs 61.4)"
    assert one.as_dict()["source"].startswith("ViT, App. D.4, Table 8")

    # the same runs, their stored results changed: none now beats both; 1-D and 2-D alike, but
    # with seeds 4 points apart: no difference seen is not equality shown
    view = overview(store, study_id)

    def stored(top1: dict[str, list[float]]) -> dict[str, object]:
        for member in view.members:
            pos = member.values["pos_embed"]
            store.update_run(member.run_id, summary={"val/top1": top1.get(pos, TOP1[pos])[member.values["seed"]]})
        return judged(store, study_id)

    found = stored({"none": [0.60, 0.61, 0.62], "learned-2d": TOP1["learned-1d"]})
    assert found["learned-1d > none"].verdict == CONTRADICTED
    assert found["learned-1d > none"].rule == "effect ≤ −2 SE, against the claim"
    same = found["learned-1d ≈ learned-2d"]
    assert same.effect == 0 and same.verdict == INCONCLUSIVE  # 0 ± 2 x 0.016 reaches past the 0.02 margin
    assert same.rule == "effect ± 2 SE reaches past ±0.02: too noisy to call them equal"
    tight = [0.500, 0.502, 0.504]
    same = stored({"learned-1d": tight, "learned-2d": [v + 0.003 for v in tight]})["learned-1d ≈ learned-2d"]
    assert same.verdict == HELD and same.rule == "effect ± 2 SE inside ±0.02: equal within the margin"


def test_one_seed_gives_the_direction_only(store: Store) -> None:
    study_id = pos_embed_study(store, {"learned-1d": [0.5], "learned-2d": [0.4], "sincos-2d": [0.3], "none": [0.45]},
                               [])
    found = judged(store, study_id)
    one = found["learned-1d > none"]
    assert one.verdict == AGREES and one.se is None and (one.n_a, one.n_b) == (1, 1)
    assert one.effect == pytest.approx(0.05) and one.effect_text() == "+0.0500 (no SE)"
    assert "no verdict" in one.rule
    assert found["learned-2d > none"].verdict == DISAGREES
    assert found["learned-1d ≈ learned-2d"].verdict == NO_VERDICT


def test_unfinished_runs_leave_a_claim_pending_and_a_reference_row_is_a_side(store: Store) -> None:
    study = create_study(store, template_spec("mae-mask-ratio", seeds=[0, 1]))
    probe = {0.25: [0.20, 0.21], 0.5: [0.22, 0.23], 0.75: [0.30, 0.31], 0.9: [0.25, 0.26]}
    finetune = {0.25: [0.35, 0.37], 0.5: [0.38, 0.39], 0.75: [0.40, 0.42], 0.9: [0.27, 0.29]}
    scratch_top1 = [0.29, 0.31]

    def summary(stage: str, v: dict) -> dict[str, float]:
        if stage == "scratch":
            return {"val/top1": scratch_top1[v["seed"]]}
        table = {"probe": probe, "finetune": finetune}.get(stage)
        return {"val/top1": table[v["mask_ratio"]][v["seed"]]} if table else {"val/loss": 0.1}

    assert finish_queued_members(store, study.id, lambda stage, v: summary(stage, v) if stage == "pretrain" else None)
    found = judged(store, study.id)
    assert {v.verdict for v in found.values()} == {PENDING}
    waits = found["linear probe at 0.75 > at 0.25"]
    assert waits.effect is None and waits.rule.startswith("waits for probe: run ") and waits.rule.endswith("queued")

    while finish_queued_members(store, study.id, summary):
        pass
    found = judged(store, study.id)
    probe_claim = found["linear probe at 0.75 > at 0.25"]
    assert probe_claim.verdict == HELD and (probe_claim.n_a, probe_claim.n_b) == (2, 2)
    assert probe_claim.effect == pytest.approx(0.10) and probe_claim.se == pytest.approx(se(probe[0.75], probe[0.25]))
    scratch = found["fine-tune after MAE at 0.75 > ViT from scratch"]  # the reference runs once per seed
    assert (scratch.n_a, scratch.n_b) == (2, 2) and scratch.verdict == HELD
    assert scratch.mean_b == pytest.approx(0.30) and scratch.effect == pytest.approx(0.11)
    assert scratch.se == pytest.approx(se(finetune[0.75], scratch_top1))


def test_a_claim_against_the_vit_from_scratch_has_n_seeds_on_both_sides(store: Store) -> None:
    study = create_study(store, template_spec("mae-mask-ratio", seeds=[0, 1, 2]))
    finetune, scratch = {0.75: [0.40, 0.42, 0.41]}, [0.30, 0.41, 0.36]

    def summary(stage: str, v: dict) -> dict[str, float]:
        if stage == "scratch":
            return {"val/top1": scratch[v["seed"]]}
        return {"val/top1": finetune.get(v["mask_ratio"], [0.3] * 3)[v["seed"]], "val/loss": 0.1}

    while finish_queued_members(store, study.id, summary):
        pass
    table = results(overview(store, study.id))
    rows = [row for row, ref in zip(table.rows, table.reference) if ref == "scratch"]
    assert [(row[0], row[1], row[3]) for row in rows] == [("scratch (vit)", s, top1) for s, top1 in enumerate(scratch)]
    means = seed_means(table)
    assert means.reference[-1] == "scratch" and means.rows[-1] == [
        "scratch (vit)", "", mean_sd(scratch), "", "n=3"]
    found = judged(store, study.id)["fine-tune after MAE at 0.75 > ViT from scratch"]
    assert (found.n_a, found.n_b) == (3, 3) and found.mean_b == pytest.approx(statistics.fmean(scratch))
    assert found.se == pytest.approx(se(finetune[0.75], scratch)) and found.verdict == NOISE  # 0.053 vs an SE of 0.032


def test_every_template_claim_names_rows_and_columns_its_study_has(store: Store) -> None:
    for name, template in TEMPLATES.items():
        assert template.claims, name
        table = results(overview(store, create_study(store, template_spec(name, seeds=[0, 1])).id))
        assert {v.verdict for v in verdicts(table, template.claims)} == {PENDING}, name
    missing = Claim("rope > none", Side("top-1", {"pos_embed": "rope"}), Side("top-1", {"pos_embed": "none"}))
    wrong = Claim("x", Side("top-5", {"pos_embed": "none"}), Side("top-1", {"pos_embed": "none"}))
    table = results(overview(store, pos_embed_study(store, TOP1, [0, 1, 2])))
    assert [(v.verdict, v.rule) for v in verdicts(table, [missing, wrong])] == [
        (NO_DATA, "this study has no row {'pos_embed': 'rope'}"), (NO_DATA, "this study has no column 'top-5'")]
    with pytest.raises(ValueError, match="needs a margin above 0"):  # 'about equal' within 0 never holds
        Claim("1-D ≈ 2-D", missing.a, missing.b, relation="≈")


def test_exports_add_the_verdicts_after_the_results(store: Store) -> None:
    view = overview(store, pos_embed_study(store, TOP1, [0, 1, 2]))
    table = results(view)
    found = verdicts(table, TEMPLATES["vit-pos-embed"].claims)
    markdown = to_markdown_with(table, found)
    results_md, verdict_md = markdown.split("**Verdicts.**")
    assert results_md.startswith("| pos_embed | seed | top-1 | status |") and "| learned-1d | 0 | 0.5000 |" in results_md
    assert "| claim | effect ± SE | n | verdict | rule | paper | source |" in verdict_md
    assert f"| learned-1d > none | +0.1100 ± {found[0].se:.4f} | 3 vs 3 | held |" in verdict_md
    assert "| within noise | \\|effect\\| < 2 SE | +2.6 (64.0 vs 61.4) |" in verdict_md  # a | escaped, not a cell

    text = to_csv_with(table, found)
    first, second = text.split("\n\n")
    assert first + "\n" == to_csv(table)
    rows = list(csv.DictReader(io.StringIO(second)))
    assert list(rows[0]) == list(found[0].as_dict())
    assert [r["verdict"] for r in rows] == [HELD, NOISE, CONTRADICTED]
    assert float(rows[0]["se"]) == found[0].se and rows[0]["n_a"] == "3"

    custom = results(overview(store, create_study(store, sweep_spec("vit", [("lr", [1e-3, 2e-3])])).id))
    assert to_csv_with(custom, []) == to_csv(custom)  # a custom sweep has no claims: the table alone


def test_study_show_carries_the_verdicts(cli, store: Store) -> None:
    study_id = pos_embed_study(store, TOP1, [0, 1, 2])
    info = json.loads(cli("study", "show", str(study_id), "--json").stdout)
    first = info["verdicts"][0]
    assert {k: first[k] for k in ("claim", "n_a", "n_b", "verdict", "paper")} == {
        "claim": "learned-1d > none", "n_a": 3, "n_b": 3, "verdict": HELD, "paper": "+2.8 (64.2 vs 61.4)"}
    assert first["effect"] == pytest.approx(0.11) and first["se"] == pytest.approx(se(TOP1["learned-1d"], TOP1["none"]))
    assert first["rule"] == "effect ≥ 2 SE, as claimed" and first["source"].startswith("ViT, App. D.4")
    assert [v["verdict"] for v in info["verdicts"]] == [HELD, NOISE, CONTRADICTED] and "2 SE" in info["verdict_rule"]
    shown = cli("study", "show", str(study_id)).stdout
    assert "**Verdicts.**" in shown and "| learned-1d ≈ learned-2d | +0.1000 ± " in shown
    markdown = cli("study", "show", str(study_id), "--markdown").stdout
    assert markdown.startswith("| pos_embed | seed | top-1 | status |") and "| claim | effect ± SE |" in markdown
