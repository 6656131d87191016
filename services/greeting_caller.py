"""A typed caller: ``python -m services.greeting_caller [NSQD]``; it imports only the interface."""

import sys

import almanet
from services.greeting_api import Greeting, greet, refused


async def main(address: str) -> None:
    async with almanet.new_session(address) as session:
        result = await session.call(greet, Greeting(name="Aidar", excited=True), timeout=10)
        print(result.payload.text, result.payload.length)  # a Greeted instance: Hello, Aidar! 13
        try:
            await session.call(greet, Greeting(name="guest"), timeout=10)
        except refused as error:  # its fields validated on this side
            print("refused:", error.who, "retry in", error.retry_in)


if __name__ == "__main__":
    almanet.run(main(sys.argv[1] if len(sys.argv) > 1 else "localhost:4150"))
