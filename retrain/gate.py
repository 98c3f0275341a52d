"""The promotion gate: a challenger goes live only when every check in config/thresholds.yaml passes.

Checks, all on the fresh holdout the challenger never saw:
- `min_macro_f1`: the ensemble's macro-F1 reaches the floor;
- `margin_over_<baseline>`: it beats each naive baseline by at least the margin;
- `no_regression_vs_champion`: it is not worse than the champion *re-scored on the same holdout*
  by more than the tolerance (the champion's stored numbers are stale: markets move);
- `min_class_support`: every class has enough holdout rows for the scores to mean anything.
Every check's value, threshold and verdict go into the metadata and the run report.
"""

from __future__ import annotations

from pydantic import BaseModel

from retrain.evaluation import ENSEMBLE, EvaluationResult
from retrain.settings import GateSettings

CHAMPION_REGRESSION_CHECK = "no_regression_vs_champion"
"""The check that fails when the challenger is worse than the champion on fresh data."""


class GateCheck(BaseModel):
    name: str
    value: float | None
    threshold: float | None
    passed: bool
    detail: str


class GateDecision(BaseModel):
    promote: bool
    checks: list[GateCheck]

    @property
    def failed(self) -> list[GateCheck]:
        return [check for check in self.checks if not check.passed]

    @property
    def reasons(self) -> list[str]:
        """One line per failed check, or why the challenger passed."""
        if self.promote:
            return ["every gate check passed"]
        return [f"{check.name}: {check.detail}" for check in self.failed]

    def to_markdown(self) -> str:
        rows = ["| check | value | threshold | verdict |", "|---|---|---|---|"]
        for check in self.checks:
            value = "n/a" if check.value is None else f"{check.value:.4f}"
            threshold = "n/a" if check.threshold is None else f"{check.threshold:.4f}"
            verdict = "pass" if check.passed else "**FAIL**"
            rows.append(f"| {check.name} | {value} | {threshold} | {verdict}: {check.detail} |")
        decision = "PROMOTE" if self.promote else "REJECT"
        return f"**Decision: {decision}**\n\n" + "\n".join(rows)


def evaluate_gate(result: EvaluationResult, gate: GateSettings) -> GateDecision:
    """Run every check (none short-circuits, so the report always shows them all)."""
    challenger = result.models[ENSEMBLE].scores.macro_f1
    checks = [_floor_check(challenger, gate.min_macro_f1)]
    checks += [
        _baseline_check(name, challenger, baseline.scores.macro_f1, gate.min_margin_over_baselines)
        for name, baseline in result.baselines.items()
    ]
    checks.append(_champion_check(challenger, result, gate.max_regression_vs_champion))
    checks.append(_support_check(result.class_support, gate.min_class_support))
    return GateDecision(promote=all(check.passed for check in checks), checks=checks)


def _floor_check(challenger: float, floor: float) -> GateCheck:
    passed = challenger >= floor
    detail = f"macro-F1 {challenger:.4f} {'>=' if passed else '<'} floor {floor:.4f}"
    return GateCheck(name="min_macro_f1", value=challenger, threshold=floor, passed=passed, detail=detail)


def _baseline_check(name: str, challenger: float, baseline: float, margin: float) -> GateCheck:
    needed = baseline + margin
    passed = challenger >= needed
    detail = f"macro-F1 {challenger:.4f} vs {name} {baseline:.4f} + margin {margin:.4f}"
    return GateCheck(
        name=f"margin_over_{name}", value=challenger, threshold=needed, passed=passed, detail=detail
    )


def _champion_check(challenger: float, result: EvaluationResult, tolerance: float) -> GateCheck:
    if result.champion is None:
        note = result.champion_note or "no champion in production"
        return GateCheck(
            name=CHAMPION_REGRESSION_CHECK,
            value=challenger,
            threshold=None,
            passed=True,
            detail=f"nothing to compare with ({note})",
        )
    champion = result.champion.scores.macro_f1
    needed = champion - tolerance
    passed = challenger >= needed
    detail = f"macro-F1 {challenger:.4f} vs champion re-scored {champion:.4f} - tolerance {tolerance:.4f}"
    return GateCheck(
        name=CHAMPION_REGRESSION_CHECK, value=challenger, threshold=needed, passed=passed, detail=detail
    )


def _support_check(support: dict[str, int], minimum: int) -> GateCheck:
    weakest_class, weakest = min(support.items(), key=lambda item: item[1])
    passed = weakest >= minimum
    detail = f"smallest class {weakest_class} has {weakest} holdout rows (need {minimum})"
    return GateCheck(
        name="min_class_support", value=float(weakest), threshold=float(minimum), passed=passed, detail=detail
    )
