"""moto's server, as `moto_server` runs it, recording when each request it serves begins
and ends (system-wide monotonic clock): `GET /__trace` answers them as JSON and forgets
them. The benchmark reads it to see how many of a client's requests the server had in
hand over a run."""

import json
import threading
import time

import moto.server

_trace, _lock = [], threading.Lock()


def _traced(app):
    def serve(environ, start_response):
        if environ.get("PATH_INFO") == "/__trace":
            with _lock:
                body = json.dumps(_trace).encode()
                _trace.clear()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        began = time.monotonic()
        answer = list(app(environ, start_response))
        with _lock:
            _trace.append((began, time.monotonic(), environ.get("REQUEST_METHOD")))
        return answer
    return serve


_run_simple = moto.server.run_simple
moto.server.run_simple = lambda host, port, app, **options: _run_simple(host, port, _traced(app), **options)

if __name__ == "__main__":
    moto.server.main()
