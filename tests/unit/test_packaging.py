"""Every top-level package of the checkout is one the project installs: an installed `pdx` finds all its code."""

from __future__ import annotations

import tomllib
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_top_level_package_is_installed():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    include = project["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists() and p.name not in {"tests", "bench"}}
    missing = sorted(name for name in packages if not any(fnmatch(name, pattern) for pattern in include))
    assert missing == [], f"add {missing} to [tool.setuptools.packages.find] include in pyproject.toml"
