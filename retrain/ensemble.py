"""`ProductionEnsemble`: the weighted soft vote the live bot loads from the production model file.

Its import path `retrain.ensemble.ProductionEnsemble` is public API: the class is pickled into
`models/production/production_ensemble.pkl`, so renaming or moving it breaks every stored model.

Every call validates its input and raises instead of predicting garbage: a model fed columns in
another order, or a NaN from a broken feature pipeline, would still return confident-looking
probabilities. The checks are cheap (a list comparison and one `np.isfinite`), about 15 microseconds
on a single candle, so they run on every live prediction.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import pandas as pd

from retrain.errors import EnsembleError, FeatureMismatchError, InvalidInputError
from retrain.labels import CLASSES

logger = logging.getLogger(__name__)

_NUMERIC_KINDS = "biuf"  # bool, signed and unsigned int, float


class Member(Protocol):
    """A fitted model: probabilities with one column per class, in the ensemble's class order."""

    name: str

    def predict_proba(self, X: np.ndarray) -> np.ndarray: ...


class ProductionEnsemble:
    """Weighted average of its members' class probabilities (weights normalised to sum to 1)."""

    def __init__(
        self,
        members: Mapping[str, Member],
        weights: Mapping[str, float],
        feature_names: Sequence[str],
        classes: Sequence[str] = CLASSES,
        feature_definition_hash: str = "",
        feature_params: Mapping[str, Any] | None = None,
    ) -> None:
        _check_definition(members, weights, feature_names, classes)
        total = float(sum(weights.values()))
        self._members = dict(members)
        self._weights = {name: float(weights[name]) / total for name in self._members}
        self._feature_names = list(feature_names)
        self._classes = tuple(classes)
        self._feature_definition_hash = feature_definition_hash
        self._feature_params = dict(feature_params) if feature_params is not None else None
        self._voting = [(name, self._members[name], w) for name, w in self._weights.items() if w > 0]

    @property
    def members(self) -> dict[str, Member]:
        return dict(self._members)

    @property
    def weights(self) -> dict[str, float]:
        """Normalised weights (sum to 1); a member with weight 0 is kept but never consulted."""
        return dict(self._weights)

    @property
    def feature_names(self) -> list[str]:
        return list(self._feature_names)

    @property
    def classes(self) -> tuple[str, ...]:
        return self._classes

    @property
    def feature_definition_hash(self) -> str:
        return self._feature_definition_hash

    @property
    def feature_params(self) -> dict[str, Any] | None:
        """The feature parameters it was trained on (`FeatureManager.for_model` builds its columns); None in
        a model pickled before they were recorded (the base feature set)."""
        recorded = getattr(self, "_feature_params", None)
        return dict(recorded) if recorded is not None else None

    def model_input(self, X: pd.DataFrame) -> np.ndarray:
        """Validate `X` and return the float64 array the members receive (rows of X, training order)."""
        if not isinstance(X, pd.DataFrame):
            raise FeatureMismatchError(
                f"expected a pandas DataFrame with the {len(self._feature_names)} training feature columns, "
                f"got {type(X).__name__}: without column names the feature order cannot be checked"
            )
        columns = X.columns.to_numpy().tolist()  # the fastest exact comparison on a pandas 3 Index
        if columns != self._feature_names:
            raise FeatureMismatchError(_describe_column_mismatch(self._feature_names, columns))
        if len(X) == 0:
            raise InvalidInputError("got a DataFrame with zero rows; nothing to predict")
        values = X.to_numpy()
        if values.dtype.kind not in _NUMERIC_KINDS:
            non_numeric = [f"{c!r} ({dt})" for c, dt in X.dtypes.items() if _kind(dt) not in _NUMERIC_KINDS]
            if non_numeric:
                raise FeatureMismatchError(
                    f"non-numeric feature column(s): {', '.join(non_numeric)}; every feature must be "
                    "bool, integer or float"
                )
            values = X.to_numpy(dtype=np.float64, na_value=np.nan)
        values = np.asarray(values, dtype=np.float64)
        finite = np.isfinite(values)
        if not finite.all():
            raise InvalidInputError(_describe_non_finite(X, finite))
        return values

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Class probabilities, shape (n, len(classes)), columns in `classes` order; rows sum to 1."""
        values = self.model_input(X)
        expected_shape = (len(values), len(self._classes))
        proba = np.zeros(expected_shape)
        for name, member, weight in self._voting:
            member_proba = np.asarray(member.predict_proba(values))
            if member_proba.shape != expected_shape:
                raise EnsembleError(
                    f"member {name!r} returned probabilities of shape {member_proba.shape}; expected "
                    f"{expected_shape} (one column per class {self._classes}): retrain it on every class"
                )
            proba += weight * member_proba
        if not np.isfinite(proba).all():
            raise EnsembleError(f"a member returned NaN/inf probabilities; members: {list(self._weights)}")
        return proba

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Class codes (positions in `classes`) of the most probable class."""
        return self.predict_proba(X).argmax(axis=1)

    def predict_labels(self, X: pd.DataFrame) -> np.ndarray:
        """Class names of the most probable class."""
        return np.asarray(self._classes, dtype=object)[self.predict(X)]

    def get_model_info(self) -> dict[str, Any]:
        """What the bot logs about the model it loaded: type, members, weights, classes and features."""
        return {
            "model_type": type(self).__name__,
            "members": list(self._weights),
            "weights": dict(self._weights),
            "classes": list(self._classes),
            "feature_count": len(self._feature_names),
            "feature_names": list(self._feature_names),
            "feature_definition_hash": self._feature_definition_hash,
        }

    def __repr__(self) -> str:
        weights = ", ".join(f"{name}={w:.2f}" for name, w in self._weights.items())
        return (
            f"ProductionEnsemble(weights={{{weights}}}, n_features={len(self._feature_names)}, "
            f"classes={self._classes}, feature_definition_hash={self._feature_definition_hash[:12]!r})"
        )


def _check_definition(
    members: Mapping[str, Member],
    weights: Mapping[str, float],
    feature_names: Sequence[str],
    classes: Sequence[str],
) -> None:
    if not members:
        raise EnsembleError("an ensemble needs at least one member")
    if set(weights) != set(members):
        raise EnsembleError(
            f"weights must name exactly the members; members {sorted(members)}, weights {sorted(weights)}"
        )
    bad = {name: w for name, w in weights.items() if not np.isfinite(w) or w < 0}
    if bad:
        raise EnsembleError(f"weights must be finite and >= 0; got {bad}")
    if sum(weights.values()) <= 0:
        raise EnsembleError(f"at least one weight must be > 0; got {dict(weights)}")
    if not feature_names:
        raise EnsembleError("an ensemble needs at least one feature name")
    duplicated = sorted(name for name, count in Counter(feature_names).items() if count > 1)
    if duplicated:
        raise EnsembleError(f"duplicated feature name(s): {duplicated}")
    if len(classes) < 2 or len(set(classes)) != len(classes):
        raise EnsembleError(f"classes must be at least two distinct names; got {tuple(classes)}")


def _kind(dtype: object) -> str:
    return getattr(dtype, "kind", "O")


def _describe_column_mismatch(expected: list[str], got: list[object]) -> str:
    expected_set, got_set = set(expected), set(got)
    missing = [name for name in expected if name not in got_set]
    extra = [name for name in got if name not in expected_set]
    problems = []
    if missing:
        problems.append(f"missing feature(s) {missing}")
    if extra:
        problems.append(f"unexpected extra column(s) {extra}")
    duplicated = [name for name, count in Counter(got).items() if count > 1]
    if duplicated:
        problems.append(f"duplicated column(s) {duplicated}")
    if not problems:
        position = next(i for i, (e, g) in enumerate(zip(expected, got, strict=True)) if e != g)
        problems.append(
            f"same features in another order: position {position} holds {got[position]!r}, "
            f"expected {expected[position]!r}"
        )
    return (
        "; ".join(problems)
        + f". The model needs exactly these {len(expected)} columns in this order: {expected} "
        "(FeatureManager.for_model(model) builds them)"
    )


def _describe_non_finite(X: pd.DataFrame, finite: np.ndarray) -> str:
    bad_columns = np.flatnonzero(~finite.all(axis=0))
    details = ", ".join(
        f"{X.columns[j]!r} (first at index {X.index[int(np.argmin(finite[:, j]))]})" for j in bad_columns
    )
    return f"NaN or inf in feature column(s): {details}; the feature pipeline must produce finite values"
