"""The quality gates are wired where CI runs them: ``make lint`` checks the formatting too, and
``.ci/run`` runs ``make lint``. Read from the files themselves, so dropping a gate fails here."""

from __future__ import annotations

import re

from tests.support.nsqproc import REPO_ROOT


def _recipe(target: str) -> list[str]:
    text = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    found = re.search(rf"^{target}:.*\n((?:\t.*\n)+)", text, re.M)
    assert found, f"the Makefile has no {target} target"
    return [line.strip() for line in found.group(1).splitlines()]


def test_make_lint_runs_ruff_check_and_ruff_format_check() -> None:
    lint = _recipe("lint")
    assert ".venv/bin/ruff check ." in lint
    assert ".venv/bin/ruff format --check ." in lint


def test_ci_runs_make_lint() -> None:
    steps = [line.strip() for line in (REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()]
    assert "make lint" in steps and steps.index("make lint") < steps.index("make test")
