#!/usr/bin/env python3
"""Run the end-to-end tests against the real binary ($LUAHTTPD, default ./luahttpd).

    LUAHTTPD=./luahttpd python3 tests/e2e/run.py [NAME-FILTER ...]

Prints each test's outcome and ends with the line `e2e: N passed, N failed`.
Exits 1 if any test failed or errored."""

import os
import sys
import unittest
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def selected(suite, filters):
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            yield from selected(item, filters)
        elif not filters or any(f in item.id() for f in filters):
            yield item


def main():
    warnings.simplefilter("ignore", ResourceWarning)
    binary = os.environ.get("LUAHTTPD", os.path.join(HERE, "..", "..", "luahttpd"))
    if not os.access(binary, os.X_OK):
        print("e2e: no executable at %s (run make first)" % binary)
        print("e2e: 0 passed, 1 failed")
        return 1
    os.environ["LUAHTTPD"] = os.path.abspath(binary)
    loaded = unittest.defaultTestLoader.discover(HERE, pattern="test_*.py", top_level_dir=HERE)
    suite = unittest.TestSuite(selected(loaded, sys.argv[1:]))
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    skipped = len(result.skipped)
    passed = result.testsRun - failed - skipped
    tail = ", %d skipped" % skipped if skipped else ""
    print("e2e: %d passed, %d failed%s" % (passed, failed, tail))
    return 1 if failed or result.testsRun == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
