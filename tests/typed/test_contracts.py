"""Typed contracts on a real nsqd: abstract procedures, models in every send, typed results and errors."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pydantic
import pytest
from typing_extensions import TypedDict  # pydantic needs it on Python < 3.12

import almanet
from tests.integration._aio import joined, run, serving
from tests.support.nsqproc import NsqdProcess


class Order(pydantic.BaseModel):
    sku: str
    count: int


class Receipt(pydantic.BaseModel):
    sku: str
    total: float


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Pair(TypedDict):
    left: int
    right: int


class out_of_stock_typed(almanet.rpc_error):
    """Typed fields: they cross processes and the caller's class validates them."""

    sku: str
    left: int = 0


def _service(nsqd: NsqdProcess, unique_name: Callable[..., str]) -> almanet.Service:
    return almanet.new_service(nsqd.tcp_address, prepath=unique_name("typed"))


# -- the interface split ---------------------------------------------------------------------------


def test_abstract_procedure_declares_and_implements_once(nsqd: NsqdProcess, unique_name: Callable[..., str]) -> None:
    service = _service(nsqd, unique_name)

    @service.abstract_procedure
    async def buy(payload: Order) -> Receipt:
        """Buy some."""
        raise NotImplementedError

    assert isinstance(buy, almanet.AbstractProcedure)
    assert buy.uri == f"{service.prepath}.buy"
    assert buy.payload_model is Order and buy.return_model is Receipt
    assert buy.description == "Buy some."

    @buy.implements
    async def buy_impl(payload: Order) -> Receipt:  # (payload) alone, as in 0.7.0
        return Receipt(sku=payload.sku, total=payload.count * 2.5)

    with pytest.raises(ValueError, match=r"procedure already implemented: .*buy.* by .*buy_impl"):

        @buy.implements
        async def again(session: almanet.Almanet, payload: Order) -> Receipt:
            raise NotImplementedError

    async def scenario() -> None:
        async with serving(service), joined(nsqd.tcp_address) as session:
            result = await session.call(buy, Order(sku="tea", count=4), timeout=5)
            assert isinstance(result, almanet.CallResult)
            assert result.payload == Receipt(sku="tea", total=10.0)
            # a string URI asks for a type with result=
            plain = await session.call(buy.uri, {"sku": "tea", "count": 1}, timeout=5)
            assert plain.payload == {"sku": "tea", "total": 2.5}
            typed = await session.call(buy.uri, {"sku": "tea", "count": 1}, result=Receipt, timeout=5)
            assert typed.payload == Receipt(sku="tea", total=2.5)
            listed = await session.call(buy.uri, {"sku": "x", "count": 2}, result=dict[str, float | str], timeout=5)
            assert listed.payload == {"sku": "x", "total": 5.0}
            # a reply that does not fit the asked type is a ValidationError naming the procedure
            with pytest.raises(almanet.ValidationError, match=r"the result of .*buy"):
                await session.call(buy.uri, {"sku": "x", "count": 1}, result=int, timeout=5)
            # delay_call takes the abstract too (its payload type checked as call's is)
            call_id = await session.delay_call(buy, Order(sku="later", count=1), 0)
            assert isinstance(call_id, str) and len(call_id) == 32
            # the implementation validates what it gets into the abstract's payload model
            with pytest.raises(almanet.ValidationError, match=r"payload\.count"):
                await session.call(buy, {"sku": "x", "count": "many"}, timeout=5)  # type: ignore[arg-type]

    run(scenario())


def test_an_unimplemented_abstract_refuses_to_start(nsqd: NsqdProcess, unique_name: Callable[..., str]) -> None:
    service = _service(nsqd, unique_name)

    @service.abstract_procedure(name="later", description="declared only")
    async def declared(payload: int) -> int:
        raise NotImplementedError

    async def scenario() -> None:
        with pytest.raises(almanet.session_state_error, match=r"without an implementation: .*later.*almanet serve"):
            await service.start((nsqd.tcp_address,))
        assert service.running is None

    run(scenario())


def test_an_implementation_with_other_types_is_refused(unique_name: Callable[..., str]) -> None:
    service = almanet.new_service(prepath=unique_name("typed"))

    @service.abstract_procedure
    async def square(payload: int) -> int:
        raise NotImplementedError

    with pytest.raises(TypeError, match=r"annotates its payload as <class 'str'>, not <class 'int'>"):

        @square.implements  # type: ignore[arg-type]
        async def wrong(payload: str) -> int:
            return 0

    assert square.implementation is None


# -- models in every send path ---------------------------------------------------------------------


def test_models_dataclasses_and_typeddicts_as_payloads(nsqd: NsqdProcess, unique_name: Callable[..., str]) -> None:
    service = _service(nsqd, unique_name)
    seen: list[Any] = []

    @service.procedure
    async def record(session: almanet.Almanet, payload: Order | Point | Pair) -> str:
        seen.append(payload)
        return type(payload).__name__

    topic, channel = unique_name("topic"), unique_name("ch")

    async def scenario() -> None:
        async with serving(service), joined(nsqd.tcp_address) as session:
            uri = f"{service.prepath}.record"
            assert (await session.call(uri, Order(sku="a", count=1), timeout=5)).payload == "Order"
            assert (await session.call(uri, Point(1, 2), timeout=5)).payload == "Point"
            replies = await session.multicall(uri, Order(sku="m", count=3), timeout=1)
            assert [r.payload for r in replies if isinstance(r, almanet.CallResult)] == ["Order"]
            await session.delay_call(uri, Order(sku="d", count=5), 0)

            async with session.consume(topic, channel) as messages:
                await session.produce(topic, Order(sku="p", count=7))
                await session.produce(topic, Point(3, 4))
                await session.produce(topic, Pair(left=1, right=2))
                sent = await session.produce_many(topic, [Order(sku="q", count=8), Point(5, 6)])
                assert sent == 2
                bodies = []
                decoded: list[Any] = []
                async for message in messages:
                    bodies.append(message.body)
                    decoded.append(message.decode(Order) if "sku" in message.body else message.body)
                    await message.commit()
                    if len(bodies) == 5:
                        break
            assert bodies == [
                {"sku": "p", "count": 7},
                {"x": 3, "y": 4},
                {"left": 1, "right": 2},
                {"sku": "q", "count": 8},
                {"x": 5, "y": 6},
            ]
            assert decoded[0] == Order(sku="p", count=7) and decoded[3] == Order(sku="q", count=8)

            async def delayed_arrived() -> bool:
                return any(getattr(p, "sku", None) == "d" for p in seen)

            from tests.integration._aio import wait_for_async

            await wait_for_async(delayed_arrived, 10, message="the delayed call never ran")
        assert Order(sku="a", count=1) in seen and Order(sku="m", count=3) in seen

    run(scenario())


def test_a_consumed_message_that_does_not_fit_the_model(nsqd: NsqdProcess, unique_name: Callable[..., str]) -> None:
    topic, channel = unique_name("topic"), unique_name("ch")

    async def scenario() -> None:
        async with joined(nsqd.tcp_address) as session, session.consume(topic, channel) as messages:
            await session.produce(topic, {"sku": "x"})
            async for message in messages:
                with pytest.raises(almanet.ValidationError, match=r"the message\.count: Field required"):
                    message.decode(Order)
                await message.commit()
                break

    run(scenario())


def test_an_unserialisable_payload_is_still_refused_before_sending(
    nsqd: NsqdProcess, unique_name: Callable[..., str]
) -> None:
    async def scenario() -> None:
        async with joined(nsqd.tcp_address) as session:
            with pytest.raises(almanet.invalid_argument, match="not JSON-serializable"):
                session.produce(unique_name("topic"), object())

    run(scenario())


# -- typed errors ----------------------------------------------------------------------------------


def test_typed_errors_cross_with_their_fields_and_discovery_lists_them(
    nsqd: NsqdProcess, unique_name: Callable[..., str]
) -> None:
    service = _service(nsqd, unique_name)

    @service.procedure(raises=[out_of_stock_typed])
    async def take(session: almanet.Almanet, payload: str) -> str:
        raise out_of_stock_typed("none left", sku=payload, left=0)

    @service.procedure
    async def untyped(session: almanet.Almanet, payload: None) -> None:
        raise almanet.rpc_error("plain")

    async def scenario() -> None:
        async with serving(service), joined(nsqd.tcp_address) as session:
            with pytest.raises(out_of_stock_typed) as caught:
                await session.call(f"{service.prepath}.take", "tea", timeout=5)
            assert caught.value.sku == "tea" and caught.value.left == 0
            assert caught.value.args == ("none left",)
            assert caught.value.fields == {"sku": "tea", "left": 0}

            replies = await session.multicall(f"{service.prepath}.take", "mug", timeout=1)
            assert len(replies) == 1 and isinstance(replies[0], out_of_stock_typed) and replies[0].sku == "mug"

            schema = await session.call(f"_api_schema_.{service.prepath}.take.RPC", None, timeout=5)
            (error,) = schema.payload["errors"]
            assert error["name"] == "out_of_stock_typed"
            assert error["fields_json_schema"]["required"] == ["sku"]
            assert set(error["fields_json_schema"]["properties"]) == {"sku", "left"}
            plain = await session.call(f"_api_schema_.{service.prepath}.untyped.RPC", None, timeout=5)
            assert "errors" not in plain.payload

    run(scenario())


def test_typed_error_fields_are_checked_when_raised() -> None:
    with pytest.raises(TypeError, match=r"fields of out_of_stock_typed: sku: Field required"):
        out_of_stock_typed("x", left=1)
    with pytest.raises(TypeError, match=r"declares no fields, got \['sku'\]: annotate them on the class"):
        almanet.rpc_error("x", sku="a")
    error = out_of_stock_typed("x", sku="a", left="3")
    assert error.left == 3  # validated, as the caller's class validates what arrives


def test_raises_takes_rpc_error_classes_only() -> None:
    service = almanet.new_service(prepath="typed.raises")
    with pytest.raises(TypeError, match=r"raises= takes rpc_error subclasses, not <class 'ValueError'>"):

        @service.procedure(raises=[ValueError])  # type: ignore[list-item]
        async def bad(payload: int) -> int:
            return payload


# -- signatures and options ------------------------------------------------------------------------


def test_signatures_are_refused_at_decoration_with_the_fix() -> None:
    service = almanet.new_service(prepath="typed.signatures")
    with pytest.raises(TypeError, match=r"only_session takes only the session.*payload: None"):

        @service.procedure
        async def only_session(session: almanet.Almanet) -> int:
            return 1

    with pytest.raises(TypeError, match=r"nothing takes no payload parameter: declare"):

        @service.procedure
        async def nothing() -> int:
            return 1

    with pytest.raises(TypeError, match=r"two payload-looking parameters \(a, b\)"):

        @service.procedure
        async def two(a: int, b: int) -> int:
            return a + b

    with pytest.raises(TypeError, match=r"unschemable: its payload annotation .* cannot be described"):

        @service.procedure
        async def unschemable(session: almanet.Almanet, payload: Callable[[], int]) -> int:
            return 1

    assert service.procedures == {}


def test_a_mistyped_option_names_the_nearest() -> None:
    with pytest.raises(TypeError, match=r"new_session\(\) got an unknown option 'defualt_timeout'; did you mean"):
        almanet.new_session("127.0.0.1:1", defualt_timeout=5)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"new_service\(\) got an unknown option 'max_concurency'; did you mean"):
        almanet.new_service(max_concurency=5)  # type: ignore[call-arg]
    assert almanet.new_session("127.0.0.1:1", default_timeout=5).default_timeout == 5.0


def test_procedure_keeps_the_decorated_function() -> None:
    service = almanet.new_service(prepath="typed.keep")

    async def double(payload: int) -> int:
        return payload * 2

    assert service.procedure(double) is double
    assert service.procedure(name="twice")(double) is double
