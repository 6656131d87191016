"""A general asyncio NSQ client, knowing nothing of the program above it (it could be its own package).

Cut as go-nsq cuts one: the pure pieces (``codec`` bytes to frames, ``names``, ``address``,
``backoff``, ``options``, ``errors``), one socket (``handshake``, ``connection``, ``http``), then
topology (``producer``, ``consumer``, ``discovery``).

May import: the standard library and orjson; nothing outside this package.
"""

__all__: list[str] = []
