"""The model in production, as a retrain meets it: the champion to beat, and the warm start of each study."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retrain.ensemble import ProductionEnsemble
from retrain.errors import ModelStoreError, NoProductionModelError
from retrain.handoffs import ChampionRecord
from retrain.store import load_production, load_production_metadata, production_version

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Champion:
    """The verified production model (None without a usable one) and its record."""

    model: ProductionEnsemble | None
    record: ChampionRecord


def load_champion(models_dir: Path) -> Champion:
    """The production model, hash-verified; a tampered one is reported, never used."""
    live = production_version(models_dir)
    try:
        loaded = load_production(models_dir)
    except NoProductionModelError:
        return Champion(
            None,
            ChampionRecord(
                version=None, recorded_macro_f1=None, note="no model in production yet", live_version=live
            ),
        )
    except ModelStoreError as exc:
        logger.error("the production model failed verification and is not used as champion: %s", exc)
        note = f"the production model failed verification: {exc}"
        return Champion(
            None, ChampionRecord(version=None, recorded_macro_f1=None, note=note, live_version=live)
        )
    record = ChampionRecord(
        version=loaded.metadata.version,
        recorded_macro_f1=loaded.metadata.macro_f1,
        note=None,
        live_version=live,
    )
    return Champion(loaded.model, record)


def warm_start_params(models_dir: Path, model: str) -> dict[str, Any] | None:
    """The production model's tuned parameters for `model`, to seed its study (None without one)."""
    try:
        return load_production_metadata(models_dir).best_params.get(model)
    except ModelStoreError as exc:
        if not isinstance(exc, NoProductionModelError):
            logger.warning("no warm start for %s: %s", model, exc)
        return None
