"""Exception types. Each names the problem so an operator can act on it."""

from __future__ import annotations


class RetrainError(Exception):
    """Base class for every error this project raises on purpose."""


class DiskFullError(RetrainError, OSError):
    """A file could not be written because its file system is full (or over quota); names the path and
    the space left. Still an OSError (errno ENOSPC/EDQUOT), so code that handles write failures does."""


class ConfigError(RetrainError):
    """The configuration files or environment overrides hold an invalid value."""


class DataSourceError(RetrainError):
    """Candles could not be obtained from a source (file missing, exchange unreachable...)."""


class ExchangeError(DataSourceError):
    """The exchange answered with an error or could not be reached after all retries."""


class TransientExchangeError(ExchangeError):
    """The exchange timed out, was unreachable or overloaded (HTTP 5xx, 429) through every retry, or has
    not published a past day yet: the same request may well succeed later."""


class CandleValidationError(RetrainError):
    """Candles failed validation; `report` lists every problem found."""

    def __init__(self, message: str, report: object | None = None) -> None:
        super().__init__(message)
        self.report = report


class FeatureMismatchError(RetrainError):
    """Input to a model does not have the features, order or dtypes it was trained on."""


class InvalidInputError(RetrainError):
    """Input to a model contains NaN, inf or non-numeric values."""


class TrainingError(RetrainError):
    """Training could not produce a model (too little data, a class missing...)."""


class ModelStoreError(RetrainError):
    """Base class for model store problems."""


class ModelIntegrityError(ModelStoreError):
    """A stored model file does not match its recorded SHA-256, or is corrupt."""


class ModelSignatureError(ModelIntegrityError):
    """A stored pair's HMAC signature does not verify with the configured key (or cannot be read)."""


class UnsignedModelError(ModelSignatureError):
    """A signing key is configured but the stored pair carries no signature (`retrain model sign`)."""


class SigningError(ModelStoreError):
    """A stored version could not be signed (not archived, or it carries a signature that does not verify)."""


class SigningKeyError(ConfigError):
    """The signing key is configured but unusable: too short, or its Prefect Secret block cannot be read."""


class NoProductionModelError(ModelStoreError):
    """There is no model in production yet."""


class PromotionLockTimeout(ModelStoreError):
    """Another promotion holds the store lock for longer than the configured timeout."""


class EnsembleError(RetrainError):
    """An ensemble's members, weights, features or classes do not fit together, or a member misbehaved."""


class AlertError(RetrainError):
    """An alert was asked for with values that cannot describe a real event (a score outside [0, 1]...)."""


class PromotionError(ModelStoreError):
    """A promotion could not complete (write failed, version already archived...); production is unchanged."""


class RollbackError(ModelStoreError):
    """A rollback target does not exist, was rejected, or there is no earlier version to return to."""


class AlertChannelError(RetrainError):
    """A name in `alerts.channels` does not designate a saved Prefect notification block."""


class DatasetError(RetrainError):
    """Features, labels or a training dataset cannot be built or read (too few candles, bad file...)."""


class ProductionChangedError(PromotionError):
    """Production changed between the challenger's evaluation and its promotion; nothing was promoted."""


class BacktestError(RetrainError):
    """A backtest cannot run as asked (span outside the data, no cache to replay, a store that moved)."""


class BenchmarkError(RetrainError):
    """A benchmark could not measure what it was asked to (a server that did not start, a failed run)."""
