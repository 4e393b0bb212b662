#!/usr/bin/env bash
# Makes the sidecar injector's serving certificate: a private CA (ECDSA
# P-256) and a leaf for the webhook Service's DNS names, with openssl.
# The API server (Go) verifies it against the caBundle of the
# MutatingWebhookConfiguration.
#
#   make-certs.sh [--out DIR] [--namespace NS] [--service NAME] [--days N] [--force]
#                 [--print-ca-bundle] [--apply]
#
#   --out DIR          where ca.crt, ca.key, tls.crt, tls.key go (default: certs/ beside
#                      this script; keep ca.key offline or delete it after use)
#   --print-ca-bundle  print the base64 caBundle only (for your own patch)
#   --apply            kubectl: create/update Secret pqproxy-webhook-tls in NS, then
#                      apply this directory's kustomization with the caBundle filled in
#                      (re-run it, not a bare `kubectl apply -k`, which would blank it)
#
# Existing files are reused unless --force, so --apply is repeatable; rotate
# with --force --apply (the injector pods pick up the new Secret on restart:
# kubectl -n NS rollout restart deployment/pqproxy-webhook).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
OUT="$HERE/certs"
NS=pqproxy-system
SVC=pqproxy-webhook
DAYS=365
FORCE=0
MODE=files
CONFIG_NAME=pqproxy-sidecar-injector

die() { echo "make-certs: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
    case "$1" in
        --out) OUT="$2"; shift ;;
        --namespace) NS="$2"; shift ;;
        --service) SVC="$2"; shift ;;
        --days) DAYS="$2"; shift ;;
        --force) FORCE=1 ;;
        --print-ca-bundle) MODE=bundle ;;
        --apply) MODE=apply ;;
        -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
    shift
done
command -v openssl >/dev/null || die "openssl not found (Debian: apt-get install openssl)"
[[ "$DAYS" =~ ^[0-9]+$ ]] || die "--days: not a number: $DAYS"

mkdir -p "$OUT"
umask 077
if [ $FORCE -eq 1 ] || [ ! -s "$OUT/tls.crt" ] || [ ! -s "$OUT/tls.key" ] || [ ! -s "$OUT/ca.crt" ]; then
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
        -keyout "$tmp/ca.key" -out "$tmp/ca.crt" -days "$((DAYS * 5))" \
        -subj "/CN=pqproxy webhook CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
        -keyout "$tmp/tls.key" -out "$tmp/tls.csr" -subj "/CN=$SVC.$NS.svc" 2>/dev/null
    printf '%s\n' \
        "subjectAltName=DNS:$SVC,DNS:$SVC.$NS,DNS:$SVC.$NS.svc,DNS:$SVC.$NS.svc.cluster.local" \
        "basicConstraints=critical,CA:FALSE" \
        "keyUsage=critical,digitalSignature" \
        "extendedKeyUsage=serverAuth" > "$tmp/ext.cnf"
    openssl x509 -req -in "$tmp/tls.csr" -CA "$tmp/ca.crt" -CAkey "$tmp/ca.key" -CAcreateserial \
        -out "$tmp/tls.crt" -days "$DAYS" -extfile "$tmp/ext.cnf" 2>/dev/null
    openssl verify -CAfile "$tmp/ca.crt" "$tmp/tls.crt" >/dev/null
    for f in ca.crt ca.key tls.crt tls.key; do mv -f "$tmp/$f" "$OUT/$f"; done
    chmod 0644 "$OUT/ca.crt" "$OUT/tls.crt"
    echo "make-certs: wrote $OUT/{ca.crt,ca.key,tls.crt,tls.key} for $SVC.$NS.svc" >&2
else
    echo "make-certs: reusing $OUT/tls.crt (--force to make new ones)" >&2
fi

CA_BUNDLE="$(base64 -w0 < "$OUT/ca.crt")"
case "$MODE" in
    files)
        echo "caBundle for MutatingWebhookConfiguration $CONFIG_NAME (both webhooks):"
        echo "$CA_BUNDLE"
        ;;
    bundle)
        echo "$CA_BUNDLE"
        ;;
    apply)
        command -v kubectl >/dev/null || die "kubectl not found"
        kubectl get namespace "$NS" >/dev/null 2>&1 || kubectl create namespace "$NS"
        kubectl -n "$NS" create secret tls pqproxy-webhook-tls --cert "$OUT/tls.crt" --key "$OUT/tls.key" \
            --dry-run=client -o yaml | kubectl apply -f -
        kubectl kustomize "$HERE" | sed "s|caBundle: \"\"|caBundle: $CA_BUNDLE|" | kubectl apply -f -
        ;;
esac
