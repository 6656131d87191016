"""``almanet serve MODULE:ATTR ...``: import services and serve them until SIGINT/SIGTERM."""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Annotated, Any

import typer

from ._common import ConfigOption, Exit, NsqdOption, fail, load
from ._output import Output, OutputOption, set_output
from ._usage import hinted, text_argument


def register(app: typer.Typer) -> None:
    app.command(
        "serve",
        short_help="Serve services (MODULE:ATTR) until Ctrl-C/SIGTERM, then drain.",
        help="Serve the procedures of one or more services (MODULE:ATTR, a service or a list of them)"
        " until Ctrl-C or SIGTERM, then drain: in-flight invocations finish before leaving. -o json: what is"
        " served as one JSON object on stdout (and errors as JSON on stderr).",
        **hinted(),
    )(serve)


def resolve_target(target: str) -> list[Any]:
    """``module:attr`` → the services it names; every failure names the fix, exit 2."""
    from almanet._serving.service import Service

    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        fail(f"target {target!r} is not MODULE:ATTR (e.g. services.example:example_service)", Exit.BAD_INPUT)
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            fail(
                f"cannot import module {module_name!r}: no module named {exc.name!r}"
                " (run from the folder that contains it, or install it)",
                Exit.BAD_INPUT,
            )
        fail(
            f"importing {module_name!r} failed: it imports {exc.name!r}, which is not installed"
            " (install it in this environment)",
            Exit.BAD_INPUT,
        )
    except Exception as exc:
        fail(f"importing {module_name!r} failed: {type(exc).__name__}: {exc}", Exit.BAD_INPUT)
    value: Any = module
    for part in attr.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            names = sorted(n for n, v in vars(module).items() if isinstance(v, Service))
            hint = f"; services there: {', '.join(names)}" if names else "; it defines no service"
            fail(f"module {module_name!r} has no attribute {attr!r}{hint}", Exit.BAD_INPUT)
    services = list(value) if isinstance(value, list | tuple) else [value]
    for item in services:
        if not isinstance(item, Service):
            fail(f"{target} is a {type(item).__name__}, not a service made by almanet.new_service()", Exit.BAD_INPUT)
        missing = item.unimplemented()
        if missing:
            fail(
                f"{target}: abstract procedures without an implementation: {', '.join(a.uri for a in missing)}"
                f" — serve the module that implements them (`almanet serve IMPL_MODULE:{attr}`, where"
                " IMPL_MODULE imports this service and holds the `@...implements` functions)",
                Exit.BAD_INPUT,
            )
    return services


def _panel(services: list[Any], addresses: tuple[str, ...], lookupd: tuple[str, ...], as_json: bool) -> None:
    if as_json:
        from ._common import print_json

        procedures = [
            {"uri": p.uri, "channel": p.channel, "description": p.description.split("\n")[0]}
            for service in services
            for p in service.procedures.values()
        ]
        print_json({"serving": procedures, "nsqd": list(addresses), "lookupd": list(lookupd)})
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    where = ", ".join(addresses)
    if lookupd:
        found = f"the nsqd registered with nsqlookupd {', '.join(lookupd)}"
        where = f"{where} and {found}" if where else found
    table = Table(title=f"almanet serving on {where}", title_justify="left")
    table.add_column("procedure")
    table.add_column("channel")
    table.add_column("description", overflow="fold")
    for service in services:
        for procedure in service.procedures.values():
            table.add_row(procedure.uri, procedure.channel, Text(procedure.description.split("\n")[0]))
    Console(stderr=True).print(table)


def serve(
    targets: Annotated[
        list[str], text_argument("MODULE:ATTR...", "MODULE:ATTR of a service (or of a list of services).")
    ],
    log_level: Annotated[
        str, typer.Option("--log-level", "-l", metavar="LEVEL", help="debug, info, warning or error.")
    ] = "info",
    log_format: Annotated[
        str | None,
        typer.Option(
            "--log-format",
            metavar="text|json",
            help="json: one JSON object per line (default: log.format, text).",
            show_default=False,
        ),
    ] = None,
    http: Annotated[
        str | None,
        typer.Option(
            "--http",
            metavar="HOST:PORT",
            help="Serve /healthz, /readyz and /metrics there (default: serve.http, off).",
            show_default=False,
        ),
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", "-w", metavar="N", help="Run N worker processes under a supervisor.")
    ] = 1,
    reload: Annotated[
        bool, typer.Option("--reload", help="Restart when a watched .py file changes (development).")
    ] = False,
    output: OutputOption = Output.auto,
    config: ConfigOption = None,
    nsqd: NsqdOption = None,
) -> None:
    set_output(output)
    _check_unique(targets)
    level = logging.getLevelName(log_level.upper())
    if not isinstance(level, int):
        fail(f"--log-level {log_level!r} is not one of debug, info, warning, error", Exit.BAD_INPUT)
    if log_format is not None and log_format not in ("text", "json"):
        fail(f"--log-format {log_format!r} is not text or json", Exit.BAD_INPUT)
    if workers < 1:
        fail(f"--workers {workers} must be 1 or more", Exit.BAD_INPUT)
    settings = load(config, nsqd)
    fmt = log_format or settings.log_format
    from almanet._serving.logs import configure_logging
    from almanet._serving.workers import worker_fd

    configure_logging(level, fmt)
    address = _http_address(http, settings.serve_http)
    if address is not None or workers > 1 or reload:
        _check_extras(address, reload)
    if workers > 1 or reload:
        from almanet._serving.workers import supervise, watched_paths

        command = [sys.executable, "-m", "almanet.cli", "serve", *targets, "-l", log_level, "--log-format", fmt]
        command += ["-o", output.value] + (["-c", str(config)] if config is not None else [])
        command += [arg for address_ in nsqd or () for arg in ("--nsqd", address_)]
        watch = watched_paths(targets) if reload else []
        if reload:
            logging.getLogger("almanet").info("reload: watching %s", ", ".join(watch))
        raise typer.Exit(supervise(command, workers, address, watch))
    report_fd, worker_metrics = worker_fd()
    services = [s for target in targets for s in resolve_target(target)]
    if not any(s.procedures for s in services):
        fail("the services have no procedures to serve", Exit.BAD_INPUT)
    from almanet._settings.configure import serve_addresses

    from ._common import exit_on_errors, session_options

    options = session_options(settings)
    addresses = serve_addresses(settings, options)
    lookupd = options.get("lookupd", services[0].lookupd)
    shown = addresses if addresses is not None else services[0].addresses
    from almanet._serving.process import make_ops, serve_until_signal

    if report_fd is not None:  # a worker: its supervisor serves --http
        ops = make_ops(None, report_fd, metrics=worker_metrics)
    else:
        ops = make_ops(address)

    def started() -> None:  # only once joined and subscribed: "serving" is then true
        if fmt == "text" and report_fd is None:
            _panel(services, shown or (() if lookupd else ("localhost:4150",)), lookupd, output is Output.json)
        elif output is Output.json:
            _panel(services, shown or (), lookupd, True)
        logging.getLogger("almanet").info("ready")

    with exit_on_errors():
        code = serve_until_signal(services, addresses, started, ops=ops, **options)
    if code:
        raise typer.Exit(code)


def _check_unique(targets: list[str]) -> None:
    """The same target twice would serve its procedures twice over: a usage error, before any import."""
    twice = sorted({t for t in targets if targets.count(t) > 1})
    if twice:
        once = " ".join(dict.fromkeys(targets))
        fail(f"{', '.join(twice)} given more than once; name each service once: almanet serve {once}", Exit.BAD_INPUT)


def _http_address(given: str | None, configured: str | None) -> str | None:
    """--http (checked here, exit 2) or serve.http (checked with the settings)."""
    if given is None:
        return configured
    from almanet._nsq.address import Address, split_address

    try:
        return str(Address(*split_address(given)))
    except ValueError as exc:
        fail(f"--http {given!r}: {exc} (e.g. --http 127.0.0.1:9100)", Exit.BAD_INPUT)


def _check_extras(address: str | None, reload: bool) -> None:
    """--http needs prometheus-client, --reload watchfiles: both in the ``ops`` extra (exit 2 without)."""
    import importlib

    needed = [("prometheus_client", "--http")] if address is not None else []
    needed += [("watchfiles", "--reload")] if reload else []
    for module, option in needed:
        try:
            importlib.import_module(module)
        except ImportError:
            fail(f"{option} needs {module}, which is not installed: pip install 'almanet[ops]'", Exit.BAD_INPUT)
