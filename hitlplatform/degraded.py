"""Work done in a degraded way because Redis was unreachable, counted per kind.

With Redis down the API keeps storing and routing items: the throttle falls
back to a per-process limit (``throttle``) and jobs that could not be enqueued
(``enqueue``) wait in the database for the sweeps. Each occurrence adds one to
``COUNTS[kind]`` (this process) and to ``hitl_degraded_operations_total`` on
``/metrics`` (summed over a machine's processes in multiprocess mode), and
logs a warning, at most once a minute per kind so an outage does not flood the
log.
"""

import logging
import threading
import time
from collections import Counter

from hitlplatform.metrics.instruments import degraded_observe

logger = logging.getLogger(__name__)

COUNTS: Counter[str] = Counter()
LOG_EVERY_SECONDS = 60.0
_lock = threading.Lock()
_logged_at: dict[str, float] = {}


def degraded_record(*, kind: str, message: str) -> None:
    """Count one degraded operation of ``kind`` and log ``message`` (rate-limited)."""
    now = time.monotonic()
    degraded_observe(kind=kind)
    with _lock:
        COUNTS[kind] += 1
        count = COUNTS[kind]
        last = _logged_at.get(kind)
        if last is not None and now - last < LOG_EVERY_SECONDS:
            return
        _logged_at[kind] = now
    logger.warning("Degraded (%s, %d so far in this process): %s", kind, count, message)
