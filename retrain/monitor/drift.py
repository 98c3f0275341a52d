"""Per-feature drift of recent rows against the training reference: KS and PSI, corrected for testing
many features at once.

A feature drifts when both hold:
- its one-sample KS test against the reference CDF (rebuilt from the stored quantiles by linear
  interpolation) rejects at the Benjamini-Hochberg false discovery rate `fdr` across the features;
- its PSI over the reference deciles reaches `min_psi` (0.25 is the usual "major shift" mark).
Why both: consecutive 15-minute rows are strongly autocorrelated (a 100-candle EMA distance barely
moves within an hour), so KS, which assumes independent rows, finds tiny p-values for shifts that
do not matter; PSI measures the size of the shift but has no notion of chance on a few rows.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field
from scipy.stats import false_discovery_control, kstest

from retrain.errors import FeatureMismatchError, InvalidInputError
from retrain.monitor.reference import DriftReference

logger = logging.getLogger(__name__)

_DECILES = np.linspace(0.1, 0.9, 9)
_PSI_FLOOR = 1e-4
"""Share given to an empty bin, so PSI stays finite (the usual convention)."""


class FeatureDrift(BaseModel):
    model_config = ConfigDict(frozen=True)

    ks_statistic: float
    p_value: float = Field(description="KS p-value, uncorrected")
    adjusted_p_value: float = Field(description="Benjamini-Hochberg adjusted p-value")
    psi: float
    drifted: bool


class DriftReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    rows: int = Field(description="recent rows tested")
    drifted_features: list[str]
    share_drifted: float
    features: dict[str, FeatureDrift]


def reference_cdf(levels: np.ndarray, quantiles: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The reference CDF at `x`: linear between quantiles, 0 below the minimum, 1 above the maximum.

    Where several levels share one value (an atom), the CDF there is the highest of those levels.
    """
    values, last = np.unique(quantiles[::-1], return_index=True)
    highest_level = levels[::-1][last]
    return np.interp(x, values, highest_level, left=0.0, right=1.0)


def psi(levels: np.ndarray, quantiles: np.ndarray, sample: np.ndarray) -> float:
    """Population stability index of `sample` over the reference deciles."""
    edges = np.unique(np.interp(_DECILES, levels, quantiles))
    expected = np.diff(np.concatenate(([0.0], reference_cdf(levels, quantiles, edges), [1.0])))
    bins = np.searchsorted(edges, sample, side="right")
    actual = np.bincount(bins, minlength=len(edges) + 1) / len(sample)
    expected, actual = np.maximum(expected, _PSI_FLOOR), np.maximum(actual, _PSI_FLOOR)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def feature_drift(
    recent: pd.DataFrame,
    reference: DriftReference,
    *,
    fdr: float,
    min_psi: float,
    ignore: Sequence[str] = (),
) -> DriftReport:
    """Drift of every reference feature but `ignore` in `recent` (see the module docstring)."""
    names = [name for name in reference.feature_names if name not in set(ignore)]
    missing = [name for name in names if name not in recent.columns]
    if missing:
        raise FeatureMismatchError(
            f"the recent rows lack reference feature(s) {missing}: the reference was built for another "
            "feature set than the one computed now"
        )
    if not names:
        raise InvalidInputError("every reference feature is ignored; nothing to test for drift")
    if recent.empty:
        raise InvalidInputError("no recent feature rows to test for drift")
    levels = np.asarray(reference.levels)
    statistics, p_values, psis = [], [], []
    for name in names:
        quantiles = np.asarray(reference.quantiles[name])
        sample = recent[name].to_numpy(dtype=np.float64)
        result = kstest(sample, lambda x, q=quantiles: reference_cdf(levels, q, x))
        statistics.append(float(result.statistic))
        p_values.append(float(result.pvalue))
        psis.append(psi(levels, quantiles, sample))
    adjusted = false_discovery_control(np.asarray(p_values), method="bh")
    features = {
        name: FeatureDrift(
            ks_statistic=statistics[i],
            p_value=p_values[i],
            adjusted_p_value=float(adjusted[i]),
            psi=psis[i],
            drifted=bool(adjusted[i] < fdr and psis[i] >= min_psi),
        )
        for i, name in enumerate(names)
    }
    drifted = [name for name, result in features.items() if result.drifted]
    return DriftReport(
        rows=len(recent),
        drifted_features=drifted,
        share_drifted=len(drifted) / len(names),
        features=features,
    )
