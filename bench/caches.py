"""Micro-benchmark of the three small caches on the RPC path: is each worth its state?

Each is timed with and without its shortcut on the work it saves, per call, in ns:
  reply topics   _wire.decode_invocation checks an invocation's reply_topic with
                 check_name (a regex) on the service, once per invocation; the cache skips it
                 for a topic seen before (a caller sends thousands with the same one)
  topics         the caller turns a URI into its topic (check_uri: a regex and a length check)
                 once per call; a dict from URI to topic would skip that
  plain types    _validation.TypeCheck validates ``str``/``int``/... payloads and results by a
                 type check instead of pydantic's TypeAdapter, twice per invocation (payload, result)
A cache stays when it saves at least 2 % of the CPU one call costs on its side (bench (b):
~10-11 µs for the caller and for the service, so >= ~200 ns). Run: .venv/bin/python bench/caches.py
"""

from __future__ import annotations

import statistics
import timeit
from collections.abc import Callable

import pydantic

from almanet._nsq.names import check_name
from almanet._wire import protocol as _wire
from almanet._wire.validation import TypeCheck

REPEAT = 7
NUMBER = 200_000


def ns(function: Callable[[], object]) -> float:
    """Median ns per call over REPEAT runs of NUMBER calls (the median resists a noisy neighbour)."""
    return statistics.median(t / NUMBER * 1e9 for t in timeit.repeat(function, number=NUMBER, repeat=REPEAT))


def main() -> None:
    reply_to = _wire.reply_topic(_wire.new_id())
    seen = {reply_to}
    uri = "net.example.greeting"
    topics = {uri: _wire.rpc_topic(uri)}
    checked = TypeCheck(str)
    adapter = pydantic.TypeAdapter(str)

    rows = [
        ("reply topics: check_name(reply_topic)", ns(lambda: check_name(reply_to, "reply topic"))),
        ("reply topics: set lookup (the cache)", ns(lambda: reply_to in seen)),
        ("topics: rpc_topic(uri)", ns(lambda: _wire.rpc_topic(uri))),
        ("topics: dict lookup (a cache)", ns(lambda: topics.get(uri))),
        ("plain types: pydantic TypeAdapter(str).validate_python", ns(lambda: adapter.validate_python("Aidar"))),
        ("plain types: the _PLAIN shortcut (TypeCheck(str).validate)", ns(lambda: checked.validate("Aidar", "p"))),
        ("plain types: pydantic dump_python(mode='json')", ns(lambda: adapter.dump_python("Hello", mode="json"))),
        ("plain types: the _PLAIN shortcut (TypeCheck(str).to_json)", ns(lambda: checked.to_json("Hello"))),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value:7.0f} ns")


if __name__ == "__main__":
    main()
