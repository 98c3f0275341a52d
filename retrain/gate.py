"""The promotion gate: a challenger goes live only when the evidence on the fresh holdout says it should.

Checks on the challenger (the ensemble), all on the holdout it never saw:
- `min_macro_f1`: its macro-F1 reaches the floor (a point check);
- `margin_over_<baseline>`: it beats each naive baseline by at least `min_margin_over_baselines`;
- `economic_value_after_fees`: its signals, traded for the label horizon after fees
  (`retrain.trading.horizon_pnl`), earn at least `min_economic_margin` more than standing aside
  (always HOLD, which earns 0);
- `no_regression_vs_champion`: it is not worse than the champion *re-scored on the same holdout* by
  more than `max_regression_vs_champion` (the champion's stored numbers are stale: markets move);
- `min_class_support`: every class has enough holdout rows for the scores to mean anything (a point check).

The margin and economic checks decide on intervals, not points: the difference (challenger minus
baseline, champion or standing aside) is bootstrapped with a paired moving-block bootstrap over the
holdout rows (`retrain.bootstrap`, same resamples for every predictor). At `gate.confidence`:
- pass when the interval's lower bound clears the margin (lower >= margin);
- fail when its upper bound is below the margin (upper < margin): the evidence says it does not;
- inconclusive when the interval straddles the margin: the holdout cannot tell.
The outcome: `reject` if any check failed, else `inconclusive` if any check was, else `promote`.
Inconclusive keeps the champion, like a rejection, but it is not evidence against the challenger.

The champion faces the same baseline and economic checks on the fresh holdout (`champion_checks`);
they do not decide the challenger's fate, they say whether what the bot trades still has an edge.
Every check's value, interval, threshold and verdict go into the metadata and the run report.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, computed_field, model_validator

from retrain.bootstrap import Interval, PairedBootstrap, Resampled
from retrain.errors import InvalidInputError
from retrain.evaluation import CHAMPION, ENSEMBLE, EvaluationResult, HoldoutRows
from retrain.settings import GateSettings

CHAMPION_REGRESSION_CHECK = "no_regression_vs_champion"
"""The check that fails when the challenger is worse than the champion on fresh data."""
ECONOMIC_CHECK = "economic_value_after_fees"
"""The check that fails when the signals, traded after fees, lose against standing aside."""

Verdict = Literal["pass", "fail", "inconclusive"]
Outcome = Literal["promote", "reject", "inconclusive"]

BOOTSTRAP_SEED = 0
"""Fixed: the same evaluation always gets the same decision."""
BLOCK_HORIZONS = 4
"""Default block = 4 label horizons (neighbouring labels overlap over one horizon; four also spans the
short volatility clusters of 15-minute candles), or rows ** (1/3) (the textbook rate) if that is longer."""
PROMOTE_REASON = "every gate check passed"


class GateCheck(BaseModel):
    """One check. For a bootstrapped check `value` is the point difference and [lower, upper] its
    interval at the gate's confidence; `threshold` is the margin it must clear."""

    model_config = ConfigDict(frozen=True)

    name: str
    value: float | None
    lower: float | None = None
    upper: float | None = None
    threshold: float | None
    verdict: Verdict
    detail: str

    @computed_field
    @property
    def passed(self) -> bool:
        return self.verdict == "pass"


class GateDecision(BaseModel):
    """The gate's decision: the challenger's checks decide the outcome; the champion's only inform."""

    model_config = ConfigDict(frozen=True)

    outcome: Outcome
    checks: list[GateCheck]
    champion_checks: list[GateCheck] = []

    @model_validator(mode="after")
    def _outcome_follows_the_checks(self) -> GateDecision:
        expected = outcome_of(self.checks)
        if self.outcome != expected:
            raise ValueError(f"outcome {self.outcome!r} contradicts the checks, which give {expected!r}")
        return self

    @computed_field
    @property
    def promote(self) -> bool:
        return self.outcome == "promote"

    @property
    def failed(self) -> list[GateCheck]:
        return [check for check in self.checks if check.verdict == "fail"]

    @property
    def inconclusive(self) -> list[GateCheck]:
        return [check for check in self.checks if check.verdict == "inconclusive"]

    @property
    def champion_failed(self) -> list[GateCheck]:
        return [check for check in self.champion_checks if check.verdict == "fail"]

    @computed_field
    @property
    def champion_has_edge(self) -> bool | None:
        """None without a re-scored champion; False when the evidence says the champion does not beat a
        baseline or standing aside (a champion check failed); True otherwise (passed or inconclusive)."""
        if not self.champion_checks:
            return None
        return not self.champion_failed

    @computed_field
    @property
    def reasons(self) -> list[str]:
        """Why: the failed checks of a rejection, the undecided ones of an inconclusive outcome."""
        if self.outcome == "promote":
            return [PROMOTE_REASON]
        if self.outcome == "reject":
            return [f"{check.name}: {check.detail}" for check in self.failed]
        return [f"{check.name} inconclusive: {check.detail}" for check in self.inconclusive]

    def to_markdown(self) -> str:
        text = f"**Decision: {self.outcome.upper()}**\n\n" + _checks_table(self.checks)
        if self.champion_checks:
            edge = (
                "no check failed" if self.champion_has_edge else "**no edge on fresh data: a check failed**"
            )
            text += f"\n\nThe champion on the same rows ({edge}):\n\n" + _checks_table(self.champion_checks)
        return text


def outcome_of(checks: list[GateCheck]) -> Outcome:
    """reject if any check failed, else inconclusive if any was, else promote."""
    verdicts = {check.verdict for check in checks}
    if "fail" in verdicts:
        return "reject"
    return "inconclusive" if "inconclusive" in verdicts else "promote"


def bootstrap_block(gate: GateSettings, horizon: int, n_rows: int) -> int:
    """Rows per bootstrap block: the configured one (never shorter than the horizon) or the default."""
    if gate.bootstrap_block is not None:
        if gate.bootstrap_block < horizon:
            raise InvalidInputError(
                f"gate.bootstrap_block is {gate.bootstrap_block} rows, shorter than the label horizon "
                f"({horizon}): overlapping labels would be split; set it to at least {horizon} or leave it unset"
            )
        return min(gate.bootstrap_block, n_rows)
    return min(max(BLOCK_HORIZONS * horizon, math.ceil(n_rows ** (1 / 3))), n_rows)


def evaluate_gate(result: EvaluationResult, gate: GateSettings) -> GateDecision:
    """Run every check (none short-circuits, so the report always shows them all)."""
    rows = result.rows
    if rows is None:
        raise InvalidInputError(
            "the evaluation has no per-row holdout predictions (EvaluationResult.rows); the gate bootstraps "
            "over them: re-run the evaluation with this version of retrain.evaluation"
        )
    bootstrap = PairedBootstrap(
        len(rows.y_true),
        block=bootstrap_block(gate, rows.horizon, len(rows.y_true)),
        resamples=gate.bootstrap_resamples,
        confidence=gate.confidence,
        seed=BOOTSTRAP_SEED,
    )
    y_true = np.asarray(rows.y_true, dtype=np.int64)
    scores = {
        name: bootstrap.macro_f1(y_true, np.asarray(predictions, dtype=np.int64))
        for name, predictions in rows.predictions.items()
    }
    challenger = result.models[ENSEMBLE].scores.macro_f1
    checks = [_floor_check(challenger, gate.min_macro_f1)]
    checks += _edge_checks(ENSEMBLE, rows, list(result.baselines), scores, bootstrap, gate)
    checks.append(_champion_check(result, scores, bootstrap, gate.max_regression_vs_champion))
    checks.append(_support_check(result.class_support, gate.min_class_support))
    champion_checks = []
    if result.champion is not None:
        champion_checks = _edge_checks(CHAMPION, rows, list(result.baselines), scores, bootstrap, gate)
    return GateDecision(outcome=outcome_of(checks), checks=checks, champion_checks=champion_checks)


def _edge_checks(
    name: str,
    rows: HoldoutRows,
    baselines: list[str],
    scores: dict[str, Resampled],
    bootstrap: PairedBootstrap,
    gate: GateSettings,
) -> list[GateCheck]:
    """`name`'s margin over each naive baseline, and its value after fees over standing aside."""
    checks = []
    for baseline in baselines:
        interval = bootstrap.difference(scores[name], scores[baseline])
        what = f"macro-F1 {name} {interval.a:.4f} - {baseline} {interval.b:.4f}"
        checks.append(
            _interval_check(f"margin_over_{baseline}", interval, gate.min_margin_over_baselines, what)
        )
    pnl = rows.pnl(name)
    interval = bootstrap.difference(bootstrap.total(pnl), bootstrap.total(np.zeros_like(pnl)))
    what = (
        f"{name}'s signals held {rows.horizon} candles earn {interval.a:+.4f} after fees "
        f"(fee {rows.fee_rate:.4f} per unit traded) - standing aside 0"
    )
    checks.append(_interval_check(ECONOMIC_CHECK, interval, gate.min_economic_margin, what))
    return checks


def _interval_check(name: str, interval: Interval, margin: float, what: str) -> GateCheck:
    if interval.lower >= margin:
        verdict: Verdict = "pass"
        why = "the whole interval clears the margin"
    elif interval.upper < margin:
        verdict = "fail"
        why = "the whole interval is below the margin"
    else:
        verdict = "inconclusive"
        why = "the interval straddles the margin"
    detail = (
        f"{what} = {interval.estimate:+.4f}, {interval.confidence:.0%} interval "
        f"[{interval.lower:+.4f}, {interval.upper:+.4f}] vs margin {margin:+.4f}: {why}"
    )
    return GateCheck(
        name=name,
        value=interval.estimate,
        lower=interval.lower,
        upper=interval.upper,
        threshold=margin,
        verdict=verdict,
        detail=detail,
    )


def _floor_check(challenger: float, floor: float) -> GateCheck:
    passed = challenger >= floor
    detail = f"macro-F1 {challenger:.4f} {'>=' if passed else '<'} floor {floor:.4f}"
    return GateCheck(
        name="min_macro_f1", value=challenger, threshold=floor, verdict=_point(passed), detail=detail
    )


def _champion_check(
    result: EvaluationResult, scores: dict[str, Resampled], bootstrap: PairedBootstrap, tolerance: float
) -> GateCheck:
    if result.champion is None:
        note = result.champion_note or "no champion in production"
        return GateCheck(
            name=CHAMPION_REGRESSION_CHECK,
            value=None,
            threshold=None,
            verdict="pass",
            detail=f"nothing to compare with ({note})",
        )
    interval = bootstrap.difference(scores[ENSEMBLE], scores[CHAMPION])
    what = f"macro-F1 challenger {interval.a:.4f} - champion re-scored {interval.b:.4f}"
    return _interval_check(CHAMPION_REGRESSION_CHECK, interval, -tolerance, what)


def _support_check(support: dict[str, int], minimum: int) -> GateCheck:
    weakest_class, weakest = min(support.items(), key=lambda item: item[1])
    passed = weakest >= minimum
    detail = f"smallest class {weakest_class} has {weakest} holdout rows (need {minimum})"
    return GateCheck(
        name="min_class_support",
        value=float(weakest),
        threshold=float(minimum),
        verdict=_point(passed),
        detail=detail,
    )


def _point(passed: bool) -> Verdict:
    return "pass" if passed else "fail"


def _checks_table(checks: list[GateCheck]) -> str:
    rows = ["| check | value | interval | threshold | verdict |", "|---|---|---|---|---|"]
    for check in checks:
        value = "n/a" if check.value is None else f"{check.value:.4f}"
        interval = (
            "-" if check.lower is None or check.upper is None else f"[{check.lower:.4f}, {check.upper:.4f}]"
        )
        threshold = "n/a" if check.threshold is None else f"{check.threshold:.4f}"
        verdict = {"pass": "pass", "fail": "**FAIL**", "inconclusive": "*inconclusive*"}[check.verdict]
        rows.append(f"| {check.name} | {value} | {interval} | {threshold} | {verdict}: {check.detail} |")
    return "\n".join(rows)
