"""What a backtest proves: the policy's live edge over persistence with an interval, against the ungated
policy and the first model kept, the gate's hit rate, and the equity of each over the live weeks."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from pydantic import BaseModel, ConfigDict

from retrain.backtest.replay import WeekRecord
from retrain.bootstrap import Interval, block_indices, macro_f1_batch
from retrain.metrics import macro_f1

POLICIES = ("policy", "ungated", "never_retrain")


class BacktestSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    weeks: int
    promotions: int
    refusals: int
    live_minus_persistence: dict[str, Interval]
    """Per policy (policy, ungated, never_retrain): mean over weeks of live macro-F1 minus persistence's."""
    gate_hits: int
    gate_decided: int
    total_return: dict[str, float]
    """Compounded trading read-out over the live weeks: each policy, persistence, and buy-and-hold."""

    @property
    def gate_hit_rate(self) -> float | None:
        return self.gate_hits / self.gate_decided if self.gate_decided else None


def gate_hit(record: WeekRecord) -> bool | None:
    """Whether the week's decision was right in the live week: promoted and the challenger beat the
    champion, or refused and the champion was at least as good. None without a champion to compare."""
    if record.champion_version is None:
        return None
    challenger = record.live["ungated"].macro_f1
    champion = record.live["champion"].macro_f1
    return challenger > champion if record.decision == "promote" else champion >= challenger


def block_bootstrap_mean_difference(
    weeks: Sequence[pd.DataFrame],
    predictor: str,
    *,
    block: int,
    resamples: int,
    confidence: float,
    seed: int,
) -> Interval:
    """Mean over weeks of the predictor's live macro-F1 minus persistence's, with a moving-block bootstrap
    interval: each resample redraws every week's rows in blocks of `block` consecutive rows (paired: the
    same rows for the predictor and persistence), so the overlap of neighbouring labels stays inside a
    block. `a` and `b` are the predictor's and persistence's mean weekly macro-F1."""
    own, baseline, own_draws, baseline_draws = [], [], [], []
    for number, rows in enumerate(weeks):
        y = rows["y"].to_numpy(dtype=np.int64)
        indices = block_indices(len(rows), min(block, len(rows)), resamples, seed + number)
        for column, points, draws in ((predictor, own, own_draws), ("persistence", baseline, baseline_draws)):
            predicted = rows[column].to_numpy(dtype=np.int64)
            points.append(macro_f1(y, predicted))
            draws.append(macro_f1_batch(y, predicted, indices))
    differences = np.mean(own_draws, axis=0) - np.mean(baseline_draws, axis=0)
    tail = (1.0 - confidence) / 2.0
    lower, upper = np.quantile(differences, [tail, 1.0 - tail])
    a, b = float(np.mean(own)), float(np.mean(baseline))
    return Interval(estimate=a - b, lower=float(lower), upper=float(upper), confidence=confidence, a=a, b=b)


def summarise(
    records: Sequence[WeekRecord],
    week_rows: Sequence[pd.DataFrame],
    *,
    block: int,
    resamples: int = 500,
    confidence: float = 0.9,
    seed: int = 0,
) -> BacktestSummary:
    hits = [hit for hit in (gate_hit(record) for record in records) if hit is not None]
    returns = {
        name: float(np.prod([1.0 + r.live[name].trading.total_return for r in records]) - 1.0)
        for name in (*POLICIES, "persistence")
    }
    returns["buy_and_hold"] = float(np.prod([1.0 + r.buy_and_hold_return for r in records]) - 1.0)
    return BacktestSummary(
        weeks=len(records),
        promotions=sum(r.decision == "promote" for r in records),
        refusals=sum(r.decision != "promote" for r in records),
        live_minus_persistence={
            name: block_bootstrap_mean_difference(
                week_rows, name, block=block, resamples=resamples, confidence=confidence, seed=seed
            )
            for name in POLICIES
        },
        gate_hits=sum(hits),
        gate_decided=len(hits),
        total_return=returns,
    )


def weeks_markdown(records: Sequence[WeekRecord]) -> str:
    lines = [
        "| week | cutoff | decision | production | live macro-F1 | persistence | ungated | never retrain "
        "| policy return | reasons |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        lines.append(
            f"| {r.week} | {r.cutoff:%Y-%m-%d} | {r.decision} | {r.production_version or 'none'} "
            f"| {r.live_macro_f1:.4f} | {r.persistence_macro_f1:.4f} | {r.live['ungated'].macro_f1:.4f} "
            f"| {r.live['never_retrain'].macro_f1:.4f} | {r.live['policy'].trading.total_return:+.2%} "
            f"| {'; '.join(r.reasons)} |"
        )
    return "\n".join(lines)


def summary_markdown(summary: BacktestSummary) -> str:
    lines = [
        f"{summary.weeks} weeks: {summary.promotions} promotion(s), {summary.refusals} refusal(s); gate hit rate "
        + (
            f"{summary.gate_hit_rate:.0%} ({summary.gate_hits} of {summary.gate_decided} decisions with a champion)"
            if summary.gate_hit_rate is not None
            else "n/a (no week had a champion to compare)"
        ),
        "",
        "| policy | live macro-F1 minus persistence, mean over weeks | interval | total return |",
        "|---|---|---|---|",
    ]
    for name, interval in summary.live_minus_persistence.items():
        lines.append(
            f"| {name} | {interval.estimate:+.4f} | [{interval.lower:+.4f}, {interval.upper:+.4f}] at "
            f"{interval.confidence:.0%} | {summary.total_return[name]:+.2%} |"
        )
    lines.append(f"| persistence | 0 | | {summary.total_return['persistence']:+.2%} |")
    lines.append(f"| buy and hold | | | {summary.total_return['buy_and_hold']:+.2%} |")
    return "\n".join(lines)


def equity_plot(week_rows: Sequence[pd.DataFrame], fee_rate: float) -> bytes:
    """PNG of the equity over the concatenated live weeks: policy, ungated, buy-and-hold, persistence."""
    from retrain.trading import trading_readout

    rows = pd.concat(week_rows)
    returns = rows["next_return"].to_numpy()
    fig = Figure(figsize=(9, 4))
    ax = fig.subplots()
    for name in ("policy", "ungated", "persistence"):
        curve = trading_readout(rows[name].to_numpy(dtype=np.int64), returns, fee_rate).equity_curve
        ax.plot(rows.index, curve, label=name, linewidth=2.0 if name == "policy" else 1.0)
    ax.plot(rows.index, np.cumprod(1.0 + returns), label="buy and hold", linewidth=1.0, color="grey")
    ax.axhline(1.0, color="black", linewidth=0.5)
    ax.set(title="Live weeks: equity following each policy's signals, after fees", ylabel="equity")
    ax.legend(fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    return buffer.getvalue()
