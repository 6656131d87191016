"""The README's fenced Python blocks, for the tests that compare them with files and type-check them."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.nsqproc import REPO_ROOT

README = REPO_ROOT / "README.md"
_BLOCK = re.compile(r"^```python\n(.*?)^```\n", re.S | re.M)


def python_blocks(readme: Path = README) -> list[str]:
    return _BLOCK.findall(readme.read_text())
