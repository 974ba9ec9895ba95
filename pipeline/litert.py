"""Load a .tflite model on LiteRT (`ai-edge-litert`, a ~10 MB runtime, no TensorFlow), quietly:
the runtime prints "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." from C++ straight to
file descriptor 2 when tensors are allocated, which users took for an error. Only that call's
output is silenced; a failure still raises."""
from __future__ import annotations

import os
import threading
from pathlib import Path

_fd_lock = threading.Lock()  # fd 2 is process-wide: one silenced load at a time


def interpreter(path: str | Path, num_threads: int = 2):
    from ai_edge_litert.interpreter import Interpreter  # imported here so `import pipeline` stays cheap

    it = Interpreter(model_path=str(path), num_threads=num_threads)
    with _fd_lock:
        saved = os.dup(2)
        try:
            with open(os.devnull, "w") as null:
                os.dup2(null.fileno(), 2)
                it.allocate_tensors()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    return it
