"""The package type-checks clean under the ``[tool.mypy]`` settings of pyproject.toml."""

from __future__ import annotations

import os
from pathlib import Path

from mypy import api

ROOT = Path(__file__).resolve().parent.parent


def test_the_package_type_checks(monkeypatch):
    monkeypatch.chdir(ROOT)  # pyproject.toml's [tool.mypy], and its files = ["replay"]
    stdout, stderr, status = api.run(["--config-file", os.path.join(ROOT, "pyproject.toml")])
    assert (status, stderr) == (0, ""), stdout
    assert stdout.startswith("Success: no issues found"), stdout
