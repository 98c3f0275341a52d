"""The core library stays Prefect-free: the live bot imports `retrain` without Prefect's cost or server."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from conftest import PROJECT_ROOT


def test_every_retrain_module_imports_without_loading_prefect() -> None:
    script = textwrap.dedent(
        """
        import importlib, pkgutil, sys
        import retrain
        names = [m.name for m in pkgutil.walk_packages(retrain.__path__, "retrain.")]
        for name in names:
            importlib.import_module(name)
        loaded = sorted(m for m in sys.modules if m == "prefect" or m.startswith("prefect."))
        print(len(names), loaded[:5])
        sys.exit(1 if loaded else 0)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"Prefect was imported: {result.stdout}{result.stderr}"
    imported = int(result.stdout.split()[0])
    assert imported > 40, f"only {imported} modules found under retrain/"
