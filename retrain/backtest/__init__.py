"""Walk-forward backtest of the weekly retrain-and-gate policy (`retrain backtest`, the `backtest` flow).

`run_and_report` replays the weeks (`replay`), summarises them (`summary`) and writes `report.md`,
`summary.json` and `equity.png` into the backtest's folder.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from retrain.backtest.replay import (
    BacktestPlan,
    WeekCallback,
    WeekParallelism,
    WeekRecord,
    local_parallelism,
    read_week_rows,
    run_backtest,
)
from retrain.backtest.summary import (
    BacktestSummary,
    equity_plot,
    summarise,
    summary_markdown,
    weeks_markdown,
)
from retrain.files import write_atomically, write_json
from retrain.settings import Settings

__all__ = [
    "BacktestPlan",
    "BacktestResult",
    "WeekParallelism",
    "WeekRecord",
    "local_parallelism",
    "run_and_report",
]


class BacktestResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    weeks: list[WeekRecord]
    summary: BacktestSummary
    markdown: str

    def json_line(self) -> dict[str, object]:
        """The CLI's `--json` object: each week's headline and the summary."""
        return {
            "weeks": [
                {
                    "cutoff": record.cutoff.isoformat(),
                    "decision": record.decision,
                    "live_macro_f1": record.live_macro_f1,
                    "persistence_macro_f1": record.persistence_macro_f1,
                }
                for record in self.weeks
            ],
            "summary": self.summary.model_dump(mode="json") | {"gate_hit_rate": self.summary.gate_hit_rate},
        }


def run_and_report(
    settings: Settings,
    plan: BacktestPlan,
    *,
    on_week: WeekCallback | None = None,
    parallel: WeekParallelism | None = None,
) -> BacktestResult:
    """Replay every week of `plan` (resuming), then write the report, summary and equity plot; with
    `parallel` the weeks' studies are trained ahead at once (`retrain.backtest.replay`)."""
    records = run_backtest(settings, plan, on_week=on_week, parallel=parallel)
    rows = [read_week_rows(plan, record.week) for record in records]
    summary = summarise(
        records,
        rows,
        block=max(settings.labels.horizon, 16),
        confidence=settings.gate.confidence,
        seed=settings.training.seed,
    )
    markdown = "\n".join(
        [
            f"# Backtest: {plan.weeks} weekly retrains from {plan.start:%Y-%m-%d}",
            "",
            summary_markdown(summary),
            "",
            "![equity](equity.png)",
            "",
            weeks_markdown(records),
            "",
        ]
    )
    write_atomically(plan.out / "equity.png", equity_plot(rows, settings.evaluation.fee_rate))
    write_atomically(plan.out / "report.md", markdown.encode())
    write_json(plan.out / "summary.json", summary.model_dump(mode="json"))
    return BacktestResult(weeks=records, summary=summary, markdown=markdown)
