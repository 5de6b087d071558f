"""Whether a study bore out its paper: for each claim of its template, the effect (the
difference of the two sides' means over seeds), its standard error, n per side, and a verdict
with the rule that gave it.

Verdicts are read off the results table, so they use exactly the numbers the table shows (each
member run's final value), and only once every run they need has finished: a value from a run
still training would make a verdict that changes under the reader. The CLI, the GUI and the
exported files all format the same rows from here.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any, Sequence

from workbench.studies.results import Table, to_csv, to_markdown
from workbench.studies.templates import Claim, Side

HELD, CONTRADICTED, NOISE, PENDING, NO_DATA = "held", "contradicted", "within noise", "pending", "no data"
INCONCLUSIVE = "inconclusive"  # a "≈" claim whose interval is too wide to call the sides equal
AGREES, DISAGREES, NO_VERDICT = "direction only: agrees", "direction only: disagrees", "one seed: no verdict"
VERDICT_RULE = ("effect = mean A − mean B; SE = √(sa²/na + sb²/nb) over seeds. |effect| < 2 SE: within noise, "
                "else held or contradicted by its sign. ≈ (within a margin m): held when effect ± 2 SE lies inside "
                "±m, contradicted when |effect| ≥ 2 SE and ≥ m, else inconclusive. One seed on a side: no SE, "
                "direction only.")
VERDICT_HEADER = ["claim", "effect ± SE", "n", "verdict", "rule", "paper", "source"]  # of `verdict_rows`


@dataclass(frozen=True)
class Verdict:
    """One claim judged. `effect` and `se` are None until they exist (pending; one seed: no SE)."""

    claim: Claim
    verdict: str
    rule: str  # why this verdict, or what it waits for
    n_a: int = 0
    n_b: int = 0
    mean_a: float | None = None
    mean_b: float | None = None
    effect: float | None = None
    se: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """The JSON (and CSV) form: numbers at full precision."""
        return {"claim": self.claim.text, "effect": self.effect, "se": self.se, "n_a": self.n_a, "n_b": self.n_b,
                "mean_a": self.mean_a, "mean_b": self.mean_b, "verdict": self.verdict, "rule": self.rule,
                "paper": self.claim.paper, "source": self.claim.source}

    def effect_text(self) -> str:
        """'+0.0310 ± 0.0100', '+0.0310 (no SE)' with one seed, '' before there is an effect."""
        if self.effect is None:
            return ""
        return f"{self.effect:+.4f} " + (f"± {self.se:.4f}" if self.se is not None else "(no SE)")


def verdicts(table: Table, claims: Sequence[Claim]) -> list[Verdict]:
    """Each claim judged on the table's final values (repeated seeds pooled per side)."""
    out = []
    for claim in claims:
        (a, wait_a), (b, wait_b) = _side(table, claim.a), _side(table, claim.b)
        if a is None or b is None:
            out.append(Verdict(claim, NO_DATA, wait_a or wait_b))
        elif wait_a or wait_b:
            out.append(Verdict(claim, PENDING, f"waits for {wait_a or wait_b}", len(a), len(b)))
        else:
            out.append(judge(claim, a, b))
    return out


def judge(claim: Claim, a: Sequence[float], b: Sequence[float]) -> Verdict:
    """The verdict on `claim` from side A's and side B's values (one per seed), by `VERDICT_RULE`."""
    mean_a, mean_b = statistics.fmean(a), statistics.fmean(b)
    effect, n = mean_a - mean_b, (len(a), len(b))
    if min(n) < 2:
        word = NO_VERDICT if claim.relation == "≈" else AGREES if effect > 0 else DISAGREES
        return Verdict(claim, word, "one seed on a side: no SE, so no verdict beyond the direction", *n,
                       mean_a, mean_b, effect)
    se = math.sqrt(statistics.variance(a) / n[0] + statistics.variance(b) / n[1])
    noise = abs(effect) < 2 * se or effect == 0
    if claim.relation == "≈":  # no difference seen is not equality shown: the interval must fit the margin
        m = claim.margin
        word, rule = ((HELD, f"effect ± 2 SE inside ±{m:g}: equal within the margin") if abs(effect) + 2 * se < m
                      else (CONTRADICTED, f"|effect| ≥ 2 SE and ≥ {m:g}: a difference beyond noise and the margin")
                      if not noise and abs(effect) >= m
                      else (INCONCLUSIVE, f"effect ± 2 SE reaches past ±{m:g}: too noisy to call them equal"))
    elif noise:
        word, rule = NOISE, "|effect| < 2 SE"
    else:
        word, rule = (HELD, "effect ≥ 2 SE, as claimed") if effect > 0 else (
            CONTRADICTED, "effect ≤ −2 SE, against the claim")
    return Verdict(claim, word, rule, *n, mean_a, mean_b, effect, se)


def _side(table: Table, side: Side) -> tuple[list[float] | None, str]:
    """The side's values (its rows' numbers in its column) and what it still waits for ('' when
    every row has finished); None and the reason when the study has no such rows."""
    if side.column not in table.columns:
        return None, f"this study has no column {side.column!r}"
    col = len(table.sweep_fields) + table.columns.index(side.column)
    at = {name: i for i, name in enumerate(table.sweep_fields)}
    rows = [row for row, ref in zip(table.rows, table.reference)
            if (ref == side.reference if side.reference
                else not ref and all(k in at and row[at[k]] == v for k, v in side.where.items()))]
    if not rows:
        return None, f"this study has no row {side.reference or side.where}"
    waiting = next((row[-1] for row in rows if row[-1] != "finished"), "")
    values = [row[col] for row in rows if isinstance(row[col], (int, float)) and not isinstance(row[col], bool)
              and math.isfinite(row[col])]
    if not waiting and not values:
        return None, f"no {side.column} in the finished runs of {side.reference or side.where}"
    return values, waiting


def verdict_rows(found: Sequence[Verdict]) -> list[list[str]]:
    """The verdicts as text, one row per claim under `VERDICT_HEADER` (the GUI panel, Markdown, CLI)."""
    return [[v.claim.text, v.effect_text(), f"{v.n_a} vs {v.n_b}", v.verdict, v.rule, v.claim.paper or "—",
             v.claim.source] for v in found]


def _table(header: list[str], body: list[list[Any]]) -> Table:
    return Table(header, body, [], [], [], [""] * len(body))


def verdict_markdown(found: Sequence[Verdict]) -> str:
    """The rule, then the verdicts as a Markdown table; '' for a study without claims."""
    if not found:
        return ""
    return f"**Verdicts.** {VERDICT_RULE}\n\n{to_markdown(_table(VERDICT_HEADER, verdict_rows(found)))}"


def to_markdown_with(table: Table, found: Sequence[Verdict]) -> str:
    """The results table, then (for a study with claims) the verdicts as a second table."""
    return to_markdown(table) + (f"\n{verdict_markdown(found)}" if found else "")


def to_csv_with(table: Table, found: Sequence[Verdict]) -> str:
    """The results table as CSV, then (for a study with claims) one blank line and the verdicts
    with their own header: the `as_dict` fields, numbers at full precision. Two blocks rather
    than one merged table because the two have different columns: a spreadsheet shows them
    one above the other; a script reads the results up to the blank line (or uses
    `workbench study show ID --json`, which carries both as structured data)."""
    if not found:
        return to_csv(table)
    dicts = [v.as_dict() for v in found]
    return f"{to_csv(table)}\n{to_csv(_table(list(dicts[0]), [list(d.values()) for d in dicts]))}"
