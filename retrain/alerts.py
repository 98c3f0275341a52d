"""What deserves an alert, how loud, and the message an operator reads on a phone.

Prefect-free on purpose: `alerts_for_run` decides which alerts a finished retrain deserves (the flow
only delivers them, through `tasks.alerts`), and each constructor says *what* to tell, from plain
values, so the rollback command and the failure hook can use them too.
Messages use only the markdown that Slack, Discord and plain webhooks all render: lines, `-` bullets
and `code`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from retrain.errors import AlertError
from retrain.gate import CHAMPION_REGRESSION_CHECK, ECONOMIC_CHECK, GateDecision
from retrain.handoffs import EvaluationSummary, Publication

AlertKind = Literal[
    "challenger_rejected_regression",
    "champion_degraded",
    "run_failed",
    "run_crashed",
    "model_promoted",
    "model_rolled_back",
    "challenger_rejected",
    "gate_inconclusive",
    "champion_without_edge",
]

# Floats such as 0.40 - 0.35 land a hair above 0.05: a drop equal to the tolerance is within it.
_FLOAT_SLACK = 1e-9
_MAX_MESSAGE_CHARS = 600

# Advice per gate check, matched on the start of the check name; the first match wins.
_CHECK_ADVICE = (
    (CHAMPION_REGRESSION_CHECK, "it is worse than the model in production on the same fresh rows"),
    ("min_macro_f1", "it is below the quality floor (`gate.min_macro_f1`)"),
    ("margin_over_", "it does not beat a naive baseline by the margin, so its signals add little"),
    (
        ECONOMIC_CHECK,
        "its signals, held for the label horizon after fees, do not earn more than standing aside",
    ),
    (
        "min_class_support",
        "the holdout has too few rows of a class to trust any score: lengthen `split.holdout_days`",
    ),
)


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class Alert(BaseModel):
    """One thing an operator should know about, about one model version or one flow run."""

    model_config = ConfigDict(frozen=True)

    kind: AlertKind
    severity: Severity
    title: str
    body: str
    details: dict[str, Any] = Field(default_factory=dict)
    version: str | None = Field(None, description="the model version the alert is about")
    flow_run_id: str | None = Field(None, description="the flow run the alert is about")
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @model_validator(mode="after")
    def _names_its_subject(self) -> Alert:
        if self.version is None and self.flow_run_id is None:
            raise ValueError("an alert must name the model version or the flow run it is about")
        return self


def alerts_for_run(
    evaluation: EvaluationSummary,
    decision: GateDecision,
    publication: Publication,
    *,
    degradation_tolerance: float,
    run_label: str,
) -> list[Alert]:
    """Every alert a finished retrain deserves: the champion's degradation on fresh data; the promotion
    (info), or why the challenger was kept out (rejected, or the evidence undecided); and a critical one
    when the champion itself no longer beats the baselines or standing aside. `run_label` names an
    unstored challenger."""
    alerts: list[Alert] = []
    champion = evaluation.champion
    fresh = evaluation.champion_macro_f1
    if fresh is not None and champion.recorded_macro_f1 is not None and champion.version is not None:
        degraded = champion_degradation_alert(
            champion.recorded_macro_f1, fresh, degradation_tolerance, champion.version
        )
        if degraded is not None:
            alerts.append(degraded)
    version = publication.version or f"dry-run-{run_label}"
    if publication.status == "promoted":
        alerts.append(
            promotion_alert(version, publication.previous_version, evaluation.ensemble_macro_f1, fresh)
        )
    elif decision.failed:
        alerts.append(rejection_alert([check.model_dump(mode="json") for check in decision.failed], version))
    elif decision.inconclusive:
        undecided = [check.model_dump(mode="json") for check in decision.inconclusive]
        alerts.append(inconclusive_alert(version, champion.version, undecided))
    if decision.champion_has_edge is False and champion.version is not None:
        failed = [check.model_dump(mode="json") for check in decision.champion_failed]
        alerts.append(champion_without_edge_alert(champion.version, failed))
    return alerts


def champion_degradation_alert(
    recorded_macro_f1: float, fresh_macro_f1: float, tolerance: float, version: str
) -> Alert | None:
    """Warn when the champion, re-scored on a fresh holdout, lost more than `tolerance` macro-F1.

    Returns None while the drop is within the tolerance (or the champion improved).
    """
    _check_score("recorded_macro_f1", recorded_macro_f1)
    _check_score("fresh_macro_f1", fresh_macro_f1)
    _check_score("tolerance", tolerance)
    drop = recorded_macro_f1 - fresh_macro_f1
    if drop <= tolerance + _FLOAT_SLACK:
        return None
    severity = Severity.WARNING
    body = "\n".join(
        [
            f"The production model `{version}` scores macro-F1 {fresh_macro_f1:.3f} on fresh data; "
            f"it scored {recorded_macro_f1:.3f} when it was promoted.",
            f"- drop: {drop:.3f} (tolerance {tolerance:.3f})",
            "",
            "Next: the market has probably moved away from what this model learned. Run the retraining "
            "flow now instead of waiting for the weekly schedule. If the new challenger is rejected too, "
            "check the recent candles for gaps or an exchange outage before trusting either model.",
        ]
    )
    return Alert(
        kind="champion_degraded",
        severity=severity,
        title=_title(
            severity, f"Champion {version} degraded: macro-F1 {recorded_macro_f1:.3f} -> {fresh_macro_f1:.3f}"
        ),
        body=body,
        details={
            "version": version,
            "recorded_macro_f1": recorded_macro_f1,
            "fresh_macro_f1": fresh_macro_f1,
            "drop": drop,
            "tolerance": tolerance,
        },
        version=version,
    )


def rejection_alert(failed_checks: Sequence[dict[str, Any]], version: str) -> Alert:
    """Say why a challenger was kept out of production.

    `failed_checks` are the failed gate checks as dicts with at least `name`, and optionally `detail`,
    `value` and `threshold` (`GateCheck.model_dump()`). A regression against the champion is a warning;
    other gate failures are informational, since production is unchanged.
    """
    if not failed_checks:
        raise AlertError(
            f"rejection_alert for challenger {version!r} needs at least one failed check, got none"
        )
    names = [_check_name(check) for check in failed_checks]
    regression = CHAMPION_REGRESSION_CHECK in names
    severity = Severity.WARNING if regression else Severity.INFO
    headline = "worse than the champion" if regression else f"failed {', '.join(names)}"
    lines = [
        f"Challenger `{version}` was not promoted; production keeps its current model.",
        "Failed checks:",
    ]
    lines += [f"- {_describe_check(check)}" for check in failed_checks]
    advice = dict.fromkeys(_advice(name) for name in names)
    lines += ["", "Why it matters: " + "; ".join(advice) + "."]
    lines.append(
        "Next: nothing to do for this run. If rejections repeat week after week, review the features, "
        "the label threshold and the search spaces."
    )
    return Alert(
        kind="challenger_rejected_regression" if regression else "challenger_rejected",
        severity=severity,
        title=_title(severity, f"Challenger {version} rejected: {headline}"),
        body="\n".join(lines),
        details={"version": version, "failed_checks": [dict(check) for check in failed_checks]},
        version=version,
    )


def promotion_alert(
    version: str, previous_version: str | None, macro_f1: float, champion_macro_f1: float | None
) -> Alert:
    """Tell that `version` now serves, replacing `previous_version` (None for the first model)."""
    _check_score("macro_f1", macro_f1)
    if champion_macro_f1 is not None:
        _check_score("champion_macro_f1", champion_macro_f1)
    replaced = f"replacing `{previous_version}`" if previous_version else "the first model in production"
    lines = [
        f"Model `{version}` is now in production, {replaced}.",
        f"- macro-F1 on the holdout: {macro_f1:.3f}",
    ]
    if champion_macro_f1 is not None:
        lines.append(
            f"- champion on the same rows: {champion_macro_f1:.3f} ({macro_f1 - champion_macro_f1:+.3f})"
        )
    undo = (
        f" To undo, roll back to `{previous_version}` with `retrain model rollback`."
        if previous_version
        else ""
    )
    lines += ["", "Next: nothing to do; the trading bot picks the model up on its next load." + undo]
    severity = Severity.INFO
    return Alert(
        kind="model_promoted",
        severity=severity,
        title=_title(severity, f"Model {version} promoted: macro-F1 {macro_f1:.3f}"),
        body="\n".join(lines),
        details={
            "version": version,
            "previous_version": previous_version,
            "macro_f1": macro_f1,
            "champion_macro_f1": champion_macro_f1,
        },
        version=version,
    )


def rollback_alert(version: str, previous_version: str, reason: str) -> Alert:
    """Tell that production went back to `version`, taking `previous_version` out."""
    severity = Severity.INFO
    body = "\n".join(
        [
            f"Production now serves `{version}`; `{previous_version}` was taken out.",
            f"- reason: {_shorten(reason) or 'none given'}",
            "",
            f"Next: check that the trading bot reloaded `{version}`, and find out what was wrong with "
            f"`{previous_version}` before the next scheduled run promotes a similar model.",
        ]
    )
    return Alert(
        kind="model_rolled_back",
        severity=severity,
        title=_title(severity, f"Rolled back to model {version} (from {previous_version})"),
        body=body,
        details={"version": version, "previous_version": previous_version, "reason": reason},
        version=version,
    )


def failure_alert(
    flow_run_name: str,
    flow_run_id: str,
    state_name: str,
    message: str,
    crashed: bool,
    run_url: str | None = None,
) -> Alert:
    """Page the operator: a run failed (an error in our code or data) or crashed (its process died)."""
    severity = Severity.CRITICAL
    what = "crashed" if crashed else "failed"
    cause = (
        "the process running it died (out of memory, killed, machine restarted): check the worker's "
        "host and its resources"
        if crashed
        else "read the message above and the run's logs"
    )
    lines = [
        f"Retraining run `{flow_run_name}` {what} (state {state_name}).",
        f"- flow run id: `{flow_run_id}`",
        f"- message: {_shorten(message) or 'none'}",
    ]
    if run_url:
        lines.append(f"- logs: {run_url}")
    lines += [
        "",
        f"Next: {cause}, fix the cause, then re-run the flow. Production keeps its model unless the run "
        "had already promoted one (a promotion is all or nothing).",
    ]
    return Alert(
        kind="run_crashed" if crashed else "run_failed",
        severity=severity,
        title=_title(severity, f"Retraining run {flow_run_name} {what}"),
        body="\n".join(lines),
        details={
            "flow_run_name": flow_run_name,
            "flow_run_id": flow_run_id,
            "state_name": state_name,
            "message": message,
            "run_url": run_url,
        },
        flow_run_id=flow_run_id,
    )


def inconclusive_alert(
    version: str, champion_version: str | None, undecided_checks: Sequence[dict[str, Any]]
) -> Alert:
    """Tell that the holdout could not decide: no check failed, but some interval straddled its margin.

    `undecided_checks` are the inconclusive gate checks as dicts (`GateCheck.model_dump()`). Production is
    unchanged, so this is informational.
    """
    if not undecided_checks:
        raise AlertError(f"inconclusive_alert for challenger {version!r} needs at least one undecided check")
    names = [_check_name(check) for check in undecided_checks]
    kept = f"`{champion_version}` stays in production" if champion_version else "production stays empty"
    lines = [
        f"Challenger `{version}` was not promoted: the evidence did not decide; {kept}.",
        "Undecided checks (the interval straddles the margin):",
    ]
    lines += [f"- {_describe_check(check)}" for check in undecided_checks]
    lines += [
        "",
        "Next: nothing to do for this run; the next run judges a new challenger on a fresh holdout. If "
        "every week is inconclusive, the models' edge is too small for a holdout of this length to show: "
        "review the features and the label threshold, or lengthen `split.holdout_days`.",
    ]
    severity = Severity.INFO
    return Alert(
        kind="gate_inconclusive",
        severity=severity,
        title=_title(severity, f"Challenger {version} inconclusive: {', '.join(names)}"),
        body="\n".join(lines),
        details={
            "version": version,
            "champion_version": champion_version,
            "undecided_checks": [dict(check) for check in undecided_checks],
        },
        version=version,
    )


def champion_without_edge_alert(version: str, failed_checks: Sequence[dict[str, Any]]) -> Alert:
    """Page the operator: the model in production no longer beats the naive baselines or standing aside
    on fresh data (its own gate checks failed), so the bot is trading signals without an edge.

    `failed_checks` are the champion's failed gate checks as dicts (`GateCheck.model_dump()`).
    """
    if not failed_checks:
        raise AlertError(f"champion_without_edge_alert for {version!r} needs at least one failed check")
    names = [_check_name(check) for check in failed_checks]
    lines = [
        f"The production model `{version}` has no edge on the fresh holdout: the bot trades signals that "
        "do worse than a naive rule or than standing aside.",
        "Failed checks:",
    ]
    lines += [f"- {_describe_check(check)}" for check in failed_checks]
    advice = dict.fromkeys(_advice(name) for name in names)
    lines += [
        "",
        "Why it matters: " + "; ".join(advice) + ".",
        "Next: decide whether the bot should keep trading on this model: pause it or reduce its size until "
        "a challenger passes the gate; run the retraining flow now rather than waiting for the schedule.",
    ]
    severity = Severity.CRITICAL
    return Alert(
        kind="champion_without_edge",
        severity=severity,
        title=_title(severity, f"Champion {version} has no edge on fresh data: failed {', '.join(names)}"),
        body="\n".join(lines),
        details={"version": version, "failed_checks": [dict(check) for check in failed_checks]},
        version=version,
    )


def _title(severity: Severity, text: str) -> str:
    return f"[{severity.value.upper()}] {text}"


def _check_score(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and 0.0 <= value <= 1.0):
        raise AlertError(f"{name} must be a number in [0, 1], got {value!r}")


def _check_name(check: dict[str, Any]) -> str:
    name = check.get("name")
    if not isinstance(name, str) or not name:
        raise AlertError(f"a failed gate check needs a non-empty 'name', got {check!r}")
    return name


def _describe_check(check: dict[str, Any]) -> str:
    text = f"`{check['name']}`"
    if check.get("detail"):
        text += f": {check['detail']}"
    value, threshold = check.get("value"), check.get("threshold")
    if value is not None and threshold is not None:
        text += f" (value {value:.3f}, needed {threshold:.3f})"
    return text


def _advice(check_name: str) -> str:
    for prefix, advice in _CHECK_ADVICE:
        if check_name.startswith(prefix):
            return advice
    return f"gate check `{check_name}` failed"


def _shorten(text: str) -> str:
    """Keep a message readable on a phone: one paragraph, bounded length."""
    flat = " ".join(text.split())
    return flat if len(flat) <= _MAX_MESSAGE_CHARS else flat[: _MAX_MESSAGE_CHARS - 3] + "..."
