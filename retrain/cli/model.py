"""`retrain model ...`: inspect, verify, list and roll back production models."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, help=__doc__)
