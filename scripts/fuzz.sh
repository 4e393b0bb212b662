#!/usr/bin/env bash
# Runs the libFuzzer harnesses of a PX_FUZZ=ON build, one after another
# (docs/fuzzing.md). Each harness first replays its seed corpus
# fuzz/corpus/<harness>/ (a known crash fails at once), then fuzzes for
# SECONDS with its dictionary fuzz/<harness>.dict. Inputs it finds go to
# BUILD/corpus/<harness>/, never into the repository; a crash, leak or
# timeout leaves its input in BUILD/artifacts/ and fails the run.
#
#   scripts/fuzz.sh BUILD SECONDS [HARNESS...]
#   scripts/fuzz.sh --list      the harnesses it runs by default, one a line
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = --list ]; then
    build="" seconds=0 harnesses=()
else
    build="$1" seconds="$2"
    shift 2
    harnesses=("$@")
fi
# Default: every harness fuzz/CMakeLists.txt builds (PX_FUZZERS), so a new one
# cannot be left out of `make fuzz` and `make fuzz-ci`.
if [ ${#harnesses[@]} -eq 0 ]; then
    # the set() may span lines: join it, then take what is between "PX_FUZZERS" and ")"
    list=$(sed -n '/^set(PX_FUZZERS/,/)/p' fuzz/CMakeLists.txt | tr '\n' ' ' |
           sed -n 's/^set(PX_FUZZERS \([^)]*\)).*/\1/p')
    read -r -a harnesses <<< "$list" || true
    [ ${#harnesses[@]} -gt 0 ] || { echo "fuzz: no PX_FUZZERS in fuzz/CMakeLists.txt" >&2; exit 1; }
fi
if [ -z "$build" ]; then
    printf '%s\n' "${harnesses[@]}"
    exit 0
fi
mkdir -p "$build/artifacts"
failed=()
for h in "${harnesses[@]}"; do
    bin="$build/fuzz/fuzz_$h"
    [ -x "$bin" ] || { echo "fuzz: $bin missing (make build-fuzz)" >&2; exit 1; }
    mkdir -p "$build/corpus/$h"
    log="$build/fuzz-$h.log"
    art="$build/artifacts/$h-"
    echo "== fuzz $h: replay fuzz/corpus/$h, then ${seconds}s"
    # -timeout: one input taking over 10 s is a finding (a parser must not hang).
    if "$bin" -runs=0 -timeout=10 -artifact_prefix="$art" "fuzz/corpus/$h" > "$log" 2>&1 &&
       "$bin" -dict="fuzz/$h.dict" -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
           -artifact_prefix="$art" "$build/corpus/$h" "fuzz/corpus/$h" >> "$log" 2>&1; then
        grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 || true
    else
        echo "fuzz: $h FAILED; the input is under $build/artifacts/, the log in $log:" >&2
        grep -E 'ERROR|SUMMARY|fuzz:|Test unit written' "$log" | head -n 20 >&2 || tail -n 30 "$log" >&2
        failed+=("$h")
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: findings in: ${failed[*]}" >&2
    exit 1
fi
