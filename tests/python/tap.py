# SPDX-License-Identifier: GPL-2.0-only
"""Run unittest test cases and print TAP (tools/tap-summary counts it):
"1..N", then "ok N name", "not ok N name" (the traceback as # lines) or
"ok N name # SKIP why". Exit status 1 if any test failed."""

import sys
import unittest


class TapResult(unittest.TestResult):
    def __init__(self, prefix, out):
        super().__init__()
        self.prefix, self.out, self.n = prefix, out, 0

    def _name(self, test):
        return "%s.%s" % (self.prefix, test.id().split(".")[-1])

    def _line(self, test, ok, extra="", detail=None):
        self.n += 1
        self.out.write("%s %d %s%s\n" % ("ok" if ok else "not ok", self.n, self._name(test), extra))
        if detail:
            for l in detail.rstrip().splitlines():
                self.out.write("# %s\n" % l)
        self.out.flush()

    def addSuccess(self, test):
        super().addSuccess(test)
        self._line(test, True)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._line(test, False, detail=self.failures[-1][1])

    def addError(self, test, err):
        super().addError(test, err)
        self._line(test, False, detail=self.errors[-1][1])

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._line(test, True, " # SKIP %s" % reason)

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._line(test, True, " # TODO expected failure")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._line(test, False, " # unexpected success")


def main(prefix, module="__main__"):
    suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules[module])
    out = sys.stdout
    out.write("TAP version 13\n1..%d\n" % suite.countTestCases())
    res = TapResult(prefix, out)
    suite.run(res)
    sys.exit(0 if res.wasSuccessful() else 1)
