"""Declarative automation: what follows by itself when its inputs change, and what never does.

The document, corpus and token assets (and the training plan) are ``eager``: once the
automation sensor is on, a new materialization upstream requests them, so a new crawl
partition or a weekly source refresh flows down to fresh token shards. Training and what
depends on it (``model_checkpoint``, ``evaluation_report``) have no condition and run only when
someone asks, since a training run is the one expensive step. ``LMFORGE_AUTO_TRAIN=1`` opts
training in to ``eager`` as well. The raw sources get no condition: the crawl sensor and the
sources schedule decide when to fetch.

Conditions are applied here, over the loaded definitions, rather than in the asset modules, so
the automation policy is in one place and can be switched by the environment.
"""

import os
from collections.abc import Sequence

import dagster as dg

AUTO_TRAIN_ENV = "LMFORGE_AUTO_TRAIN"
AUTOMATED_GROUPS = ("documents", "corpus", "tokens", "model")
TRAINING = dg.AssetSelection.assets("model_checkpoint").downstream()


def auto_train_enabled() -> bool:
    return os.environ.get(AUTO_TRAIN_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def automated_selection(auto_train: bool) -> dg.AssetSelection:
    """The assets that get ``AutomationCondition.eager()``."""
    selection = dg.AssetSelection.groups(*AUTOMATED_GROUPS)
    return selection if auto_train else selection - TRAINING


def with_automation(
    assets: Sequence[dg.AssetsDefinition], auto_train: bool | None = None
) -> list[dg.AssetsDefinition]:
    """``assets`` with the eager condition on the automated ones (``auto_train`` None reads
    ``LMFORGE_AUTO_TRAIN``).

    Mapped with ``dg.map_asset_specs`` before the Definitions are built: the Definitions
    methods that take a selection are preview APIs in Dagster 1.13.
    """
    if auto_train is None:
        auto_train = auto_train_enabled()
    keys = automated_selection(auto_train).resolve(assets)
    eager = dg.AutomationCondition.eager()

    def apply(spec: dg.AssetSpec) -> dg.AssetSpec:
        return spec.replace_attributes(automation_condition=eager) if spec.key in keys else spec

    return list(dg.map_asset_specs(apply, assets))


automation_sensor = dg.AutomationConditionSensorDefinition(
    "lmforge_automation_sensor",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.STOPPED,
    minimum_interval_seconds=60,
    description=(
        "Evaluates the assets' automation conditions: documents, corpus, tokens and the "
        f"training plan follow their inputs; training only with {AUTO_TRAIN_ENV}=1."
    ),
)
