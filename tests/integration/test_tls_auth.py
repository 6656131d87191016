"""TLS and AUTH against a real nsqd: what works, and that every failure says what to change.

nsqd gets a throwaway CA and server certificate (made once per module with the openssl tool) and,
for AUTH, a tiny HTTP auth server of the test's own (``--auth-http-address``).
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import almanet
from almanet._nsq.options import ConnectionOptions, TLSOptions
from tests.integration._aio import joined, run, serving
from tests.support.nsqproc import NsqdProcess, wait_until
from tests.support.tlsauth import AuthServer, Certs, make_certs, openssl_path

pytestmark = pytest.mark.skipif(openssl_path() is None, reason="needs the openssl command line tool")

SECRET = "s3cret-for-tests"
NsqdFactory = Callable[..., NsqdProcess]


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def auth_server() -> Iterator[AuthServer]:
    with AuthServer(SECRET) as server:
        yield server


def tls_args(certs: Certs, *extra: str) -> tuple[str, ...]:
    # --https-address: with a certificate nsqd also serves HTTPS, on 0.0.0.0:4152 unless told
    return (
        f"--tls-cert={certs.server_cert}",
        f"--tls-key={certs.server_key}",
        "--https-address=127.0.0.1:0",
        *extra,
    )


def verified(certs: Certs, **options: Any) -> ConnectionOptions:
    return ConnectionOptions(tls=TLSOptions(ca_file=str(certs.ca)), **options)


def _tls_clients(nsqd: NsqdProcess) -> list[bool]:
    """The ``tls`` flag of every client subscribed anywhere on ``nsqd``."""
    return [
        client["tls"]
        for topic in nsqd.stats().get("topics") or []
        for channel in topic.get("channels") or []
        for client in channel.get("clients") or []
    ]


async def _call_and_round_trip(address: str, options: ConnectionOptions, topic: str) -> None:
    """A service and a caller on ``address`` with ``options``: one call, one produce/consume."""
    service = almanet.new_service(address, prepath="net.tlstest")

    @service.procedure
    async def greeting(session: almanet.Almanet, payload: str) -> str:
        return f"Hello, {payload}!"

    async with serving(service, options=options), joined(address, options=options) as session:
        result = await session.call("net.tlstest.greeting", "Aidar", timeout=5)
        assert result.payload == "Hello, Aidar!"
        async with session.consume(topic, "ch") as messages:
            await session.produce(topic, {"n": 1})
            async for message in messages:
                assert message.body == {"n": 1}
                await message.commit()
                break


async def _join_error(address: str, options: ConnectionOptions) -> almanet.broker_error:
    with pytest.raises(almanet.broker_error) as info:
        async with joined(address, options=options):
            pass
    return info.value


# ---------------------------------------------------------------------------------------- TLS


def test_tls_with_ca_verification_calls_and_round_trips(
    nsqd_factory: NsqdFactory, certs: Certs, unique_name: Callable[..., str]
) -> None:
    nsqd = nsqd_factory(extra_args=tls_args(certs))
    seen: list[list[bool]] = []

    async def scenario() -> None:
        await _call_and_round_trip(nsqd.tcp_address, verified(certs), unique_name())
        # by name too: the certificate names both 127.0.0.1 and localhost
        async with joined(f"localhost:{nsqd.tcp_port}", options=verified(certs)) as session:
            async with session.consume(unique_name(), "ch"):
                seen.append(_tls_clients(nsqd))

    run(scenario())
    assert seen[0] and all(seen[0]), f"nsqd saw non-TLS subscribers: {seen}"


def test_tls_without_verification_accepts_a_self_signed_certificate(
    nsqd_factory: NsqdFactory, certs: Certs, unique_name: Callable[..., str]
) -> None:
    nsqd = nsqd_factory(extra_args=tls_args(certs))
    run(_call_and_round_trip(nsqd.tcp_address, ConnectionOptions(tls=TLSOptions(verify=False)), unique_name()))


@pytest.mark.parametrize("which", ["wrong ca", "system cas"])
def test_tls_with_an_untrusted_certificate_fails_clearly(nsqd_factory: NsqdFactory, certs: Certs, which: str) -> None:
    nsqd = nsqd_factory(extra_args=tls_args(certs))
    tls = TLSOptions(ca_file=str(certs.other_ca)) if which == "wrong ca" else TLSOptions()
    error = run(_join_error(nsqd.tcp_address, ConnectionOptions(tls=tls)))
    text = str(error)
    assert f"TLS with nsqd at {nsqd.tcp_address} failed" in text
    assert "did not verify" in text and "set tls.ca_file in almanet.toml" in text
    assert "Is nsqd running" not in text  # it is: the hint for unreachable brokers would mislead


def test_tls_required_refuses_a_plaintext_client_clearly(
    nsqd_factory: NsqdFactory, certs: Certs, unique_name: Callable[..., str]
) -> None:
    # tcp-https: TCP must be TLS; plain HTTP stays open for the fixture's /ping
    nsqd = nsqd_factory(extra_args=tls_args(certs, "--tls-required=tcp-https"))

    async def scenario() -> None:
        async with joined(nsqd.tcp_address) as session:  # IDENTIFY is allowed in clear
            with pytest.raises(almanet.broker_error) as info:
                await session.produce(unique_name(), 1)
        text = str(info.value)
        assert f"nsqd at {nsqd.tcp_address} requires TLS" in text and "set tls.enabled = true" in text
        # and with TLS it is fine
        async with joined(nsqd.tcp_address, options=verified(certs)) as session:
            await session.produce(unique_name(), 1)

    run(scenario())


def test_tls_asked_of_an_nsqd_without_tls_fails_instead_of_going_plaintext(nsqd_factory: NsqdFactory) -> None:
    nsqd = nsqd_factory()
    error = run(_join_error(nsqd.tcp_address, ConnectionOptions(tls=TLSOptions(verify=False))))
    assert f"nsqd at {nsqd.tcp_address} does not offer TLS" in str(error)
    assert "tls.enabled = false" in str(error)


def test_tls_client_certificate_required_by_nsqd(
    nsqd_factory: NsqdFactory, certs: Certs, unique_name: Callable[..., str]
) -> None:
    nsqd = nsqd_factory(
        extra_args=tls_args(
            certs,
            f"--tls-root-ca-file={certs.ca}",
            "--tls-client-auth-policy=require-verify",
            "--tls-required=tcp-https",  # else the policy makes nsqd refuse plain HTTP /ping too
        )
    )
    with_cert = ConnectionOptions(
        tls=TLSOptions(ca_file=str(certs.ca), cert_file=str(certs.client_cert), key_file=str(certs.client_key))
    )
    run(_call_and_round_trip(nsqd.tcp_address, with_cert, unique_name()))
    error = run(_join_error(nsqd.tcp_address, verified(certs)))
    assert f"TLS with nsqd at {nsqd.tcp_address} failed" in str(error)
    assert "set tls.cert_file and tls.key_file" in str(error)


def test_tls_unreadable_ca_file_names_the_setting(nsqd_factory: NsqdFactory, certs: Certs, tmp_path: Path) -> None:
    nsqd = nsqd_factory(extra_args=tls_args(certs))
    garbage = tmp_path / "ca.pem"
    garbage.write_text("not a certificate\n")
    error = run(_join_error(nsqd.tcp_address, ConnectionOptions(tls=TLSOptions(ca_file=str(garbage)))))
    assert "cannot load tls.ca_file" in str(error) and nsqd.tcp_address in str(error)


# --------------------------------------------------------------------------------------- AUTH


def test_auth_with_the_right_secret_calls_and_round_trips(
    nsqd_factory: NsqdFactory, auth_server: AuthServer, unique_name: Callable[..., str]
) -> None:
    nsqd = nsqd_factory(extra_args=(f"--auth-http-address={auth_server.address}",))
    run(_call_and_round_trip(nsqd.tcp_address, ConnectionOptions(auth_secret=SECRET), unique_name()))
    assert auth_server.queries and all(q["secret"] == SECRET for q in auth_server.queries)
    assert {q["tls"] for q in auth_server.queries} == {"false"}


def test_auth_over_tls(
    nsqd_factory: NsqdFactory, auth_server: AuthServer, certs: Certs, unique_name: Callable[..., str]
) -> None:
    nsqd = nsqd_factory(extra_args=tls_args(certs, f"--auth-http-address={auth_server.address}"))
    run(_call_and_round_trip(nsqd.tcp_address, verified(certs, auth_secret=SECRET), unique_name()))
    assert {q["tls"] for q in auth_server.queries} == {"true"}  # AUTH was sent after the upgrade


def test_auth_with_a_wrong_secret_fails_clearly(nsqd_factory: NsqdFactory, auth_server: AuthServer) -> None:
    nsqd = nsqd_factory(extra_args=(f"--auth-http-address={auth_server.address}",))
    error = run(_join_error(nsqd.tcp_address, ConnectionOptions(auth_secret="not-the-secret")))
    text = str(error)
    assert f"AUTH with nsqd at {nsqd.tcp_address} failed" in text and "E_AUTH_FAILED" in text
    assert "check auth.secret in almanet.toml" in text
    assert [q["secret"] for q in auth_server.queries] == ["not-the-secret"]


def test_auth_required_without_a_secret_says_to_set_it(nsqd_factory: NsqdFactory, auth_server: AuthServer) -> None:
    nsqd = nsqd_factory(extra_args=(f"--auth-http-address={auth_server.address}",))
    error = run(_join_error(nsqd.tcp_address, ConnectionOptions()))
    assert f"nsqd at {nsqd.tcp_address} requires AUTH" in str(error)
    assert "set auth.secret in almanet.toml" in str(error)
    assert auth_server.queries == []  # nothing was sent


# ---------------------------------------------------------------------------------------- CLI


def test_cli_call_with_tls_and_auth_from_almanet_toml(
    nsqd_factory: NsqdFactory, auth_server: AuthServer, certs: Certs, tmp_path: Path
) -> None:
    from tests.cli.conftest import almanet as run_almanet
    from tests.cli.conftest import clean_env, start, stop

    nsqd = nsqd_factory(
        extra_args=tls_args(certs, "--tls-required=tcp-https", f"--auth-http-address={auth_server.address}")
    )
    (tmp_path / "almanet.toml").write_text(
        f'[nsq]\nnsqd = ["{nsqd.tcp_address}"]\n'
        f'[tls]\nenabled = true\nca_file = "{certs.ca}"\n'
        f'[auth]\nsecret = "{SECRET}"\n'
    )
    env = clean_env(tmp_path)
    server = start("serve", "tests.assets.services_ok:svc", env=env, cwd=tmp_path)
    try:
        options = verified(certs, auth_secret=SECRET)

        def served() -> bool:
            if server.poll() is not None:
                raise AssertionError(f"almanet serve exited: {server.stderr.read().decode()}")  # type: ignore[union-attr]

            async def ask() -> Any:
                async with joined(nsqd.tcp_address, options=options) as session:
                    return (await session.call("clitest.whoami", timeout=0.5)).payload

            try:
                return asyncio.run(ask()) == "RPC"
            except TimeoutError:
                return False

        wait_until(served, timeout=10, message="almanet serve over TLS+AUTH did not answer")
        result = run_almanet("call", "clitest.whoami", "--timeout", "5", env=env, cwd=tmp_path)
        assert result.returncode == 0, result.stderr.decode()
        assert result.stdout.decode().strip() == '"RPC"'
    finally:
        code, _, err = stop(server)
    assert code in (0, 130), err
    assert all(q["tls"] == "true" and q["secret"] == SECRET for q in auth_server.queries)


def test_cli_call_without_the_secret_exits_with_the_fix(
    nsqd_factory: NsqdFactory, auth_server: AuthServer, tmp_path: Path
) -> None:
    from tests.cli.conftest import almanet as run_almanet
    from tests.cli.conftest import clean_env

    nsqd = nsqd_factory(extra_args=(f"--auth-http-address={auth_server.address}",))
    (tmp_path / "almanet.toml").write_text(f'[nsq]\nnsqd = ["{nsqd.tcp_address}"]\n')
    result = run_almanet("call", "clitest.whoami", "--timeout", "5", env=clean_env(tmp_path), cwd=tmp_path)
    assert result.returncode == 4, result.stderr.decode()  # Exit.BROKER
    assert "set auth.secret in almanet.toml" in result.stderr.decode()
    assert "Traceback" not in result.stderr.decode()


def test_openssl_made_a_server_certificate_for_both_names(certs: Certs) -> None:
    text = subprocess.run(
        ["openssl", "x509", "-in", str(certs.server_cert), "-noout", "-ext", "subjectAltName"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "IP Address:127.0.0.1" in text and "DNS:localhost" in text
