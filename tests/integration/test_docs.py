#!/usr/bin/env python3
"""README.md and docs/ agree with the code: every key and default in
docs/config.md's tables against config/pqproxy.json (which
test_config_load's test_shipped_configs ties to the loader's defaults, and
which check-config loads); every metric in docs/operations.md against a real
/metrics scrape after traffic, and back; the commands README lists against
`pqproxy --help`; relative links between the documents resolve."""
import glob
import json
import os
import re
import subprocess

import pxtest
from pxtest import check, check_eq, main, pqproxy_bin
from pxhelpers import admin_get
from test_cli import help_commands

SRC = pxtest.SOURCE_DIR
DOCS = [os.path.join(SRC, "README.md")] + sorted(glob.glob(os.path.join(SRC, "docs", "*.md")))


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def config_tables():
    """docs/config.md's key tables: {section: {key: default cell}}; section
    '' is the top level."""
    out, section = {}, None
    for line in read(os.path.join(SRC, "docs", "config.md")).splitlines():
        m = re.match(r"^### (?:Top level|`(\w+)`)$", line) or re.match(r"^#### `(\w+\.\w+)`$", line)
        if m:
            section = m.group(1) or ""
            out[section] = {}
            continue
        if line.startswith("## ") and section is not None and line != "## Keys":
            section = None
        if section is None or not line.startswith("| `"):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        # timeouts: key | default | meaning; the others: key | type | default | ...
        default = cells[1] if section == "timeouts" else cells[2]
        for key in re.findall(r"`([^`]+)`", cells[0]):
            out[section][key] = default
    return out


def doc_default(cell):
    """The JSON value a default cell gives, or None when it documents none."""
    m = re.match(r"^`([^`]*)`", cell)
    return json.loads(m.group(1)) if m else None


def test_config_keys_and_defaults(h):
    tables = config_tables()
    shipped = json.load(open(os.path.join(SRC, "config", "pqproxy.json")))
    check_eq(sorted(tables), ["", "admin", "http", "http2", "log", "routes", "signatures",
                              "signatures.replay_store", "timeouts", "tls", "tls.ticket_keys",
                              "upstream", "upstreams"],
             "config.md documents each section")
    check_eq(set(tables[""]), set(shipped) | {"tls", "upstream", "http", "timeouts", "log", "admin",
                                               "signatures", "routes", "http2", "upstreams"},
             "top-level keys: config.md vs config/pqproxy.json")
    for section, keys in tables.items():
        if section in ("routes", "upstreams"):
            continue   # per-route keys and named upstreams: no defaults to write out
        values = shipped
        for part in section.split(".") if section else ():
            values = values[part]
        documented = {k: doc_default(c) for k, c in keys.items() if "[" not in k}
        with_default = {k for k, v in documented.items() if v is not None}
        check_eq(set(values) - set(documented), set(),
                 f"{section or 'top level'}: keys in config/pqproxy.json missing from config.md")
        for k in with_default:
            if isinstance(values.get(k), dict):
                continue
            if not section and k in ("upstreams", "routes"):
                continue   # TF Serving's gRPC port and its route (make run's demo), checked below
            check(k in values, f"{section}.{k}: documented default {documented[k]!r} but "
                               "config/pqproxy.json does not write it out")
            check_eq(values[k], documented[k], f"{section}.{k}: default in config.md")
    check_eq((shipped["upstreams"], shipped["routes"]),
             ({"grpc": {"address": "127.0.0.1:8500", "protocol": "h2c"}},
              [{"prefix": "/", "grpc": True, "upstream": "grpc"}]), "config/pqproxy.json: the gRPC port")
    # the keys without a default are real keys: the loader takes them (and,
    # like run, loads the certificate: a real one from certgen)
    certs = h.certgen()
    r = subprocess.run([pqproxy_bin(), "check-config", os.path.join(SRC, "config", "pqproxy.json")],
                       capture_output=True, text=True, env={
                           **os.environ, "PQPROXY_TLS_CERT": os.path.join(certs, "server.crt"),
                           "PQPROXY_TLS_KEY": os.path.join(certs, "server.key")})
    check_eq(r.returncode, 0, r.stderr)


def test_metrics_documented_and_real(h):
    proxy = h.start_proxy()
    ca = os.path.join(h.certgen(), "ca.crt")
    for path in ("/echo", "/status/500"):
        r = subprocess.run([pqproxy_bin(), "request", "--cacert", ca, f"https://localhost:{proxy.port}{path}"],
                           capture_output=True, text=True, timeout=30)
        check_eq(r.returncode, 0, r.stderr)
    status, body = admin_get(proxy, "/metrics")
    check_eq(status, 200)
    scraped = set()
    for line in body.decode().splitlines():
        m = re.match(r"^# TYPE (\w+) (\w+)$", line)
        if m:
            scraped.add(m.group(1))
    ops = read(os.path.join(SRC, "docs", "operations.md"))
    table = [ln for ln in ops.splitlines() if ln.startswith("| `pqproxy_")]
    documented = set()
    for ln in table:
        documented |= set(re.findall(r"`(pqproxy_\w+)`", ln.split("|")[1]))
    check_eq(documented - scraped, set(), "documented in operations.md but not in /metrics")
    check_eq(scraped - documented, set(), "in /metrics but not documented in operations.md")
    # every metric named anywhere in the documents exists
    named = set()
    for path in DOCS:
        named |= {n for n in re.findall(r"\bpqproxy_[a-z0-9_]+", read(path))
                  if not n.endswith("_")}
    series = {re.sub(r"_(bucket|sum|count)$", "", n) for n in named}
    check_eq({n for n in series if n not in scraped}, set(), "metric names in the docs")


def test_readme_commands_match_help():
    helped = set(help_commands())
    readme = read(os.path.join(SRC, "README.md"))
    block = readme.split("## Using it", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    listed = {ln.split()[1] for ln in block.splitlines() if ln.startswith("pqproxy ")}
    check_eq(listed, helped, "README's command list vs pqproxy --help")


def slug(heading):
    """GitHub's anchor for a Markdown heading (underscores in code spans stay)."""
    s = re.sub(r"[`*]", "", heading.strip().lower())
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def anchors(path):
    return {slug(m.group(1)) for m in re.finditer(r"^#+ (.+)$", read(path), re.M)}


def test_relative_links_resolve():
    bad = []
    for path in DOCS:
        text = re.sub(r"```.*?```", "", read(path), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"^[a-z]+:", target):
                continue
            file, _, frag = target.partition("#")
            dest = os.path.normpath(os.path.join(os.path.dirname(path), file)) if file else path
            where = f"{os.path.relpath(path, SRC)}: ({target})"
            if not os.path.exists(dest):
                bad.append(f"{where}: no such file")
            elif frag and dest.endswith(".md") and frag not in anchors(dest):
                bad.append(f"{where}: no heading #{frag}")
    check_eq(bad, [], "broken relative links")


if __name__ == "__main__":
    main([test_config_keys_and_defaults, test_metrics_documented_and_real,
          test_readme_commands_match_help, test_relative_links_resolve])
