"""The weekly refresh of GitHub, Gutenberg and arXiv."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import pytest

from pipelines.definitions import defs
from pipelines.schedules import CRON_ENV, DEFAULT_CRON, build_sources_refresh_schedule

REFRESHED = {
    "github_repositories",
    "code_documents",
    "gutenberg_books",
    "book_documents",
    "arxiv_papers",
    "paper_documents",
}


def test_the_schedule_requests_one_refresh_run_per_tick() -> None:
    definitions = defs()
    schedule = definitions.resolve_schedule_def("sources_refresh_schedule")
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    assert schedule.cron_schedule == DEFAULT_CRON == "0 3 * * 1"  # weekly, Monday 03:00
    assert schedule.execution_timezone == "UTC"
    with dg.instance_for_test() as instance:
        context = dg.build_schedule_context(
            instance=instance, scheduled_execution_time=datetime(2026, 3, 2, 3, tzinfo=UTC)
        )
        data = schedule.evaluate_tick(context)
    [request] = data.run_requests or []
    assert request.partition_key is None
    snapshots = {op: cfg["config"]["snapshot"] for op, cfg in request.run_config["ops"].items()}
    assert snapshots == {
        "github_repositories": "2026-03-02T03:00Z",
        "gutenberg_books": "2026-03-02T03:00Z",
        "arxiv_papers": "2026-03-02T03:00Z",
    }
    assert schedule.job_name == "sources_refresh_job"


def test_the_refresh_job_is_the_source_part_of_the_model_job() -> None:
    definitions = defs()
    refresh = definitions.resolve_job_def("sources_refresh_job").asset_layer
    model = definitions.resolve_job_def("corpus_to_model_job").asset_layer
    refreshed = {key.to_user_string() for key in refresh.executable_asset_keys}
    assert refreshed == REFRESHED
    assert refresh.executable_asset_keys <= model.executable_asset_keys
    # Unpartitioned only: the crawls have their own sensor.
    assert all(
        definitions.resolve_assets_def(key).partitions_def is None
        for key in refresh.executable_asset_keys
    )


def test_the_cron_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CRON_ENV, "0 4 * * *")
    assert build_sources_refresh_schedule().cron_schedule == "0 4 * * *"
    assert build_sources_refresh_schedule("0 5 1 * *").cron_schedule == "0 5 1 * *"
