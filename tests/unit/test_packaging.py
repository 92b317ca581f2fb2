"""A non-editable install must carry every package of the source tree (``pip install .`` in the README)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_python_package_in_the_tree_is_listed_for_setuptools() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    mapped = {name: Path(folder) for name, folder in setuptools["package-dir"].items()}
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in ("jqm_celery", "beat_schedules")
        for init in (ROOT / top).rglob("__init__.py")
    }
    found |= {name for name, folder in mapped.items() if (ROOT / folder / "__init__.py").exists()}
    assert found - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
    assert listed - found == set(), "these listed packages have no __init__.py"
