"""What a user installs: gnsq (and its gevent) are test tools, never runtime dependencies."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _project() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_gnsq_is_a_test_dependency_only() -> None:
    project = _project()
    runtime = " ".join(project["dependencies"])  # type: ignore[arg-type]
    assert "gnsq" not in runtime and "gevent" not in runtime
    assert any(d.startswith("gnsq") for d in project["optional-dependencies"]["dev"])  # type: ignore[index]


def test_the_library_and_cli_never_import_gnsq_or_gevent() -> None:
    code = (
        "import sys, almanet, almanet.cli, almanet.cli.serve, almanet.cli.consume;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('gnsq', 'gevent')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
