#!/usr/bin/env python3
"""RFC 8446 conformance with hand-made ClientHellos over plain TCP: a key
share that must be refused gets illegal_parameter before any ServerHello
(all-zero, one, low-order and over-long X25519 shares; the X25519 half of a
hybrid share; an ML-KEM key failing the FIPS 203 modulus check; two shares
for one group; a share for a group not in supported_groups), and a client
whose key_share holds no usable share, or none at all, gets a
HelloRetryRequest when supported_groups lists an acceptable group. A broken
first flight (non-handshake records, zero-length or oversized records,
malformed extensions) gets its alert, never a bare close."""
import os
import socket
import ssl
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pxtest import check, check_eq, main, wait_until  # noqa: E402
import pxhelpers  # noqa: E402
from pxhelpers import Env  # noqa: E402

X25519, P256 = 0x001D, 0x0017
X25519MLKEM768, P256MLKEM768 = 0x11EC, 0x11EB
UNKNOWN = 0x1234
HRR_RANDOM = bytes.fromhex("CF21AD74E59A6111BE1D8C021E65B891C2A211167ABB8C5E079E09E2C8A8339C")
ALERTS = {10: "unexpected_message", 20: "bad_record_mac", 22: "record_overflow", 40: "handshake_failure", 47: "illegal_parameter", 50: "decode_error",
          71: "insufficient_security", 109: "missing_extension"}
ORDER8 = bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800")


def u16(v):
    return struct.pack(">H", v)


def ext(t, body):
    return u16(t) + u16(len(body)) + body


def vec16(items):
    b = b"".join(items)
    return u16(len(b)) + b


def client_hello(groups, shares, sigalgs_body=None, record_size=None, session_id=None,
                 record_version=b"\x03\x01", padding=0):
    """shares: [(group, key_exchange bytes)] in order. sigalgs_body replaces
    the signature_algorithms extension's body; record_size splits the
    handshake message into records of at most that many bytes; session_id:
    the legacy_session_id (default 32 random bytes, as compatibility-mode
    clients send); record_version: 0x0303 for a ClientHello after a
    HelloRetryRequest (RFC 8446 5.1); padding: that many zero bytes in a
    padding extension (RFC 7685)."""
    exts = [
        ext(0, vec16([b"\x00" + u16(9) + b"localhost"])),                     # server_name
        ext(43, b"\x02\x03\x04"),                                            # supported_versions: 1.3
        ext(10, vec16([u16(g) for g in groups])),                            # supported_groups
        ext(13, sigalgs_body if sigalgs_body is not None else
            vec16([u16(a) for a in (0x0403, 0x0804, 0x0805, 0x0503)])),      # signature_algorithms
        ext(51, vec16([u16(g) + u16(len(k)) + k for g, k in shares])),       # key_share
    ] + ([ext(21, bytes(padding))] if padding else [])                       # padding
    sid = os.urandom(32) if session_id is None else session_id
    body = (b"\x03\x03" + os.urandom(32) + bytes([len(sid)]) + sid +
            vec16([u16(0x1301), u16(0x1302), u16(0x1303)]) + b"\x01\x00" + vec16(exts))
    hs = b"\x01" + struct.pack(">I", len(body))[1:] + body
    size = record_size or len(hs)
    return b"".join(b"\x16" + record_version + u16(len(hs[i:i + size])) + hs[i:i + size]
                    for i in range(0, len(hs), size))


def exchange(port, hello, timeout=5.0):
    """Sends the ClientHello; returns ("alert", name) or ("hrr"|"server_hello", None),
    from the first record the server sends."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(hello)
        head = b""
        while len(head) < 5:
            chunk = s.recv(5 - len(head))
            if not chunk:
                return ("closed", None)
            head += chunk
        rtype, rlen = head[0], struct.unpack(">H", head[3:5])[0]
        body = b""
        while len(body) < rlen:
            chunk = s.recv(rlen - len(body))
            if not chunk:
                break
            body += chunk
    if rtype == 21:
        return ("alert", ALERTS.get(body[1], str(body[1])))
    if rtype == 22 and body[:1] == b"\x02":
        return ("hrr" if body[6:38] == HRR_RANDOM else "server_hello", None)
    return (f"record type {rtype}", None)


CCS = b"\x14\x03\x03\x00\x01\x01"


def read_flight(sock, idle=0.5, timeout=5.0):
    """The records the server sends until it goes quiet (idle seconds with
    nothing new) or closes: ([(type, body)], closed)."""
    buf, recs, closed = b"", [], False
    deadline = time.monotonic() + timeout
    sock.settimeout(idle)
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            closed = True
            break
        if not chunk:
            closed = True
            break
        buf += chunk
    while len(buf) >= 5:
        n = struct.unpack(">H", buf[3:5])[0]
        recs.append((buf[0], buf[5:5 + n]))
        buf = buf[5 + n:]
    return recs, closed


def hello_session_id(body):
    """legacy_session_id(_echo) of a ClientHello/ServerHello handshake message."""
    return body[39:39 + body[38]]


def x25519_share():
    k = bytearray(os.urandom(32))
    k[31] &= 0x7F
    return bytes(k)


def mlkem768_ek(bad=False):
    # 384 coefficient triples per vector, k = 3: coefficients 0x123 and 0x312 (< q)
    ek = bytearray(b"\x23\x31\x31" * 384 + os.urandom(32))
    if bad:
        ek[900], ek[901] = 0xFF, ek[901] | 0x0F      # one coefficient 0xfff >= q = 3329
    return bytes(ek)


def prefer_env(h):
    return Env(h, {"tls": {"groups": ["X25519MLKEM768", "SecP256r1MLKEM768", "X25519"]}})


def test_control_hellos_are_served(h):
    """The hand-made ClientHello is sound: good shares get a ServerHello."""
    e = prefer_env(h)
    check_eq(exchange(e.px.port, client_hello([X25519], [(X25519, x25519_share())])),
             ("server_hello", None), "X25519")
    check_eq(exchange(e.px.port, client_hello([X25519MLKEM768],
                                              [(X25519MLKEM768, mlkem768_ek() + x25519_share())])),
             ("server_hello", None), "X25519MLKEM768")


def test_bad_key_shares_get_illegal_parameter(h):
    e = prefer_env(h)
    cases = [
        ("all-zero X25519", [X25519], [(X25519, bytes(32))]),
        ("X25519 of value 1", [X25519], [(X25519, b"\x01" + bytes(31))]),
        ("X25519 of order 8", [X25519], [(X25519, ORDER8)]),
        ("over-long X25519", [X25519], [(X25519, x25519_share() + b"\x00")]),
        ("short X25519", [X25519], [(X25519, x25519_share()[:31])]),
        ("hybrid, zero X25519 half", [X25519MLKEM768],
         [(X25519MLKEM768, mlkem768_ek() + bytes(32))]),
        ("hybrid, ML-KEM modulus", [X25519MLKEM768],
         [(X25519MLKEM768, mlkem768_ek(bad=True) + x25519_share())]),
        ("hybrid, wrong length", [X25519MLKEM768],
         [(X25519MLKEM768, mlkem768_ek() + x25519_share() + b"\x00")]),
        ("two shares for one group", [X25519], [(X25519, x25519_share()), (X25519, x25519_share())]),
        ("share outside supported_groups", [X25519MLKEM768],
         [(X25519MLKEM768, mlkem768_ek() + x25519_share()), (X25519, x25519_share())]),
    ]
    for name, groups, shares in cases:
        check_eq(exchange(e.px.port, client_hello(groups, shares)), ("alert", "illegal_parameter"), name)
    check_eq(e.px.access_log_lines(), [], "nothing served")
    wait_until(lambda: e.px.proc.stderr_text().count("TLS handshake refused: ClientHello:") >= len(cases),
               timeout=5, msg="each refusal logged with its reason")


def test_no_usable_share_gets_hello_retry(h):
    e = prefer_env(h)
    # key_share holds only an unknown group; supported_groups lists a hybrid
    check_eq(exchange(e.px.port, client_hello([UNKNOWN, X25519MLKEM768], [(UNKNOWN, b"\x05" * 40)])),
             ("hrr", None), "unknown group's share only")
    check_eq(exchange(e.px.port, client_hello([X25519MLKEM768, X25519], [])), ("hrr", None),
             "empty key_share")
    # A bad share for a group the server does not pick is never used: retry.
    check_eq(exchange(e.px.port, client_hello([X25519MLKEM768, X25519], [(X25519, bytes(32))])),
             ("hrr", None), "the zero X25519 share is retried away, not used")
    # counted when the proxy sees the handshake end (the client's close): wait for it
    def hrrs():
        m = pxhelpers.metrics(e.px)
        return (m['pqproxy_tls_hello_retry_requests_total{reason="no_usable_share"}'],
                m['pqproxy_tls_hello_retry_requests_total{reason="to_hybrid"}'])
    wait_until(lambda: hrrs() == (2.0, 1.0), timeout=5,
               msg="HRRs counted by reason: 2 no_usable_share (unknown share only, empty "
                   "key_share), 1 to_hybrid (a classical share)")
    # Nothing acceptable in supported_groups at all: handshake_failure.
    check_eq(exchange(e.px.port, client_hello([UNKNOWN], [(UNKNOWN, b"\x05" * 40)])),
             ("alert", "handshake_failure"), "no group in common")


def test_malformed_first_flight_gets_an_alert(h):
    """Each refusal of a broken first flight says why in an alert, never a
    bare close."""
    e = prefer_env(h)
    good = client_hello([X25519], [(X25519, x25519_share())])
    cases = [
        ("empty alert record first", b"\x15\x03\x03\x00\x00", "unexpected_message"),
        ("application data first", b"\x17\x03\x03\x00\x01\x00", "unexpected_message"),
        ("zero-length handshake record", b"\x16\x03\x01\x00\x00" + good, "unexpected_message"),
        ("record over 2^14 bytes", b"\x16\x03\x01" + u16(16385) + b"\x01" + bytes(16384),
         "record_overflow"),
        ("not a ClientHello", b"\x16\x03\x01\x00\x04\x02\x00\x00\x00", "unexpected_message"),
        ("odd signature_algorithms length",
         client_hello([X25519], [(X25519, x25519_share())], sigalgs_body=u16(3) + b"\x04\x03\x08"),
         "decode_error"),
        ("signature_algorithms longer than its extension",
         client_hello([X25519], [(X25519, x25519_share())], sigalgs_body=u16(40) + b"\x04\x03"),
         "decode_error"),
    ]
    for name, data, alert in cases:
        check_eq(exchange(e.px.port, data), ("alert", alert), name)
    # A ClientHello as large as one record may carry (2^14 bytes), here
    # padded to a 16,168-byte record, is served: only a longer record is an
    # overflow (above), whatever it holds.
    def padded_to(n):     # a ClientHello record of n bytes (header aside)
        unpadded = len(client_hello([X25519], [(X25519, x25519_share())])) - 5
        hello = client_hello([X25519], [(X25519, x25519_share())], padding=n - unpadded - 4)
        check_eq(len(hello) - 5, n, "record length")
        return hello
    check_eq(exchange(e.px.port, padded_to(16168)), ("server_hello", None),
             "a 16,168-byte padded ClientHello")
    biggest = padded_to(16384)
    check_eq(exchange(e.px.port, biggest), ("server_hello", None), "a 2^14-byte ClientHello record")
    # A ClientHello split over many small records is fine.
    check_eq(exchange(e.px.port, client_hello([X25519], [(X25519, x25519_share())], record_size=7)),
             ("server_hello", None), "fragmented ClientHello")
    m = pxhelpers.metrics(e.px)
    check_eq(m['pqproxy_tls_handshakes_total{group="none",hybrid="false",cipher="none",'
               'result="malformed_hello"}'], float(len(cases)), "counted by reason")


def test_middlebox_ccs(h):
    """RFC 8446 D.4: with a non-empty legacy_session_id the ServerHello
    echoes it and one dummy change_cipher_spec follows it at once; with an
    empty one there is none."""
    e = prefer_env(h)
    for sid in (os.urandom(32), b"\x07"):
        with socket.create_connection(("127.0.0.1", e.px.port), timeout=5) as s:
            s.sendall(client_hello([X25519], [(X25519, x25519_share())], session_id=sid))
            recs, _ = read_flight(s)
        types = [t for t, _ in recs]
        check(len(types) >= 3 and types[:3] == [22, 20, 23], f"ServerHello, CCS, encrypted: {types}")
        check_eq(recs[1][1], b"\x01", "the CCS body")
        check_eq(types.count(20), 1, "exactly one CCS")
        check_eq(hello_session_id(recs[0][1]), sid, "the session id echoed")
    with socket.create_connection(("127.0.0.1", e.px.port), timeout=5) as s:
        s.sendall(client_hello([X25519], [(X25519, x25519_share())], session_id=b""))
        recs, _ = read_flight(s)
    types = [t for t, _ in recs]
    check(types[:2] == [22, 23] and 20 not in types, f"no CCS without a session id: {types}")
    check_eq(hello_session_id(recs[0][1]), b"", "the empty session id echoed")


def test_middlebox_ccs_after_hello_retry(h):
    """After a HelloRetryRequest the CCS comes once, right after it, and not
    again after the second ServerHello; the client's own dummy CCS between
    its ClientHellos is accepted, one with another body is refused."""
    e = prefer_env(h)
    groups = [X25519MLKEM768, X25519]
    hybrid = [(X25519MLKEM768, mlkem768_ek() + x25519_share())]
    for sid, client_ccs in ((os.urandom(32), CCS), (os.urandom(32), b""), (b"", b"")):
        with socket.create_connection(("127.0.0.1", e.px.port), timeout=5) as s:
            s.sendall(client_hello(groups, [(X25519, x25519_share())], session_id=sid))
            first, _ = read_flight(s)
            s.sendall(client_ccs + client_hello(groups, hybrid, session_id=sid,
                                                record_version=b"\x03\x03"))
            second, closed = read_flight(s)
        what = f"session id of {len(sid)} bytes, client CCS {client_ccs.hex() or 'none'}"
        types1, types2 = [t for t, _ in first], [t for t, _ in second]
        check_eq(first[0][1][6:38], HRR_RANDOM, f"{what}: a HelloRetryRequest")
        check_eq(hello_session_id(first[0][1]), sid, f"{what}: the HRR echoes the session id")
        check_eq(types1, [22, 20] if sid else [22], f"{what}: the first flight")
        check(types2[:2] == [22, 23] and 20 not in types2 and not closed,
              f"{what}: ServerHello without another CCS: {types2}")
        check_eq(hello_session_id(second[0][1]), sid, f"{what}: the ServerHello echoes it")
    with socket.create_connection(("127.0.0.1", e.px.port), timeout=5) as s:
        s.sendall(client_hello(groups, [(X25519, x25519_share())]))
        read_flight(s)
        s.sendall(b"\x14\x03\x03\x00\x01\x02")
        recs, closed = read_flight(s)
    check_eq([(t, ALERTS.get(b[1])) for t, b in recs], [(21, "unexpected_message")],
             "a CCS whose body is not 1")
    check(closed, "closed after the alert")


class BioClient:
    """Python's TLS 1.3 client over memory buffers on a plain socket: the
    test sees the client's records before they leave (and may send others
    in their place), and the client decrypts what the server answers, so an
    encrypted alert shows by name (ssl.SSLError "... alert record overflow")."""

    def __init__(self, port, ca):
        ctx = ssl.create_default_context(cafile=ca)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out, server_hostname="localhost")
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)

    def handshake(self):
        """Runs the handshake up to the client's last flight, which is
        returned unsent (the client's view: the handshake is complete)."""
        while True:
            try:
                self.obj.do_handshake()
                return self.out.read()
            except ssl.SSLWantReadError:
                self.sock.sendall(self.out.read())
                self.inc.write(self.sock.recv(65536))

    def send_raw(self, data):
        self.sock.sendall(data)

    def outcome(self, timeout=5.0):
        """What the server does next: ("alert", name), ("data", bytes) or
        ("closed", None) for a close with no alert."""
        deadline = time.monotonic() + timeout
        self.sock.settimeout(0.2)
        while time.monotonic() < deadline:
            try:
                data = self.obj.read(65536)
                if data:
                    return ("data", data)
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLZeroReturnError:
                return ("closed", "close_notify")
            except ssl.SSLError as e:
                reason = (e.reason or str(e)).lower()
                for name in ALERTS.values():
                    if name.replace("_", " ") in reason.replace("_", " "):
                        return ("alert", name)
                return ("error", reason)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                return ("closed", "reset")
            if not chunk:
                return ("closed", None)
            self.inc.write(chunk)
        return ("timeout", None)

    def close(self):
        self.sock.close()


def encrypted_record(n):
    return b"\x17\x03\x03" + u16(n) + os.urandom(n)


def test_bad_records_after_the_first_flight_get_an_alert(h):
    """In place of the client's Finished, and after the handshake: each
    refusal says why in an alert (RFC 8446 5.2, 5.4, D.4), which leaves
    before the close, and the proxy stays up. The client's dummy CCS before
    its Finished is accepted. The record-header cases (no known type,
    zero-length handshake or alert records, records longer than wolfSSL
    takes) get their alert from wolfSSL patch 0010; without it, a bare close."""
    e = prefer_env(h)
    cases = [
        ("ciphertext too long for 2^14 + 1 bytes of plaintext", encrypted_record(2 ** 14 + 1 + 16 + 1),
         "record_overflow"),
        ("CCS body other than 1", b"\x14\x03\x03\x00\x01\x02", "unexpected_message"),
        ("undecryptable record", encrypted_record(40), "bad_record_mac"),
        ("ciphertext longer than 2^14 + 256", encrypted_record(2 ** 14 + 256 + 1), "record_overflow"),
        ("empty alert record", b"\x15\x03\x03\x00\x00", "unexpected_message"),
        ("zero-length handshake record", b"\x16\x03\x03\x00\x00", "unexpected_message"),
        ("record of no known type", b"\x63\x03\x03\x00\x05hello", "unexpected_message"),
    ]
    for when in ("in place of Finished", "after the handshake"):
        for name, data, alert in cases:
            c = BioClient(e.px.port, e.ca)
            try:
                last = c.handshake()
                check_eq(last[:6], CCS, "the client's last flight opens with its dummy CCS")
                if when == "after the handshake":
                    c.send_raw(last)
                    c.obj.write(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
                    c.send_raw(c.out.read())
                    kind, data_in = c.outcome()
                    check(kind == "data" and data_in.startswith(b"HTTP/1.1 200"),
                          f"the handshake with its CCS works: {kind} {data_in!r}")
                    if name.startswith("CCS"):
                        data = CCS   # after the handshake any CCS is refused
                c.send_raw(data)
                check_eq(c.outcome(), ("alert", alert), f"{name}, {when}")
            finally:
                c.close()
    check(e.px.proc.alive(), "the proxy is up")
    check_eq(exchange(e.px.port, client_hello([X25519], [(X25519, x25519_share())])),
             ("server_hello", None), "and serving")


if __name__ == "__main__":
    main([test_control_hellos_are_served, test_bad_key_shares_get_illegal_parameter,
          test_no_usable_share_gets_hello_retry, test_malformed_first_flight_gets_an_alert,
          test_middlebox_ccs, test_middlebox_ccs_after_hello_retry,
          test_bad_records_after_the_first_flight_get_an_alert])
