"""What deserves an alert and what it says: thresholds, kinds, severities, the numbers in the message."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from retrain.alerts import (
    Alert,
    Severity,
    champion_degradation_alert,
    champion_without_edge_alert,
    failure_alert,
    inconclusive_alert,
    promotion_alert,
    rejection_alert,
    rollback_alert,
)
from retrain.errors import AlertError
from retrain.gate import CHAMPION_REGRESSION_CHECK, ECONOMIC_CHECK

REGRESSION_CHECK = {
    "name": CHAMPION_REGRESSION_CHECK,
    "value": 0.331,
    "threshold": 0.352,
    "passed": False,
    "detail": "macro-F1 0.3310 vs champion re-scored 0.3620 - tolerance 0.0100",
}
FLOOR_CHECK = {
    "name": "min_macro_f1",
    "value": 0.301,
    "threshold": 0.35,
    "passed": False,
    "detail": "macro-F1 0.3010 < floor 0.3500",
}


@pytest.mark.parametrize(
    ("recorded", "fresh"),
    [(0.40, 0.35), (0.40, 0.38), (0.40, 0.40), (0.40, 0.45)],
    ids=["drop-equal-to-tolerance", "small-drop", "unchanged", "improved"],
)
def test_champion_within_tolerance_gives_no_alert(recorded: float, fresh: float) -> None:
    assert champion_degradation_alert(recorded, fresh, tolerance=0.05, version="v7") is None


def test_champion_beyond_tolerance_warns_naming_both_scores_and_version() -> None:
    alert = champion_degradation_alert(0.412, 0.351, tolerance=0.05, version="v7")

    assert alert is not None
    assert alert.kind == "champion_degraded"
    assert alert.severity is Severity.WARNING
    assert alert.version == "v7"
    for text in (alert.title, alert.body):
        assert "0.412" in text and "0.351" in text and "v7" in text
    assert "drop: 0.061 (tolerance 0.050)" in alert.body
    assert alert.details["drop"] == pytest.approx(0.061)


@pytest.mark.parametrize("bad", [math.nan, 1.2, -0.1])
def test_degradation_refuses_scores_that_are_not_macro_f1(bad: float) -> None:
    with pytest.raises(AlertError, match="fresh_macro_f1 must be a number in"):
        champion_degradation_alert(0.4, bad, tolerance=0.05, version="v7")


def test_rejection_by_champion_regression_is_a_warning_of_its_own_kind() -> None:
    alert = rejection_alert([FLOOR_CHECK, REGRESSION_CHECK], version="v8")

    assert alert.kind == "challenger_rejected_regression"
    assert alert.severity is Severity.WARNING
    assert "worse than the champion" in alert.title
    assert REGRESSION_CHECK["detail"] in alert.body
    assert "(value 0.331, needed 0.352)" in alert.body


def test_rejection_by_other_checks_is_informational_and_names_them() -> None:
    alert = rejection_alert([FLOOR_CHECK], version="v8")

    assert alert.kind == "challenger_rejected"
    assert alert.severity is Severity.INFO
    assert "min_macro_f1" in alert.title
    assert "v8" in alert.title
    assert "quality floor" in alert.body
    assert alert.details["failed_checks"] == [FLOOR_CHECK]


def test_rejection_without_a_failed_check_is_refused() -> None:
    with pytest.raises(AlertError, match="at least one failed check"):
        rejection_alert([], version="v8")


@pytest.mark.parametrize(
    ("crashed", "kind", "word"), [(False, "run_failed", "failed"), (True, "run_crashed", "crashed")]
)
def test_failure_alert_is_critical_and_names_the_run(crashed: bool, kind: str, word: str) -> None:
    alert = failure_alert(
        "weekly-otter", "0f3c", "Crashed" if crashed else "Failed", "ValueError: no candles", crashed=crashed
    )

    assert alert.kind == kind
    assert alert.severity is Severity.CRITICAL
    assert alert.title == f"[CRITICAL] Retraining run weekly-otter {word}"
    assert "`0f3c`" in alert.body
    assert "ValueError: no candles" in alert.body
    assert alert.flow_run_id == "0f3c"


def test_failure_alert_links_the_run_logs_when_a_url_is_known() -> None:
    alert = failure_alert("r", "id", "Failed", "boom", crashed=False, run_url="http://ui/runs/flow-run/id")

    assert "- logs: http://ui/runs/flow-run/id" in alert.body


def test_failure_message_is_flattened_and_shortened_for_a_phone() -> None:
    traceback = "Traceback (most recent call last):\n" + "  File x.py, line 1\n" * 200

    alert = failure_alert("r", "id", "Failed", traceback, crashed=False)

    message_line = next(line for line in alert.body.splitlines() if line.startswith("- message:"))
    assert len(message_line) < 700
    assert message_line.endswith("...")
    assert alert.details["message"] == traceback


def test_promotion_alert_is_info_and_shows_the_gain_over_the_champion() -> None:
    alert = promotion_alert("v9", previous_version="v8", macro_f1=0.372, champion_macro_f1=0.351)

    assert alert.kind == "model_promoted"
    assert alert.severity is Severity.INFO
    assert "v9" in alert.title and "0.372" in alert.title
    assert "replacing `v8`" in alert.body
    assert "0.351 (+0.021)" in alert.body
    assert "roll back to `v8`" in alert.body


def test_promotion_of_the_first_model_says_so_and_offers_no_rollback() -> None:
    alert = promotion_alert("v1", previous_version=None, macro_f1=0.372, champion_macro_f1=None)

    assert "the first model in production" in alert.body
    assert "champion" not in alert.body
    assert "roll back" not in alert.body


def test_rollback_alert_is_info_and_names_both_versions_and_the_reason() -> None:
    alert = rollback_alert("v8", previous_version="v9", reason="bot saw 40% SELL in an hour")

    assert alert.kind == "model_rolled_back"
    assert alert.severity is Severity.INFO
    assert alert.version == "v8"
    assert "v8" in alert.title and "v9" in alert.title
    assert "bot saw 40% SELL in an hour" in alert.body


def test_alert_must_name_a_model_version_or_a_flow_run() -> None:
    with pytest.raises(ValidationError, match="must name the model version or the flow run"):
        Alert(kind="run_failed", severity=Severity.CRITICAL, title="t", body="b")


def _summary(champion_recorded: float | None, champion_fresh: float | None, ensemble: float = 0.40):
    from datetime import UTC, datetime

    from retrain.handoffs import ChampionRecord, EvaluationSummary

    version = None if champion_recorded is None else "20260101T000000.000000Z-champion"
    return EvaluationSummary(
        holdout_start=datetime(2026, 1, 1, tzinfo=UTC),
        holdout_end=datetime(2026, 1, 14, tzinfo=UTC),
        rows=1300,
        ensemble_macro_f1=ensemble,
        baselines_macro_f1={"persistence": 0.36},
        champion_macro_f1=champion_fresh,
        champion=ChampionRecord(
            version=version, recorded_macro_f1=champion_recorded, note=None, live_version=version
        ),
    )


def _decision(passed: bool, champion_verdict: str | None = None):
    from retrain.gate import GateCheck, GateDecision

    verdict = "pass" if passed else "fail"
    check = GateCheck(name="min_macro_f1", value=0.4, threshold=0.35, verdict=verdict, detail="floor")
    champion_checks = []
    if champion_verdict is not None:
        champion_checks = [
            GateCheck(
                name="margin_over_persistence",
                value=-0.02,
                lower=-0.05,
                upper=-0.01,
                threshold=0.0,
                verdict=champion_verdict,
                detail="champion vs persistence",
            )
        ]
    return GateDecision(
        outcome="promote" if passed else "reject", checks=[check], champion_checks=champion_checks
    )


def test_alerts_for_a_promoted_run_are_the_promotion_alone_while_the_champion_holds() -> None:
    from retrain.alerts import alerts_for_run
    from retrain.handoffs import Publication

    alerts = alerts_for_run(
        _summary(0.40, 0.38),
        _decision(True),
        Publication(version="v2", status="promoted", previous_version="v1"),
        degradation_tolerance=0.05,
        run_label="run",
    )
    assert [alert.kind for alert in alerts] == ["model_promoted"]


def test_alerts_for_a_rejected_run_name_the_degraded_champion_and_the_rejection() -> None:
    from retrain.alerts import alerts_for_run
    from retrain.handoffs import Publication

    alerts = alerts_for_run(
        _summary(0.45, 0.30),
        _decision(False),
        Publication(version=None, status="dry-run", previous_version=None),
        degradation_tolerance=0.05,
        run_label="20260101-direct",
    )
    assert [alert.kind for alert in alerts] == ["champion_degraded", "challenger_rejected"]
    assert alerts[1].version == "dry-run-20260101-direct"


def test_alerts_for_a_first_run_without_champion_skip_the_degradation_check() -> None:
    from retrain.alerts import alerts_for_run
    from retrain.handoffs import Publication

    alerts = alerts_for_run(
        _summary(None, None),
        _decision(True),
        Publication(version="v1", status="promoted", previous_version=None),
        degradation_tolerance=0.05,
        run_label="run",
    )
    assert [alert.kind for alert in alerts] == ["model_promoted"]


UNDECIDED_CHECK = {
    "name": "margin_over_persistence",
    "value": 0.012,
    "lower": -0.009,
    "upper": 0.034,
    "threshold": 0.0,
    "verdict": "inconclusive",
    "detail": "macro-F1 ensemble 0.3730 - persistence 0.3610 = +0.0120, 90% interval [-0.0090, +0.0340]",
}
ECONOMIC_FAILURE = {
    "name": ECONOMIC_CHECK,
    "value": -0.081,
    "lower": -0.15,
    "upper": -0.02,
    "threshold": 0.0,
    "verdict": "fail",
    "detail": "champion's signals held 4 candles earn -0.0810 after fees",
}


def test_inconclusive_alert_is_info_says_the_champion_stays_and_lists_the_undecided_checks() -> None:
    alert = inconclusive_alert("v9", "v7", [UNDECIDED_CHECK])

    assert alert.kind == "gate_inconclusive"
    assert alert.severity is Severity.INFO
    assert alert.title == "[INFO] Challenger v9 inconclusive: margin_over_persistence"
    assert "`v7` stays in production" in alert.body
    assert "[-0.0090, +0.0340]" in alert.body
    assert alert.details["champion_version"] == "v7"


def test_inconclusive_alert_without_a_champion_says_production_stays_empty() -> None:
    assert "production stays empty" in inconclusive_alert("v1", None, [UNDECIDED_CHECK]).body


def test_champion_without_edge_is_critical_and_explains_each_failed_check() -> None:
    alert = champion_without_edge_alert("v7", [ECONOMIC_FAILURE])

    assert alert.kind == "champion_without_edge"
    assert alert.severity is Severity.CRITICAL
    assert alert.title.startswith(
        f"[CRITICAL] Champion v7 has no edge on fresh data: failed {ECONOMIC_CHECK}"
    )
    assert "earn -0.0810 after fees" in alert.body
    assert "do not earn more than standing aside" in alert.body  # the advice for the economic check
    assert alert.version == "v7"


def test_rejection_by_the_economic_check_gets_its_own_advice() -> None:
    alert = rejection_alert([ECONOMIC_FAILURE], version="v9")

    assert "held for the label horizon after fees" in alert.body
    assert "gate check `" not in alert.body  # not the generic fallback


@pytest.mark.parametrize(
    "build", [lambda: inconclusive_alert("v9", "v7", []), lambda: champion_without_edge_alert("v7", [])]
)
def test_alerts_about_checks_refuse_an_empty_list(build) -> None:
    with pytest.raises(AlertError, match="needs at least one"):
        build()


def test_alerts_for_a_run_whose_champion_lost_its_edge_page_the_operator() -> None:
    from retrain.alerts import alerts_for_run
    from retrain.handoffs import Publication

    alerts = alerts_for_run(
        _summary(0.40, 0.39),
        _decision(False, champion_verdict="fail"),
        Publication(version="v2", status="rejected", previous_version="v1"),
        degradation_tolerance=0.05,
        run_label="run",
    )
    assert [alert.kind for alert in alerts] == ["challenger_rejected", "champion_without_edge"]
    assert alerts[1].severity.value == "critical"
