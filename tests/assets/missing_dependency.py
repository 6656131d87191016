"""A module that imports a package that is not installed."""

import almanet_no_such_dependency  # noqa: F401
