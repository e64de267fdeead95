"""A real HTTP server on 127.0.0.1 speaking the OpenAI chat completions protocol, replaying scripted answers.

Each request to POST /v1/chat/completions takes the next item of the script:
  a str          answered with 200 and that text as the assistant message;
  ("status", N)  answered with status N and an OpenAI-style error body (Retry-After: 0 on 429);
  ("sleep", S)   answered after S seconds (a client with a shorter timeout sees a timeout).
Every request body and its headers are recorded. Token counts are the words of the prompt and of the
answer, so a test can add them up independently of the client.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def words(text: str) -> int:
    return len(text.split())


class FakeOpenAIServer:
    def __init__(self, script: list[Any]) -> None:
        self.script = list(script)
        self.requests: list[dict] = []
        self.headers: list[dict[str, str]] = []
        self.sent_tokens = [0, 0]  # prompt, completion: of the answers actually sent
        self.in_flight = self.max_in_flight = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server._lock:
                    server.requests.append(body)
                    server.headers.append({k.lower(): v for k, v in self.headers.items()})
                    item = server.script.pop(0) if server.script else ("status", 500)
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    self._answer(body, item)
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def _answer(self, body: dict, item: Any) -> None:
                if isinstance(item, tuple) and item[0] == "sleep":
                    time.sleep(item[1])
                    item = "late"
                if isinstance(item, tuple):
                    self._send(item[1], {"error": {"message": f"scripted {item[1]}", "type": "scripted"}},
                               {"Retry-After": "0"} if item[1] == 429 else {})
                    return
                prompt = sum(words(m["content"]) for m in body["messages"])
                with server._lock:
                    server.sent_tokens[0] += prompt
                    server.sent_tokens[1] += words(item)
                self._send(200, {
                    "id": f"chatcmpl-{len(server.requests)}", "object": "chat.completion", "created": 0,
                    "model": body["model"],
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": item},
                                 "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": prompt, "completion_tokens": words(item),
                              "total_tokens": prompt + words(item)}})

            def _send(self, status: int, payload: dict, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "FakeOpenAIServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
