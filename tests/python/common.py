# SPDX-License-Identifier: GPL-2.0-only
"""What the Python tests share: the package and tap.py on sys.path, the C
layout programs' output parsed, numpy and torch if installed."""

import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(TOP, "libaccel", "python"))
sys.path.insert(0, HERE)

try:
    import numpy  # noqa: F401
except ImportError:
    numpy = None
try:
    import torch  # noqa: F401
except ImportError:
    torch = None


def layout(env, source):
    """({struct: {"size": (size, align), member: (offset, size)}}, {const:
    value}) from the C layout program $env, else source compiled here;
    None without either."""
    exe = os.environ.get(env)
    tmp = None
    try:
        if not exe:
            cc = shutil.which(os.environ.get("CC", "cc"))
            if not cc:
                return None
            tmp = tempfile.mkdtemp()
            exe = os.path.join(tmp, "layout")
            subprocess.run([cc, "-I", os.path.join(TOP, "libaccel", "include"), "-o", exe,
                            os.path.join(HERE, source)], check=True)
        out = subprocess.run([exe], check=True, stdout=subprocess.PIPE,
                             universal_newlines=True).stdout
    finally:
        if tmp:
            shutil.rmtree(tmp)
    structs, consts = {}, {}
    for line in out.splitlines():
        w = line.split()
        if len(w) == 2:
            consts[w[0]] = int(w[1])
        elif w[1] == "size":
            structs.setdefault(w[0], {})["size"] = (int(w[2]), int(w[4]))
        else:
            structs.setdefault(w[0], {})[w[1]] = (int(w[2]), int(w[3]))
    return structs, consts
