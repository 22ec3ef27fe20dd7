#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""sched-two-class.py LOG - the two-class scheduling benchmark's figures.

Reads the reports tools/serve/vm-bench-sched.sh printed (JSON between
"=== NAME" and "=== end" lines) and prints, for fcfs + recompute against
priority + swap: the high-priority class's TTFT percentiles and their
ratio (target: p99 at least 3x lower with priority + swap), each class's
pooled inter-token gaps and failures, the recompute tax (target: near 0
with swap), the swap bandwidth the server measured, and whether every
request's digests were the same in both runs. Exit status 1 when a report
is missing or a request failed or a digest differed; a missed target is
reported, not an error (Documentation/serve.rst, "The two-class benchmark").
"""
import json
import sys


def reports(path):
    out, name, buf = {}, None, []
    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\r\n")
            if line.startswith("=== end") and name:
                try:
                    out[name] = json.loads("\n".join(buf))
                except ValueError as e:
                    print(f"{name}: not JSON ({e})")
                name = None
            elif line.startswith("=== "):
                name, buf = line[4:].split()[0], []
            elif name:
                buf.append(line)
    return out


def get(d, *keys):
    for k in keys:
        if not isinstance(d, dict) or k not in d or d[k] is None:
            return None
        d = d[k]
    return d


def fmt(v, unit=""):
    return "-" if v is None else f"{v:.1f}{unit}" if isinstance(v, float) else f"{v}{unit}"


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[0])
        return 2
    r = reports(sys.argv[1])
    base, new = r.get("fcfs-recompute"), r.get("priority-swap")
    if not base or not new:
        print("the benchmark's reports are missing (did the VM run finish?)")
        return 1
    bad = 0
    print(f"{'':28s} {'fcfs+recompute':>16s} {'priority+swap':>16s}")
    for cls in ("online", "offline"):
        for what, key in (("TTFT", "ttft_ms"), ("ITL (pooled)", "itl_ms")):
            for p in ("p50", "p99"):
                a = get(base, "classes", cls, key, p)
                b = get(new, "classes", cls, key, p)
                print(f"{cls} {what} {p} (ms){'':{max(0, 15 - len(what))}s} "
                      f"{fmt(a):>16s} {fmt(b):>16s}")
        for which, rep in (("fcfs+recompute", base), ("priority+swap", new)):
            failed = get(rep, "classes", cls, "failed")
            if failed:
                bad = 1
                print(f"{cls}: {failed} requests failed under {which}: "
                      f"{get(rep, 'classes', cls, 'failures')}")
    a = get(base, "classes", "online", "ttft_ms", "p99")
    b = get(new, "classes", "online", "ttft_ms", "p99")
    if a is not None and b:
        ratio = a / b
        print(f"online (priority 0) p99 TTFT ratio: {ratio:.1f}x (target >= 3x: "
              f"{'met' if ratio >= 3 else 'missed'})")
    for which, rep in (("fcfs+recompute", base), ("priority+swap", new)):
        tax = get(rep, "server", "recompute_tax")
        if tax is None:
            tax = get(rep, "overall", "recompute_tax")
        bw = get(rep, "server", "gauges", "kvaccel_serve_swap_bandwidth_bytes")
        swapped = get(rep, "server", "counters", "kvaccel_serve_swapped_bytes_total")
        swaps = get(rep, "server", "counters", "kvaccel_serve_swaps_total")
        recs = get(rep, "server", "counters", "kvaccel_serve_recomputes_total")
        # The gauge is the cost model's estimate: its starting value until a swap ends.
        if not swaps:
            bw = None
        print(f"{which}: recompute tax {fmt(None if tax is None else 100 * tax, ' %')}, "
              f"swap-outs {fmt(swaps)}, recomputes {fmt(recs)}, swapped "
              f"{fmt(None if swapped is None else swapped / 2**20, ' MiB')}, swap bandwidth "
              f"{fmt(None if bw is None else bw / 1e6, ' MB/s')}")
    dg = get(new, "digests")
    if dg is None or dg.get("mismatched") or dg.get("missing"):
        bad = 1
        print(f"digests: {'not compared' if dg is None else dg}")
    else:
        print(f"digests: the same in both runs ({dg.get('compared')} requests compared)")
    return bad


if __name__ == "__main__":
    sys.exit(main())
