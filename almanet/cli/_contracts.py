"""What ``asyncapi``, ``stubs`` and ``fuzz`` share: the bus's or a module's procedure descriptions,
and saved documents read back (JSON, or YAML with the ``contracts`` extra).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ._common import Exit, discover, fail, open_session

__all__ = ["described_live", "described_target", "load_document"]


def described_target(target: str) -> list[Any]:
    """A module's services (``module:attr``, imported as ``serve`` does) as ``ServiceDescription``s."""
    from almanet._contracts.asyncapi import ServiceDescription

    from .serve import resolve_target

    return [
        ServiceDescription(
            prepath=service.prepath or None,
            procedures=tuple(p.describe("") for p in service.procedures.values()),
            servers=tuple(service.addresses),
            topics=tuple(t.describe() for t in service.topics.values()),
        )
        for service in resolve_target(target)
    ]


async def described_live(settings: Any, timeout: float) -> list[Any]:
    """One ``ServiceDescription`` per live instance, in discovery's order (0.7.0's asked per procedure)."""
    from almanet._contracts.asyncapi import ServiceDescription
    from almanet._wire.protocol import describe_uri

    session = await open_session(settings)
    found: list[Any] = []
    async with session:
        for instance in await discover(session, timeout):
            documents: list[dict[str, Any]] = [p.document for p in instance.procedures]
            if not instance.procedures:  # almanet 0.7.0 lists routes; each procedure describes itself
                for uri, channel in instance.routes:
                    try:
                        reply = await session.call(describe_uri(uri, channel), None, timeout=timeout)
                    except TimeoutError:
                        continue
                    if isinstance(reply.payload, dict):
                        documents.append(reply.payload)
            found.append(
                ServiceDescription(
                    prepath=instance.prepath,
                    procedures=tuple(documents),
                    servers=tuple(settings.nsqd),
                    topics=instance.topics,
                    extras={"client": instance.client, "host": instance.host, "pid": instance.pid},
                )
            )
    return found


def load_document(path: Path) -> dict[str, Any]:
    """A saved AsyncAPI document (JSON or YAML); a missing or unreadable one exits 2 saying why."""
    import orjson

    try:
        data = path.read_bytes()
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}", Exit.BAD_INPUT)
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as json_error:
        if path.suffix not in (".yaml", ".yml"):
            fail(f"{path} is not valid JSON: {json_error} (a YAML document needs a .yaml name)", Exit.BAD_INPUT)
        try:
            import yaml
        except ImportError:
            fail(f"reading YAML ({path}) needs PyYAML: pip install 'almanet[contracts]'", Exit.BAD_INPUT)
        try:
            document = yaml.safe_load(data)
        except yaml.YAMLError as exc:
            fail(f"{path} is not valid YAML: {exc}", Exit.BAD_INPUT)
    if not isinstance(document, dict) or not str(document.get("asyncapi", "")).startswith("3."):
        fail(f"{path} is not an AsyncAPI 3 document (no asyncapi: 3.x at its top)", Exit.BAD_INPUT)
    return document
