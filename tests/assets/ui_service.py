"""The service the `almanet ui` tests serve: a payload with every kind of field the form builds."""

from __future__ import annotations

import enum

from pydantic import BaseModel, Field

import almanet


class Size(enum.StrEnum):
    small = "small"
    large = "large"


class Address(BaseModel):
    city: str
    floor: int | None = None


class Order(BaseModel):
    """An order for the shop."""

    item: str = Field(description="what to buy")
    quantity: int = Field(ge=1, le=100)
    price: float
    gift: bool = False
    size: Size
    address: Address
    notes: list[str] = []


class sold_out(almanet.rpc_error):
    """The item is sold out (a name of its own: callers find error classes by name)."""


def new_shop(prepath: str, *addresses: str) -> almanet.Service:
    """A shop service under ``prepath``: ``order`` (every kind of field) and ``ping``."""
    shop = almanet.new_service(*addresses, prepath=prepath)

    @shop.procedure(tags=("orders", "demo"))
    async def order(payload: Order) -> dict[str, object]:
        """Place an order; the item "unicorn" is sold out."""
        if payload.item == "unicorn":
            raise sold_out(payload.item, payload.quantity)
        total = round(payload.quantity * payload.price, 2)
        return {
            "item": payload.item,
            "total": total,
            "gift": payload.gift,
            "size": payload.size,
            "city": payload.address.city,
            "notes": payload.notes,
        }

    @shop.procedure
    async def ping(payload: None = None) -> str:
        """Answer "pong": the tests wait on it for the service to be up."""
        return "pong"

    return shop


shop = new_shop("uitest")
