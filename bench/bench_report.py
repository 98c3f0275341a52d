"""Shared by the bench scripts: describe the machine, and write a titled section into a markdown file.

Each script owns its sections; re-running a script replaces its sections and leaves the others.
"""

from __future__ import annotations

import os
import platform
import re
import shlex
import statistics
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import psutil


def machine_summary() -> str:
    cpu = platform.processor() or platform.machine()
    memory_gib = psutil.virtual_memory().total / 2**30
    return (
        f"Machine: {os.cpu_count()} cores ({cpu}), {memory_gib:.0f} GiB, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}. Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC."
    )


def command_line(script: str) -> str:
    """The command as run, with the RETRAIN_* variables that changed the configuration."""
    overrides = [
        f"{key}={shlex.quote(value)}" for key, value in os.environ.items() if key.startswith("RETRAIN_")
    ]
    return " ".join([*overrides, ".venv/bin/python", shlex.join([script, *sys.argv[1:]])])


def median_and_spread(values: Sequence[float]) -> str:
    """'median (min..max, n runs)': how benchmark figures are quoted."""
    return f"{statistics.median(values):.3g} ({min(values):.3g}..{max(values):.3g}, {len(values)} runs)"


def write_section(path: Path, title: str, body: str) -> None:
    """Replace the `## title` section of `path` (or append it), keeping every other section."""
    text = path.read_text() if path.exists() else f"# {path.stem}\n"
    section = f"## {title}\n\n{body.rstrip()}\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.M | re.S)
    text = (
        pattern.sub(lambda _: section + "\n", text)
        if pattern.search(text)
        else text.rstrip() + "\n\n" + section
    )
    path.write_text(text)


def publish(path: Path, title: str, script: str, body: str) -> None:
    """Print a figures section headed by the machine and the command, and write it into `path`."""
    text = f"{machine_summary()}\n\nCommand: `{command_line(script)}`\n\n{body}"
    print(text)
    write_section(path, title, text)
