"""The ``processes`` fixture's owner: nothing a test started outlives it."""

from __future__ import annotations

import sys

from tests.support.processes import Processes

IGNORES_SIGTERM = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('ready', flush=True)\n"
    "time.sleep(120)\n"
)


def test_close_stops_reaps_and_closes_every_process() -> None:
    owned = Processes(grace=0.5)
    done = owned.start([sys.executable, "-c", "print('done')"])
    assert done.communicate(timeout=30) == ("done\n", "")
    stubborn = owned.start([sys.executable, "-c", IGNORES_SIGTERM])
    assert stubborn.stdout is not None
    assert stubborn.stdout.readline() == "ready\n"  # SIGTERM is ignored from here on
    sleeper = owned.start([sys.executable, "-c", "import time; time.sleep(120)"])
    assert {p.pid for p in owned.running} == {stubborn.pid, sleeper.pid}

    assert sorted(owned.close()) == sorted([stubborn.pid, sleeper.pid])
    assert sleeper.returncode == -15  # SIGTERM was enough
    assert stubborn.returncode == -9  # killed after the grace period
    assert done.returncode == 0
    for process in (done, stubborn, sleeper):
        assert process.stdout is not None and process.stdout.closed
        assert process.stderr is not None and process.stderr.closed
    assert owned.running == []
    assert owned.close() == []
