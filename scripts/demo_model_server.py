#!/usr/bin/env python3
"""Demo model server for pqproxy: a small TF-Serving-REST-compatible server.

Serves TF Serving's classic example model half_plus_two (y = 0.5 * x + 2,
elementwise) so `make run` shows a real prediction coming back through the
proxy, with the same URLs and JSON shapes as TF Serving:

  GET  /v1/models/<name>                  model status
  GET  /v1/models/<name>/metadata         signature_def
  POST /v1/models/<name>:predict          {"instances": [...]} -> {"predictions": [...]}
                                          {"inputs": ...}      -> {"outputs": ...}
  POST /v1/models/<name>:stream           LLM-style token stream (text/event-stream),
                                          body {"max_tokens": 16, "interval_ms": 50}
  GET  /healthz                           {"status": "ok"}

(/v1/models/<name>/versions/1... is accepted too.) Standard library only.

--model-dir DIR serves the model's weights from DIR/<version>/weights.json
({"slope": 0.5, "intercept": 2.0}, the highest version) instead of the
built-in ones, and refuses to start without them: the sealed demo model
(scripts/seal-demo-model.sh) is such a directory, opened by
`pqproxy open-model` before this server starts.
"""
import argparse
import json
import math
import os
import re
import signal
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 16 * 1024 * 1024
MAX_CHUNK_LINE = 4096
MAX_DEPTH = 32
MAX_TOKENS = 4096
MAX_INTERVAL_MS = 1000
VERSION = "1"
SLOPE, INTERCEPT = 0.5, 2.0   # half_plus_two; --model-dir reads them from weights.json

TOKENS = ("Post", "-quantum", " TLS", " keeps", " this", " prediction", " private", " even",
          " against", " a", " future", " quantum", " computer", ".", " ML", "-KEM", " and",
          " X25519", " together", " protect", " the", " key", " exchange", ".")

ROUTE = re.compile(r"^/v1/models/([^/:]+)(?:/versions/(\d+))?(/metadata|:predict|:stream)?$")


class BadRequest(Exception):
    def __init__(self, msg, status=400):
        super().__init__(msg)
        self.status = status


def half_plus_two(x, depth=0):
    """0.5 * x + 2 for a number or a (nested) list; returns (value, shape)."""
    if depth > MAX_DEPTH:
        raise BadRequest("input nested too deeply")
    if isinstance(x, bool) or x is None or isinstance(x, (str, dict)):
        raise BadRequest(f"Expected a number, got: {json.dumps(x)[:40]}")
    if isinstance(x, (int, float)):
        y = SLOPE * float(x) + INTERCEPT   # OverflowError for huge ints is caught by the caller
        if not math.isfinite(y):
            raise BadRequest("input is not a finite number")
        return y, ()
    out, shape = [], None
    for item in x:
        y, s = half_plus_two(item, depth + 1)
        if shape is not None and s != shape:
            raise BadRequest("Tensor shape mismatch: all instances must have the same shape")
        shape = s
        out.append(y)
    return out, (len(x),) + (shape or ())


def metadata(name):
    # unknown_rank: the demo takes a scalar or any (regular) nesting of lists.
    tensor = lambda n: {"dtype": "DT_FLOAT", "name": f"{n}:0",  # noqa: E731
                        "tensor_shape": {"dim": [], "unknown_rank": True}}
    sig = {"inputs": {"x": tensor("x")}, "outputs": {"y": tensor("y")},
           "method_name": "tensorflow/serving/predict"}
    return {"model_spec": {"name": name, "signature_name": "", "version": VERSION},
            "metadata": {"signature_def": {"signature_def": {"serving_default": sig}}}}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"        # keep-alive
    server_version = "pqproxy-demo-model/1"
    sys_version = ""
    timeout = 120                         # idle keep-alive connections do not pin threads forever

    # --- plumbing ------------------------------------------------------------------------
    def log_message(self, fmt, *args):
        if not self.server.quiet:
            sys.stderr.write(f"{self.address_string()} [{self.log_date_time_string()}] "
                             f"{fmt % args}\n")

    def send_json(self, status, obj, close=False):
        body = (json.dumps(obj) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_error(self, code, message=None, explain=None):
        # http.server's own errors (bad request line, 501, 414, ...) as JSON like the rest.
        # A garbled request line parses as HTTP/0.9, which would get no status line.
        if self.request_version == "HTTP/0.9":
            self.request_version = "HTTP/1.1"
        self.send_json(code, {"error": message or self.responses.get(code, ("error",))[0]},
                       close=True)

    def read_body(self):
        """The request body, de-chunked. Raises BadRequest; the caller then closes
        the connection, since the body's end is unknown."""
        te = self.headers.get_all("Transfer-Encoding") or []
        cl = self.headers.get_all("Content-Length") or []
        if te:
            codings = [c.strip().lower() for v in te for c in v.split(",")]
            if codings != ["chunked"]:
                raise BadRequest(f"unsupported Transfer-Encoding: {', '.join(te)}", 501)
            if cl:
                raise BadRequest("both Content-Length and Transfer-Encoding")
            return self.read_chunked()
        if not cl:
            return b""
        if len(set(v.strip() for v in cl)) != 1 or not cl[0].strip().isdigit():
            raise BadRequest("invalid Content-Length")
        n = int(cl[0])
        if n > MAX_BODY:
            raise BadRequest(f"request body over {MAX_BODY} bytes", 413)
        body = self.rfile.read(n)
        if len(body) != n:
            raise BadRequest("request body shorter than Content-Length")
        return body

    def read_line(self):
        line = self.rfile.readline(MAX_CHUNK_LINE + 1)
        if len(line) > MAX_CHUNK_LINE or not line.endswith(b"\r\n"):
            raise BadRequest("malformed chunked body")
        return line[:-2]

    def read_chunked(self):
        parts, total = [], 0
        while True:
            size_s = self.read_line().split(b";", 1)[0].strip()
            if not size_s or not all(c in b"0123456789abcdefABCDEF" for c in size_s):
                raise BadRequest("malformed chunk size")
            size = int(size_s, 16)
            if size == 0:
                break
            total += size
            if total > MAX_BODY:
                raise BadRequest(f"request body over {MAX_BODY} bytes", 413)
            data = self.rfile.read(size)
            if len(data) != size or self.rfile.read(2) != b"\r\n":
                raise BadRequest("malformed chunked body")
            parts.append(data)
        while self.read_line():   # trailer fields: read and ignored
            pass
        return b"".join(parts)

    # --- dispatch --------------------------------------------------------------------------
    def do_GET(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def dispatch(self):
        if self.request_version == "HTTP/0.9":   # "GET /": no headers, nothing to serve
            return self.send_error(400, "HTTP/0.9 is not supported")
        try:
            body = self.read_body()
        except BadRequest as e:
            return self.send_json(e.status, {"error": str(e)}, close=True)
        except (OSError, ValueError) as e:
            return self.send_json(400, {"error": f"cannot read request body: {e}"}, close=True)
        try:
            self.route(body)
        except BadRequest as e:
            self.send_json(e.status, {"error": str(e)})
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def route(self, body):
        path = self.path.split("?", 1)[0]
        if path == "/healthz" and self.command == "GET":
            return self.send_json(200, {"status": "ok"})
        m = ROUTE.match(path)
        if not m:
            raise BadRequest(f"Malformed request: {self.command} {path}", 404)
        name, version, action = m.group(1), m.group(2), m.group(3) or ""
        want = {"": "GET", "/metadata": "GET", ":predict": "POST", ":stream": "POST"}[action]
        if self.command != want:
            raise BadRequest(f"Malformed request: {self.command} {path}", 404)
        if name != self.server.model or version not in (None, VERSION):
            spec = f"Specific({name}, {version})" if version else f"Latest({name})"
            raise BadRequest(f"Servable not found for request: {spec}", 404)
        if action == "":
            return self.send_json(200, {"model_version_status": [{
                "version": VERSION, "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""}}]})
        if action == "/metadata":
            return self.send_json(200, metadata(name))
        req = parse_json_object(body, allow_empty=(action == ":stream"))
        if action == ":predict":
            return self.send_json(200, predict(req))
        return self.stream(req)

    def stream(self, req):
        n = int_field(req, "max_tokens", 16, 0, MAX_TOKENS)
        interval = int_field(req, "interval_ms", 50, 0, MAX_INTERVAL_MS)
        chunked = self.request_version == "HTTP/1.1"
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:   # HTTP/1.0 has no chunked: the end of the stream is the close
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()

        def emit(data):
            # Our own chunk framing and a flush per event, so every token leaves now.
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
            self.wfile.flush()

        for i in range(n):
            if i:
                time.sleep(interval / 1000)
            ev = json.dumps({"token": TOKENS[i % len(TOKENS)], "index": i})
            emit(f"data: {ev}\n\n".encode())
        emit(b"data: [DONE]\n\n")
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()


def _reject_constant(name):
    raise BadRequest(f"JSON Parse error: {name} is not valid JSON")


def parse_json_object(body, allow_empty=False):
    if allow_empty and not body.strip():
        return {}
    try:
        obj = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise BadRequest("JSON Parse error: body is not UTF-8")
    except json.JSONDecodeError as e:
        raise BadRequest(f"JSON Parse error: {e.msg}. at offset: {e.pos}")
    except RecursionError:
        raise BadRequest("JSON Parse error: nested too deeply")
    if not isinstance(obj, dict):
        raise BadRequest("JSON Value: is not an object")
    return obj


def predict(req):
    has_inst, has_inputs = "instances" in req, "inputs" in req
    if has_inst and has_inputs:
        raise BadRequest("Not allowed to mix 'inputs' and 'instances' keys")
    if not has_inst and not has_inputs:
        raise BadRequest("Missing 'inputs' or 'instances' key")
    try:
        if has_inst:   # row format
            inst = req["instances"]
            if not isinstance(inst, list):
                raise BadRequest("Expecting 'instances' to be an list/array")
            return {"predictions": half_plus_two(inst)[0]}
        # Columnar format: TF Serving answers with "outputs" (a named input
        # {"x": ...} is accepted as the model's only input).
        x = req["inputs"]
        if isinstance(x, dict):
            if set(x) != {"x"}:
                raise BadRequest("Expected input named 'x'")
            x = x["x"]
        return {"outputs": half_plus_two(x)[0]}
    except OverflowError:
        raise BadRequest("input is not a finite float")


def int_field(req, key, default, lo, hi):
    v = req.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise BadRequest(f"'{key}' must be an integer in [{lo}, {hi}]")
    return v


def load_model_dir(d):
    """(version, slope, intercept) from d/<highest version>/weights.json; exits on error."""
    try:
        versions = sorted(int(v) for v in os.listdir(d) if v.isdigit() and os.path.isdir(os.path.join(d, v)))
    except OSError as e:
        sys.exit(f"demo_model_server: --model-dir {d}: {e.strerror}")
    if not versions:
        sys.exit(f"demo_model_server: --model-dir {d}: no version directory (expected {d}/1/weights.json)")
    path = os.path.join(d, str(versions[-1]), "weights.json")
    try:
        with open(path) as f:
            w = json.load(f)
    except (OSError, ValueError) as e:
        sys.exit(f"demo_model_server: {path}: {e}")
    nums = [w.get(k) if isinstance(w, dict) else None for k in ("slope", "intercept")]
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) for v in nums):
        sys.exit(f"demo_model_server: {path}: expected {{\"slope\": number, \"intercept\": number}}")
    return str(versions[-1]), float(nums[0]), float(nums[1])


class Server(ThreadingHTTPServer):
    daemon_threads = True   # a stuck client never blocks shutdown
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser(description="pqproxy demo model server (TF Serving REST API)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8501)
    ap.add_argument("--model", default="half_plus_two", help="model name to serve")
    ap.add_argument("--quiet", action="store_true", help="no per-request log lines")
    ap.add_argument("--model-dir", help="serve DIR/<version>/weights.json (an opened sealed model)")
    args = ap.parse_args()
    global VERSION, SLOPE, INTERCEPT
    if args.model_dir:
        VERSION, SLOPE, INTERCEPT = load_model_dir(args.model_dir)
    try:
        srv = Server((args.host, args.port), Handler)
    except OSError as e:
        sys.exit(f"demo_model_server: cannot listen on {args.host}:{args.port}: {e.strerror}")
    srv.model, srv.quiet = args.model, args.quiet
    # SIGTERM -> SystemExit out of serve_forever -> the listening socket is closed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"demo model server: http://{args.host}:{srv.server_address[1]}/v1/models/{args.model}"
          f" (y = {SLOPE:g} * x + {INTERCEPT:g}, version {VERSION})", file=sys.stderr, flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()


if __name__ == "__main__":
    main()
