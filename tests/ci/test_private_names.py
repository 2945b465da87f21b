"""The CI check that refuses private names of libraries (``.ci/private_names.py``)
finds each way of reaching one, and leaves keel's own names and public
protocol alone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

CHECK = Path(__file__).resolve().parents[2] / ".ci" / "private_names.py"


def run_check(tmp_path: Path, source: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "module.py").write_text(source, encoding="utf-8")
    return subprocess.run(
        [sys.executable, str(CHECK), str(tmp_path)], capture_output=True, text=True, check=False, timeout=60
    )


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("from fastapi.routing import _effective_route_context_var\n", "_effective_route_context_var"),
        ("from starlette._utils import get_route_path\n", "starlette._utils"),
        ("import sqlalchemy._private_module\n", "sqlalchemy._private_module"),
        ("import asyncio\nasyncio._get_running_loop()\n", "._get_running_loop"),
        ("def f(adapter):\n    return getattr(adapter, '_transaction', None)\n", "'_transaction'"),
        ("def f(compiled):\n    return compiled._result_columns\n", "._result_columns"),
        (
            "from sqlalchemy.sql.elements import ColumnElement\n\n"
            "class C(ColumnElement):\n    @property\n    def _from_objects(self):\n        return []\n",
            "_from_objects",
        ),
    ],
)
def test_each_private_reach_is_reported_with_its_line(tmp_path: Path, source: str, found: str) -> None:
    result = run_check(tmp_path, source)
    assert result.returncode == 1
    assert found in result.stdout
    assert "module.py:" in result.stdout


def test_keel_own_private_names_and_dunders_pass(tmp_path: Path) -> None:
    source = (
        "from pydantic import BaseModel\n\n"
        "class Own:\n"
        "    def __init__(self) -> None:\n"
        "        self._count = 0\n\n"
        "    def _bump(self) -> int:\n"
        "        self._count += 1\n"
        "        return self._count\n\n"
        "class Settings(BaseModel):\n"
        "    def _own_helper(self) -> None: ...\n\n"
        "def use(other: Own) -> int:\n"
        "    return other._bump() + len(BaseModel.__name__)\n"
    )
    result = run_check(tmp_path, source)
    assert result.returncode == 0, result.stdout


def test_keel_source_has_no_private_names_of_libraries() -> None:
    source = Path(__file__).resolve().parents[2] / "src"
    result = subprocess.run(
        [sys.executable, str(CHECK), str(source)], capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stdout
