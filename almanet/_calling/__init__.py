"""The caller's side: the session facade, calls and their deadlines, produce and consume.

Job: ``Almanet`` (join, call, multicall, delay_call, produce, consume, leave); the pending calls,
their reply routing and deadlines; why a call timed out (liveness from ``/stats``, forensics);
the per-call trace the CLI prints with ``-v``.

May import: ``almanet._broker``, ``almanet._nsq``, ``almanet._wire``, ``almanet._settings``.
"""

__all__: list[str] = []
