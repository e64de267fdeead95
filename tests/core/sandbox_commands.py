"""A job module that takes commands (``python -m sandbox_commands``, for the Job tests)."""

from __future__ import annotations

import json
import os
import time

from qimeng.core.command_job import serve


def handle(payload: dict, next_command):
    yield {"ready": payload["name"]}
    while (command := next_command()) is not None:
        if command["cmd"] == "echo":
            yield {"echo": command["value"]}
        elif command["cmd"] == "spin":  # burns CPU for a while, then answers
            end = time.process_time() + command["s"]
            while time.process_time() < end:
                pass
            yield {"spun": True}
        elif command["cmd"] == "answer_twice":  # an extra answer written ahead of the next command
            yield {"echo": 1}
            yield {"echo": 2}
        elif command["cmd"] == "forge":  # a line without the nonce on every descriptor
            for fd in range(3, 32):
                try:
                    os.write(fd, json.dumps({"nonce": "0", "message": {"echo": "forged"}}).encode() + b"\n")
                except OSError:
                    pass
            yield {"echo": "real"}


if __name__ == "__main__":
    serve(handle)
