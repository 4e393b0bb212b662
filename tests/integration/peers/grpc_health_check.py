#!/usr/bin/env python3
"""One gRPC health call (grpc.health.v1.Health) with Debian's python3-grpcio
over h2c, for test_ops.py: prints {"code": <grpc status name>, "response":
<hex of the response message> | null, "details": ...} as one JSON line.

  grpc_health_check.py PORT [--service NAME] [--method Check|Watch] [--raw HEX]

--raw sends those bytes as the request message instead of a
HealthCheckRequest naming --service."""
import argparse
import json

import grpc


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("--service", default="")
    ap.add_argument("--method", default="Check")
    ap.add_argument("--raw")
    a = ap.parse_args()
    svc = a.service.encode()
    req = bytes.fromhex(a.raw) if a.raw is not None else (b"\x0a" + bytes([len(svc)]) + svc if svc else b"")
    with grpc.insecure_channel(f"127.0.0.1:{a.port}") as ch:
        call = ch.unary_unary(f"/grpc.health.v1.Health/{a.method}",
                              request_serializer=lambda b: b, response_deserializer=lambda b: b)
        try:
            resp = call(req, timeout=10)
            out = {"code": "OK", "response": resp.hex(), "details": None}
        except grpc.RpcError as e:
            out = {"code": e.code().name, "response": None, "details": e.details()}
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
