"""A test server speaking the embedding APIs of OpenAI (`/v1`), Ollama (`/api/embed`),
VoyageAI (`/voyage/v1`), Cohere (`/cohere/v2/embed`) and Azure OpenAI (`/azure/openai/
deployments/<deployment>/embeddings?api-version=…`), each with its own request, answer
and error shapes and way of sending the key.

Vectors are derived from the input text (SHA-256, L2-normalised), so a test can
compute what any input must embed to. Switches make it misbehave the way the real
services do: 429 with Retry-After, 500, a hang past the client's timeout, the wrong
dimension, a 400 for a request holding a given input, values out of f32's range, or an
answer of 100 MB.
"""

import hashlib
import json
import re
import math
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


def protocol(path):
    """The service a request's path speaks, as this server mounts them."""
    if path == "/v1/embeddings":
        return "openai"
    if path == "/api/embed":
        return "ollama"
    if path == "/voyage/v1/embeddings":
        return "voyage"
    if path == "/cohere/v2/embed":
        return "cohere"
    if protocol_deployment(path):
        return "azure"
    return None


def protocol_deployment(path):
    m = re.fullmatch(r"/azure/openai/deployments/([^/]+)/embeddings", path)
    return m and m.group(1)


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



class QuietServer(ThreadingHTTPServer):
    """A client that hangs up before its answer is written (a worker stopped with a
    request in flight) is not the server's error: it is not printed."""

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)

class Embedder:
    def __init__(self, api_key="test-key", dimensions=8, fixed=False, dense=False):
        """`fixed`: every input embeds to the same unit vector, answered from a
        prepared text (the zero-cost embedder of the benchmark); `dense`: that vector
        has every component set, written with as many digits as OpenAI writes them,
        instead of (1, 0, 0, …)."""
        self.api_key = api_key
        self.default_dimensions = dimensions
        self.fixed = fixed
        self.dense = dense
        self._fixed_items = {}
        self.lock = threading.Lock()
        self.reset()
        self.server = QuietServer(("127.0.0.1", 0), self._handler())
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
    def voyage_url(self):
        return f"http://127.0.0.1:{self.port}/voyage/v1"

    @property
    def cohere_url(self):
        return f"http://127.0.0.1:{self.port}/cohere"

    @property
    def azure_url(self):
        return f"http://127.0.0.1:{self.port}/azure"

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
            self.requests = []      # (arrival time, path, status: None until answered, inputs)
            self.bodies = []        # (path, request body, headers)
            self.azure_deployments = {"text-embedding-3-small"}

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
            # Headers and body go out in separate writes: without this, Nagle's
            # algorithm holds the body for the client's delayed ACK (40 ms).
            disable_nagle_algorithm = True
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _send(self, status, body, headers=()):
                self._send_raw(status, json.dumps(body).encode(), headers)

            def _send_raw(self, status, data, headers=()):
                self._answered(status)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers:
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _error(self, proto, status, message, kind="invalid_request_error", code=None, headers=()):
                """An error as each service shapes it."""
                if proto == "openai":
                    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
                elif proto == "azure":
                    body = {"error": {"code": code or str(status), "message": message}}
                elif proto == "voyage":
                    body = {"detail": message}
                elif proto == "cohere":
                    body = {"id": "4f5d8b1e-0000-4000-8000-000000000000", "message": message}
                else:
                    body = {"error": message}
                self._send(status, body, headers)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    body = None
                url = urlsplit(self.path)
                proto = protocol(url.path)
                inputs = (body or {}).get("texts" if proto == "cohere" else "input")
                if isinstance(inputs, str):
                    inputs = [inputs]
                # Recorded as it arrives, its status before its answer goes out: a client
                # that has its answer finds its request in `requests` with its status.
                with embedder.lock:
                    self.log, self.entry = embedder.requests, len(embedder.requests)
                    embedder.requests.append((time.monotonic(), self.path, None, len(inputs or [])))
                    embedder.bodies.append((self.path, body, dict(self.headers)))
                self._answered(self._answer(proto, url, body, inputs))

            def _answered(self, status):
                with embedder.lock:
                    arrived, path, before, inputs = self.log[self.entry]
                    if before is None:
                        self.log[self.entry] = (arrived, path, status, inputs)

            def _authorized(self, proto):
                if not embedder.api_key or proto == "ollama":
                    return True
                if proto == "azure":
                    return self.headers.get("api-key") == embedder.api_key
                return self.headers.get("Authorization") == f"Bearer {embedder.api_key}"

            def _answer(self, proto, url, body, inputs):
                if embedder.delay:
                    time.sleep(embedder.delay)
                if proto is None:
                    self._send(404, {"error": "not found"})
                    return 404
                if proto == "azure":
                    if "api-version" not in parse_qs(url.query):
                        self._error(proto, 404, "Resource not found", code="404")
                        return 404
                    if protocol_deployment(url.path) not in embedder.azure_deployments:
                        self._error(proto, 404, "The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again.", code="DeploymentNotFound")
                        return 404
                if not self._authorized(proto):
                    message = {"openai": "Incorrect API key provided.",
                               "azure": "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.",
                               "voyage": "Provided API key is invalid.",
                               "cohere": "invalid api token"}[proto]
                    self._error(proto, 401, message, code="invalid_api_key")
                    return 401
                if body is None or not isinstance(inputs, list) or not all(isinstance(i, str) for i in inputs):
                    self._error(proto, 400, "'input' must be a string or an array of strings")
                    return 400
                if proto == "cohere":
                    if len(inputs) > 96:
                        self._error(proto, 400, f"invalid request: total number of texts must be at most 96 - received {len(inputs)}")
                        return 400
                    if body.get("input_type") not in ("search_document", "search_query", "classification", "clustering", "image"):
                        self._error(proto, 400, "invalid request: valid input_type must be provided with the provided model")
                        return 400
                if proto == "voyage" and len(inputs) > 1000:
                    self._error(proto, 400, "The batch size limit is 1000.")
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
                    self._error(proto, 429, "Rate limit reached for requests", "requests", "rate_limit_exceeded", headers)
                    return 429
                if mode == "error500" or (embedder.crash and any(embedder.crash in i for i in inputs)):
                    self._error(proto, 500, "The server had an error while processing your request.", "server_error")
                    return 500
                if embedder.reject and any(embedder.reject in i for i in inputs):
                    self._error(proto, 400, "Invalid input: the input contains content that cannot be embedded.")
                    return 400
                dims = (body.get("dimensions") or body.get("output_dimension") or embedder.default_dimensions)
                if mode == "wrong_dims":
                    dims += 1
                if mode == "fewer":  # one embedding fewer than the inputs
                    inputs = inputs[:-1]
                if embedder.fixed and proto in ("openai", "ollama"):
                    self._send_raw(200, embedder._fixed_answer(proto, inputs, dims, body.get("model")))
                    return 200
                # VoyageAI and Cohere embed a query differently from a document.
                kind = body.get("input_type")
                prefix = "query: " if kind in ("query", "search_query") else ""
                vectors = [[1e39] * dims if embedder.overflow and embedder.overflow in i else vector(prefix + i, dims)
                           for i in inputs]
                tokens = sum(len(i.split()) for i in inputs)
                if proto == "ollama":
                    self._send(200, {"model": body.get("model"), "embeddings": vectors,
                                     "total_duration": 1000, "load_duration": 10, "prompt_eval_count": len(inputs)})
                elif proto == "cohere":
                    self._send(200, {"id": "5807ee2e-0000-4000-8000-000000000000",
                                     "embeddings": {"float": vectors}, "texts": inputs,
                                     "meta": {"api_version": {"version": "2"},
                                              "billed_units": {"input_tokens": tokens}},
                                     "response_type": "embeddings_by_type"})
                else:
                    usage = ({"total_tokens": tokens} if proto == "voyage"
                             else {"prompt_tokens": tokens, "total_tokens": tokens})
                    self._send(200, {
                        "object": "list",
                        "data": [{"object": "embedding", "index": n, "embedding": v} for n, v in enumerate(vectors)],
                        "model": body.get("model"),
                        "usage": usage,
                    })
                return 200

        return Handler

    def _fixed_answer(self, proto, inputs, dims, model):
        """The prepared vector for every input, as OpenAI or Ollama writes a response."""
        v = self._fixed_items.get(dims)
        if v is None:
            if self.dense:
                v = "[" + ",".join("%.9g" % x for x in vector("fixed", dims)) + "]"
            else:
                v = json.dumps([1] + [0] * (dims - 1))  # a unit vector, short as JSON
            self._fixed_items[dims] = v
        tokens = sum(len(i) for i in inputs) // 4
        if proto == "ollama":
            return ('{"model":' + json.dumps(model) + ',"embeddings":[' + ",".join([v] * len(inputs)) +
                    '],"total_duration":1000,"load_duration":10,"prompt_eval_count":%d}' % tokens).encode()
        return ('{"object":"list","data":[' +
                ",".join('{"object":"embedding","index":%d,"embedding":%s}' % (n, v) for n in range(len(inputs))) +
                '],"model":' + json.dumps(model) +
                ',"usage":{"prompt_tokens":%d,"total_tokens":%d}}' % (tokens, tokens)).encode()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
