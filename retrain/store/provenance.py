"""Where a model came from: the git state of the code and the versions of the libraries that trained it.

Recorded in the metadata so that a model can be reproduced, or a regression traced to an upgrade.
"""

from __future__ import annotations

import logging
import subprocess
from importlib import metadata as importlib_metadata
from pathlib import Path

from retrain.store.metadata import GitInfo

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TRACKED_LIBRARIES: tuple[str, ...] = (
    "prefect",
    "scikit-learn",
    "lightgbm",
    "xgboost",
    "imbalanced-learn",
    "optuna",
    "pandas",
    "numpy",
)
_GIT_TIMEOUT_S = 10.0


def _git(repo: Path, *args: str) -> str:
    completed = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True, timeout=_GIT_TIMEOUT_S
    )
    return completed.stdout.strip()


def collect_git_info(repo: Path = PROJECT_ROOT) -> GitInfo:
    """Commit, branch and dirty flag of `repo`; all null when it is not a git checkout or git is missing."""
    try:
        commit = _git(repo, "rev-parse", "HEAD")
        branch = _git(repo, "rev-parse", "--abbrev-ref", "HEAD")
        dirty = bool(_git(repo, "status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError) as exc:
        logger.info("no git information for %s (%s); recording nulls", repo, exc)
        return GitInfo()
    return GitInfo(commit=commit, branch=None if branch == "HEAD" else branch, dirty=dirty)


def collect_library_versions(names: tuple[str, ...] = TRACKED_LIBRARIES) -> dict[str, str | None]:
    """Installed version of each library (null when it is not installed), read without importing it."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            versions[name] = None
    return versions
