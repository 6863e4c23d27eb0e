"""Event ids: UUIDv7 strings, unique and sortable by time of creation."""

import os
import random
import threading
import time
import uuid

_lock = threading.Lock()
# Random bits from a private generator seeded by the OS (and seeded again in a forked child):
# os.urandom per id is a system call that gives up the GIL, and a batch of 500 ids then
# queues behind every other busy thread 500 times.
_rng = random.Random(os.urandom(32))
os.register_at_fork(after_in_child=lambda: _rng.seed(os.urandom(32)))
_last_ms = 0
_counter = 0


def new_event_id() -> str:
    """A new UUIDv7 (RFC 9562): 48-bit milliseconds, then a counter and random bits."""
    global _last_ms, _counter
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            # Same (or an earlier, clock-stepped) millisecond: keep ids monotonic.
            ms = _last_ms
            _counter += 1
            if _counter >= 1 << 12:
                ms += 1
                _counter = 0
        else:
            _counter = _rng.getrandbits(11)  # leave room to count up
        _last_ms = ms
        counter = _counter
        rand = _rng.getrandbits(62)
    value = (ms << 80) | (0x7 << 76) | (counter << 64) | (0b10 << 62) | rand
    return str(uuid.UUID(int=value))
