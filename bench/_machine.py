"""What every bench prints about the machine it ran on, so readers can compare runs."""

from __future__ import annotations

import os
import statistics
import time


def core_speed() -> float:
    """Seconds for a fixed pure-Python loop of 5,000,000 additions (median of 3).

    Machines of the same description differ up to 3× in core speed: this figure,
    printed beside the results, says which kind of machine measured them.
    """

    def loop() -> int:
        total = 0
        for i in range(5_000_000):
            total += i % 7
        return total

    seconds = []
    for _ in range(3):
        started = time.perf_counter()
        loop()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def load_average() -> float:
    """The one-minute load average: other work competing for the cores."""
    return os.getloadavg()[0]
