"""Typed configuration: `config/unified.yaml` + `config/thresholds.yaml`, overridable by environment.

Every key can be overridden with an environment variable: `RETRAIN_` + the key path joined by `__`,
e.g. `RETRAIN_DATA__DAYS=90` or `RETRAIN_GATE__MIN_MACRO_F1=0.4`. Environment wins over the files.
An invalid value raises `ConfigError` at start-up naming the key, the value and what was expected.
"""

from __future__ import annotations

import hashlib
import json
import os
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from retrain.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_DIR = PROJECT_ROOT / "config"
CONFIG_DIR_ENV = "RETRAIN_CONFIG_DIR"

ModelName = Literal["lightgbm", "xgboost", "random_forest"]
PrunerName = Literal["none", "percentile", "successive_halving"]
SourceKind = Literal["exchange", "csv", "demo"]
ImbalanceName = Literal["smote", "class_weight", "none"]
WeightingName = Literal["grid", "equal", "stacked"]
CalibrationName = Literal["none", "isotonic", "sigmoid"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GapPolicy(_Section):
    """How many missing candles are tolerated; see `retrain.data.validation` for the policy."""

    max_gap_candles: int = Field(8, ge=0, description="longest tolerated run of missing candles")
    max_missing_share: float = Field(0.01, ge=0, le=1, description="tolerated share of missing candles")


class ContinuityPolicy(_Section):
    """How far consecutive candles may disagree; see `retrain.data.validation`. The figures below were
    measured on the 8 files of ../shared/data with `bench/continuity.py`."""

    max_open_gap: float = Field(
        0.015,
        gt=0,
        description="largest tolerated |open / previous close - 1| between adjacent candles; the worst "
        "on the shared files is 0.455% (Binance BTC/USDT 2023-01-12 13:30; ETH/USDT 0.367%, FTX 0.288%, "
        "Bybit 0.000%), so 1.5% leaves a 3.3x margin; a reordered block or a spliced series jumps by "
        "several %, a x100 unit change by 9,900%",
    )
    max_move_mads: float = Field(
        150.0,
        gt=0,
        description="largest tolerated close-to-close log return, in rolling median absolute deviations "
        "(MADs) from the rolling median; the worst on the shared files is 62.3 (the -9.0% BTC crash of "
        "2023-08-17 21:30 after a quiet day; ETH 59.1, FTX 27.8, Bybit 26.4; demo data at most 26.7), so "
        "150 leaves a 2.4x margin; a x100 unit change is thousands of MADs",
    )
    mad_window: int = Field(96, ge=8, description="candles in the centred rolling-MAD window (96 = one day)")
    min_mad: float = Field(
        5e-5,
        gt=0,
        description="floor on the rolling MAD, so that a window of unchanged prices (a stuck feed, an "
        "illiquid pair) does not make every move infinite; the lowest MAD on the shared files is 1.1e-4. "
        "In a window more than half flat the MAD is 0 and a move beyond max_move_mads x min_mad (0.75%) "
        "is refused",
    )


class DataSettings(_Section):
    source: SourceKind = "exchange"
    exchange: str = "bitbank"
    symbol: str = "BTC/JPY"
    api_url: str | None = Field(
        None, description="override the exchange's public API base URL (tests, proxies)"
    )
    timeframe: Literal["15m"] = "15m"
    days: int = Field(180, gt=0, le=3650)
    csv_path: Path | None = None
    cache_dir: Path = Path("data/cache")
    request_timeout_s: float = Field(30.0, gt=0)
    max_retries: int = Field(5, ge=0)
    backoff_base_s: float = Field(1.0, ge=0)
    backoff_max_s: float = Field(60.0, gt=0)
    stale_after_minutes: int = Field(45, gt=0)
    min_coverage: float = Field(
        0.95, gt=0, le=1, description="share of the requested window that must be covered"
    )
    demo_seed: int = 7
    demo_edge: float = Field(
        0.4,
        ge=0,
        le=1,
        description="strength of the demo source's planted directional signal (0 = none; retrain.data.demo)",
    )
    gaps: GapPolicy = GapPolicy()
    continuity: ContinuityPolicy = ContinuityPolicy()


class PathSettings(_Section):
    models_dir: Path = Path("models")
    runs_dir: Path | None = Field(
        None, description="where runs keep their intermediate files; default <models_dir>/runs"
    )

    @property
    def runs(self) -> Path:
        """The run directories' parent: `runs_dir`, else beside the models however `models_dir` was set."""
        return self.runs_dir if self.runs_dir is not None else self.models_dir / "runs"


LabelMethod = Literal["fixed", "volatility", "triple_barrier"]
BarrierUnit = Literal["fraction", "volatility"]


class LabelSettings(_Section):
    """How BUY/HOLD/SELL is defined (`retrain.labels`); every method looks exactly `horizon` candles ahead."""

    method: LabelMethod = Field(
        "fixed",
        description="fixed: close-to-close return beyond +-threshold; volatility: beyond +-volatility_multiple "
        "x recent volatility; triple_barrier: which of take-profit and stop-loss the highs and lows touch first",
    )
    horizon: int = Field(4, ge=1, le=96, description="forward candles the label looks at (the time limit)")
    threshold: float = Field(0.005, gt=0, lt=0.2, description="fixed: forward return beyond which BUY/SELL")
    volatility_window: int = Field(
        96, ge=2, le=2880, description="candles of one-candle log returns in the realised volatility"
    )
    volatility_multiple: float = Field(
        1.0, gt=0, le=20, description="volatility: threshold = multiple x volatility x sqrt(horizon)"
    )
    barrier_unit: BarrierUnit = Field(
        "fraction",
        description="triple_barrier: take_profit/stop_loss (fraction) or take_profit_multiple/"
        "stop_loss_multiple x volatility x sqrt(horizon) (volatility)",
    )
    take_profit: float = Field(0.008, gt=0, lt=0.2, description="triple_barrier: upper barrier, a fraction")
    stop_loss: float = Field(0.008, gt=0, lt=0.2, description="triple_barrier: lower barrier, a fraction")
    take_profit_multiple: float = Field(1.6, gt=0, le=20, description="triple_barrier: upper barrier, x vol")
    stop_loss_multiple: float = Field(1.6, gt=0, le=20, description="triple_barrier: lower barrier, x vol")

    def definition(self) -> dict[str, Any]:
        """Only the keys that shape this method's labels (fixed: horizon and threshold, as before methods
        existed), so a setting the method ignores never tells two identical label sets apart."""
        keys = {
            "fixed": ["horizon", "threshold"],
            "volatility": ["method", "horizon", "volatility_window", "volatility_multiple"],
            "triple_barrier": ["method", "horizon", "barrier_unit"]
            + (
                ["take_profit", "stop_loss"]
                if self.barrier_unit == "fraction"
                else ["volatility_window", "take_profit_multiple", "stop_loss_multiple"]
            ),
        }[self.method]
        return self.model_dump(mode="json", include=set(keys))

    def sentence(self) -> str:
        """The label definition in words, for logs and reports."""
        ahead = f"horizon {self.horizon} candles"
        volatility = f"volatility x sqrt(horizon) (volatility over {self.volatility_window} candles)"
        if self.method == "fixed":
            return f"{ahead} at +-{self.threshold:.2%}"
        if self.method == "volatility":
            return f"{ahead} at +-{self.volatility_multiple:g} x {volatility}"
        if self.barrier_unit == "fraction":
            barriers = f"take-profit +{self.take_profit:.2%}, stop-loss -{self.stop_loss:.2%}"
        else:
            barriers = f"take-profit {self.take_profit_multiple:g}, stop-loss {self.stop_loss_multiple:g} x {volatility}"
        return f"triple barrier, time limit {self.horizon} candles, {barriers}"


FeatureGroup = Literal["base", "higher_timeframes", "volume_price_divergence", "time_since_large_move"]


class FeatureSettings(_Section):
    """Which feature groups the model gets (`retrain.features`); the parameters shape the added groups only."""

    groups: list[FeatureGroup] = Field(
        default_factory=lambda: ["base"], min_length=1, description="feature groups, in any order"
    )
    higher_timeframes: list[int] = Field(
        default_factory=lambda: [4, 16],
        min_length=1,
        description="15-minute candles per higher-timeframe bar (4 = 1 hour, 16 = 4 hours)",
    )
    higher_timeframe_bars: int = Field(
        12, ge=2, le=200, description="closed higher-timeframe bars in its trend, volatility and range"
    )
    divergence_windows: list[int] = Field(
        default_factory=lambda: [16, 96], min_length=1, description="candles of the price-volume correlation"
    )
    large_move_multiple: float = Field(
        4.0, gt=0, description="a large move: a one-candle return beyond this many recent standard deviations"
    )
    large_move_window: int = Field(
        96, ge=8, description="candles before a move that set its standard deviation"
    )
    large_move_cap: int = Field(
        384, ge=1, description="candles since a large move are counted up to this cap"
    )

    @model_validator(mode="after")
    def _check_counts(self) -> FeatureSettings:
        if len(set(self.groups)) != len(self.groups):
            raise ValueError(f"features.groups lists a group twice: {self.groups}")
        counts = [*self.higher_timeframes, *self.divergence_windows]
        if any(count < 2 for count in counts):
            raise ValueError("higher_timeframes and divergence_windows must be whole candle counts >= 2")
        return self


class SplitSettings(_Section):
    holdout_days: int = Field(14, ge=1)
    n_splits: int = Field(5, ge=2)
    gap: int | None = Field(None, ge=0, description="purge rows between train and test; default = horizon")
    validation_fraction: float = Field(
        0.15, gt=0, lt=0.5, description="end share of each fold's training part used for early stopping"
    )


class SearchParam(_Section):
    """One hyperparameter's search range, with the reason it is searched that way."""

    type: Literal["int", "float", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: list[Any] | None = None
    why: str = ""

    @model_validator(mode="after")
    def _check_range(self) -> SearchParam:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("a categorical parameter needs a non-empty 'choices' list")
        elif self.low is None or self.high is None or self.low > self.high:
            raise ValueError("a numeric parameter needs 'low' <= 'high'")
        return self


class TuningSettings(_Section):
    n_trials: int = Field(50, ge=1)
    timeout_s: float = Field(1800.0, gt=0, description="per-model wall-clock budget for the study")
    storage: str | None = Field(
        None,
        description="shared Optuna storage: journal:<path> (one host) or an RDB URL such as "
        "postgresql://user@host/optuna (several hosts); null = in memory",
    )
    study_prefix: str | None = Field(
        None, description="put before each study name, e.g. the market, to tell studies apart in a storage"
    )
    heartbeat_s: int = Field(
        30, ge=1, description="RDB storage: a running trial records a heartbeat this often"
    )
    grace_s: int = Field(
        120,
        ge=1,
        description="RDB storage: a running trial without a heartbeat this long is failed and retried",
    )
    stale_retries: int = Field(2, ge=0, description="times a trial whose worker died is retried")
    warm_start: bool = True
    pruner: PrunerName = Field("percentile", description="none: every trial scores every fold")
    pruner_min_folds: int = Field(2, ge=1, description="folds every trial scores before it may be pruned")
    pruner_reduction_factor: int = Field(
        3, ge=2, description="successive halving: a trial goes on while in the top 1/factor at each rung"
    )
    pruner_startup_trials: int = Field(5, ge=0, description="percentile: trials that always score every fold")
    pruner_keep_percentile: float = Field(
        50.0,
        gt=0,
        le=100,
        description="percentile: a trial goes on while its running mean is in this top share",
    )
    search_spaces: dict[ModelName, dict[str, SearchParam]] = Field(default_factory=dict)

    @field_validator("storage")
    @classmethod
    def _check_storage(cls, value: str | None) -> str | None:
        if value is None or (value.startswith("journal:") and len(value) > len("journal:")) or "://" in value:
            return value
        raise ValueError(
            f"tuning.storage {value!r} is neither journal:<path> (a journal file every worker on one host "
            "can reach) nor a database URL such as sqlite:///models/optuna.db or "
            "postgresql://user:password@host/optuna"
        )

    @model_validator(mode="after")
    def _check_pruner(self) -> TuningSettings:
        if self.pruner == "successive_halving" and self.pruner_min_folds < 2:
            raise ValueError(
                "tuning.pruner_min_folds must be at least 2 for successive halving: its first rung compares "
                "trials after their second fold (use pruner: percentile to prune after the first)"
            )
        return self


class SmoteSettings(_Section):
    enabled: bool = True
    k_neighbors: int = Field(5, ge=1)
    minority_ratio: float = Field(
        1.0, gt=0.0, le=1.0, description="each minority class is raised to this share of the majority count"
    )


class TrainingSettings(_Section):
    seed: int = 42
    models: list[ModelName] = ["lightgbm", "xgboost", "random_forest"]
    early_stopping_rounds: int = Field(20, ge=1)
    max_boost_rounds: int = Field(1000, ge=10)
    imbalance: ImbalanceName = Field(
        "smote",
        description="smote: oversample the minority classes of the fit rows (training.smote); class_weight: "
        "balanced sample weights from the fit rows' class counts, no resampling; none: neither",
    )
    smote: SmoteSettings = SmoteSettings()
    cores: int | None = Field(None, ge=1, description="cores to use; default = all the machine has")


class EnsembleSettings(_Section):
    """How the members' probabilities are combined (retrain.weights), always fitted on out-of-fold rows."""

    weights: WeightingName = Field(
        "grid",
        description="grid: the soft-vote weights with the best OOF macro-F1 on a 0.1 simplex grid; equal: "
        "every member weighted the same; stacked: a multinomial logistic regression on the members' OOF "
        "probabilities",
    )
    stacker_class_weight: Literal["balanced", "none"] = Field(
        "balanced",
        description="stacked: balanced weighs each OOF class the same, as SMOTE or class weights do for the "
        "members; none fits the OOF class mix, which favours HOLD",
    )


class SignalSettings(_Section):
    """What the ensemble's probabilities become (retrain.signals), fitted on out-of-fold rows only."""

    calibration: CalibrationName = Field(
        "none",
        description="recalibrate the combined probabilities on the OOF rows (one-vs-rest, renormalised)",
    )
    confidence_threshold: Literal["none", "auto"] | Annotated[float, Field(gt=0, lt=1)] = Field(
        "none",
        description="HOLD when the top probability is below this; auto: the threshold with the best OOF "
        "macro-F1 (no threshold among the candidates); none: plain argmax",
    )


class EvaluationSettings(_Section):
    fee_rate: float = Field(0.0012, ge=0, lt=0.1, description="fee per unit of position change")


class StoreSettings(_Section):
    keep_versions: int = Field(10, ge=2)
    lock_timeout_s: float = Field(600.0, gt=0)
    signing_key_block: str | None = Field(
        None,
        description="Prefect Secret block holding the model signing key, read when RETRAIN_SIGNING_KEY "
        "is not set (docs/model-store.md, Signatures)",
    )


class AlertSettings(_Section):
    channels: list[str] = Field(
        default_factory=list, description="Prefect notification blocks as '<block-type-slug>/<block-name>'"
    )
    champion_degradation_tolerance: float = Field(0.05, ge=0, le=1)


class GateSettings(_Section):
    """Promotion gates (config/thresholds.yaml)."""

    min_macro_f1: float = Field(0.35, ge=0, le=1)
    min_margin_over_baselines: float = Field(0.0, ge=-1, le=1)
    max_regression_vs_champion: float = Field(0.01, ge=0, le=1)
    min_class_support: int = Field(20, ge=0)
    min_economic_margin: float = Field(
        0.0, ge=-1, le=1, description="value after fees the signals must add over standing aside"
    )
    confidence: float = Field(0.9, gt=0, lt=1, description="two-sided coverage of the bootstrap intervals")
    bootstrap_resamples: int = Field(2000, ge=100, le=100_000)
    bootstrap_block: int | None = Field(
        None, ge=1, description="rows per bootstrap block; default max(4 x horizon, rows ** (1/3))"
    )


EngineName = Literal["threads", "dask"]


class ExecutionSettings(_Section):
    """Where a retrain's studies run (docs/scaling.md, Dask)."""

    engine: EngineName = Field(
        "threads", description="threads: in the flow's process; dask: on the Dask cluster at dask_address"
    )
    dask_address: str | None = Field(
        None,
        description="the Dask scheduler, e.g. tcp://10.0.0.5:8786; null with engine dask starts a "
        "temporary local cluster for the run",
    )


class MarketSettings(_Section):
    """One market the `markets` flow retrains, into its own model store."""

    exchange: str
    symbol: str
    models_dir: Path
    source: SourceKind | None = Field(None, description="default: data.source")
    csv_path: Path | None = Field(None, description="the candle file, for source csv")


MonitorAlertKind = Literal["model.degraded", "features.drifted", "data.stale", "model.expired"]
MonitorWindow = Literal["last_day", "last_7_days", "since_promotion"]


class MonitorCooldowns(_Section):
    """Hours after an alert before the same kind alerts again (one field per alert kind)."""

    model_degraded: float = Field(24.0, ge=0)
    features_drifted: float = Field(24.0, ge=0)
    data_stale: float = Field(3.0, ge=0)
    model_expired: float = Field(24.0, ge=0)

    def hours(self, kind: MonitorAlertKind) -> float:
        return float(getattr(self, kind.replace(".", "_")))


class MonitorSettings(_Section):
    """The hourly monitor of the production model (retrain.monitor); reasons in config/unified.yaml."""

    consecutive: int = Field(3, ge=1, description="passes a breach must hold before it alerts")
    cooldown_hours: MonitorCooldowns = MonitorCooldowns()
    max_model_age_days: float = Field(14.0, gt=0)
    max_data_age_minutes: float = Field(45.0, gt=0, description="age of the last closed candle")
    degradation_window: MonitorWindow = "last_7_days"
    min_margin_over_persistence: float = Field(
        0.0, ge=-1, le=1, description="realised macro-F1 minus persistence's below this is degraded"
    )
    min_degradation_rows: int = Field(480, ge=1, description="matured rows the verdict needs")
    drift_window_days: float = Field(7.0, gt=0, description="recent feature rows tested for drift")
    drift_min_rows: int = Field(96, ge=10, description="fewer recent rows: drift is not tested")
    drift_fdr: float = Field(0.01, gt=0, lt=1, description="Benjamini-Hochberg level of the KS tests")
    drift_min_psi: float = Field(0.5, ge=0, description="PSI a significant feature must also reach")
    drift_share: float = Field(0.4, gt=0, le=1, description="share of drifted features that is drift")
    drift_ignore: list[str] = Field(
        default_factory=lambda: ["time_of_day_sin", "time_of_day_cos", "day_of_week_sin", "day_of_week_cos"],
        description="features left out of the drift test",
    )
    trend_passes: int = Field(48, ge=1, description="passes shown in the trend artifact")


def purge_gap(split: SplitSettings, labels: LabelSettings) -> int:
    """Rows purged between train and test: at least the label horizon."""
    return max(split.gap or 0, labels.horizon)


def _yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {path}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return data


_config_dir: ContextVar[Path] = ContextVar("retrain_config_dir", default=DEFAULT_CONFIG_DIR)


class _YamlFiles(PydanticBaseSettingsSource):
    """unified.yaml, with thresholds.yaml as the `gate` section, from the directory `load_settings` chose."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        directory = _config_dir.get()
        values = _yaml(directory / "unified.yaml")
        values["gate"] = _yaml(directory / "thresholds.yaml")
        return values


class Settings(BaseSettings):
    """The whole configuration. Build it with `load_settings()`."""

    model_config = SettingsConfigDict(
        env_prefix="RETRAIN_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    data: DataSettings = DataSettings()
    paths: PathSettings = PathSettings()
    labels: LabelSettings = LabelSettings()
    features: FeatureSettings = FeatureSettings()
    split: SplitSettings = SplitSettings()
    tuning: TuningSettings = TuningSettings()
    training: TrainingSettings = TrainingSettings()
    ensemble: EnsembleSettings = EnsembleSettings()
    signals: SignalSettings = SignalSettings()
    evaluation: EvaluationSettings = EvaluationSettings()
    store: StoreSettings = StoreSettings()
    alerts: AlertSettings = AlertSettings()
    gate: GateSettings = GateSettings()
    monitor: MonitorSettings = MonitorSettings()
    execution: ExecutionSettings = ExecutionSettings()
    markets: list[MarketSettings] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check_shared_runs(self) -> Settings:
        """Studies on a cluster read and write the run files: every worker must see them at one path."""
        if self.execution.engine == "dask" and self.execution.dask_address is not None:
            runs = self.paths.runs_dir
            if runs is None or not runs.is_absolute():
                raise ValueError(
                    "execution.engine dask with a dask_address needs paths.runs_dir set to an absolute path "
                    "that every Dask worker sees (a shared file system mounted at the same path on each "
                    f"host), got {runs}"
                )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Highest first: explicit run parameters, then the environment, then the YAML files.
        return init_settings, env_settings, _YamlFiles(settings_cls)

    @property
    def purge_gap(self) -> int:
        return purge_gap(self.split, self.labels)

    def config_hash(self) -> str:
        """SHA-256 of the effective configuration, recorded in model metadata."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()


def _format_validation_error(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        if not err["loc"]:  # a check across sections: its message names the keys
            lines.append(f"  {err['msg'].removeprefix('Value error, ')}")
            continue
        key = ".".join(str(p) for p in err["loc"])
        lines.append(f"  {key} = {err.get('input')!r}: {err['msg']}")
    return "invalid configuration:\n" + "\n".join(lines)


def load_settings(config_dir: Path | None = None, **overrides: dict[str, Any]) -> Settings:
    """The YAML files in `config_dir` (or $RETRAIN_CONFIG_DIR), overridden by environment variables,
    overridden by `overrides` per section (e.g. `data={"days": 90}`): explicit run parameters win."""
    directory = Path(config_dir or os.environ.get(CONFIG_DIR_ENV) or DEFAULT_CONFIG_DIR)
    token = _config_dir.set(directory)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc)) from exc
    finally:
        _config_dir.reset(token)


def load_run_settings(
    *,
    source: SourceKind | None = None,
    data_path: str | None = None,
    days: int | None = None,
    trials: int | None = None,
    time_budget_s: float | None = None,
    models: list[ModelName] | None = None,
    models_dir: str | None = None,
    exchange: str | None = None,
    symbol: str | None = None,
) -> Settings:
    """The configuration with a run's parameters on top (flow parameters, CLI options); a parameter left
    out keeps the configured value."""
    sections = {
        "data": {
            "source": source,
            "csv_path": data_path,
            "days": days,
            "exchange": exchange,
            "symbol": symbol,
        },
        "tuning": {"n_trials": trials, "timeout_s": time_budget_s},
        "training": {"models": models},
        "paths": {"models_dir": models_dir},
    }
    overrides = {
        name: {k: v for k, v in values.items() if v is not None} for name, values in sections.items()
    }
    settings = load_settings(**{name: values for name, values in overrides.items() if values})
    if settings.data.source == "csv" and settings.data.csv_path is None:
        raise ConfigError(
            "data.source is 'csv' but data.csv_path is not set (--data PATH, RETRAIN_DATA__CSV_PATH)"
        )
    return settings
