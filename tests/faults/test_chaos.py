"""The chaos run, short: `make chaos` for 20 s (CI runs this; docs/reliability.md has a 10-minute line).

Three nsqd with nsqlookupd, three `almanet serve` instances, callers, a producer and a consumer;
a random instance or nsqd killed (-9) or frozen every few seconds. The run itself judges (late
runs, lost messages, hangs, reply topics left): this test checks its verdict and its one line.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys

from tests.support.nsqproc import REPO_ROOT

LINE = re.compile(
    r"^chaos: (\d+) calls, (\d+) answered, (\d+) failed with a reason, (\d+) ran late,"
    r" (\d+) messages acknowledged, (\d+) lost$",
    re.M,
)


def test_a_short_chaos_run_keeps_every_promise() -> None:
    seed = random.randrange(100_000)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALMANET_")}
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "chaos" / "run.py"), "--seconds", "20", "--seed", str(seed)],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    report = f"seed {seed}, exit {proc.returncode}\n{proc.stdout}\n{proc.stderr[-4000:]}"
    match = LINE.search(proc.stdout)
    assert match is not None, report
    calls, answered, failed, late, acknowledged, lost = map(int, match.groups())
    assert proc.returncode == 0, report
    assert (late, lost) == (0, 0), report
    assert calls == answered + failed and answered > 0 and acknowledged > 0, report
    faults = re.search(r"faults: (.*)", proc.stderr)
    assert faults is not None and sum(int(n) for n in re.findall(r"(\d+) ", faults.group(1))) >= 3, report
