"""Declarative automation: documents follow their inputs, training only when asked."""

from __future__ import annotations

import dagster as dg
import pytest

from pipelines.automation import AUTO_TRAIN_ENV
from pipelines.definitions import defs
from pipelines.partitions import cc_crawl

CRAWL = "CC-MAIN-2024-22"
# Everything upstream of training, in dependency order.
BEFORE_TRAINING = [
    ("commoncrawl_warcs", CRAWL),
    ("web_documents", CRAWL),
    ("gutenberg_books", None),
    ("book_documents", None),
    ("github_repositories", None),
    ("code_documents", None),
    ("arxiv_papers", None),
    ("paper_documents", None),
    ("deduplicated_corpus", None),
    ("tokenizer", None),
    ("token_shards", None),
    ("training_plan", None),
]


class Ticks:
    """The automation sensor's ticks over one instance, carrying the cursor along."""

    def __init__(self, definitions: dg.Definitions, instance: dg.DagsterInstance) -> None:
        self.definitions, self.instance, self.cursor = definitions, instance, None

    def tick(self):
        result = dg.evaluate_automation_conditions(
            defs=self.definitions, instance=self.instance, cursor=self.cursor
        )
        self.cursor = result.cursor
        return result

    def materialized(self, asset: str, partition: str | None = None) -> None:
        """A materialization as a finished run would record it."""
        self.instance.report_runless_asset_event(
            dg.AssetMaterialization(asset_key=asset, partition=partition)
        )


ALL_ASSETS = [asset for asset, _ in BEFORE_TRAINING] + ["model_checkpoint", "evaluation_report"]
# evaluate_automation_conditions selects with a beta parameter of its own.
pytestmark = pytest.mark.filterwarnings("ignore::dagster.BetaWarning")


def _requested(result) -> set[str]:
    return {asset for asset in ALL_ASSETS if result.get_num_requested(dg.AssetKey(asset))}


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(cc_crawl.name, [CRAWL])
        yield instance


def test_documents_follow_new_sources_and_nothing_repeats(
    instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(AUTO_TRAIN_ENV, raising=False)
    ticks = Ticks(defs(), instance)
    assert _requested(ticks.tick()) == set()  # nothing fetched yet: nothing to process

    ticks.materialized("gutenberg_books")
    ticks.materialized("commoncrawl_warcs", CRAWL)
    result = ticks.tick()
    assert _requested(result) == {"book_documents", "web_documents"}
    assert result.get_requested_partitions(dg.AssetKey("web_documents")) == {CRAWL}
    assert _requested(ticks.tick()) == set()  # requested once, not again

    ticks.materialized("gutenberg_books")  # the weekly refresh brought new books
    assert _requested(ticks.tick()) == {"book_documents"}


def test_training_runs_only_when_asked(
    instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(AUTO_TRAIN_ENV, raising=False)
    ticks = Ticks(defs(), instance)
    ticks.tick()
    for asset, partition in BEFORE_TRAINING:
        ticks.materialized(asset, partition)
    assert not _requested(ticks.tick()) & {"model_checkpoint", "evaluation_report"}
    ticks.materialized("token_shards")  # new shards: the plan follows, training does not
    assert _requested(ticks.tick()) == {"training_plan"}
    ticks.materialized("training_plan")
    assert _requested(ticks.tick()) == set()


def test_auto_train_opt_in_makes_training_eager(
    instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(AUTO_TRAIN_ENV, "1")
    ticks = Ticks(defs(), instance)
    ticks.tick()
    for asset, partition in BEFORE_TRAINING:
        ticks.materialized(asset, partition)
    assert "model_checkpoint" in _requested(ticks.tick())


def test_conditions_in_the_code_location(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(AUTO_TRAIN_ENV, raising=False)
    definitions = defs()
    graph = definitions.resolve_asset_graph()
    conditions = {
        spec.key.to_user_string(): spec.automation_condition
        for spec in definitions.resolve_all_asset_specs()
    }
    eager = {
        "web_documents",
        "book_documents",
        "code_documents",
        "paper_documents",
        "deduplicated_corpus",
        "tokenizer",
        "token_shards",
        "training_plan",
    }
    assert all(conditions[key] == dg.AutomationCondition.eager() for key in eager)
    training = dg.AssetSelection.assets("model_checkpoint").downstream().resolve(graph)
    assert {"model_checkpoint", "evaluation_report"} <= {k.to_user_string() for k in training}
    assert all(conditions[key.to_user_string()] is None for key in training)
    sources = dg.AssetSelection.groups("sources").resolve(graph)
    assert sources and all(conditions[key.to_user_string()] is None for key in sources)
    sensor = definitions.resolve_sensor_def("lmforge_automation_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED


def test_every_asset_reads_well_in_the_lineage_graph() -> None:
    """Description, group, kinds, owners and code version on every asset of the location."""
    specs = list(defs().resolve_all_asset_specs())
    assert set(ALL_ASSETS) <= {spec.key.to_user_string() for spec in specs}
    gaps = {
        spec.key.to_user_string(): [
            name
            for name, value in (
                ("description", spec.description),
                ("group", spec.group_name not in (None, "default")),
                ("kinds", spec.kinds),
                ("owners", spec.owners),
                ("code_version", spec.code_version),
            )
            if not value
        ]
        for spec in specs
    }
    assert {key: missing for key, missing in gaps.items() if missing} == {}
