"""The hook tests' one assertion: print ok / FAIL and count the failures."""
import sys

fails = 0


def check(ok, what):
    global fails
    print("%s: %s" % ("ok" if ok else "FAIL", what))
    if not ok:
        fails += 1


def finish():
    print("%d failures" % fails)
    sys.exit(1 if fails else 0)
