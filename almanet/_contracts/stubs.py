"""A Python module that declares the procedures under a prepath: typed abstract procedures.

The models come from datamodel-code-generator (the kept JSON Schema → pydantic generator); the
procedure signatures and the error classes are ours, because they are almanet's shapes: an
``AbstractProcedure`` per procedure, so ``session.call(stub.greeting, "Aidar")`` is type-checked
on its payload and returns a typed result. Plain payloads (``str``, ``list[int]``, ...) stay plain
types rather than generated root models, so a caller passes the value itself.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Mapping
from typing import Any

from .compat import Contract, TopicContract, contracts_of, topics_of

__all__ = ["StubError", "generate_stubs"]

_REF = "#/components/schemas/"
_PLAIN = {"string": "str", "integer": "int", "number": "float", "boolean": "bool", "null": "None"}


class StubError(ValueError):
    """Nothing to generate, or a schema the generator cannot turn into Python."""


def _literal(value: Any) -> str:
    """A JSON scalar as Python source (strings double-quoted, as ruff format writes them)."""
    if isinstance(value, str):
        return _quoted(value)
    if value is None or isinstance(value, bool | int | float):
        return repr(value)
    raise StubError(f"a default or constant {value!r} is not a JSON scalar; the stub cannot spell it")


def _docstring(text: str) -> str:
    """A procedure's description as a docstring indented once, its lines wrapped to 84 columns."""
    import textwrap

    text = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    lines = [wrapped for line in text.splitlines() for wrapped in (textwrap.wrap(line, 80) or [""])]
    if len(lines) == 1 and len(lines[0]) <= 78:
        return f'"""{lines[0]}"""'
    return '"""' + "\n    ".join(lines) + '\n    """'


def _identifier(text: str, *, camel: bool) -> str:
    words = [w for w in re.split(r"[^0-9a-zA-Z]+", text) if w]
    if camel:
        name = "".join(w[:1].upper() + w[1:] for w in words) or "Model"
    else:
        name = "_".join(words) or "procedure"
    if name[0].isdigit():
        name = "_" + name
    if keyword.iskeyword(name):
        name += "_"
    return name


def _is_class(schema: Mapping[str, Any]) -> bool:
    """Generated as a pydantic model: an object with named fields, or an enumeration."""
    return (schema.get("type") == "object" and bool(schema.get("properties"))) or "enum" in schema


class _Namer:
    """A class name per component schema: its title when that is a free identifier, else from its key."""

    def __init__(self, components: Mapping[str, Any]) -> None:
        self.components = components
        self.names: dict[str, str] = {}
        self._taken: set[str] = set()

    def name(self, key: str) -> str:
        if key not in self.names:
            title = self.components[key].get("title")
            wanted = title if isinstance(title, str) and title.isidentifier() else _identifier(key, camel=True)
            candidate, n = wanted, 1
            while candidate in self._taken or keyword.iskeyword(candidate):
                n += 1
                candidate = f"{wanted}{n}"
            self._taken.add(candidate)
            self.names[key] = candidate
        return self.names[key]


class _Annotations:
    """Python annotations for schemas; class-like components are collected for generation."""

    def __init__(self, components: Mapping[str, Any]) -> None:
        self.components = components
        self.namer = _Namer(components)
        self.needed: dict[str, str] = {}  # component key -> class name, for datamodel-code-generator
        self.uses_any = False
        self.uses_literal = False
        # one class per shape: a topic's message and a procedure's result may be one model
        # described twice (the document keeps a schema per use)
        self._same_as: dict[str, str] = {}

    def of(self, schema: Any, depth: int = 0) -> str:
        if depth > 16 or not isinstance(schema, Mapping) or not schema:
            self.uses_any = True
            return "Any"
        ref = schema.get("$ref")
        if isinstance(ref, str):
            if not ref.startswith(_REF) or ref[len(_REF) :] not in self.components:
                raise StubError(f"$ref {ref!r} does not resolve in the document's components")
            key = self._same_as.setdefault(_shape(self.components[ref[len(_REF) :]]), ref[len(_REF) :])
            target = self.components[key]
            if _is_class(target):
                self._need(key)
                return self.namer.name(key)
            return self.of(target, depth + 1)
        if _is_class(schema) and "enum" in schema:
            self.uses_literal = True
            return "Literal[" + ", ".join(_literal(v) for v in schema["enum"]) + "]"
        if "const" in schema:
            self.uses_literal = True
            return f"Literal[{_literal(schema['const'])}]"
        for word in ("anyOf", "oneOf"):
            if isinstance(schema.get(word), list):
                return " | ".join(dict.fromkeys(self.of(s, depth + 1) for s in schema[word]))
        kind = schema.get("type")
        if isinstance(kind, list):
            return " | ".join(dict.fromkeys(self.of({**schema, "type": k}, depth + 1) for k in kind))
        if kind in _PLAIN:
            return _PLAIN[kind]
        if kind == "array":
            return f"list[{self.of(schema.get('items', {}), depth + 1)}]"
        if kind == "object":
            if schema.get("properties"):
                raise StubError("an inline object with fields; pydantic always names those ($defs)")
            extra = schema.get("additionalProperties", {})
            return f"dict[str, {self.of(extra if isinstance(extra, Mapping) else {}, depth + 1)}]"
        self.uses_any = True
        return "Any"

    def _need(self, key: str) -> None:
        if key in self.needed:
            return
        self.needed[key] = self.namer.name(key)
        for ref in _refs(self.components[key]):  # what its fields refer to is generated too
            if ref.startswith(_REF) and ref[len(_REF) :] in self.components:
                inner = ref[len(_REF) :]
                if _is_class(self.components[inner]):
                    self._need(inner)
                else:
                    self.needed.setdefault(inner, self.namer.name(inner))


def _shape(schema: Any) -> str:
    import orjson

    return orjson.dumps(schema, option=orjson.OPT_SORT_KEYS).decode()


def _refs(value: Any) -> list[str]:
    if isinstance(value, Mapping):
        found = [value["$ref"]] if isinstance(value.get("$ref"), str) else []
        return found + [r for v in value.values() for r in _refs(v)]
    if isinstance(value, list):
        return [r for v in value for r in _refs(v)]
    return []


def _models(components: Mapping[str, Any], needed: Mapping[str, str]) -> tuple[list[str], str]:
    """The pydantic models of ``needed`` by datamodel-code-generator: (its import lines, its classes)."""
    if not needed:
        return [], ""
    import orjson
    from datamodel_code_generator import InputFileType, PythonVersion, generate
    from datamodel_code_generator.enums import DataModelType

    def local(value: Any) -> Any:
        if isinstance(value, Mapping):
            out = {}
            for k, v in value.items():
                if k == "$ref" and isinstance(v, str) and v.startswith(_REF) and v[len(_REF) :] in needed:
                    out[k] = "#/$defs/" + needed[v[len(_REF) :]]
                else:
                    out[k] = local(v)
            return out
        if isinstance(value, list):
            return [local(v) for v in value]
        return value

    defs = {name: {**local(components[key]), "title": name} for key, name in needed.items()}
    import warnings

    with warnings.catch_warnings():  # its notice about future default formatters is for its CLI users
        warnings.simplefilter("ignore", FutureWarning)
        code = generate(
            orjson.dumps({"$defs": defs}).decode(),
            input_file_type=InputFileType.JsonSchema,
            output_model_type=DataModelType.PydanticV2BaseModel,
            target_python_version=PythonVersion.PY_311,
            disable_timestamp=True,
            use_schema_description=True,
            use_field_description=True,
            class_name="AlmanetStubRoot",
            use_double_quotes=True,
            # what type checkers read: constraints in Field (not conint()), defaults as default=
            # (dataclass_transform sees no positional default), enum defaults as members
            field_constraints=True,
            use_annotated=True,
            use_default_kwarg=True,
            set_default_enum_member=True,
            strict_nullable=True,  # a field with a default is not thereby nullable (zip: str = "")
        )
    if not isinstance(code, str):
        raise StubError("datamodel-code-generator split the models into modules; report the schema")
    # drop its header, its root placeholder and its own imports (the module's are merged above)
    code = re.sub(r"class AlmanetStubRoot\(RootModel\[Any\]\):\n    root: Any\n", "", code)
    imports: list[str] = []
    body: list[str] = []
    for line in code.splitlines():
        if line.startswith("#") or line.startswith("from __future__"):
            continue
        (imports if line.startswith(("from ", "import ")) else body).append(line)
    return imports, "\n".join(body).strip()


def _topic_declaration(topic: TopicContract, annotations: _Annotations) -> str:
    """``interface.produces(...)`` or ``interface.consumes(...)``, as the service declared it."""
    arguments = [_quoted(topic.topic), annotations.of(topic.message)]
    if topic.direction == "consumes" and topic.channel:
        arguments.append(f"channel={_quoted(topic.channel)}")
    if topic.description:
        arguments.append(f"description={_quoted(topic.description)}")
    if topic.direction not in ("produces", "consumes"):
        raise StubError(f"topic {topic.topic!r}: unknown direction {topic.direction!r}")
    return _call(f"interface.{topic.direction}", arguments)


def _call(function: str, arguments: list[str], limit: int = 88) -> str:
    """A call laid out as ruff format lays it out: on one line, its arguments on one, or one each."""
    flat = f"{function}({', '.join(arguments)})"
    if len(flat) <= limit:
        return flat
    inner = ", ".join(arguments)
    if len(inner) + 4 <= limit:
        return f"{function}(\n    {inner}\n)"
    lines = []
    for argument in arguments:
        name, _, value = argument.rpartition("=")
        if name and value.startswith('"') and len(argument) + 5 > limit:  # a long text: split into parts
            import json
            import textwrap

            parts = textwrap.wrap(json.loads(value), limit - 10, drop_whitespace=False)
            lines.append(f"    {name}=(\n" + "".join(f"        {_quoted(part)}\n" for part in parts) + "    ),")
        else:
            lines.append(f"    {argument},")
    return f"{function}(\n" + "\n".join(lines) + "\n)"


def _error_class(name: str, fields: Any, annotations: _Annotations, components: Mapping[str, Any]) -> str:
    ref = fields.get("$ref") if isinstance(fields, Mapping) else None
    schema = components.get(ref[len(_REF) :], {}) if isinstance(ref, str) else {}
    lines = [f"class {name}(almanet.rpc_error):", f'    """Declared by the procedures below (raises=[{name}])."""']
    required = set(schema.get("required") or ())
    properties: Mapping[str, Any] = schema.get("properties") or {}
    ordered = sorted(properties.items(), key=lambda item: item[0] not in required)  # defaults last
    if ordered:
        lines.append("")
    for field_name, field_schema in ordered:
        if not field_name.isidentifier() or keyword.iskeyword(field_name):
            raise StubError(f"error {name}'s field {field_name!r} is not a Python name")
        line = f"    {field_name}: {annotations.of(field_schema)}"
        if field_name not in required:
            line += f" = {_literal(field_schema.get('default'))}"
        lines.append(line)
    return "\n".join(lines)


def generate_stubs(document: Mapping[str, Any], prepath: str, *, source: str, almanet_version: str) -> str:
    """The source of a module declaring every procedure under ``prepath`` in ``document``."""
    contracts = [c for c in contracts_of(document).values() if c.uri.startswith(prepath + ".")]
    topics = sorted(
        (t for t in topics_of(document).values() if t.prepath == prepath), key=lambda t: (t.direction, t.topic)
    )
    if not contracts and not topics:
        known = sorted({c.uri for c in contracts_of(document).values()})
        raise StubError(f"no procedure under {prepath!r}" + (f"; the document has {', '.join(known)}" if known else ""))
    components: Mapping[str, Any] = (document.get("components") or {}).get("schemas") or {}
    annotations = _Annotations(components)
    chosen: dict[str, Contract] = {}
    for contract in sorted(contracts, key=lambda c: (c.uri, c.channel != "RPC", c.channel)):
        chosen.setdefault(contract.uri, contract)  # a URI served on two channels: the default one
    operations: Mapping[str, Any] = document.get("operations") or {}
    errors: dict[str, Any] = {}
    procedures: list[str] = []
    functions: set[str] = set()
    for uri, contract in chosen.items():
        local = uri[len(prepath) + 1 :]
        function = _identifier(local, camel=False)
        while function in functions:
            function += "_"
        functions.add(function)
        payload = annotations.of(contract.payload)
        result = annotations.of(contract.result)
        operation = operations.get(contract.key) or {}
        raises = []
        for declared in operation.get("x-almanet-errors") or []:
            raises.append(declared["name"])
            errors.setdefault(declared["name"], declared.get("fields"))
        arguments = [f"name={_quoted(local)}"]
        if contract.channel and contract.channel != "RPC":
            arguments.append(f"channel={_quoted(contract.channel)}")
        if raises:
            arguments.append(f"raises=[{', '.join(raises)}]")
        docstring = _docstring(str(operation.get("description") or "").strip() or f"{uri} (no description)")
        procedures.append(
            f"@interface.abstract_procedure({', '.join(arguments)})\n"
            f"async def {function}(payload: {payload}) -> {result}:\n"
            f"    {docstring}\n"
            "    raise NotImplementedError  # a declaration: the service runs the code"
        )
    for name in errors:
        if not name.isidentifier() or keyword.iskeyword(name):
            raise StubError(f"declared error {name!r} is not a Python class name")
    declarations = [_topic_declaration(t, annotations) for t in topics]
    error_classes = [_error_class(n, f, annotations, components) for n, f in errors.items()]
    model_imports, models = _models(components, annotations.needed)
    body = [models] if models else []
    body += error_classes
    interface = f"interface = almanet.new_service(prepath={_quoted(prepath)})"
    if declarations:  # what it publishes and reads, with the models to build and parse messages by
        interface += "\n" + "\n".join(declarations)
    body.append(interface)
    body += procedures
    names = sorted(functions | set(errors) | {"interface"})
    text = "\n\n\n".join(body)
    wanted: dict[str, set[str]] = {"typing": {"Any", "Literal"}}
    for line in model_imports:
        module, _, listed = line.removeprefix("from ").partition(" import ")
        if line.startswith("import ") or not listed:
            raise StubError(f"datamodel-code-generator wrote an import almanet does not merge: {line}")
        wanted.setdefault(module, set()).update(n.strip() for n in listed.split(","))
    standard: list[str] = []
    third: list[str] = []
    for module in sorted(wanted):
        used = sorted(n for n in wanted[module] if re.search(rf"\b{re.escape(n)}\b", text))
        if used:
            (third if module == "pydantic" else standard).append(f"from {module} import {', '.join(used)}")
    head = [
        f'"""The procedures under {prepath}: typed declarations to call them by.'
        if not topics
        else f'"""The procedures and topics under {prepath}: typed declarations.',
        "",
        f"Generated from {source} by `almanet stubs` (almanet {almanet_version}),",
        "the models by datamodel-code-generator. Regenerate it rather than edit it.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
    ]
    if standard:
        head += [*standard, ""]
    head += ["import almanet", *third, "", "__all__ = [" + ", ".join(_quoted(n) for n in names) + "]", "", ""]
    return "\n".join(head) + "\n" + text + "\n"


def _quoted(text: str) -> str:
    """A double-quoted Python string literal (as ruff format writes them)."""
    import json

    return json.dumps(text)
