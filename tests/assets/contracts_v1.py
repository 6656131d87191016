"""A service the contract tests describe, check, stub and fuzz (version 1 of its contract).

``make_shop`` builds it around the type of ``Order.quantity``: version 2 (contracts_v2.py) makes
it a string, the breaking change ``almanet asyncapi --check`` must name. No ``from __future__
import annotations`` here: the models are built inside the function, from its argument.
"""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

import almanet
from almanet._serving.service import Service


def make_shop(quantity_type: Any) -> Service:
    shop = almanet.new_service(prepath="net.contracts")

    class Address(BaseModel):
        city: str
        zip: str = ""

    class Order(BaseModel):
        """An order of one item."""

        item: str
        quantity: quantity_type
        ship_to: Address
        speed: Literal["slow", "fast"] = "slow"

    class Placed(BaseModel):
        order_id: int
        ship_to: Address

    class StockUpdate(BaseModel):
        item: str
        left: int

    # what the shop publishes and reads besides its procedures (discovery, AsyncAPI channels)
    shop.produces("orders.placed", Placed, description="One message per placed order.")
    shop.consumes("stock.updates", StockUpdate, channel="shop", description="The warehouse's counts.")

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
        return Placed(order_id=len(payload.item) * int(payload.quantity), ship_to=payload.ship_to)

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

    return shop


shop = make_shop(Annotated[int, Field(ge=1, le=1000)])
