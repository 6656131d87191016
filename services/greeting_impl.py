"""The greeting implementation: ``almanet serve services.greeting_impl:greeting_service``."""

import almanet
from services.greeting_api import Greeted, Greeting, greet, greeting_service, refused

__all__ = ["greeting_service"]


@greet.implements
async def greet_impl(session: almanet.Almanet, payload: Greeting) -> Greeted:
    if payload.name == "guest":
        raise refused("guests are not greeted", who=payload.name, retry_in=1.5)
    text = f"Hello, {payload.name}{'!' if payload.excited else '.'}"
    return Greeted(text=text, length=len(text))
