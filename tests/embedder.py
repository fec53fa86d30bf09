"""A test server speaking OpenAI's and Ollama's embedding APIs.

Vectors are derived from the input text (SHA-256, L2-normalised), so a test can
compute what any input must embed to. Switches make it misbehave the way the real
services do: 429 with Retry-After, 500, a hang past the client's timeout, the wrong
dimension, a 400 for a request holding a given input, values out of f32's range, or an
answer of 100 MB.
"""

import hashlib
import json
import math
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def vector(text, dimensions):
    """The embedding the server returns for `text`."""
    values = []
    counter = 0
    while len(values) < dimensions:
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        values.extend(v / 2**31 for v in struct.unpack("<8i", digest))
        counter += 1
    values = values[:dimensions]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


class Embedder:
    def __init__(self, api_key="test-key", dimensions=8, fixed=False):
        """`fixed`: every input embeds to the same unit vector, answered from a
        prepared text (the zero-cost embedder of the benchmark)."""
        self.api_key = api_key
        self.default_dimensions = dimensions
        self.fixed = fixed
        self._fixed_items = {}
        self.lock = threading.Lock()
        self.reset()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def openai_url(self):
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def ollama_url(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def key_setting(self):
        """The server setting that trusts this server's OpenAI endpoint with the
        server's API key."""
        return f"ai_loader.api_key_endpoints = '{self.openai_url}'"

    def reset(self):
        with self.lock:
            self.mode = "ok"        # ok | error500 | rate_limit | hang | wrong_dims | huge | fewer
            self.mode_left = None   # requests left in that mode; None: until changed
            self.retry_after = 1
            self.reject = None      # a request with an input containing this gets a 400
            self.overflow = None    # an input containing this embeds to 1e39s (infinite as f32)
            self.crash = None       # a request with an input containing this gets a 500
            self.delay = 0.0        # seconds before every answer
            self.requests = []      # (time, path, status, number of inputs)

    def set(self, mode, count=None, retry_after=1):
        with self.lock:
            self.mode, self.mode_left, self.retry_after = mode, count, retry_after

    def statuses(self):
        with self.lock:
            return [r[2] for r in self.requests]

    def _next_mode(self):
        with self.lock:
            mode = self.mode
            if self.mode_left is not None:
                self.mode_left -= 1
                if self.mode_left <= 0:
                    self.mode, self.mode_left = "ok", None
            return mode

    def _handler(self):
        embedder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _send(self, status, body, headers=()):
                self._send_raw(status, json.dumps(body).encode(), headers)

            def _send_raw(self, status, data, headers=()):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers:
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _openai_error(self, status, message, kind, code=None, headers=()):
                self._send(status, {"error": {"message": message, "type": kind, "param": None, "code": code}}, headers)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    body = None
                openai = self.path == "/v1/embeddings"
                ollama = self.path == "/api/embed"
                inputs = (body or {}).get("input")
                if isinstance(inputs, str):
                    inputs = [inputs]
                status = self._answer(openai, ollama, body, inputs)
                with embedder.lock:
                    embedder.requests.append((time.monotonic(), self.path, status, len(inputs or [])))

            def _answer(self, openai, ollama, body, inputs):
                if embedder.delay:
                    time.sleep(embedder.delay)
                if not (openai or ollama):
                    self._send(404, {"error": "not found"})
                    return 404
                if openai and embedder.api_key and self.headers.get("Authorization") != f"Bearer {embedder.api_key}":
                    self._openai_error(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
                    return 401
                if body is None or not isinstance(inputs, list) or not all(isinstance(i, str) for i in inputs):
                    if openai:
                        self._openai_error(400, "'input' must be a string or an array of strings", "invalid_request_error")
                    else:
                        self._send(400, {"error": "invalid input type"})
                    return 400
                mode = embedder._next_mode()
                if mode == "hang":
                    time.sleep(30)
                    return 0
                if mode == "huge":  # 100 MB, streamed without a length, then the connection closed
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.close_connection = True
                    try:
                        self.wfile.write(b'{"object": "list", "padding": "')
                        for _ in range(100):
                            self.wfile.write(b" " * (1 << 20))
                        self.wfile.write(b'", "data": []}')
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                    return 200
                if mode == "rate_limit":
                    headers = [("Retry-After", str(embedder.retry_after))]
                    if openai:
                        self._openai_error(429, "Rate limit reached for requests", "requests", "rate_limit_exceeded", headers)
                    else:
                        self._send(429, {"error": "too many requests"}, headers)
                    return 429
                if mode == "error500" or (embedder.crash and any(embedder.crash in i for i in inputs)):
                    if openai:
                        self._openai_error(500, "The server had an error while processing your request.", "server_error")
                    else:
                        self._send(500, {"error": "model runner crashed"})
                    return 500
                if embedder.reject and any(embedder.reject in i for i in inputs):
                    if openai:
                        self._openai_error(400, "Invalid input: the input contains content that cannot be embedded.", "invalid_request_error")
                    else:
                        self._send(400, {"error": "input cannot be embedded"})
                    return 400
                dims = body.get("dimensions") or embedder.default_dimensions
                if mode == "wrong_dims":
                    dims += 1
                if mode == "fewer":  # one embedding fewer than the inputs
                    inputs = inputs[:-1]
                if embedder.fixed and openai:
                    self._send_raw(200, embedder._fixed_answer(inputs, dims, body.get("model")))
                    return 200
                vectors = [[1e39] * dims if embedder.overflow and embedder.overflow in i else vector(i, dims)
                           for i in inputs]
                if openai:
                    tokens = sum(len(i.split()) for i in inputs)
                    self._send(200, {
                        "object": "list",
                        "data": [{"object": "embedding", "index": n, "embedding": v} for n, v in enumerate(vectors)],
                        "model": body.get("model"),
                        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
                    })
                else:
                    self._send(200, {"model": body.get("model"), "embeddings": vectors,
                                     "total_duration": 1000, "load_duration": 10, "prompt_eval_count": len(inputs)})
                return 200

        return Handler

    def _fixed_answer(self, inputs, dims, model):
        item = self._fixed_items.get(dims)
        if item is None:
            v = json.dumps([1] + [0] * (dims - 1))  # a unit vector, short as JSON
            item = self._fixed_items[dims] = '{"object":"embedding","index":%d,"embedding":' + v + "}"
        tokens = sum(len(i) for i in inputs) // 4
        return ('{"object":"list","data":[' + ",".join(item % n for n in range(len(inputs))) +
                '],"model":' + json.dumps(model) +
                ',"usage":{"prompt_tokens":%d,"total_tokens":%d}}' % (tokens, tokens)).encode()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
