"""The README's examples as the tests run them: every fenced Python block (found by pytest-examples)
and every ``console`` command with its shown output, nothing listed by hand, so a block added
later (the typed calls' section, say) is collected and run like the others.

A Python block is made runnable the way a reader reads it: the names it uses without defining
come from what the README defined before it (``CONTEXT``: ``almanet``, ``asyncio``, the Quick
start's ``example_service`` and ``denied``, importable from ``services/example.py``); a block
with top-level ``await``/``async with`` runs inside ``almanet.run()``; ``localhost:4150`` and
``localhost:4151`` become the test nsqd's TCP and HTTP addresses. A block that adds procedures
to an imported service gets them served and called (those taking no payload), so their bodies
run too.
"""

from __future__ import annotations

import ast
import builtins
import dataclasses
import re
import textwrap

from pytest_examples import CodeExample, find_examples

from tests.support.nsqproc import REPO_ROOT

README = REPO_ROOT / "README.md"

# what a reader has from earlier in the README, by name: the import that gives it
CONTEXT = {
    "almanet": "import almanet",
    "asyncio": "import asyncio",
    "example_service": "from services.example import example_service",
    "denied": "from services.example import denied",
}
README_TCP, README_HTTP = "localhost:4150", "localhost:4151"
TEST_MARK = "<!-- the README's test: tests/testing/test_user_project.py runs this block as it is -->"


def python_blocks() -> list[CodeExample]:
    return [example for example in find_examples(README) if example.prefix.split()[0] in ("py", "python")]


def block_id(example: CodeExample) -> str:
    first = next((line for line in example.source.splitlines() if line.strip() and not line.startswith("#")), "")
    words = re.sub(r"[^A-Za-z0-9_.]+", "-", first).strip("-")[:40]
    return f"line{example.start_line}-{words}"


def is_the_readme_test(example: CodeExample) -> bool:
    """The block under the plugin section's mark: tests/testing/test_user_project.py runs it with pytest."""
    before = README.read_text(encoding="utf-8")[: example.start_index]
    return before.rstrip().rsplit("\n", 2)[-2].strip() == TEST_MARK


def _has_top_level_await(source: str) -> bool:
    try:
        compile(source, "<readme>", "exec")
    except SyntaxError:
        compile(source, "<readme>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)  # still bad: raises
        return True
    return False


def free_names(source: str) -> list[str]:
    """Names the block loads but never binds (nor imports), builtins aside, in order of use."""
    tree = ast.parse(source)
    bound: set[str] = set()
    loaded: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (bound.add if isinstance(node.ctx, ast.Store | ast.Del) else loaded.append)(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
            if not isinstance(node, ast.ClassDef):
                args = node.args
                for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
                    if arg is not None:
                        bound.add(arg.arg)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    return list(dict.fromkeys(n for n in loaded if n not in bound and not hasattr(builtins, n)))


@dataclasses.dataclass
class Script:
    source: str
    uses: list[str]  # names it takes from earlier in the README
    missing: list[str]  # names nothing earlier defines: the block cannot run as the README shows it


def definitions(source: str) -> dict[str, str]:
    """What a block defines at its top level (imports, functions, classes, assignments), by name:
    the source of each definition, without what runs (calls, the ``__main__`` guard)."""
    found: dict[str, str] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                found[(alias.asname or alias.name).split(".")[0]] = ast.unparse(node)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            found[node.name] = ast.get_source_segment(source, node, padded=False) or ast.unparse(node)
            for decorator in node.decorator_list:  # keep the decorator line with its function
                segment = ast.get_source_segment(source, decorator) or ast.unparse(decorator)
                found[node.name] = f"@{segment}\n{found[node.name]}"
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    found[target.id] = ast.unparse(node)
    return found


def runnable(example: CodeExample, tcp: str, http: str, earlier: list[CodeExample] | None = None) -> Script:
    """The block as a script: what it uses from earlier (``CONTEXT``, else the nearest earlier
    block that defines the name), the async wrapper when needed, the test's addresses."""
    source = example.source.replace(README_TCP, tcp).replace(README_HTTP, http)
    names = free_names(source)
    preamble: list[str] = []
    missing: list[str] = []
    for name in names:
        if name in CONTEXT:
            preamble.append(CONTEXT[name])
            continue
        for previous in reversed(earlier or []):
            defined = definitions(previous.source.replace(README_TCP, tcp).replace(README_HTTP, http))
            if name in defined:
                needs = [n for n in free_names(defined[name]) if n in CONTEXT]
                preamble += [CONTEXT[n] for n in needs] + [defined[name]]
                break
        else:
            missing.append(name)
    preamble = list(dict.fromkeys(preamble))
    awaits = _has_top_level_await(source)
    lines = [*preamble, "import almanet as _readme_almanet"]
    # services the block uses without making them: procedures it adds are served and called after it
    lines.append(f"_readme_before = _readme_services({names!r}, globals())")
    if awaits:
        lines += [
            "async def _readme_block() -> None:",
            textwrap.indent(source, "    "),
            "_readme_almanet.run(_readme_block())",
        ]
    else:
        lines.append(source)
    lines.append(_CALL_NEW_PROCEDURES.format(tcp=tcp))
    script = _SERVICES_HELPER + "\n".join(lines) + "\n"
    return Script(script, [n for n in names if n not in {"almanet", "asyncio"}], missing)


_SERVICES_HELPER = """\
def _readme_services(names, scope):
    import almanet
    return {id(v): (v, set(v.procedures)) for n in names if isinstance(v := scope.get(n), almanet.Service)}
"""

# Served on the test nsqd, each procedure the block added that takes no payload (its payload
# schema admits null) is called once, so its body runs; the calls are printed as ``readme: ...``.
_CALL_NEW_PROCEDURES = """
def _readme_takes_none(procedure) -> bool:
    schema = procedure.signature.payload.schema()
    return schema in ({{}}, {{"type": "null"}}) or {{"type": "null"}} in schema.get("anyOf", [])
async def _readme_call_new() -> None:
    for service, before in _readme_before.values():
        new = [p for key, p in service.procedures.items() if key not in before and _readme_takes_none(p)]
        if not new:
            continue
        await service.start(("{tcp}",))
        try:
            async with _readme_almanet.new_session("{tcp}") as session:
                for procedure in new:
                    result = await session.call(procedure.uri, None, timeout=10)
                    print(f"readme: {{procedure.uri}} -> {{result.payload!r}}")
        finally:
            await service.stop()
if _readme_before:
    _readme_almanet.run(_readme_call_new())
"""


# ---------------------------------------------------------------------------------- console


@dataclasses.dataclass
class Command:
    line: int  # README line of the `$ ` prompt
    command: str  # without the prompt and without a trailing `# comment`
    comment: str
    output: list[str]  # the lines shown under it, up to the next prompt

    @property
    def exit_code(self) -> int | None:
        """What the README says it exits with (`# exit N`); None when it says nothing (an `echo $?`
        after it, if any, shows the code as output)."""
        found = re.search(r"\bexit (\d+)\b", self.comment)
        return int(found.group(1)) if found else None


def console_blocks() -> list[list[Command]]:
    text = README.read_text(encoding="utf-8")
    blocks = []
    for match in re.finditer(r"^( *)```console\n(.*?)^\1```", text, re.M | re.S):
        first = text[: match.start(2)].count("\n") + 1
        commands: list[Command] = []
        for offset, raw in enumerate(textwrap.dedent(match.group(2)).splitlines()):
            if raw.startswith("$ "):
                command, comment = split_comment(raw[2:])
                commands.append(Command(first + offset, command, comment, []))
            elif commands:
                commands[-1].output.append(raw)
        blocks.append(commands)
    return blocks


def split_comment(text: str) -> tuple[str, str]:
    """``cmd args   # comment`` → (``cmd args``, ``comment``), a ``#`` inside quotes kept."""
    quote = ""
    for index, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and index > 0 and text[index - 1] == " ":
            return text[:index].rstrip(), text[index + 1 :].strip()
    return text.rstrip(), ""


# Commands the suite cannot run to an end from a clean machine state, by their first words: they
# serve or watch until stopped, build with Go, install, open a browser, or talk to something the
# README does not start (its own programs run in the other tests named in test_readme.py).
NOT_RUN = (
    "almanet serve",
    "almanet ui",
    "almanet testing install-nsqd",
    "almanet completion",
    "eval ",
    "pip ",
    "export ",
    "opentelemetry-instrument",
    "curl ",
    "nsq_tail",
    "HOME=",
)
# Output that differs run by run: ids, timestamps, timings, pids and uptimes, tokens. A command
# showing any is still run (its exit code checked); its text is not compared.
VOLATILE = re.compile(
    r"[0-9a-f]{16,}"  # call, session and message ids
    r"|\d{4}-\d\d-\d\d[ T]\d\d:\d\d"  # timestamps
    r"|\b\d+\.\d+ ms\b|\b\d{1,2}m\d\ds\b"  # timings, uptimes
    r"|\"timestamp\":|token="
    r"|\b\d+\.\d+ s between\b"
)


# What some examples were run against that the README describes in prose but does not give
# (a slow demo service, a config file, a second nsqd, a backlog made by such a call): a command
# or output naming one of these cannot be reproduced from the README alone.
# net.contracts.*, shop-v1.json: tests/assets/contracts_v*.py, which tests/contracts serve and check
NOT_GIVEN = ("net.ux.", "queue.toml", "bad.toml", "localhost:4160", "net.example.old", "net.contracts.", "shop-v1.json")


def why_not_checked(command: Command) -> str | None:
    """Why the command's shown output is not checked against a run, or None when it is."""
    text = command.command
    shown = "\n".join(command.output)
    if text.endswith("&") or "<TAB>" in text:
        return "runs in the background or is a completion key"
    if any(text.startswith(prefix) for prefix in NOT_RUN):
        return "serves, installs or needs what the README does not start"
    if re.search(r"almanet consume\b", text):
        return "prints what other terminals produce while it waits"
    if re.fullmatch(r"almanet config( \|.*)?", text):
        return "shows the settings of the machine it runs on"
    if any(name in text or name in shown for name in NOT_GIVEN):
        return "runs against something the README describes but does not give"
    if any(VOLATILE.search(line) for line in command.output):
        return "its output differs run by run (ids, times, pids)"
    return None


def normalise(text: str, tcp: str, http: str) -> str:
    """The test's addresses written back as the README's, trailing blanks gone."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)  # bold and dim: NO_COLOR leaves those on
    text = text.replace(tcp, README_TCP).replace(http, README_HTTP)
    return "\n".join(line.rstrip() for line in text.splitlines())
