"""``almanet fuzz URI``: call a live procedure with payloads generated from its payload schema.

hypothesis-jsonschema turns the schema into a hypothesis strategy (the kept libraries for this;
writing a generator that honours every JSON Schema keyword is theirs to do well). Hypothesis
runs the search and shrinks each failure to its smallest payload. A failure is an undeclared
error, an internal error, a rejected payload its schema accepts, a timeout, or a result its
return schema refuses. After one is found, the search runs again with that kind set aside, so
one crash does not hide another; the calls are bounded by ``--max-calls`` and ``--max-time``.
"""

from __future__ import annotations

import asyncio
import shlex
import sys
import time
from dataclasses import dataclass
from typing import Annotated, Any

import typer

from ._common import (
    ConfigOption,
    Exit,
    NsqdOption,
    check_uri,
    exit_on_errors,
    fail,
    load,
    need_extra,
    open_session,
    positive,
    stderr_console,
)
from ._complete import UriArgument
from ._output import Output, OutputOption, set_output, wants_json
from ._usage import hinted


def register(app: typer.Typer) -> None:
    app.command(
        "fuzz",
        short_help="Call a live procedure with payloads generated from its schema; report failures.",
        help=(
            "Call a live procedure with payloads generated from its payload JSON schema (hypothesis and"
            " hypothesis-jsonschema) and report every kind of failure, each shrunk to its smallest payload and"
            " printed as an `almanet call` command: an undeclared or internal error, a payload the schema accepts"
            " but the procedure rejects, a timeout, a result its return schema refuses. Declared errors"
            " (raises=) are answers, not failures. Calls go to the configured nsqd only, bounded by --max-calls"
            " and --max-time. Needs the contracts extra. Exit codes: 0 nothing failed, 2 bad input, 3 no live"
            " service serves URI, 4 broker unavailable, 11 failures found."
        ),
        **hinted(),
    )(fuzz)


@dataclass(frozen=True, slots=True)
class Failure:
    kind: str  # what failed; one search per kind
    detail: str
    payload: Any


class _Found(Exception):
    """Raised inside the hypothesis test: this payload fails in a new way."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.kind)
        self.failure = failure


class _OutOfBudget(BaseException):
    """Out of calls or time: a BaseException, so hypothesis stops instead of shrinking it."""


class _Prober:
    """Calls the procedure once per payload on one loop; classifies the outcome."""

    def __init__(self, session: Any, loop: asyncio.AbstractEventLoop, uri: str, description: dict[str, Any]) -> None:
        import jsonschema
        import jsonschema.validators

        self.session, self.loop, self.uri = session, loop, uri
        self.declared = {e.get("name") for e in description.get("errors") or [] if isinstance(e, dict)}
        schema = description.get("return_json_schema") or {}
        self.result_check = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)(schema)
        self.calls = 0
        self.skipped = 0
        self.declared_errors = 0  # answers too: counted, not failures

    def outcome(self, payload: Any, timeout: float) -> Failure | None:
        from almanet._wire.errors import invalid_argument, rpc_error

        self.calls += 1
        try:
            reply = self.loop.run_until_complete(self.session.call(self.uri, payload, timeout=timeout))
        except invalid_argument:  # refused on this side (too large for nsqd, say): never sent
            self.skipped += 1
            return None
        except TimeoutError as exc:
            reason = getattr(exc, "reason", None) or "reason unknown"
            return Failure(f"timeout ({reason})", str(exc), payload)
        except rpc_error as error:
            if error.name in self.declared:
                self.declared_errors += 1
                return None
            if error.name == "InternalError":
                return Failure("internal error", str(error), payload)
            if error.name == "ValidationError":
                if str(error.args[0] if error.args else "").startswith("result"):
                    return Failure("result does not match the return schema (the service's check)", str(error), payload)
                return Failure("rejected a payload its schema accepts", str(error), payload)
            return Failure(f"undeclared error {error.name}", str(error), payload)
        problems = sorted(self.result_check.iter_errors(reply.payload), key=lambda e: list(e.path))
        if problems:
            where = "/".join(str(p) for p in problems[0].path) or "(the result)"
            return Failure("result does not match the return schema", f"{where}: {problems[0].message}", payload)
        return None


def _search(prober: _Prober, strategy: Any, args: Any, known: set[str], deadline: float) -> Failure | None:
    """One hypothesis run; the smallest payload of the first new kind of failure, or None."""
    import orjson
    from hypothesis import HealthCheck, Phase, Verbosity, assume, given, seed, settings

    def probe(payload: Any) -> None:
        if prober.calls >= args.max_calls or time.monotonic() > deadline:
            raise _OutOfBudget
        try:
            orjson.dumps(payload)
        except TypeError:  # an integer beyond 64 bits: JSON allows it, nsq payloads here cannot carry it
            assume(False)
        failure = prober.outcome(payload, args.timeout)
        if failure is not None and failure.kind not in known:
            raise _Found(failure)

    decorate: Any = given(strategy)  # typed for keyword strategies only
    generated = decorate(probe)
    test: Any = settings(
        max_examples=args.examples,
        deadline=None,
        database=None,
        derandomize=args.seed is None and args.derandomize,
        verbosity=Verbosity.quiet,
        phases=[Phase.generate, Phase.shrink],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
        report_multiple_bugs=False,
    )(generated)
    if args.seed is not None:
        test = seed(args.seed)(test)
    try:
        test()
    except _Found as found:
        return found.failure
    return None


@dataclass(frozen=True, slots=True)
class _Args:
    examples: int
    timeout: float
    max_calls: int
    max_time: float
    seed: int | None
    derandomize: bool
    max_failures: int


def _run(settings: Any, uri: str, args: _Args, progress: Any) -> tuple[list[Failure], _Prober, bool]:
    from hypothesis_jsonschema import from_schema

    from .describe import NotServed, _describe

    loop = asyncio.new_event_loop()
    try:
        try:
            descriptions = loop.run_until_complete(_describe(settings, uri, min(args.timeout, 2.0)))
        except NotServed:
            fail(f"no live service serves {uri} (almanet services lists what does)", Exit.TIMEOUT, label="not found")
        description = descriptions[0]
        schema = description.get("payload_json_schema") or {}
        try:
            strategy = from_schema(schema)
        except Exception as exc:  # hypothesis-jsonschema says which keyword it cannot generate for
            fail(f"cannot generate payloads for {uri}: {type(exc).__name__}: {exc}", Exit.BAD_INPUT)
        session = loop.run_until_complete(open_session(settings))
        loop.run_until_complete(session.join())
        try:
            prober = _Prober(session, loop, uri, description)
            found: list[Failure] = []
            deadline = time.monotonic() + args.max_time
            exhausted = False
            while len(found) < args.max_failures:
                try:
                    failure = _search(prober, strategy, args, {f.kind for f in found}, deadline)
                except _OutOfBudget:
                    exhausted = True
                    break
                if failure is None:
                    break
                found.append(failure)
                progress(f"{prober.calls} calls, {len(found)} failure(s): the last {failure.kind}")
        finally:
            loop.run_until_complete(session.leave())
        return found, prober, exhausted
    finally:
        loop.close()


def _command(uri: str, payload: Any) -> str:
    import orjson

    return f"almanet call {uri} {shlex.quote(orjson.dumps(payload).decode())}"


def fuzz(
    uri: UriArgument,
    examples: Annotated[
        int, typer.Option("--examples", "-n", metavar="N", min=1, max=100_000, help="Payloads to try per search.")
    ] = 100,
    timeout: Annotated[float, typer.Option("--timeout", "-t", metavar="SECONDS", help="Seconds per call.")] = 5.0,
    max_calls: Annotated[
        int,
        typer.Option("--max-calls", metavar="N", min=1, help="At most this many calls in all (shrinking included)."),
    ] = 1000,
    max_time: Annotated[float, typer.Option("--max-time", metavar="SECONDS", help="Stop after this long.")] = 120.0,
    seed: Annotated[
        int | None, typer.Option("--seed", metavar="N", help="Hypothesis's seed, to repeat a run.", show_default=False)
    ] = None,
    max_failures: Annotated[
        int, typer.Option("--max-failures", metavar="N", min=1, max=50, help="Stop after this many kinds of failure.")
    ] = 5,
    output: OutputOption = Output.auto,
    config: ConfigOption = None,
    nsqd: NsqdOption = None,
) -> None:
    set_output(output)
    check_uri(uri)
    positive(timeout, "--timeout")
    positive(max_time, "--max-time")
    need_extra("hypothesis_jsonschema", "almanet fuzz", "contracts")
    settings = load(config, nsqd)
    args = _Args(examples, timeout, max_calls, max_time, seed, True, max_failures)
    console = stderr_console()
    status = console.status(f"fuzzing {uri} ...") if console.is_terminal else None

    def progress(text: str) -> None:
        if status is not None:
            status.update(f"fuzzing {uri}: {text}")

    with exit_on_errors(uri=uri):
        if status is not None:
            with status:
                found, prober, exhausted = _run(settings, uri, args, progress)
        else:
            found, prober, exhausted = _run(settings, uri, args, progress)
    if wants_json():
        import orjson

        record = {
            "uri": uri,
            "calls": prober.calls,
            "skipped": prober.skipped,
            "declared_errors": prober.declared_errors,
            "budget_exhausted": exhausted,
            "failures": [
                {"kind": f.kind, "detail": f.detail, "payload": f.payload, "command": _command(uri, f.payload)}
                for f in found
            ],
        }
        sys.stdout.write(orjson.dumps(record).decode() + "\n")
    else:
        from rich.console import Console
        from rich.markup import escape

        out = Console(highlight=False)
        for number, failure in enumerate(found, 1):
            out.print(
                f"[bold red]failure {number}:[/bold red] {escape(failure.kind)}: {escape(failure.detail)}",
                soft_wrap=True,
            )
            out.print(f"  {escape(_command(uri, failure.payload))}", soft_wrap=True)
        stop = " (stopped: --max-calls or --max-time reached)" if exhausted else ""
        verdict = f"{len(found)} kind(s) of failure" if found else "no failure"
        declared = f" ({prober.declared_errors} answered with a declared error)" if prober.declared_errors else ""
        out.print(f"{uri}: {verdict} in {prober.calls} calls{declared}{stop}", soft_wrap=True)
    if found:
        raise typer.Exit(int(Exit.FUZZ_FAILED))
