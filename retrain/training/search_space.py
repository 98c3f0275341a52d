"""Optuna suggestions built from the configured search spaces (`tuning.search_spaces.<model>`)."""

from __future__ import annotations

import logging
from typing import Any, cast

import optuna

from retrain.errors import ConfigError
from retrain.settings import SearchParam

logger = logging.getLogger(__name__)


def suggest_params(trial: optuna.Trial, space: dict[str, SearchParam]) -> dict[str, Any]:
    """One value per configured parameter, drawn by the trial's sampler."""
    return {name: _suggest(trial, name, param) for name, param in space.items()}


def _suggest(trial: optuna.Trial, name: str, param: SearchParam) -> Any:
    if param.type == "categorical":
        return trial.suggest_categorical(name, param.choices)
    low, high = cast(float, param.low), cast(float, param.high)  # SearchParam checks numeric ranges
    if param.type == "int":
        return trial.suggest_int(name, int(low), int(high), step=int(param.step or 1), log=param.log)
    return trial.suggest_float(name, low, high, step=param.step, log=param.log)


def check_space(model: str, space: dict[str, SearchParam]) -> None:
    """Reject combinations Optuna cannot sample, naming the configuration key."""
    if not space:
        raise ConfigError(f"tuning.search_spaces.{model} is missing or empty; the model needs a search space")
    for name, param in space.items():
        if param.log and param.step is not None:
            raise ConfigError(
                f"tuning.search_spaces.{model}.{name}: 'log' and 'step' cannot be combined; drop one of them"
            )
        if param.log and param.low is not None and param.low <= 0:
            raise ConfigError(
                f"tuning.search_spaces.{model}.{name}: a log scale needs low > 0, got {param.low}"
            )


def warm_start_values(model: str, params: dict[str, Any], space: dict[str, SearchParam]) -> dict[str, Any]:
    """The production parameters as a trial of the current space: parameters the space no longer has are
    dropped, values outside a narrowed range are moved to its nearest bound (Optuna would otherwise run
    them as they are, e.g. a forest deeper than the space allows), and unknown choices are left to the sampler."""
    ignored = sorted(set(params) - set(space))
    if ignored:
        logger.info("%s: warm-start parameters outside the search space ignored: %s", model, ignored)
    values = {}
    for name, value in params.items():
        if name not in space:
            continue
        inside = _inside(space[name], value)
        if inside is None:
            logger.info(
                "%s: warm-start %s=%r is not a choice of the space; sampled instead", model, name, value
            )
            continue
        if inside != value:
            logger.info("%s: warm-start %s=%r is outside the space; %r used", model, name, value, inside)
        values[name] = inside
    return values


def _inside(param: SearchParam, value: Any) -> Any:
    if param.type == "categorical":
        return value if value in cast(list[Any], param.choices) else None
    low, high = cast(float, param.low), cast(float, param.high)
    clipped = min(max(float(value), low), high)
    if param.type == "int":
        step = int(param.step or 1)
        return int(low) + min(round((clipped - low) / step), int((high - low) // step)) * step
    return clipped
