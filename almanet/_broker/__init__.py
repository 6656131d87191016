"""The broker as almanet sees it: nsqd connections and nsqd's own statistics.

Job: own the producer, the consumers and the lookupd poller of a session, and be the one place
where an ``_nsq`` error becomes an almanet error worded in almanet.toml terms; read nsqd's
``/stats`` (who subscribes to what) for fail-fast calls, ``services`` and ``purge``.

May import: ``almanet._nsq`` and ``almanet._wire``.
"""

__all__: list[str] = []
