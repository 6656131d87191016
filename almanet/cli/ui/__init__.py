"""``almanet ui``: a local web page with the live catalog of the bus, "try it" forms and live topics.

Only typer and the shared CLI helpers at import time: aiohttp (the ``ui`` extra) and the server
are imported when the command runs, so no other command pays for them.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from .._common import ConfigOption, Exit, NsqdOption, exit_on_errors, fail, load, open_session, run, stderr_console
from .._output import Output, OutputOption, error_json, json_errors, set_output, wants_json

INSTALL = "pip install 'almanet[ui]'"


def register(app: typer.Typer) -> None:
    app.command(
        "ui",
        short_help="Serve a web page: live services, procedures and topics; try procedures.",
        help=(
            "Serve a local web page with the live services and their instances, each procedure's description,"
            " JSON schemas and queue health on every nsqd, RPC topics nobody serves, a 'try it' form per"
            " procedure, and publish/watch for topics. Prints the page's address with a per-run token; requests"
            " without it are refused. Binds to loopback unless --host says otherwise. Needs the ui extra"
            " (pip install 'almanet\\[ui]'). Exit codes: 0 stopped by Ctrl-C/SIGTERM, 2 bad input or missing extra,"
            " 4 broker unavailable."
        ),
    )(ui)


def is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def warn(message: str) -> None:
    """A warning on stderr: one styled line, or one JSON object with ``-o json``."""
    if json_errors():
        error_json("warning", message, int(Exit.OK))
        return
    from rich.markup import escape

    stderr_console().print(f"[bold yellow]warning:[/bold yellow] {escape(message)}", soft_wrap=True)


def page_url(host: str, port: int, token: str) -> str:
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"http://{shown}:{port}/?token={token}"


def _announce(settings: Any, host: str, port: int, token: str, read_only: bool) -> None:
    """The page's address on stdout (a JSON record when piped or with -o json), what it shows on stderr."""
    import sys

    url = page_url(host, port, token)
    if wants_json():
        import orjson

        record = {"url": url, "host": host, "port": port, "token": token, "read_only": read_only}
        sys.stdout.write(orjson.dumps(record).decode() + "\n")
    else:
        sys.stdout.write(url + "\n")
    sys.stdout.flush()
    if json_errors():  # with -o json, the record says it all
        return
    where = [f"nsqd {', '.join(settings.nsqd)}"] if settings.nsqd else []
    if settings.lookupd_http:
        where.append(f"the nsqd of nsqlookupd {', '.join(settings.lookupd_http)}")
    mode = " (read-only)" if read_only else ""
    stderr_console().print(
        f"almanet ui{mode} for {' and '.join(where)}: open the address above; Ctrl-C stops it",
        soft_wrap=True,
        markup=False,
    )


async def _serve(settings: Any, host: str, port: int, read_only: bool, refresh: float) -> None:
    """Serve until SIGINT/SIGTERM; the session and every live view close on the way out."""
    import asyncio
    import secrets
    import signal

    from aiohttp import web

    from .server import UiState, make_app

    token = secrets.token_urlsafe(24)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    session = await open_session(settings)
    async with session:
        state = UiState(session, settings, token, read_only=read_only, refresh=refresh)
        # shutdown_timeout: calls still waiting for a reply when Ctrl-C comes are cut after 2 s
        runner = web.AppRunner(make_app(state), handle_signals=False, access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        # before the address is out: whoever reads it may signal at once
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            try:
                await web.TCPSite(runner, host, port).start()
            except OSError as exc:
                fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another --port", Exit.BAD_INPUT)
            _announce(settings, host, runner.addresses[0][1], token, read_only)
            await stop.wait()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            await runner.cleanup()


def ui(
    port: Annotated[
        int, typer.Option("--port", "-p", metavar="PORT", help="TCP port (0: any free one).", min=0, max=65535)
    ] = 8765,
    host: Annotated[
        str, typer.Option("--host", metavar="HOST", help="Address to listen on; anything but loopback is warned about.")
    ] = "127.0.0.1",
    read_only: Annotated[
        bool, typer.Option("--read-only", help="No 'try it' and no publishing: the page only looks.")
    ] = False,
    refresh: Annotated[
        float,
        typer.Option(
            "--refresh", metavar="SECONDS", help="Seconds between the page's catalog refreshes.", min=0.5, max=300
        ),
    ] = 3.0,
    output: OutputOption = Output.auto,
    config: ConfigOption = None,
    nsqd: NsqdOption = None,
) -> None:
    set_output(output)
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        fail(f"almanet ui needs the ui extra (its web server, aiohttp): {INSTALL}", Exit.BAD_INPUT)
    settings = load(config, nsqd)
    host = host.strip("[]")  # "[::1]" as in a URL: the socket wants ::1
    if not is_loopback(host):
        can = "call procedures and publish (--read-only stops that)"
        if read_only:
            can = "see the catalog and watch topics"
        warn(
            f"listening on {host}, not loopback: whoever reaches it with the printed token can {can};"
            " plain HTTP, no TLS"
        )
    with exit_on_errors():
        run(_serve(settings, host, port, read_only, refresh))
