#!/usr/bin/env python3
"""`make fuzz` and `make fuzz-ci` run what scripts/fuzz.sh reads from
fuzz/CMakeLists.txt (PX_FUZZERS): every harness under fuzz/ must be in that
list, each once, whatever the layout of the set() (it once spanned two
lines and the script then ran nothing)."""
import glob
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pxtest  # noqa: E402
from pxtest import check, check_eq  # noqa: E402

SRC = pxtest.SOURCE_DIR


def harness_files():
    # one harness per fuzz/<name>.c (fuzz/CMakeLists.txt builds fuzz_<name> from it)
    return sorted(os.path.basename(p)[:-2] for p in glob.glob(os.path.join(SRC, "fuzz", "*.c")))


def listed():
    r = subprocess.run(["bash", os.path.join(SRC, "scripts", "fuzz.sh"), "--list"],
                       capture_output=True, text=True, timeout=30)
    check_eq(r.returncode, 0, r.stderr)
    return r.stdout.split()


def test_every_harness_is_run(h):
    names = listed()
    check_eq(len(names), len(set(names)), f"a harness listed twice: {names}")
    check_eq(sorted(names), harness_files(), "fuzz.sh's list vs the harnesses in fuzz/")
    for n in names:
        check(os.path.isdir(os.path.join(SRC, "fuzz", "corpus", n)), f"{n}: no seed corpus")


def test_list_spanning_lines(h):
    """The parser itself, on a copy of the tree whose set() spans three lines."""
    root = h.path("tree")
    os.makedirs(os.path.join(root, "scripts"))
    os.makedirs(os.path.join(root, "fuzz"))
    with open(os.path.join(SRC, "scripts", "fuzz.sh")) as f:
        script = f.read()
    with open(os.path.join(root, "scripts", "fuzz.sh"), "w") as f:
        f.write(script)
    with open(os.path.join(root, "fuzz", "CMakeLists.txt"), "w") as f:
        f.write("# x\nset(PX_FUZZERS a b\n    c\n    d)\nforeach(name ${PX_FUZZERS})\nendforeach()\n")
    r = subprocess.run(["bash", os.path.join(root, "scripts", "fuzz.sh"), "--list"],
                       capture_output=True, text=True, timeout=30)
    check_eq((r.returncode, r.stdout.split()), (0, ["a", "b", "c", "d"]), r.stderr)
    with open(os.path.join(root, "fuzz", "CMakeLists.txt"), "w") as f:
        f.write("foreach(name ${X})\nendforeach()\n")
    r = subprocess.run(["bash", os.path.join(root, "scripts", "fuzz.sh"), "--list"],
                       capture_output=True, text=True, timeout=30)
    check_eq(r.returncode, 1)
    check(re.search(r"no PX_FUZZERS", r.stderr), r.stderr)


if __name__ == "__main__":
    pxtest.main([test_every_harness_is_run, test_list_spanning_lines])
