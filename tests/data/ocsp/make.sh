#!/usr/bin/env bash
# Regenerates the OCSP stapling fixtures of tests/unit/test_ocsp_staple.c
# with the openssl CLI (3.0 or later). Everything is valid for 100 years, so
# the files can stay in the repository; the tests move "now" to check expiry.
#   ca.pem/ca.key        test CA (ECDSA P-256)
#   leaf.pem/leaf.key    leaf for localhost, serial 0x1001; chain.pem = leaf + CA
#   other.pem            another leaf of the CA, serial 0x1002
#   evil.pem/evil.key    a CA with the same name as ca.pem and another key
#   good.der             "good" for leaf.pem, signed by the CA
#   other.der            "good" for other.pem
#   revoked.der          "revoked" for leaf.pem
#   forged.der           "good" for leaf.pem, signed by evil.pem
#   trylater.der         responseStatus tryLater, no responseBytes
set -euo pipefail
cd "$(dirname "$0")"
days=36500
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
ec() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
ec ca.key; ec evil.key; ec leaf.key
openssl req -x509 -new -key ca.key -subj "/CN=pqproxy OCSP test CA" -days $days -out ca.pem \
    -addext basicConstraints=critical,CA:true -addext keyUsage=critical,keyCertSign,cRLSign
openssl req -x509 -new -key evil.key -subj "/CN=pqproxy OCSP test CA" -days $days -out evil.pem \
    -addext basicConstraints=critical,CA:true -addext keyUsage=critical,keyCertSign,cRLSign
issue() {   # serial out
    openssl req -new -key leaf.key -subj "/CN=localhost" -out "$t/req.csr"
    printf 'subjectAltName=DNS:localhost\nbasicConstraints=CA:false\n' > "$t/ext"
    openssl x509 -req -in "$t/req.csr" -CA ca.pem -CAkey ca.key -set_serial "$1" -days $days \
        -extfile "$t/ext" -out "$2" 2>/dev/null
}
issue 0x1001 leaf.pem
issue 0x1002 other.pem
cat leaf.pem ca.pem > chain.pem
index() {   # status(V|R) file
    local end serial rev=""
    end=$(openssl x509 -in "$2" -noout -enddate | cut -d= -f2)
    end=$(date -u -d "$end" +%Y%m%d%H%M%SZ)
    serial=$(openssl x509 -in "$2" -noout -serial | cut -d= -f2)
    [ "$1" = R ] && rev=$(date -u +%y%m%d%H%M%SZ)
    printf '%s\t%s\t%s\t%s\tunknown\t/CN=localhost\n' "$1" "$end" "$rev" "$serial" > "$t/index.txt"
}
respond() { # status cert issuer signer key out
    index "$1" "$2"
    openssl ocsp -issuer "$3" -cert "$2" -no_nonce -reqout "$t/req.der" >/dev/null
    openssl ocsp -index "$t/index.txt" -CA "$3" -rsigner "$4" -rkey "$5" -reqin "$t/req.der" \
        -ndays $days -respout "$6" >/dev/null
}
respond V leaf.pem ca.pem ca.pem ca.key good.der
respond V other.pem ca.pem ca.pem ca.key other.der
respond R leaf.pem ca.pem ca.pem ca.key revoked.der
respond V leaf.pem evil.pem evil.pem evil.key forged.der
printf '\x30\x03\x0a\x01\x03' > trylater.der
