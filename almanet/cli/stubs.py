"""``almanet stubs PREPATH --output FILE``: a typed module declaring the procedures under PREPATH,
read from the live bus or from a saved AsyncAPI document (``--from``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._common import (
    ConfigOption,
    DiscoveryTimeoutOption,
    Exit,
    NsqdOption,
    check_uri,
    exit_on_errors,
    fail,
    load,
    need_extra,
    positive,
    run,
    stderr_console,
)
from ._usage import hinted, text_argument

DEFAULT_DISCOVERY_TIMEOUT = 1.0


def register(app: typer.Typer) -> None:
    app.command(
        "stubs",
        short_help="Write a typed Python module declaring the procedures under a prepath.",
        help=(
            "Write a Python module that declares every procedure under PREPATH as a typed abstract procedure,"
            " with pydantic models generated from its JSON schemas (datamodel-code-generator), from the live bus"
            " or from a saved AsyncAPI document (--from). Callers import it: `await session.call(stub.greeting,"
            " 'Aidar')` is type-checked and returns a typed result. Needs the contracts extra. Exit codes: 0"
            " written, 2 bad input (nothing under PREPATH, a schema it cannot spell), 3 no live service"
            " answered, 4 broker unavailable."
        ),
        **hinted(),
    )(stubs)


def stubs(
    prepath: Annotated[str, text_argument("PREPATH", "The procedures' prefix, e.g. net.example.")],
    output: Annotated[
        Path, typer.Option("--output", metavar="FILE", help="The module to write (e.g. net_example.py).")
    ],
    source: Annotated[
        Path | None,
        typer.Option(
            "--from", metavar="DOC", help="A saved AsyncAPI document instead of the live bus.", show_default=False
        ),
    ] = None,
    timeout: DiscoveryTimeoutOption = DEFAULT_DISCOVERY_TIMEOUT,
    config: ConfigOption = None,
    nsqd: NsqdOption = None,
) -> None:
    check_uri(prepath)
    positive(timeout, "--timeout")
    need_extra("datamodel_code_generator", "almanet stubs", "contracts")
    if output.suffix != ".py" or not output.stem.isidentifier():
        fail(f"--output {output}: name a Python module file (an identifier ending in .py)", Exit.BAD_INPUT)
    from almanet import __version__
    from almanet._contracts.asyncapi import build_document
    from almanet._contracts.stubs import StubError, generate_stubs

    from ._contracts import described_live, load_document

    if source is not None:
        document, origin = load_document(source), source.name  # a name, not a path: the docstring stays short
    else:
        settings = load(config, nsqd)
        with exit_on_errors():
            services = run(described_live(settings, timeout))
        if not services:
            fail(f"no live service answered discovery within {timeout:g} s (or pass --from DOC)", Exit.TIMEOUT)
        document, origin = build_document(services, title=prepath), "the live bus"
    try:
        code = generate_stubs(document, prepath, source=origin, almanet_version=__version__)
    except (StubError, ValueError) as exc:
        fail(f"cannot write stubs for {prepath}: {exc}", Exit.BAD_INPUT)
    try:  # whole or not at all: a half-written module is worse than none
        output.parent.mkdir(parents=True, exist_ok=True)
        partial = output.with_name(f".{output.name}.partial")
        partial.write_text(code, encoding="utf-8")
        partial.replace(output)
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror}", Exit.BAD_INPUT)
    count = code.count("@interface.abstract_procedure(")
    topics = code.count("\ninterface.produces(") + code.count("\ninterface.consumes(")
    declared = f"{count} procedure(s)" + (f" and {topics} topic(s)" if topics else "")
    stderr_console().print(
        f"wrote {output}: {declared} under {prepath} from {origin};"
        f" call one with `await session.call({output.stem}.<name>, payload)`",
        soft_wrap=True,
    )
