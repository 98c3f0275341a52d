"""Promote or archive the challenger, and publish the run report (UI artifact + files beside the model)."""

from __future__ import annotations

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from retrain import stages
from retrain.errors import PromotionLockTimeout
from retrain.handoffs import Publication
from retrain.monitor.trend import VERSIONS_TREND_KEY, versions_trend
from retrain.report import inline_images
from retrain.run_dir import RunDir
from retrain.settings import Settings

publish = task(
    name="promote-or-archive",
    retries=2,
    retry_delay_seconds=exponential_backoff(backoff_factor=30),
    retry_condition_fn=lambda task, task_run, state: isinstance(
        state.result(raise_on_failure=False), PromotionLockTimeout
    ),
    timeout_seconds=1800,
    cache_policy=NO_CACHE,
)(stages.publish_stage)


@task(name="report", timeout_seconds=600, cache_policy=NO_CACHE)
def report(settings: Settings, run: RunDir, models: list[str], title: str, publication: Publication) -> str:
    """The markdown artifact in the Prefect UI, and report.md + plots next to the stored version."""
    markdown = stages.report_stage(settings, run, models, title, publication)
    create_markdown_artifact(
        markdown=inline_images(markdown, run.report_dir), key="retrain-report", description=title
    )
    create_table_artifact(
        table=run.read_evaluation().metrics_table(),
        key="holdout-metrics",
        description=f"{title}: holdout scores",
    )
    create_table_artifact(
        table=versions_trend(settings.paths.models_dir, settings.monitor.trend_passes),
        key=VERSIONS_TREND_KEY,
        description="Each version that went live: holdout macro-F1 at promotion, realised macro-F1 since",
    )
    return markdown
