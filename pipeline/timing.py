"""Stage timers: every stage adds its milliseconds to a dict under its name (`FaceEdit.timings_ms`)."""
from __future__ import annotations

import time
from contextlib import contextmanager


@contextmanager
def timer(store: dict, key: str):
    t = time.perf_counter()
    yield
    store[key] = store.get(key, 0.0) + (time.perf_counter() - t) * 1000
