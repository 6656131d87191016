"""gnsq as an independent NSQ client, run as its own process: ``python -m tests.interop._gnsq_peer``.

gnsq runs on gevent; in a process of its own, gevent's hub (and any monkeypatching a gnsq user
might do) never touches the test process or its asyncio loops.

    consume ADDRESS TOPIC CHANNEL COUNT   print COUNT bodies, one JSON line each ({"body", "attempts"})
    publish ADDRESS TOPIC                 PUB each stdin line (newline stripped)
    multipublish ADDRESS TOPIC            one MPUB of all stdin lines
"""

from __future__ import annotations

import json
import sys


def consume(address: str, topic: str, channel: str, count: int) -> int:
    import gevent.event
    import gnsq

    consumer = gnsq.Consumer(topic, channel, nsqd_tcp_addresses=[address], max_in_flight=max(1, count))
    seen: list[int] = []
    done = gevent.event.Event()

    @consumer.on_message.connect
    def handler(_consumer: object, message: gnsq.Message) -> None:
        if done.is_set():
            message.requeue()
            return
        line = {"body": message.body.decode("utf-8", "replace"), "attempts": message.attempts}
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()
        seen.append(1)
        if len(seen) >= count:
            done.set()

    consumer.start(block=False)
    done.wait()
    consumer.close()
    consumer.join(timeout=5)
    return 0


def publish(address: str, topic: str, many: bool) -> int:
    import gnsq

    bodies = [line.rstrip(b"\n") for line in sys.stdin.buffer]
    producer = gnsq.Producer(nsqd_tcp_addresses=[address])
    producer.start()
    try:
        if many:
            producer.multipublish(topic, bodies)
        else:
            for body in bodies:
                producer.publish(topic, body)
    finally:
        producer.close()
        producer.join(timeout=5)
    return 0


def main(argv: list[str]) -> int:
    command, *args = argv
    if command == "consume":
        return consume(args[0], args[1], args[2], int(args[3]))
    if command in ("publish", "multipublish"):
        return publish(args[0], args[1], command == "multipublish")
    sys.stderr.write(f"unknown command {command!r}\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
