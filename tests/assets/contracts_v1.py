"""A service the contract tests describe, check, stub and fuzz (version 1 of its contract)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

import almanet

shop = almanet.new_service(prepath="net.contracts")


class Address(BaseModel):
    city: str
    zip: str = ""


class Order(BaseModel):
    """An order of one item."""

    item: str
    quantity: int = Field(ge=1, le=1000)
    ship_to: Address
    speed: Literal["slow", "fast"] = "slow"


class Placed(BaseModel):
    order_id: int
    ship_to: Address


class out_of_stock(almanet.rpc_error):
    """Nothing left of the item."""

    item: str


class empty(almanet.rpc_error):
    """The text is empty."""


@shop.procedure(raises=[out_of_stock], tags=("orders",))
async def order(payload: Order) -> Placed:
    """Place an order; "gold" is always out of stock."""
    if payload.item == "gold":
        raise out_of_stock("sold out", item=payload.item)
    return Placed(order_id=len(payload.item) * payload.quantity, ship_to=payload.ship_to)


@shop.procedure(raises=[empty])
async def shout(payload: str) -> str:
    """Upper-case a text; an empty one is a declared error, nothing else fails."""
    if not payload:
        raise empty()
    return payload.upper()


@shop.procedure
async def invert(payload: int) -> float:
    """1/payload: crashes on 0, a valid payload its author forgot."""
    return 1 / payload


@shop.procedure
async def total(payload: list[int]) -> int:
    """Sum the numbers; returns a string past 100, which its return schema refuses."""
    result = sum(payload)
    return str(result) if result > 100 else result  # type: ignore[return-value]
