#!/usr/bin/python3
"""One line for the whole test run: how many tests passed, failed and were
skipped over every build's meson-logs/testlog.json, with the skipped
oracle comparisons (suite "oracle") named. With --no-skips (CI, which
installs everything) any skip is a failure.

usage: test_summary.py [--no-skips] TESTLOG.json..."""
import json
import sys


def main(argv):
    no_skips = "--no-skips" in argv
    logs = [a for a in argv if a != "--no-skips"]
    passed, failed, skipped, oracle_skipped = [], [], [], []
    for path in logs:
        build = path.split("/meson-logs/")[0].rsplit("/", 1)[-1]
        try:
            lines = open(path, encoding="utf-8").read().splitlines()
        except OSError as e:
            print("kdscope test: %s: %s" % (path, e.strerror), file=sys.stderr)
            failed.append("%s (no test log)" % build)
            continue
        for line in lines:
            if not line.strip():
                continue
            t = json.loads(line)
            name = "%s: %s" % (build, t.get("name", "?"))
            r = t.get("result", "")
            if r in ("OK", "EXPECTEDFAIL"):
                passed.append(name)
            elif r == "SKIP":
                skipped.append(name)
                if "oracle" in (t.get("suite") or []):
                    oracle_skipped.append(name)
            else:
                failed.append("%s (%s)" % (name, r))
    for n in failed:
        print("  failed: " + n)
    for n in skipped:
        print("  skipped: " + n + (" (oracle comparison)" if n in oracle_skipped else ""))
    print("kdscope test: %d passed, %d failed, %d skipped (%d oracle comparisons skipped)"
          % (len(passed), len(failed), len(skipped), len(oracle_skipped)))
    if no_skips and skipped:
        print("kdscope test: skips are failures here (KD_TEST_NO_SKIPS=1): every package is installed")
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
