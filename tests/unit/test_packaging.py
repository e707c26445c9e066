"""Packaging: what an image installs with `pip install .` holds every module the services import."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def declared() -> tuple[list[str], dict[str, str]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    return config["packages"], config["package-dir"]


def test_every_python_package_folder_is_declared_in_pyproject():
    packages, package_dir = declared()
    found = set()
    for name, folder in package_dir.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder)
            found.add(".".join([name, *relative.parts]))
    assert sorted(found) == sorted(packages)


def test_the_files_the_services_load_at_run_time_are_package_data():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    _, package_dir = declared()
    for package, patterns in config.items():
        folder = ROOT / package_dir[package]
        assert any(any(folder.glob(p)) for p in patterns), package
    assert "*.yaml" in config["sla"] and (ROOT / "services/sla/policies.yaml").exists()
    assert "*.yaml" in config["router"]
