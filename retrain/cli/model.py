"""`retrain model ...`: inspect, verify, sign, list and roll back production models."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from retrain.errors import ConfigError, ModelStoreError
from retrain.store import (
    MODEL_FILE,
    ModelMetadata,
    SignatureStatus,
    list_versions,
    load_production_metadata,
    production_version,
    read_history,
    rollback,
    sign_version,
    verify_production,
)

if TYPE_CHECKING:
    from retrain.alerts import Alert

app = typer.Typer(no_args_is_help=True, help=__doc__)

ModelsDirOption = Annotated[
    Path | None,
    typer.Option(
        "--models-dir",
        help="The models directory; default: paths.models_dir of the configuration. It must exist.",
        file_okay=False,
        exists=True,
    ),
]


def _models_dir(option: Path | None) -> Path:
    if option is not None:
        return option
    from retrain.settings import load_settings

    try:
        return load_settings().paths.models_dir
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


_SIGNATURE_NOTES: dict[SignatureStatus, str] = {
    "verified": "signature verified",
    "not checked": "SHA-256 only: the pair is signed, but no signing key is configured, so the signature "
    "was not checked",
    "unsigned": "SHA-256 only: unsigned, and no signing key is configured",
}


def _format_value(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _metric_lines(metrics: Mapping[str, Any], indent: str = "  ") -> Iterator[str]:
    """Scalars of a section on one line (macro_f1 comes first), nested sections below it."""
    scalars = [
        f"{key}={_format_value(value)}" for key, value in metrics.items() if not isinstance(value, Mapping)
    ]
    if scalars:
        yield indent + " ".join(scalars)
    for key, value in metrics.items():
        if isinstance(value, Mapping):
            yield f"{indent}{key}:"
            yield from _metric_lines(value, indent + "  ")


def _summary(metadata: ModelMetadata, models_dir: Path) -> Iterator[str]:
    training = metadata.training_info
    macro_f1 = metadata.macro_f1
    yield f"version:     {metadata.version}"
    yield f"model type:  {metadata.model_type}"
    yield f"created at:  {metadata.created_at.isoformat()}"
    yield f"file:        {models_dir / 'archive' / metadata.version / MODEL_FILE}"
    yield f"sha256:      {metadata.model_sha256}"
    yield f"features:    {len(metadata.feature_names)}"
    yield f"samples:     {training.samples_count if training else 'not recorded'}"
    yield f"macro-F1:    {'not recorded' if macro_f1 is None else f'{macro_f1:.4f}'}"
    yield f"decision:    {metadata.decision.status}: {'; '.join(metadata.decision.reasons)}"
    if metadata.performance_metrics:
        yield "metrics:"
        yield from _metric_lines(metadata.performance_metrics)


@app.command()
def info(
    models_dir: ModelsDirOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole metadata as JSON.")] = False,
) -> None:
    """Summary of the production model (its metadata; `verify` checks the file itself)."""
    directory = _models_dir(models_dir)
    try:
        metadata = load_production_metadata(directory)
    except ModelStoreError as exc:
        raise _fail(str(exc)) from exc
    if as_json:
        typer.echo(metadata.model_dump_json(indent=2))
        return
    for line in _summary(metadata, directory):
        typer.echo(line)


@app.command()
def verify(models_dir: ModelsDirOption = None) -> None:
    """Check the production pair against its SHA-256 and, with a signing key, its signature; unpickles
    nothing. Exit 0 intact, 1 not (or unsigned while a key is configured), 2 unusable key configuration."""
    directory = _models_dir(models_dir)
    try:
        result = verify_production(directory)
    except ConfigError as exc:
        raise _fail(str(exc), 2) from exc
    if not result.intact:
        raise _fail(f"production model NOT intact: {result.problem}")
    note = f" ({_SIGNATURE_NOTES[result.signature]})" if result.signature else ""
    typer.echo(f"intact: production version {result.version}{note}")


@app.command()
def sign(
    version: Annotated[str | None, typer.Argument(help="The version to sign; default: production.")] = None,
    replace: Annotated[
        bool,
        typer.Option(
            "--replace",
            help="Replace a signature that does not verify with the configured key (after a deliberate key "
            "rotation; only for versions you trust)",
        ),
    ] = False,
    models_dir: ModelsDirOption = None,
) -> None:
    """Sign an archived version with the configured key (RETRAIN_SIGNING_KEY or store.signing_key_block),
    after checking its SHA-256: for versions stored before signing was turned on. Exit 0 signed (or already
    signed), 1 refused, 2 no usable key."""
    directory = _models_dir(models_dir)
    try:
        result = sign_version(directory, version, replace=replace)
    except ConfigError as exc:
        raise _fail(str(exc), 2) from exc
    except ModelStoreError as exc:
        raise _fail(str(exc)) from exc
    typer.echo(f"{result.outcome}: version {result.version} (key id {result.key_id})")


@app.command("list")
def list_command(models_dir: ModelsDirOption = None) -> None:
    """Archived versions (status, macro-F1) and the promotion history."""
    directory = _models_dir(models_dir)
    try:
        versions = list_versions(directory)
        history = read_history(directory)
    except ModelStoreError as exc:
        raise _fail(str(exc)) from exc
    if not versions:
        typer.echo(f"no archived versions under {directory}")
    for info_ in versions:
        marker = "*" if info_.status == "live" else " "
        score = "-" if info_.macro_f1 is None else f"{info_.macro_f1:.4f}"
        detail = info_.problem or info_.model_type or ""
        signed = {True: "signed", False: "unsigned", None: "-"}[info_.signed]
        typer.echo(
            f"{marker} {info_.version}  {info_.status:<15}  macro-F1 {score:<7}  {signed:<8}  {detail}"
        )
    if history:
        typer.echo("\nhistory:")
    for event in history:
        previous = ""
        if event.previous_version:
            role = "production stayed" if event.event == "reject" else "replacing"
            previous = f" ({role} {event.previous_version})"
        when = event.at.isoformat(timespec="seconds")
        typer.echo(f"  {when}  {event.event:<9} {event.version}{previous}: {event.reason}")


@app.command("rollback")
def rollback_command(
    version: Annotated[
        str | None, typer.Argument(help="The version to restore; default: the one live before.")
    ] = None,
    reason: Annotated[str, typer.Option(help="Why, recorded in the promotion history.")] = "manual rollback",
    models_dir: ModelsDirOption = None,
) -> None:
    """Put an archived version back in production, atomically (default: the one live before)."""
    directory = _models_dir(models_dir)
    previous = production_version(directory)
    try:
        restored = rollback(directory, version, reason=reason)
    except ConfigError as exc:
        raise _fail(str(exc), 2) from exc
    except ModelStoreError as exc:
        raise _fail(str(exc)) from exc
    typer.echo(f"production is now {restored}")
    from retrain.alerts import rollback_alert

    _announce(rollback_alert(restored, previous or "nothing", reason))


def _announce(alert: Alert) -> None:
    """Deliver `alert` to the configured channels and as a Prefect event when there is somewhere to send
    it (channels, or a Prefect server in PREFECT_API_URL); otherwise it is only printed."""
    from retrain.settings import load_settings

    try:
        channels = load_settings().alerts.channels
    except ConfigError as exc:
        typer.echo(f"alert {alert.kind} not sent, the configuration is invalid: {exc}", err=True)
        return
    if not channels and not os.environ.get("PREFECT_API_URL"):
        typer.echo(f"alert {alert.kind} (no channel configured, no PREFECT_API_URL): {alert.title}", err=True)
        return
    from tasks.alerts import deliver_alert  # Prefect loads only when there is somewhere to deliver

    report = deliver_alert(alert, channels)
    sent = ", ".join(report.delivered) or "no channel"
    typer.echo(
        f"alert {alert.kind} sent to {sent}" + (f"; failed: {report.failed}" if report.failed else ""),
        err=True,
    )
