"""The README's three-file layout run as it is: ``almanet serve impl:api``, the typed caller, a 0.7.0 caller.

The interface, implementation and caller modules are the files in ``services/``, which the
README shows verbatim (the first test holds it to that).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import almanet as api
from services.greeting_api import Greeted, Greeting
from tests.cli.conftest import almanet, nsq_env
from tests.interop.test_almanet070 import _env, run070
from tests.support.nsqproc import REPO_ROOT, NsqdProcess, wait_until
from tests.typed._blocks import python_blocks

pytestmark = pytest.mark.timeout(60)

FILES = ("services/greeting_api.py", "services/greeting_impl.py", "services/greeting_caller.py")
TARGET = "services.greeting_impl:greeting_service"
URI = "net.example.typed.greet"

# a 0.7.0 caller of the abstract-implemented procedure: payload and reply are plain JSON to it
CALLER_070 = """\
import asyncio, json, sys
import almanet

async def main():
    out = {}
    async with almanet.new_session(sys.argv[1]) as session:
        # 0.7.0's call resolves to the result itself
        out["result"] = await session.call("net.example.typed.greet", {"name": "Ada", "excited": True}, timeout=10)
        try:
            await session.call("net.example.typed.greet", {"name": "guest"}, timeout=10)
        except almanet.rpc_error as e:
            out["error"] = {"name": e.name, "args": list(e.args)}
    print(json.dumps(out))

asyncio.run(main())
"""


def test_the_readme_shows_the_three_files_verbatim() -> None:
    blocks = python_blocks()
    for name in FILES:
        assert (REPO_ROOT / name).read_text() in blocks, f"README.md does not show {name} as it is"


def test_serve_impl_api_and_the_typed_caller(
    nsqd: NsqdProcess, tmp_path: Path, serve: Callable[..., subprocess.Popen[bytes]]
) -> None:
    env = nsq_env(tmp_path, nsqd)
    serve(env, TARGET, ready_uri="_api_schema_.net.example.typed.greet.RPC")
    caller = subprocess.run(
        [sys.executable, "-m", "services.greeting_caller", nsqd.tcp_address],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert caller.returncode == 0, caller.stderr
    assert caller.stdout.splitlines() == ["Hello, Aidar! 13", "refused: guest retry in 1.5"]

    # discovery describes it like any procedure, with the errors it declares
    described = almanet("describe", URI, "-o", "json", env=env, cwd=tmp_path)
    assert described.returncode == 0, described.stderr
    text = described.stdout.decode()
    assert '"Greeting"' in text and '"refused"' in text, text


def test_a_070_caller_calls_the_abstract_implemented_procedure(
    python070: str, nsqd: NsqdProcess, tmp_path: Path, serve: Callable[..., subprocess.Popen[bytes]]
) -> None:
    serve(nsq_env(tmp_path, nsqd), TARGET, ready_uri="_api_schema_.net.example.typed.greet.RPC")
    done = asyncio.run(run070(python070, tmp_path, "caller070.py", CALLER_070, nsqd.tcp_address))
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["result"] == {"text": "Hello, Ada!", "length": 11}
    # 0.7.0 reads the name and the message array; the typed fields ride as its last element
    assert out["error"] == {
        "name": "refused",
        "args": [["guests are not greeted", {"_fields_": {"who": "guest", "retry_in": 1.5}}]],
    }


def test_serving_the_interface_alone_is_refused_naming_the_fix(nsqd: NsqdProcess, tmp_path: Path) -> None:
    done = almanet("serve", "services.greeting_api:greeting_service", env=nsq_env(tmp_path, nsqd), cwd=tmp_path)
    err = done.stderr.decode()
    assert done.returncode == 2, err
    assert "abstract procedures without an implementation: net.example.typed.greet" in err, err
    assert "almanet serve IMPL_MODULE:greeting_service" in err and "Traceback" not in err, err


# a real 0.7.0 service whose procedure is declared abstract and registered with `implements`
SERVICE_070 = """\
import sys
import almanet
import pydantic

service = almanet.new_microservice(sys.argv[1], prepath=sys.argv[2])

class Greeting(pydantic.BaseModel):
    name: str
    excited: bool = False

class Greeted(pydantic.BaseModel):
    text: str
    length: int

@service.abstract_procedure(description="Greet someone by name")
async def greet(payload: Greeting) -> Greeted: ...

@greet.implements
async def greet_impl(payload: Greeting) -> Greeted:
    text = f"Hello, {payload.name}{'!' if payload.excited else '.'}"
    return Greeted(text=text, length=len(text))

if __name__ == "__main__":
    service.serve()
"""


def test_our_typed_call_of_a_070_service_that_used_implements(
    python070: str, nsqd: NsqdProcess, tmp_path: Path, unique_name: Callable[..., str]
) -> None:
    prepath = f"interop070.{unique_name('typed')}"
    interface = api.new_service(prepath=prepath)  # the caller's own copy of the contract

    @interface.abstract_procedure
    async def greet(payload: Greeting) -> Greeted:
        raise NotImplementedError

    script = tmp_path / "service070.py"
    script.write_text(SERVICE_070)
    log = (tmp_path / "service070.log").open("wb")
    process = subprocess.Popen(
        [python070, str(script), nsqd.tcp_address, prepath], cwd=tmp_path, env=_env(), stdout=log, stderr=log
    )
    log.close()
    try:

        def subscribed() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"the 0.7.0 service exited: {(tmp_path / 'service070.log').read_text()}")
            return "RPC" in nsqd.topics().get(f"_rpc_.{prepath}.greet", ())

        wait_until(subscribed, 30, message="the 0.7.0 service did not subscribe")

        async def scenario() -> None:
            async with api.new_session(nsqd.tcp_address, nsqd_http=nsqd.http_address) as session:
                result = await session.call(greet, Greeting(name="Ada", excited=True), timeout=10)
                assert result.payload == Greeted(text="Hello, Ada!", length=11)
                assert type(result.payload) is Greeted

        asyncio.run(scenario())
    finally:
        process.kill()
        process.wait()
