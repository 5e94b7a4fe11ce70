"""Ctrl-C cancels a running query: `KeyboardInterrupt` is raised in the thread that waits, the
query's tasks stop, and the connection stays usable."""

from __future__ import annotations

import _thread
import signal
import threading
import time

import pytest

import sessionlake

#: Far more work than the test waits for: hours in a debug build.
ENDLESS = "SELECT sum(a.value * b.value) AS s FROM range(100000000) a CROSS JOIN range(100000) b"

#: How long the interrupted query may take to stop; the query itself would run for hours.
STOP_WITHIN_S = 30


def assert_idle_within(seconds: float) -> None:
    """Waits until this process used under a tenth of a core over a quarter second; fails if
    that does not happen within ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        cpu, wall = time.process_time(), time.monotonic()
        time.sleep(0.25)
        if time.process_time() - cpu < 0.1 * (time.monotonic() - wall):
            return
    pytest.fail(f"the process still computes {seconds} s after the interrupt")


def test_keyboard_interrupt_from_another_thread_cancels_the_query() -> None:
    con = sessionlake.connect(partitions=2)
    # Python's own Ctrl-C handler, as in a terminal or a notebook: a process started in the
    # background inherits SIGINT ignored, and then interrupt_main() would do nothing
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(0.5, _thread.interrupt_main)
    timer.start()
    started = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            con.sql(ENDLESS).to_arrow()
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    assert time.monotonic() - started < STOP_WITHIN_S
    # the query's tasks stopped: the process soon stops using the CPU
    assert_idle_within(STOP_WITHIN_S)
    # the same connection runs the next query
    assert con.sql("SELECT 41 + 1 AS answer").to_arrow()["answer"].to_pylist() == [42]
