"""The retrain without Prefect: for benchmarks (orchestration overhead, the sequential reference) and for
debugging a stage without a server. Production runs go through `flows/retrain.py`; both run the one
sequence in `retrain.sequence`.
"""

from __future__ import annotations

from retrain.data.candles import CandleSource
from retrain.handoffs import RetrainOutcome
from retrain.run_dir import new_run_dir
from retrain.sequence import DirectRunner, RetrainRequest, run_retrain
from retrain.settings import Settings


def run_pipeline(
    settings: Settings,
    *,
    source: CandleSource | None = None,
    dry_run: bool = False,
    parallel_studies: bool = True,
    reuse_fold_datasets: bool = True,
) -> RetrainOutcome:
    """Fetch, train, evaluate, gate and publish once in this process. `parallel_studies` and
    `reuse_fold_datasets` off give the benchmarks' sequential reference."""
    request = RetrainRequest(
        settings=settings,
        run=new_run_dir(settings.paths.runs, "direct"),
        source=source,
        dry_run=dry_run,
        reuse_fold_datasets=reuse_fold_datasets,
    )
    return run_retrain(DirectRunner(parallel_studies=parallel_studies), request)
