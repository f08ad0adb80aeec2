"""What the lock benchmarks share: a thread that polls the server every few milliseconds and turns what it
sees into intervals (a lock held, a wait), each from the first sample that saw it to the last one."""

from __future__ import annotations

import threading
import time
from typing import Any

from creatorstays_infra.ops import database


class IntervalSampler(threading.Thread):
    """Subclasses return {key: detail} from sample(conn) for what is going on now; interval_closed(key,
    seconds, detail) is called when a key is no longer seen (or at stop), with the interval's length
    (last seen - first seen + one sampling period, so a single sighting counts as one period)."""

    def __init__(self, target: database.Target, period_seconds: float):
        super().__init__(daemon=True)
        self.target = target
        self.period = period_seconds
        self.stop_event = threading.Event()
        self._active: dict[
            Any, tuple[float, float, Any]
        ] = {}  # key -> (first seen, last seen, latest detail)

    def sample(self, conn) -> dict[Any, Any]:
        raise NotImplementedError

    def interval_closed(self, key: Any, seconds: float, detail: Any) -> None:
        raise NotImplementedError

    def run(self) -> None:
        with self.target.connect(autocommit=True) as conn:
            while not self.stop_event.is_set():
                now = time.monotonic()
                seen = self.sample(conn)
                for key, detail in seen.items():
                    first = self._active.get(key, (now, now, None))[0]
                    self._active[key] = (first, now, detail)
                for key in [k for k in self._active if k not in seen]:  # ended since the last sample
                    self._close(key)
                time.sleep(self.period)
            for key in list(self._active):
                self._close(key)

    def _close(self, key: Any) -> None:
        first, last, detail = self._active.pop(key)
        self.interval_closed(key, last - first + self.period, detail)
