"""One TCP connection to one nsqd: handshake, ordered replies, heartbeats, write coalescing.

The connection knows no topic policy and no RDY policy; it reports messages and its end to a
delegate. Commands are written into a buffer that is flushed once per event-loop tick, so a burst
of PUB/FIN/RDY costs one ``write`` (and nsqd one read) instead of one each.

Over 400 lines on purpose: the write buffer, the waiters and the tick's MPUB batches are one state
that every command reads on the hot path; cut in two, each command would cross a module.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from . import codec
from .address import Address
from .errors import (
    NON_FATAL_ERROR_CODES,
    NSQConnectionError,
    NSQErrorResponse,
    ProtocolError,
)
from .handshake import handshake, not_nsq_error, tls_required_error
from .options import ConnectionOptions

if TYPE_CHECKING:
    import ssl

__all__ = ["Connection", "ConnectionDelegate"]

logger = logging.getLogger(__name__)


class ConnectionDelegate(Protocol):
    def on_message(self, connection: Connection, frame: codec.MessageFrame) -> None: ...

    def on_close(self, connection: Connection, error: Exception | None) -> None: ...


# A tick's MPUB stays well under nsqd's default --max-body-size (5 MiB).
_BATCH_LIMIT = 1024 * 1024


class _Batch:
    __slots__ = ("bodies", "future", "size")

    def __init__(self, future: asyncio.Future[bytes]) -> None:
        self.future = future
        self.bodies: list[bytes] = []
        self.size = 4


class Connection(asyncio.Protocol):
    """A connected nsqd client socket. Make one with ``await Connection.open(...)``."""

    def __init__(
        self,
        address: str,
        options: ConnectionOptions,
        delegate: ConnectionDelegate | None = None,
    ) -> None:
        self.address = address
        self.options = options
        self.delegate = delegate
        self.server_settings: dict[str, object] = {}
        self.closed = False
        self.close_error: Exception | None = None
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._decoder = codec.FrameDecoder(options.max_frame_size)
        # commands awaiting nsqd's answer, oldest first, with their bytes (to resend them if lost)
        self._waiters: collections.deque[tuple[asyncio.Future[bytes], bytes]] = collections.deque()
        # called with the unanswered (future, command) pairs when the connection is lost; the
        # futures are failed instead when it is None
        self.on_lost_commands: Callable[[list[tuple[asyncio.Future[bytes], bytes]]], None] | None = None
        self._out: list[bytes] = []
        self._closed_event = asyncio.Event()
        self._last_read = self._loop.time()
        # when the oldest unanswered command was sent, or the last answer came if later: how
        # long nsqd has kept us waiting (Producer drops a node that stalls)
        self._waiting_since = self._last_read
        self._watchdog: asyncio.TimerHandle | None = None
        self._upgrading = False
        self._cls_sent = False
        # nsqd said CLOSE_WAIT: a message after it was sent after the CLS (nsqd's pump can pick one
        # in the instant the CLS lands), and the consumer gives it back at once (Consumer.on_message)
        self.close_waiting = False
        self._flush_scheduled = False
        # the last tick wrote at most one command: the next command alone in its tick is written
        # at once instead of in the next loop iteration (see _write)
        self._eager = True
        self._wrote_eagerly = False
        self._batches: dict[str, _Batch] = {}  # publish_soon's messages of this tick, per topic

    # -- opening ---------------------------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        address: str,
        options: ConnectionOptions | None = None,
        delegate: ConnectionDelegate | None = None,
    ) -> Connection:
        """Connect, then ``handshake`` (magic, IDENTIFY, TLS and AUTH when asked); bounded in time."""
        options = options or ConnectionOptions()
        host, port = Address.parse(address)
        connection = cls(address, options, delegate)
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(options.connect_timeout):
                await loop.create_connection(lambda: connection, host, port)
                await handshake(connection)
        except TimeoutError:
            connection._abort(NSQConnectionError(f"nsqd at {address} did not answer within {options.connect_timeout}s"))
            raise connection.close_error from None  # type: ignore[misc]
        except NSQConnectionError as exc:  # already names the address (and the fix): not re-wrapped
            connection._abort(exc)
            raise
        except OSError as exc:
            connection._abort(NSQConnectionError(f"cannot connect to nsqd at {address}: {exc.strerror or exc}"))
            raise connection.close_error from None  # type: ignore[misc]
        except BaseException as exc:
            connection._abort(exc if isinstance(exc, Exception) else None)
            raise
        connection._eager = True  # the handshake's commands were a burst, but nothing is in flight now
        connection._arm_watchdog()
        return connection

    async def start_tls(self, context: ssl.SSLContext, server_hostname: str) -> None:
        """Turn this socket into TLS after IDENTIFY, as nsqd expects, then wait for nsqd's OK.

        nsqd sends its IDENTIFY reply in clear, then does the TLS handshake on the same socket,
        then sends an OK frame over TLS. ``start_tls`` hands the socket to its own SSL protocol and
        feeds us the decrypted bytes (``data_received``) from the handshake's end on; the OK's
        waiter is queued before the handshake, so that OK finds it whenever it arrives. Raises
        what the loop raised (``ssl.SSLError``, ``OSError``); ``handshake.py`` words it.
        """
        assert self._transport is not None
        waiter: asyncio.Future[bytes] = self._loop.create_future()
        self._waiters.append((waiter, b""))
        self._upgrading = True
        try:
            try:
                transport = await self._loop.start_tls(self._transport, self, context, server_hostname=server_hostname)
            finally:
                self._upgrading = False
            if transport is None or self.closed:  # the peer closed it during the handshake
                raise ConnectionResetError("the connection was closed")
            self._transport = transport
            await waiter  # nsqd confirms the upgrade with an OK frame, over TLS
        finally:
            if not waiter.done():
                waiter.cancel()  # nobody will read it: keep asyncio from reporting it unretrieved
            elif not waiter.cancelled():
                waiter.exception()

    def send_raw(self, data: bytes) -> None:
        """Bytes that are no command (the protocol's magic), written with this tick's others."""
        self._write(data)

    # -- asyncio.Protocol ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._last_read = self._loop.time()
        try:
            frames = self._decoder.feed(data)
        except ProtocolError as exc:
            self._abort(not_nsq_error(self.address, data) or exc)
            return
        for frame in frames:
            if type(frame) is codec.MessageFrame:
                if self.delegate is not None:
                    self.delegate.on_message(self, frame)
            elif type(frame) is codec.ResponseFrame:
                if frame.data == codec.HEARTBEAT:
                    self._write(codec.nop(), urgent=False)
                elif self._waiters:
                    waiter = self._waiters.popleft()[0]
                    self._waiting_since = self._last_read
                    if self._cls_sent and frame.data == codec.CLOSE_WAIT:
                        self.close_waiting = True  # before the frames after it in this read
                    if not waiter.done():
                        waiter.set_result(frame.data)
                else:
                    logger.warning("unexpected response from %s: %r", self.address, frame.data[:80])
            else:
                # an ErrorFrame: `type() is` keeps this loop free of isinstance() calls, mypy does not narrow it
                self._on_error_frame(NSQErrorResponse.from_frame(frame.data))  # type: ignore[union-attr]

    def _on_error_frame(self, response: NSQErrorResponse) -> None:
        if response.code in NON_FATAL_ERROR_CODES:
            logger.warning("nsqd at %s: %s", self.address, response)
            return
        error: Exception = response
        if response.code == "E_INVALID" and response.text.endswith("(TLS required)"):
            error = tls_required_error(self.address, response)
        if self._waiters:
            waiter = self._waiters.popleft()[0]
            self._waiting_since = self._last_read
            if not waiter.done():
                waiter.set_exception(error)
        else:
            logger.error("nsqd at %s sent an error no command waits for: %s", self.address, error)
        if response.fatal:
            self._abort(error)

    def connection_lost(self, exc: Exception | None) -> None:
        # Not swallowed while upgrading to TLS: the waiters fail now and _upgrade_tls reports it
        # as a TLS failure (start_tls itself tells us of a loss only once its handshake ended).
        if self._upgrading and exc is None:
            exc = ConnectionResetError("closed by nsqd during the TLS handshake")
        error = self.close_error
        if error is None and exc is not None:
            error = NSQConnectionError(f"connection to nsqd at {self.address} lost: {exc}")
            error.__cause__ = exc  # what the loop or OpenSSL said: handshake.py reads its type
        self._finish(error)

    def eof_received(self) -> bool | None:
        return False

    # -- commands --------------------------------------------------------------------------------

    def _write(self, data: bytes, *, urgent: bool = True) -> None:
        """Queue ``data`` for this tick's one ``write``; the first command of a quiet tick goes now.

        Under load (the last tick had more than one command, or a command still awaits nsqd's
        answer) everything waits for the flush in the next loop iteration, so a burst costs one
        ``write``. When it is quiet, a command that is first in its tick is written at once: a lone
        call or reply does not wait a loop iteration for its flush. Commands that are not
        ``urgent`` (FIN, RDY, TOUCH, NOP) always wait.
        """
        if self._flush_scheduled:
            self._out.append(data)
            return
        self._flush_scheduled = True
        self._loop.call_soon(self._flush)
        if urgent and self._eager and self._transport is not None and not self.closed:
            self._wrote_eagerly = True
            self._transport.write(data)
        else:
            self._out.append(data)

    def _flush(self) -> None:
        self._flush_scheduled = False
        count = len(self._out)  # commands, and messages for those in an MPUB
        if self._batches:
            for batch in self._batches.values():
                count += len(batch.bodies)
            self._seal_batches()
        out = self._out
        # quiet when this tick had one command (or message) in all, written eagerly or here
        self._eager = count <= (0 if self._wrote_eagerly else 1)
        self._wrote_eagerly = False
        if not out:
            return
        self._out = []
        if self._transport is not None and not self.closed:
            self._transport.write(out[0] if len(out) == 1 else b"".join(out))

    def publish_soon(self, topic: str, body: bytes) -> asyncio.Future[bytes]:
        """Publish with the other messages for ``topic`` of this event-loop tick, as one MPUB.

        Under load this turns dozens of PUBs (each answered by its own OK, one nsqd write each)
        into one command and one OK; alone in its tick, a message goes out as a plain PUB.
        """
        if self.closed:
            raise self._closed_error()
        batch = self._batches.get(topic)
        if batch is None:
            if self._eager and not self._flush_scheduled and not self._waiters:  # quiet: PUB now
                return self.request(codec.pub(topic, body))
            batch = self._batches[topic] = _Batch(self._loop.create_future())
            if not self._flush_scheduled:
                self._flush_scheduled = True
                self._loop.call_soon(self._flush)
        elif batch.size + len(body) > _BATCH_LIMIT:
            self._seal(topic, self._batches.pop(topic))
            return self.publish_soon(topic, body)
        batch.bodies.append(body)
        batch.size += len(body) + 4
        return batch.future

    def _seal(self, topic: str, batch: _Batch) -> None:
        bodies = batch.bodies
        command = codec.pub(topic, bodies[0]) if len(bodies) == 1 else codec.mpub(topic, bodies)
        if not self._waiters:
            self._waiting_since = self._loop.time()
        self._waiters.append((batch.future, command))
        self._out.append(command)

    def _seal_batches(self) -> None:
        batches, self._batches = self._batches, {}
        for topic, batch in batches.items():
            self._seal(topic, batch)

    def request(self, command: bytes) -> asyncio.Future[bytes]:
        """Send a command that nsqd answers; replies are matched in the order commands were sent."""
        if self.closed:
            raise self._closed_error()
        quiet = not self._waiters  # nothing else awaits an answer: it may go at once (see _write)
        waiter: asyncio.Future[bytes] = self._loop.create_future()
        if quiet:
            self._waiting_since = self._loop.time()
        self._waiters.append((waiter, command))
        self._write(command, urgent=quiet)
        return waiter

    def _send(self, command: bytes) -> None:
        if self.closed:
            raise self._closed_error()
        self._write(command, urgent=False)

    def publish(self, topic: str, body: bytes) -> asyncio.Future[bytes]:
        return self.request(codec.pub(topic, body))

    def publish_batch(self, topic: str, batch: codec.MessageBatch) -> asyncio.Future[bytes]:
        return self.request(batch.command(topic))

    def publish_deferred(self, topic: str, delay_ms: int, body: bytes) -> asyncio.Future[bytes]:
        return self.request(codec.dpub(topic, delay_ms, body))

    def subscribe(self, topic: str, channel: str) -> asyncio.Future[bytes]:
        return self.request(codec.sub(topic, channel))

    def ready(self, count: int) -> None:
        self._send(codec.rdy(count))

    def finish(self, message_id: bytes) -> None:
        self._send(codec.fin(message_id))

    def requeue(self, message_id: bytes, delay_ms: int = 0) -> None:
        self._send(codec.req(message_id, delay_ms))

    def touch(self, message_id: bytes) -> None:
        self._send(codec.touch(message_id))

    def unanswered_for(self, now: float) -> float:
        """Seconds nsqd has left a command unanswered (0 when none waits): a stalled node shows here."""
        if not self._waiters or self.closed:
            return 0.0
        return now - self._waiting_since

    def abort(self, error: Exception) -> None:
        """Drop the connection now, with ``error`` as its reason (unanswered commands are reported lost)."""
        self._abort(error)

    @property
    def max_rdy_count(self) -> int:
        value = self.server_settings.get("max_rdy_count", 2500)
        return value if isinstance(value, int) and value > 0 else 2500

    # -- closing ---------------------------------------------------------------------------------

    async def start_close(self, timeout: float = 5.0) -> None:
        """Ask nsqd to stop sending messages (CLS) and wait for CLOSE_WAIT: in-flight ones stay ours.

        Only once: nsqd answers a second CLS with a fatal E_INVALID and drops the connection.
        """
        if self.closed or self._cls_sent:
            return
        self._cls_sent = True
        try:
            async with asyncio.timeout(timeout):
                await self.request(codec.cls())
        except (TimeoutError, NSQConnectionError, NSQErrorResponse) as exc:
            logger.debug("CLS on %s: %s", self.address, exc)

    async def close(self) -> None:
        """Flush what is written, wait for nsqd's answers to it (bounded), close, wait until gone.

        Waiting for the answers means a publish made just before ``close`` is confirmed, not
        reported as lost (and resent) because the socket closed under it.
        """
        if self._transport is not None and not self.closed:
            self._flush()
            unanswered = [waiter for waiter, _ in self._waiters if not waiter.done()]
            if unanswered:
                await asyncio.wait(unanswered, timeout=self.options.command_timeout)
        if self._transport is not None and not self.closed:
            self._transport.close()
        else:
            self._finish(None)
        try:
            async with asyncio.timeout(self.options.command_timeout):
                await self._closed_event.wait()
        except TimeoutError:
            if self._transport is not None:
                self._transport.abort()
            self._finish(None)

    def _closed_error(self) -> NSQConnectionError:
        if isinstance(self.close_error, NSQConnectionError):
            return self.close_error
        reason = f": {self.close_error}" if self.close_error else ""
        return NSQConnectionError(f"connection to nsqd at {self.address} is closed{reason}")

    def _abort(self, error: Exception | None) -> None:
        if self.close_error is None:
            self.close_error = error
        if self._transport is not None:
            self._transport.abort()
        self._finish(error)

    def _finish(self, error: Exception | None) -> None:
        if self.closed:
            return
        self.closed = True
        if self.close_error is None:
            self.close_error = error
        if self._watchdog is not None:
            self._watchdog.cancel()
        if self._batches:
            self._seal_batches()  # never written: as lost as the commands nsqd did not answer
        waiters, self._waiters = self._waiters, collections.deque()
        unanswered = [(w, c) for w, c in waiters if not w.done()]
        if unanswered and self.on_lost_commands is not None:
            self.on_lost_commands(unanswered)
        else:
            failure = self._closed_error()
            for waiter, _ in unanswered:
                waiter.set_exception(failure)
        self._closed_event.set()
        if self.delegate is not None:
            self.delegate.on_close(self, error)

    def _arm_watchdog(self) -> None:
        timeout = self.options.read_timeout
        if timeout is None or self.closed:
            return

        def check() -> None:
            silent = self._loop.time() - self._last_read
            if silent > timeout:
                self._abort(NSQConnectionError(f"nsqd at {self.address} silent for {silent:.0f}s (no heartbeat)"))
            else:
                self._watchdog = self._loop.call_later(timeout - silent + 0.05, check)

        self._watchdog = self._loop.call_later(timeout, check)
