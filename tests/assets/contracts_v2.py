"""Version 2 of the contract tests' shop: ``Order.quantity`` is a string now (a breaking change)."""

from tests.assets.contracts_v1 import make_shop

shop = make_shop(str)
