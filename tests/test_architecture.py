"""The architecture contracts cover the code as it is: every domain
sub-package is in import-linter's layers contract."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "src" / "keel"


def _contract_containers() -> set[str]:
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    layers = [contract for contract in contracts if contract["type"] == "layers"]
    assert len(layers) == 1
    return set(layers[0]["containers"])


def _domain_sub_packages() -> set[str]:
    found = set()
    for module in SOURCE.glob("*/*/*.py"):
        package = module.parent
        if package.parent.parent != SOURCE or package.parent.name == "core" or not (package / "__init__.py").exists():
            continue
        found.add("keel." + ".".join(package.relative_to(SOURCE).parts))
    return found


def test_every_domain_sub_package_is_layered() -> None:
    sub_packages = _domain_sub_packages()
    assert "keel.work.tasks" in sub_packages
    assert sub_packages == _contract_containers()
