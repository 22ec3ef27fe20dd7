#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""docs_rst.py DIR - every Documentation/*.rst parses as reStructuredText
without a warning (docutils, Debian's python3-docutils): malformed tables,
bad indentation and broken internal references show here, not when a
reader renders the page. One TAP line per file; a SKIP without docutils."""

import glob
import io
import os
import sys

files = sorted(glob.glob(os.path.join(sys.argv[1], "*.rst")))
print("TAP version 13")
try:
    import docutils.core
except ImportError:
    print("1..1")
    print("ok 1 docs_rst # SKIP no docutils (python3-docutils)")
    sys.exit(0)
print("1..%d" % len(files))
bad = 0
for n, f in enumerate(files, 1):
    err = io.StringIO()
    try:
        with open(f, encoding="utf-8") as fh:
            docutils.core.publish_doctree(fh.read(), source_path=f, settings_overrides={
                "warning_stream": err, "report_level": 2, "halt_level": 5})
    except Exception as e:  # a crash of the parser is a failure too
        err.write("%s\n" % e)
    name = os.path.basename(f)
    if err.getvalue():
        bad += 1
        print("not ok %d docs_rst.%s" % (n, name))
        for line in err.getvalue().splitlines()[:20]:
            print("# " + line)
    else:
        print("ok %d docs_rst.%s" % (n, name))
sys.exit(1 if bad else 0)
