"""What encoding a payload costs on the send path, plain and as a pydantic model (issue 20).

Plain payloads must not pay for models being accepted: orjson calls the ``default=`` hook only
for a type it cannot write itself. This times ``encode_invocation`` (a call's bytes) and
``encode_reply`` with a plain payload under whichever almanet is imported, so that running it
again with ``PYTHONPATH=<another checkout>`` compares two trees; with this tree it also times a
model payload. Prints one JSON object of medians in nanoseconds per encoding.

    .venv/bin/python bench/payloads.py
    PYTHONPATH=/work/bench-main .venv/bin/python bench/payloads.py
"""

from __future__ import annotations

import json
import statistics
import timeit
from typing import Any

import pydantic

import almanet
from almanet._wire import protocol

PLAIN = {"id": 1, "name": "Aidar", "tags": ["a", "b"], "price": 1.5, "ok": True}
CALL_ID = "0" * 32
REPEAT, NUMBER = 15, 20_000


class Order(pydantic.BaseModel):
    id: int
    name: str
    tags: list[str]
    price: float
    ok: bool


def _median_ns(statement: Any) -> float:
    runs = timeit.repeat(statement, repeat=REPEAT, number=NUMBER)
    return round(statistics.median(runs) / NUMBER * 1e9, 1)


def main() -> None:
    reply_topic = "_rpc_._reply_." + CALL_ID + "#ephemeral"
    figures: dict[str, Any] = {"almanet": almanet.__file__}
    figures["invocation_plain_ns"] = _median_ns(
        lambda: protocol.encode_invocation(CALL_ID, CALL_ID, PLAIN, reply_topic)
    )
    figures["reply_plain_ns"] = _median_ns(lambda: protocol.encode_reply(CALL_ID, False, PLAIN))
    if hasattr(protocol, "encode_json"):  # this tree: models accepted as payloads
        order = Order(**PLAIN)
        assert protocol.encode_json(order) == protocol.encode_json(PLAIN)
        figures["invocation_model_ns"] = _median_ns(
            lambda: protocol.encode_invocation(CALL_ID, CALL_ID, order, reply_topic)
        )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
