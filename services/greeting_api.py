"""The greeting interface: the contract callers import, with no implementation in it."""

import pydantic

import almanet

greeting_service = almanet.new_service("localhost:4150", prepath="net.example.typed")


class Greeting(pydantic.BaseModel):
    name: str
    excited: bool = False


class Greeted(pydantic.BaseModel):
    text: str
    length: int


class refused(almanet.rpc_error):
    """This name is not greeted; ``who`` says which, ``retry_in`` when to ask again."""

    who: str
    retry_in: float = 0.0


@greeting_service.abstract_procedure(raises=[refused])
async def greet(payload: Greeting) -> Greeted:
    """Greet someone by name."""
    raise NotImplementedError  # the service's code is in services/greeting_impl.py
