#!/usr/bin/env python3
"""scripts/deps.sh runs wolfSSL's own tests on the patched source and
records a pass in the install (.pqproxy-tested, under the build's cache
key); a failing test stops the step, naming the test and its log, and
records nothing. PQPROXY_WOLFSSL_PATCHES picks the patch set. The wolfSSL
build itself is stubbed out here: these run deps.sh's functions on stand-in
test programs, in seconds."""
import os
import shutil
import stat
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pxtest import check, check_eq, check_in, main  # noqa: E402

SRC = os.environ.get("PX_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
DEPS = os.path.join(SRC, "scripts", "deps.sh")


def program(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("#!/bin/sh\n" + text)
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)


# A stand-in tests/unit.test with unit.test's options: test 2 stands for an
# API test whose data has expired (it always fails), test 3 fails when asked.
UNIT_TEST = r"""
case "$1" in
--list) echo "All Test Cases:"; echo "  1: test_wolfSSL_other"
        echo "  2: test_wolfSSL_CertManagerCRL"; echo "  3: test_wolfSSL_CTX_foo"; exit 0 ;;
--no-api) echo "suite tests passed"; exit 0 ;;
--api) shift ;;
*) echo "unexpected $1"; exit 2 ;;
esac
[ $# -gt 0 ] || set -- -1 -2 -3
rc=0
for t in "$@"; do
    case "$t" in
    -1) echo "   1: test_wolfSSL_other : passed" ;;
    -2) echo "   2: test_wolfSSL_CertManagerCRL : failed"; rc=1 ;;
    -3) if [ "$UNIT_RC" = 0 ]; then echo "   3: test_wolfSSL_CTX_foo : passed"
        else echo "   3: test_wolfSSL_CTX_foo : failed"; rc=1; fi ;;
    esac
done
exit $rc
"""


def run_tests(wolfcrypt_rc, unit_rc, expired=None):
    """test_wolfssl on a stand-in source tree whose two test programs exit
    with the given codes; returns (exit code, stderr, marker written).
    expired replaces deps.sh's table of expired tests."""
    tmp = tempfile.mkdtemp(prefix="px-wolftest-")
    try:
        src, prefix = os.path.join(tmp, "src"), os.path.join(tmp, "prefix")
        os.makedirs(prefix)
        program(os.path.join(src, "wolfcrypt", "test", "testwolfcrypt"),
                f'echo "AES      test {"passed" if wolfcrypt_rc == 0 else "failed"}!"\nexit {wolfcrypt_rc}\n')
        program(os.path.join(src, "tests", "unit.test"), f"UNIT_RC={unit_rc}\n" + UNIT_TEST)
        script = (f'source "{DEPS}"\n'
                  'make_wolfssl() { return 0; }   # the build is not under test\n'
                  + (f"WOLFSSL_EXPIRED_TESTS=$'{expired}'\n" if expired is not None else "")
                  + f'test_wolfssl "{src}" "{prefix}"\n')
        r = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60,
                           stdin=subprocess.DEVNULL)
        return r.returncode, r.stderr, os.path.exists(os.path.join(prefix, ".pqproxy-tested"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_pass_is_recorded():
    rc, err, marked = run_tests(0, 0)
    check_eq(rc, 0, f"both pass: {err}")
    check(marked, "the pass is recorded in the install")
    check_in("tests/unit.test passed", err)
    check_in("skipping test_wolfSSL_CertManagerCRL: its DER CRL", err,
             "the test whose CRL expired on 2026-10-05 is skipped, saying why")


def test_expired_test_is_skipped_only_after_its_date():
    """Before its date an expiring test runs like any other (here it fails)."""
    future = "test_wolfSSL_CertManagerCRL\\t4102444800\\tdata valid until 2100"
    rc, err, marked = run_tests(0, 0, expired=future)
    check(rc != 0 and not marked, f"run and failed: {err}")
    check_in("test_wolfSSL_CertManagerCRL : failed", err, "named")
    check("skipping" not in err, "not skipped")
    # and with no table at all, every API test runs
    rc, err, marked = run_tests(0, 0, expired="")
    check(rc != 0 and "test_wolfSSL_CertManagerCRL : failed" in err, "all run")


def test_failing_wolfcrypt_test_is_named():
    rc, err, marked = run_tests(1, 0)
    check(rc != 0, "a failing testwolfcrypt fails the step")
    check_in("wolfcrypt/test/testwolfcrypt FAILED", err, "names the test")
    check_in("testwolfcrypt.log", err, "names its log")
    check_in("AES      test failed!", err, "shows the failure")
    check(not marked, "nothing recorded")


def test_failing_unit_test_is_named():
    rc, err, marked = run_tests(0, 1)
    check(rc != 0, "a failing unit.test fails the step")
    check_in("tests/unit.test FAILED", err, "names the test")
    check_in("test_wolfSSL_CTX_foo : failed", err, "shows the failing API test")
    check_eq(err.count("test_wolfSSL_CTX_foo"), 1, "once")
    check(not marked, "nothing recorded")


def patches(value):
    env = dict(os.environ, PQPROXY_WOLFSSL_PATCHES=value)
    r = subprocess.run(["bash", "-c", f'source "{DEPS}"; wolfssl_patches'], capture_output=True,
                       text=True, timeout=30, env=env, stdin=subprocess.DEVNULL)
    return r.returncode, [os.path.basename(p) for p in r.stdout.split()], r.stderr


def test_patch_sets():
    rc, full, _ = patches("all")
    check_eq(rc, 0, "all")
    check_eq(len(full), 10, f"all ten patches: {full}")
    rc, minimal, _ = patches("minimal")
    check_eq((rc, minimal), (0, [full[0], full[9]]), "minimal: the correctness fixes 0001 and 0010 alone")
    check(full[0].startswith("0001-") and full[9].startswith("0010-"), full)
    r = subprocess.run(["bash", DEPS, "--print-env"], capture_output=True, text=True, timeout=30,
                       env=dict(os.environ, PQPROXY_WOLFSSL_PATCHES="some"), stdin=subprocess.DEVNULL)
    check(r.returncode != 0, "an unknown set is refused")
    check_in('PQPROXY_WOLFSSL_PATCHES=some: expected "all" or "minimal"', r.stderr)
    check_eq(r.stdout, "", "no roots printed")


if __name__ == "__main__":
    main([test_pass_is_recorded, test_expired_test_is_skipped_only_after_its_date,
          test_failing_wolfcrypt_test_is_named,
          test_failing_unit_test_is_named, test_patch_sets])
