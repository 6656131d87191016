"""``almanet asyncapi``: documents of modules and of a live bus, validated by the official parser
and the spec's JSON schema; ``--check`` and ``--drift`` against real nsqd."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import almanet, clean_env, nsq_env, start, stop
from tests.contracts.conftest import Bus, live_instances, refs_resolve, serve_until_ready, validate
from tests.support.nsqproc import REPO_ROOT, start_nsqd, wait_until

pytestmark = pytest.mark.timeout(60)

TARGETS = {
    "services.example:example_service": {"net.example.greeting"},
    "services.greeting_impl:greeting_service": {"net.example.typed.greet"},
    "tests.assets.contracts_v1:shop": {f"net.contracts.{n}" for n in ("order", "shout", "invert", "total")},
}


def _document(*args: str, env: dict[str, str], cwd: Path) -> dict[str, Any]:
    result = almanet("asyncapi", *args, env=env, cwd=cwd, timeout=20)
    assert result.returncode == 0, result.stderr.decode()
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def _assert_request_reply(document: dict[str, Any], uris: set[str]) -> None:
    """Every procedure: a receive operation on its _rpc_ channel, with a reply correlated by call id."""
    operations = {k: op for k, op in document["operations"].items() if "x-almanet-uri" in op}
    assert {op["x-almanet-uri"] for op in operations.values()} == uris
    for key, operation in operations.items():
        uri = operation["x-almanet-uri"]
        assert operation["action"] == "receive"
        channel = document["channels"][operation["channel"]["$ref"].removeprefix("#/channels/")]
        assert channel["address"] == f"_rpc_.{uri}" and channel["x-nsq-topic"] == f"_rpc_.{uri}"
        reply = operation["reply"]
        assert reply["address"]["location"] == "$message.payload#/reply_topic"
        assert reply["channel"]["$ref"] == f"#/channels/{key}.reply"
        assert document["channels"][f"{key}.reply"]["x-nsq-ephemeral"] is True
        invocation = document["components"]["messages"][f"{key}.invocation"]
        assert invocation["correlationId"]["location"] == "$message.payload#/id"
        for ref in reply["messages"]:
            message_key = ref["$ref"].rsplit("/", 1)[1]
            name = document["channels"][f"{key}.reply"]["messages"][message_key]["$ref"].rsplit("/", 1)[1]
            assert document["components"]["messages"][name]["correlationId"]["location"] == "$message.payload#/call_id"
    assert refs_resolve(document) == []
    assert "$defs" not in json.dumps(document)


def _assert_declared_topics(document: dict[str, Any]) -> None:
    """contracts_v1 declares it produces orders.placed and consumes stock.updates (channel shop)."""
    channels, operations = document["channels"], document["operations"]
    assert channels["topic.orders.placed"]["address"] == "orders.placed"
    assert channels["topic.stock.updates"]["x-nsq-topic"] == "stock.updates"
    produced = operations["net.contracts.produces.orders.placed"]
    consumed = operations["net.contracts.consumes.stock.updates"]
    assert (produced["action"], consumed["action"]) == ("send", "receive")
    assert consumed["x-nsq-channel"] == "shop" and produced["description"] == "One message per placed order."
    message = document["components"]["messages"]["net.contracts.produces.orders.placed.message"]
    placed = document["components"]["schemas"][message["payload"]["$ref"].rsplit("/", 1)[1]]
    assert placed["required"] == ["order_id", "ship_to"]


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_a_module_document_validates_with_0_errors_json_and_yaml(target: str, tmp_path: Path) -> None:
    env = clean_env(tmp_path, PYTHONPATH=str(REPO_ROOT))
    document = _document(target, env=env, cwd=tmp_path)
    assert document["asyncapi"] == "3.0.0"
    _assert_request_reply(document, TARGETS[target])
    (tmp_path / "doc.json").write_text(json.dumps(document))
    yaml_result = almanet("asyncapi", target, "-o", "yaml", env=env, cwd=tmp_path)
    assert yaml_result.returncode == 0, yaml_result.stderr.decode()
    (tmp_path / "doc.yaml").write_bytes(yaml_result.stdout)
    json_verdict, yaml_verdict = validate(tmp_path / "doc.json", tmp_path / "doc.yaml")
    assert json_verdict["errors"] == [] and json_verdict["schema_errors"] == [] and json_verdict["schema_checked"]
    assert yaml_verdict["errors"] == []


def test_the_validator_reports_a_broken_document(tmp_path: Path) -> None:
    """The checks above can fail: a document without info.version and with a bad action fails both."""
    env = clean_env(tmp_path, PYTHONPATH=str(REPO_ROOT))
    document = _document("services.example:example_service", env=env, cwd=tmp_path)
    del document["info"]["version"]
    document["operations"]["net.example.greeting"]["action"] = "answer"
    (tmp_path / "bad.json").write_text(json.dumps(document))
    (verdict,) = validate(tmp_path / "bad.json")
    messages = " ".join(e["message"] for e in verdict["errors"])
    assert "version" in messages and "action" in messages
    assert {e["path"] for e in verdict["schema_errors"]} >= {"/info", "/operations/net.example.greeting/action"}


def test_schemas_are_components_shared_defs_hoisted_errors_declared(tmp_path: Path) -> None:
    env = clean_env(tmp_path, PYTHONPATH=str(REPO_ROOT))
    document = _document("tests.assets.contracts_v1:shop", env=env, cwd=tmp_path)
    schemas = document["components"]["schemas"]
    # Address is in both Order (payload) and Placed (result): one component, referenced twice
    assert schemas["Address"]["required"] == ["city"]
    order, placed = schemas["net.contracts.order.payload"], schemas["net.contracts.order.result"]
    assert order["properties"]["ship_to"] == placed["properties"]["ship_to"] == {"$ref": "#/components/schemas/Address"}
    assert order["properties"]["quantity"] == {"maximum": 1000, "minimum": 1, "title": "Quantity", "type": "integer"}
    operation = document["operations"]["net.contracts.order"]
    assert operation["x-almanet-errors"] == [
        {"name": "out_of_stock", "fields": {"$ref": "#/components/schemas/net.contracts.order.error.out_of_stock"}}
    ]
    assert schemas["net.contracts.order.error.out_of_stock"]["required"] == ["item"]
    assert operation["tags"] == [{"name": "orders"}]
    assert operation["description"] == 'Place an order; "gold" is always out of stock.'
    assert "servers" not in document  # new_service() without an address names no nsqd
    _assert_declared_topics(document)
    example = _document("services.example:example_service", env=env, cwd=tmp_path)
    server = {"host": "localhost:4150", "protocol": "nsq", "description": "nsqd TCP"}
    assert example["servers"] == {"nsqd-localhost_4150": server}


def test_the_live_bus_document_validates_and_has_every_served_procedure(bus: Bus) -> None:
    nsqd, env, cwd = bus
    document = _document(env=env, cwd=cwd)
    _assert_request_reply(document, set().union(*TARGETS.values()))
    assert document["servers"] == {
        f"nsqd-{nsqd.tcp_address.replace(':', '_')}": {
            "host": nsqd.tcp_address,
            "protocol": "nsq",
            "description": "nsqd TCP",
        }
    }
    _assert_declared_topics(document)  # discovery carried them
    (cwd / "live.json").write_text(json.dumps(document))
    (verdict,) = validate(cwd / "live.json")
    assert verdict["errors"] == [] and verdict["schema_errors"] == [], verdict


def test_check_and_drift_through_a_rolling_deploy(tmp_path: Path) -> None:
    """Version 1 saved; v2 (Order.quantity a string) deployed beside it, then alone."""
    nsqd = start_nsqd()
    procs = []
    try:
        env = nsq_env(tmp_path, nsqd)
        procs.append(serve_until_ready(env, tmp_path, "tests.assets.contracts_v1:shop", "net.contracts.shout"))
        saved = tmp_path / "shop.json"
        saved.write_bytes(almanet("asyncapi", env=env, cwd=tmp_path).stdout)
        unchanged = almanet("asyncapi", "--check", str(saved), "-o", "table", env=env, cwd=tmp_path)
        assert unchanged.returncode == 0, unchanged.stderr.decode()
        assert "compatible from" in unchanged.stdout.decode() and "no change" in unchanged.stdout.decode()
        one = almanet("asyncapi", "--drift", "-o", "json", env=env, cwd=tmp_path)
        assert one.returncode == 0 and json.loads(one.stdout)["breaking"] == []

        procs.append(start("serve", "tests.assets.contracts_v2:shop", env=env, cwd=tmp_path))
        wait_until(lambda: live_instances(nsqd.tcp_address) == 2, 10, message="v2 did not join discovery")
        drift = almanet("asyncapi", "--drift", "-o", "table", env=env, cwd=tmp_path)
        text = drift.stdout.decode()
        assert drift.returncode == 10, text + drift.stderr.decode()
        assert f"pid {procs[1].pid} vs" in text and f"pid {procs[0].pid}: the payload" in text
        assert "net.contracts.order" in text and "payload.quantity: type integer became string" in text

        stop(procs.pop(0), signal.SIGTERM)
        wait_until(lambda: live_instances(nsqd.tcp_address) == 1, 10, message="v1 did not leave")
        broken = almanet("asyncapi", "--check", str(saved), "-o", "json", env=env, cwd=tmp_path)
        assert broken.returncode == 10, broken.stderr.decode()
        report = json.loads(broken.stdout)
        assert report["compatible"] is False
        change = "the payload accepts less: payload.quantity: type integer became string"
        assert report["breaking"] == [{"procedure": "net.contracts.order", "change": change}]
        assert "no longer describes the live bus" in broken.stderr.decode()
    finally:
        for proc in procs:
            stop(proc, signal.SIGKILL)
        nsqd.close()


def test_bad_input_exits_2_and_an_empty_bus_exits_3(tmp_path: Path) -> None:
    env = clean_env(tmp_path, PYTHONPATH=str(REPO_ROOT))
    missing = almanet("asyncapi", "services.example:example_service", "--check", "nope.json", env=env, cwd=tmp_path)
    assert missing.returncode == 2 and b"cannot read nope.json" in missing.stderr
    (tmp_path / "not.json").write_text('{"openapi": "3.1.0"}')
    other = almanet("asyncapi", "services.example:example_service", "--check", "not.json", env=env, cwd=tmp_path)
    assert other.returncode == 2 and b"is not an AsyncAPI 3 document" in other.stderr
    both = almanet("asyncapi", "services.example:example_service", "--drift", env=env, cwd=tmp_path)
    assert both.returncode == 2 and b"--drift compares live instances" in both.stderr
    bad_target = almanet("asyncapi", "services.example:nothing", env=env, cwd=tmp_path)
    assert bad_target.returncode == 2 and b"has no attribute 'nothing'" in bad_target.stderr
    nsqd = start_nsqd()
    try:
        empty = almanet("asyncapi", "-t", "0.3", env=nsq_env(tmp_path, nsqd), cwd=tmp_path)
        assert empty.returncode == 3 and b"no live service answered discovery" in empty.stderr
    finally:
        nsqd.close()
