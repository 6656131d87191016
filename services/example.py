"""The quick-start service: ``almanet serve services.example:example_service``."""

import almanet

example_service = almanet.new_service("localhost:4150", prepath="net.example")


class denied(almanet.rpc_error):
    """The payload is not allowed."""


@example_service.procedure
async def greeting(session: almanet.Almanet, payload: str) -> str:
    """Return a greeting for the given name; "guest" is denied."""
    if payload == "guest":
        raise denied()
    return f"Hello, {payload}!"


if __name__ == "__main__":
    example_service.serve()
