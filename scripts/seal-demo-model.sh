#!/usr/bin/env bash
# Seals and signs a model for the sealed-model deployments (docs/deploy.md,
# "Sealed models"), with pqproxy's own commands only:
#
#   scripts/seal-demo-model.sh --out DIR [--model MODEL_DIR] [--pqproxy BIN]
#
# MODEL_DIR is a TF Serving model base directory (<version>/saved_model.pb,
# <version>/variables/...), e.g. TF Serving's half_plus_two test model
# (tensorflow_serving/servables/tensorflow/testdata/saved_model_half_plus_two_cpu
# in the tensorflow/serving repository). Without --model the demo model is
# written and sealed: half_plus_two/1/weights.json, which
# scripts/demo_model_server.py --model-dir serves.
#
# DIR afterwards (an existing DIR must be empty):
#   volume/manifest.json          the signed manifest (pqproxy sign-model)
#   volume/model/<path>.age       every file of the model, sealed to the identity
#                                 (what the sealed-model volume holds)
#   pub/model.ecdsa.pub, pub/model.mldsa.pub
#                                 the signer's public keys (ConfigMap / --pub)
#   identity                      the age identity that opens the files (Secret);
#                                 secret: keep it out of images and repositories
#   signer/model.*.key            the signing keys; secret: keep them offline
#   model/                        the plaintext model, when --model was not given
# and prints the manifest's SHA-256: the value clients see in
# Pqproxy-Model-Manifest (signatures.response_model_manifest).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PQPROXY="$ROOT/build/pqproxy"
OUT=""
MODEL=""

die() { printf 'seal-demo-model: %s\n' "$*" >&2; exit 1; }
while [ $# -gt 0 ]; do
    case "$1" in
        --out) OUT="${2:?--out needs a directory}"; shift 2 ;;
        --model) MODEL="${2:?--model needs a directory}"; shift 2 ;;
        --pqproxy) PQPROXY="${2:?--pqproxy needs a path}"; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
done
[ -n "$OUT" ] || die "--out DIR is required"
[ -x "$PQPROXY" ] || die "no pqproxy binary at $PQPROXY (make build, or --pqproxy BIN)"
if [ -e "$OUT" ] && [ -n "$(ls -A "$OUT")" ]; then
    die "$OUT is not empty"
fi
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
umask 077

if [ -z "$MODEL" ]; then
    MODEL="$OUT/model/half_plus_two"
    mkdir -p "$MODEL/1"
    printf '{"slope": 0.5, "intercept": 2.0}\n' > "$MODEL/1/weights.json"
fi
[ -d "$MODEL" ] || die "--model $MODEL: not a directory"

# keys: the signer's hybrid pair (ECDSA P-384 + ML-DSA-87) and an age
# identity with the hybrid post-quantum recipient (ML-KEM-768 + X25519)
"$PQPROXY" keygen --alg hybrid --out "$OUT/signer/model" > /dev/null
mkdir -p "$OUT/pub"
cp "$OUT/signer/model.ecdsa.pub" "$OUT/signer/model.mldsa.pub" "$OUT/pub/"
RECIPIENT="$("$PQPROXY" keygen --alg age-pq --out "$OUT/identity")"

# sign the plaintext, then seal every file it lists
mkdir -p "$OUT/volume/model"
"$PQPROXY" sign-model "$MODEL" --key "$OUT/signer/model" --out "$OUT/volume/manifest.json" > /dev/null
(cd "$MODEL" && find . -type f -print0) | while IFS= read -r -d '' f; do
    f="${f#./}"
    mkdir -p "$OUT/volume/model/$(dirname "$f")"
    "$PQPROXY" seal -r "$RECIPIENT" -o "$OUT/volume/model/$f.age" "$MODEL/$f"
done
# what the volume and the ConfigMap carry is readable; the secrets are not
chmod -R go+rX "$OUT/volume" "$OUT/pub"

# the check the init container makes, once here before anything ships
CHECK="$(mktemp -d "${TMPDIR:-/tmp}/seal-demo-model.XXXXXX")"
trap 'rm -rf "$CHECK"' EXIT
"$PQPROXY" open-model --manifest "$OUT/volume/manifest.json" --pub "$OUT/pub/model" \
    --identity-file "$OUT/identity" --in "$OUT/volume/model" --out "$CHECK/opened" > /dev/null
diff -r "$MODEL" "$CHECK/opened" > /dev/null || die "the opened model differs from $MODEL"

DIGEST="$(sha256sum "$OUT/volume/manifest.json" | cut -d' ' -f1)"
printf 'sealed %s into %s/volume (manifest sha256:%s)\n' "$MODEL" "$OUT" "$DIGEST"
printf 'Pqproxy-Model-Manifest: sha-256=:%s:\n' \
    "$(python3 -c 'import base64, sys; print(base64.b64encode(bytes.fromhex(sys.argv[1])).decode())' "$DIGEST")"
