"""The user's own environment for the walk-through: a fresh venv with the checkout installed as a user does.

It is built once per test session: ``pip install '<checkout>[redis,rabbitmq,postgres]'`` (no test extras),
a check that both brokers' transports import, then ``pip install flower`` as a user adds it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _checkout_copy(target: Path) -> Path:
    """The checkout's files (tracked, and new ones not ignored) in ``target``: built there, not here."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True
    )
    if listed.returncode != 0:  # not a git checkout (an unpacked archive): its files, less what builds make
        shutil.copytree(ROOT, target, ignore=shutil.ignore_patterns(*_NOT_SOURCE))
        return target
    for name in filter(None, listed.stdout.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


_NOT_SOURCE = (".git", ".venv", "__pycache__", "*.egg-info", "build", "dist", ".jqm-demo", "*.sqlite")


def _run(*command: str | Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, command))} failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
        )
    return result


@pytest.fixture(scope="session")
def user_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``bin`` folder of a fresh venv with jqm-celery, its broker and PostgreSQL extras, and Flower."""
    base = tmp_path_factory.mktemp("user-venv")
    checkout = _checkout_copy(base / "jqm-celery")
    venv = base / "venv"
    _run(sys.executable, "-m", "venv", venv)
    python = venv / "bin" / "python"
    _run(
        python,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        f"{checkout}[redis,rabbitmq,postgres]",
    )
    # What the workers import for each broker and the store, before anything else is installed.
    _run(python, "-c", "import kombu.transport.redis, kombu.transport.pyamqp, psycopg, jqm_celery")
    _run(python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "flower")
    return venv / "bin"
