"""Fixtures the typed tests share with others: ``almanet serve`` as a subprocess, the 0.7.0 interpreter."""

from tests.cli.conftest import serve
from tests.interop.test_almanet070 import python070

__all__ = ["python070", "serve"]
