#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""kvaccel-sim's standard experiments, written up as build/sim-report/report.md.

usage: tools/sim/report.py [--bin build/tools/kvaccel-sim] [--out build/sim-report]
                           [--requests N] [--jobs N] [--quick]

(a) the bursty two-class workload (Azure-conversation-shaped lengths, 20 % "hi" with a tight
    TTFT SLO, 80 % "lo", Gamma arrivals with CV 3, 4 clients) on llama2-7b-a100 and
    llama3-8b-h100 for every system in tools/sim/systems/: one run at vLLM V1's goodput (SLO
    attainment, TTFT/TPOT p50/p99, worst gap, recompute tax, Jain's index), the goodput, the
    attainment at every rate the goodput search tried, the goodput at SLOs x 0.5 .. x 2;
(b) an ablation from vllm-v1 to kvaccel adding one mechanism at a time;
(c) a prefix-heavy workload (Mooncake-style hash ids) with and without the host tier, and with
    its shared prefixes made unique (the prefix cache's gain).
Plots (gnuplot, SVG and PNG) when gnuplot is installed; skipped with a note otherwise. A system
whose options this binary does not know (--instances, --pd, ... before they land) is skipped with
a note; --no-yield, when unknown, is dropped from the systems (a binary without it has no
operator-level yields: every step runs whole, which is what --no-yield asks for).
Only the standard library; progress on stderr.
"""
import argparse
import concurrent.futures as cf
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SYSTEMS = ["vllm-v1", "vllm-priority", "sarathi", "fastswitch", "flowprefill", "hygen",
           "distserve", "llumnix", "kvaccel"]
# profile, the goodput search's starting rate (about a quarter of what it sustains), and the
# requests a run in units of --requests: the faster GPU gets three times as many, so that its
# workload still spans several times the longest SLO at the rates it sustains
PROFILES = [("llama2-7b-a100", 1.0, 1), ("llama3-8b-h100", 4.0, 3)]
SLO_SCALES = [0.5, 0.71, 1.0, 1.41, 2.0]
SEED = 2


def workload(n, rate, slo=1.0):
    hi = "hi:1:0:%g:%g" % (1000 * slo, 100 * slo)
    lo = "lo:4:2:%g:%g" % (10000 * slo, 200 * slo)
    return ["--synthetic", "--requests", str(n), "--rate", "%g" % rate, "--arrival", "gamma",
            "--cv", "3", "--seed", str(SEED), "--class", hi, "--class", lo, "--clients", "4"]


class Sim:
    def __init__(self, binary, sysdir, jobs):
        self.bin, self.sysdir, self.jobs = binary, sysdir, jobs
        self.done = 0
        self.t0 = time.time()

    def run(self, args, what):
        cmd = [self.bin] + args
        if "--system" in args:
            cmd += ["--systems-dir", self.sysdir]
        t = time.time()
        p = subprocess.run(cmd, capture_output=True, text=True)
        self.done += 1
        sys.stderr.write("[%4.0f s] %-60s %5.1f s%s\n" % (time.time() - self.t0, what,
                                                         time.time() - t,
                                                         "" if p.returncode == 0 else
                                                         " FAILED"))
        if p.returncode:
            err = p.stderr.strip().splitlines()
            raise RuntimeError(err[0] if err else "exit status %d" % p.returncode)
        return p.stdout

    def json(self, args, what):
        return json.loads(self.run(args + ["--json"], what))

    def many(self, jobs):
        """jobs: (key, args, what, kind); kind json or raw. Returns {key: result or exception}."""
        out = {}
        with cf.ThreadPoolExecutor(max_workers=self.jobs) as ex:
            fut = {}
            for key, args, what, kind in jobs:
                f = ex.submit(self.json if kind == "json" else self.run, args, what)
                fut[f] = key
            for f in cf.as_completed(fut):
                try:
                    out[fut[f]] = f.result()
                except Exception as e:  # noqa: BLE001 - reported in the document
                    out[fut[f]] = e
        return out


def fmt(v, unit="", prec=3):
    if v is None:
        return "-"
    if isinstance(v, float) and v != v:
        return "-"
    return ("%.*g" % (prec, v)) + unit


def pct(v):
    return "-" if v is None else "%.1f %%" % (100 * v)


def ms(v):
    if v is None:
        return "-"
    return "%.0f ms" % v if v < 1000 else "%.2f s" % (v / 1000)


def table(head, rows):
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out) + "\n"


def systems_dir(tmp, noyield):
    """The shipped systems, less --no-yield when this binary has no yields at all."""
    src = os.path.join(ROOT, "tools/sim/systems")
    if noyield:
        return src
    dst = os.path.join(tmp, "systems")
    os.makedirs(dst)
    for f in os.listdir(src):
        with open(os.path.join(src, f)) as i, open(os.path.join(dst, f), "w") as o:
            for line in i:
                o.write(line.replace("--no-yield", "") if not line.startswith("#") else line)
    return dst


def prefix_trace(path, n, seed):
    """A Mooncake-style JSONL: 8 shared prompts of 2..8 blocks of 512 tokens, each request one of
    them and 1..3 blocks of its own, Poisson arrivals at 2/s (timestamps in ms)."""
    rng = random.Random(seed)
    prefixes = [list(range(1000 * k, 1000 * k + rng.randint(2, 8))) for k in range(8)]
    nxt, t = 100000, 0.0
    with open(path, "w") as f:
        for _ in range(n):
            t += rng.expovariate(2.0)
            p = prefixes[min(int(rng.paretovariate(1.2)) - 1, 7)]
            own = list(range(nxt, nxt + rng.randint(1, 3)))
            nxt += len(own)
            ids = p + own
            length = 512 * len(ids) - rng.randint(0, 400)
            out = max(1, int(rng.lognormvariate(5.0, 0.9)))
            f.write(json.dumps({"timestamp": int(t * 1000), "input_length": length,
                                "output_length": min(out, 1500), "hash_ids": ids}) + "\n")


def unshare(src, dst):
    """The same trace with every request's hash ids its own: no prefix is shared."""
    nxt = 10 ** 7
    with open(src) as i, open(dst, "w") as o:
        for line in i:
            r = json.loads(line)
            r["hash_ids"] = list(range(nxt, nxt + len(r["hash_ids"])))
            nxt += len(r["hash_ids"])
            o.write(json.dumps(r) + "\n")


COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf"]


def gnuplot(out, name, title, xlabel, ylabel, series, logx=False, yrange=None, points=True,
            xrange=None):
    """series: [(label, [(x, y), ...])]. Writes NAME.dat, NAME.gp, NAME.svg, NAME.png."""
    dat = os.path.join(out, name + ".dat")
    with open(dat, "w") as f:
        for label, pts in series:
            f.write("# %s\n" % label)
            for x, y in pts:
                f.write("%.6g %.6g\n" % (x, y))
            f.write("\n\n")
    plots = []
    for k, (label, _) in enumerate(series):
        style = "linespoints pt 7 ps 0.5" if points else "lines"
        plots.append("'%s' index %d using 1:2 with %s lw 2 lc rgb '%s' dt %d title '%s'" %
                     (name + ".dat", k, style, COLOURS[k % len(COLOURS)],
                      1 + k // len(COLOURS), label.replace("'", "")))
    common = ["set title '%s'" % title, "set xlabel '%s'" % xlabel, "set ylabel '%s'" % ylabel,
              "set grid", "set key outside right"]
    if logx:
        common.append("set logscale x")
    if yrange:
        common.append("set yrange [%g:%g]" % yrange)
    if xrange:
        common.append("set xrange [%g:%g]" % xrange)
    body = "\n".join(common) + "\nplot " + ", \\\n     ".join(plots) + "\n"
    gp = os.path.join(out, name + ".gp")
    with open(gp, "w") as f:
        f.write("set terminal svg size 900,500 dynamic font 'sans,12'\nset output '%s.svg'\n"
                % name + body + "set terminal pngcairo size 900,500 font 'sans,10'\n"
                "set output '%s.png'\nreplot\n" % name)
    p = subprocess.run(["gnuplot", name + ".gp"], cwd=out, capture_output=True, text=True)
    if p.returncode:
        raise RuntimeError("gnuplot %s: %s" % (name, p.stderr.strip()[:300]))


def gpus(sysdir, s):
    """The instances (GPUs) a system runs on: --instances N, --pd P:D, else 1."""
    words = []
    try:
        with open(os.path.join(sysdir, s + ".system")) as f:
            for line in f:
                words += line.split("#")[0].split()
    except OSError:
        return 1
    n = 1
    for k, w in enumerate(words[:-1]):
        if w == "--instances":
            n = int(words[k + 1])
        elif w == "--pd":
            n = sum(int(x) for x in words[k + 1].split(":"))
    return n


def summary(r):
    o, e = r["overall"], r["engine"]
    c = r["classes"]
    return {
        "att": o["slo_attainment"], "hi": c.get("hi", {}).get("slo_attainment"),
        "lo": c.get("lo", {}).get("slo_attainment"),
        "ttft50": o["ttft_ms"]["p50"], "ttft99": o["ttft_ms"]["p99"],
        "tpot50": o["tpot_ms"]["p50"], "tpot99": o["tpot_ms"]["p99"],
        "gap": o["itl_ms"]["max"], "tax": o.get("recompute_tax"), "failed": o["failed"],
        "jain": e.get("jain_fairness"), "util": e.get("utilisation"),
        "otps": e.get("output_tokens_per_s"), "swaps": e["swaps_out"],
        "recomputes": e["recomputes"], "hits": e["prefix_hit_blocks"],
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default=os.path.join(ROOT, "build/tools/kvaccel-sim"))
    ap.add_argument("--out", default=os.path.join(ROOT, "build/sim-report"))
    ap.add_argument("--requests", type=int, default=0, help="synthetic requests (1000)")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--quick", action="store_true",
                    help="a smoke test: one profile, two systems, 150 requests, no ablation")
    a = ap.parse_args()
    n = a.requests or (150 if a.quick else 1000)
    if not os.access(a.bin, os.X_OK):
        sys.exit("report.py: %s: not built (make build/tools/kvaccel-sim)" % a.bin)
    os.makedirs(a.out, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="sim-report-")
    notes = []
    try:
        helptext = subprocess.run([a.bin, "--help"], capture_output=True, text=True).stdout
        noyield = "--no-yield" in helptext
        if not noyield:
            notes.append("This kvaccel-sim has no `--no-yield` (no operator-level yields: every "
                         "step runs whole), so it was dropped from the systems' options: "
                         "vllm-v1 and the others that ask for it run as they would with it; "
                         "yields make no difference in this report.")
        sim = Sim(a.bin, systems_dir(tmp, noyield), a.jobs)
        have_plots = shutil.which("gnuplot") is not None
        if not have_plots:
            notes.append("gnuplot is not installed (Debian: gnuplot-nox): no plots; the "
                         "figures are in the tables.")
        profiles = [(p, r, 1) for p, r, _ in PROFILES[1:]] if a.quick else PROFILES
        systems = ["vllm-v1", "kvaccel"] if a.quick else SYSTEMS
        scales = [1.0] if a.quick else SLO_SCALES
        doc = report(a, sim, n, profiles, systems, scales, notes, have_plots, tmp)
        with open(os.path.join(a.out, "report.md"), "w") as f:
            f.write(doc)
        sys.stderr.write("report.py: %s written (%d runs, %.0f s)\n" %
                         (os.path.join(a.out, "report.md"), sim.done, time.time() - sim.t0))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def report(a, sim, n, profiles, systems, scales, notes, have_plots, tmp):
    prof = {p: os.path.join(ROOT, "tools/sim/profiles/%s.profile" % p) for p, _, _ in profiles}
    mulof = {p: m for p, _, m in profiles}
    # Which systems this binary can run (a tiny run each).
    ok = {}
    probe = sim.many([(s, ["--system", s, "--profile", prof[profiles[0][0]]] +
                       workload(5, 1), "probe " + s, "raw") for s in systems])
    for s in systems:
        if isinstance(probe[s], Exception):
            why = re.sub(r"^\S*kvaccel-sim: ", "", str(probe[s]))
            notes.append("`%s` skipped: %s%s." % (s, why, " (this binary does not have the "
                                                   "option yet)" if "unrecognized" in why
                                                   else ""))
        else:
            ok[s] = True
    runnable = [s for s in systems if s in ok]
    # A system on several GPUs gets as many times the requests (and the starting rate), so that
    # its workload spans as long as a one-GPU system's at the same load per GPU.
    ngpu = {s: gpus(sim.sysdir, s) for s in runnable}
    if "hygen" in runnable:
        notes.append("`hygen` is `fcfs` with the cost model's preemption here: the standard "
                     "workload has no offline class for its hybrid policy to fill the budget "
                     "with.")

    # (a) goodput of every system at the standard SLOs and their scales.
    jobs = []
    for p, r0, mul in profiles:
        for s in runnable:
            for sc in scales:
                jobs.append(((p, s, sc), ["--system", s, "--profile", prof[p], "--goodput"] +
                             workload(n * mul * ngpu[s], r0 * ngpu[s], sc),
                             "goodput %s %s SLO x%g" % (p, s, sc),
                             "json"))
    good = sim.many(jobs)
    # One run per system at vLLM V1's goodput (else at 4x the start rate).
    jobs, at = [], {}
    for p, r0, mul in profiles:
        g = good.get((p, "vllm-v1", 1.0))
        at[p] = g["goodput_rps"] if isinstance(g, dict) and g["goodput_rps"] > 0 else 4 * r0
        for s in runnable:
            csv = os.path.join(tmp, "req-%s-%s.csv" % (p, s))
            jobs.append(((p, s), ["--system", s, "--profile", prof[p], "--requests-csv", csv]
                         + workload(n * mul * ngpu[s], at[p]),
                         "run %s %s at %.3g/s" % (p, s, at[p]), "json"))
    runs = sim.many(jobs)

    # (b) the ablation.
    ny = ["--no-yield"] if "--no-yield" in subprocess.run(
        [a.bin, "--help"], capture_output=True, text=True).stdout else []
    steps = [("vllm-v1: fcfs, recompute, no yields, budget 2048",
              ["--policy", "fcfs", "--preempt", "recompute"] + ny),
             ("+ swap (the cost model's swap or recompute)",
              ["--policy", "fcfs", "--preempt", "cost"] + ny),
             ("+ operator-level yields", ["--policy", "fcfs", "--preempt", "cost"]),
             ("+ priority order", ["--policy", "priority", "--preempt", "cost"]),
             ("SLO order instead of priority (= kvaccel)", ["--policy", "slo", "--preempt",
                                                            "cost"]),
             ("(variant) kvaccel with recompute", ["--policy", "slo", "--preempt",
                                                   "recompute"]),
             ("(variant) kvaccel with budget 4096", ["--policy", "slo", "--preempt", "cost",
                                                     "--budget", "4096"])]
    abl = {}
    if not a.quick:
        abl = sim.many([((p, k), ["--profile", prof[p], "--goodput"] + opts +
                         workload(n * mul, r0),
                         "ablation %s: %s" % (p, name), "json")
                        for p, r0, mul in profiles for k, (name, opts) in enumerate(steps)])

    # (c) prefix-heavy: generated trace, shared and unshared, with and without the host tier.
    tr = os.path.join(tmp, "prefix.jsonl")
    un = os.path.join(tmp, "prefix-unshared.jsonl")
    prefix_trace(tr, 60 if a.quick else 400, SEED)
    unshare(tr, un)
    p0 = profiles[0][0]
    pre_cases = [("shared prefixes, host tier", tr, []),
                 ("shared prefixes, --no-host", tr, ["--no-host"]),
                 ("prefixes made unique, host tier", un, []),
                 ("prefixes made unique, --no-host", un, ["--no-host"])]
    pre_common = ["--profile", prof[p0], "--gpu-blocks", "3000", "--ttft-slo-ms", "2000",
                  "--tpot-slo-ms", "200", "--system", "kvaccel", "--preempt", "cost"]
    pre = sim.many([(k, pre_common + ["--trace", t] + o, "prefix: " + name, "json")
                    for k, (name, t, o) in enumerate(pre_cases)])
    pre_good = sim.many([(k, pre_common + ["--trace", t, "--goodput"] + o,
                          "prefix goodput: " + name, "json")
                         for k, (name, t, o) in enumerate(pre_cases)])

    # The document.
    d = ["# kvaccel-sim report\n",
         "Written by `tools/sim/report.py` (`make sim-report`) with `%s`; %d synthetic requests "
         "a run (times the profile's factor: %s; times the GPUs of a system), seed %d%s. One seed and uncalibrated profiles: these figures say what the "
         "mechanisms do in the model, not what a deployment would measure.\n" %
         (os.path.relpath(a.bin, ROOT), n, ", ".join("%s x%d" % (p, m) for p, _, m in profiles),
          SEED, " (--quick)" if a.quick else "")]
    d.append("The workload: Azure-conversation-shaped lengths (lognormal prompts mu 6.6 sigma "
             "1.0, outputs mu 5.0 sigma 0.9), Gamma arrivals with CV 3, 4 clients round robin, "
             "20 %% `hi` (priority 0, TTFT %s, TPOT %s) and 80 %% `lo` (priority 2, TTFT %s, "
             "TPOT %s). Goodput: the highest rate with at least 90 %% of all requests meeting "
             "both SLOs (failures are misses), by bisection to 1 %% (DistServe's "
             "definition).\n" % (ms(1000), ms(100), ms(10000), ms(200)))
    if notes:
        d.append("## Notes\n")
        d += ["- %s\n" % x for x in notes]
        d.append("")

    def gp(p, s, sc=1.0):
        g = good.get((p, s, sc))
        return g if isinstance(g, dict) else None

    def gfmt(g, nreq=0, sc=1.0):
        """A goodput; "> X" when no rate tried missed the target (a lower bound); a dagger when
        the workload arrived in less than 3 times its longest SLO (lo's TTFT) at that rate."""
        if not g:
            return "-"
        short = nreq and g["goodput_rps"] and nreq / g["goodput_rps"] < 3 * 10.0 * sc
        return ("" if g["bracketed"] or not g["goodput_rps"] else "> ") + \
            fmt(g["goodput_rps"], "/s") + (" †" if short else "")

    d.append("## Headline\n")
    d.append("The best system is the highest goodput per GPU (instance): `llumnix` and "
             "`distserve` run on more than one.\n")
    rows = []
    for p, _, _ in profiles:
        v, k = gp(p, "vllm-v1"), gp(p, "kvaccel")
        best = max(((gp(p, s)["goodput_rps"] / ngpu[s], s) for s in runnable if gp(p, s)),
                   default=(0, "-"))
        ratio = (k["goodput_rps"] / v["goodput_rps"]) if v and k and v["goodput_rps"] else None
        rows.append([p, gfmt(v), gfmt(k), fmt(ratio, "x"),
                     "%s (%s/s a GPU)" % (best[1], fmt(best[0])),
                     ("met" if ratio and ratio >= 2 else "not met") +
                     ("" if not k or k["bracketed"] else " (kvaccel's is a lower bound)")])
    d.append(table(["profile", "vllm-v1 goodput", "kvaccel goodput", "kvaccel / vllm-v1",
                    "best system", "the 2x goal"], rows))

    for p, _, _ in profiles:
        d.append("## (a) The bursty two-class workload on %s\n" % p)
        d.append("Goodput at the standard SLOs, and one run each at %.3g requests/s (vLLM V1's "
                 "goodput): SLO attainment overall and per class, TTFT and TPOT p50/p99, the "
                 "worst gap between two tokens of a stream, the recompute tax (recomputed over "
                 "prompt and completion tokens), Jain's index across the 4 clients "
                 "(VTC-weighted service a second in the system), preemptions.\n" % at[p])
        rows = []
        for s in runnable:
            g, r = gp(p, s), runs.get((p, s))
            if not isinstance(r, dict):
                rows.append([s, str(ngpu[s]), gfmt(g)] + ["-"] * 11)
                continue
            m = summary(r)
            rows.append([s, str(ngpu[s]), gfmt(g, n * mulof[p] * ngpu[s]), pct(m["att"]), pct(m["hi"]),
                         pct(m["lo"]), ms(m["ttft50"]), ms(m["ttft99"]), ms(m["tpot50"]),
                         ms(m["tpot99"]), ms(m["gap"]), pct(m["tax"]), fmt(m["jain"]),
                         "%d / %d" % (m["swaps"], m["recomputes"])])
        d.append("(A system on N GPUs runs N times the requests. † : the workload arrived in "
                 "less than 3 times the longest SLO, lo's TTFT, at that rate: the figure says "
                 "more about clearing one burst than about a sustained rate.)\n")
        d.append(table(["system", "GPUs", "goodput", "attainment", "hi", "lo", "TTFT p50", "TTFT p99",
                        "TPOT p50", "TPOT p99", "worst gap", "recompute tax", "Jain",
                        "swaps / recomputes"], rows))
        if len(scales) > 1:
            rows = [[s] + [gfmt(gp(p, s, sc), n * mulof[p] * ngpu[s], sc) for sc in scales]
                    for s in runnable]
            d.append("Goodput with every SLO scaled (x 0.5 .. x 2):\n")
            d.append(table(["system"] + ["SLO x%g" % sc for sc in scales], rows))
        if have_plots:
            try:
                cdf, att, gsc = [], [], []
                for s in runnable:
                    csv = os.path.join(tmp, "req-%s-%s.csv" % (p, s))
                    if os.path.exists(csv):
                        with open(csv) as f:
                            next(f)
                            t = sorted(float(x.split(",")[5]) / 1e3 for x in f
                                       if x.split(",")[5])
                        total = sum(1 for _ in open(csv)) - 1
                        cdf.append((s, [(v, (k + 1) / total) for k, v in enumerate(t)]))
                    g = gp(p, s)
                    if g:
                        att.append((s, sorted((x["rate"], x["attainment"])
                                              for x in g["tries"])))
                    pts = [(sc, gp(p, s, sc)["goodput_rps"]) for sc in scales
                           if gp(p, s, sc)]
                    gsc.append((s, pts))
                gnuplot(a.out, "ttft-cdf-" + p, "TTFT CDF at %.3g req/s, %s" % (at[p], p),
                        "TTFT (s)", "share of requests", cdf, logx=True, yrange=(0, 1),
                        points=False)
                gnuplot(a.out, "attainment-" + p, "SLO attainment vs rate, %s" % p,
                        "requests/s", "SLO attainment", att, logx=True, yrange=(0, 1))
                d.append("![TTFT CDF](ttft-cdf-%s.svg)\n" % p)
                d.append("![attainment vs rate](attainment-%s.svg)\n" % p)
                if len(scales) > 1:
                    gnuplot(a.out, "goodput-slo-" + p, "Goodput vs SLO scale, %s" % p,
                            "SLO scale", "goodput (requests/s)", gsc, logx=True,
                            xrange=(0.45, 2.2))
                    d.append("![goodput vs SLO scale](goodput-slo-%s.svg)\n" % p)
            except Exception as e:  # noqa: BLE001
                d.append("(plots failed: %s)\n" % e)
        fails = [(s, sc, good[(p, s, sc)]) for s in runnable for sc in scales
                 if isinstance(good.get((p, s, sc)), Exception)]
        for s, sc, e in fails:
            d.append("- goodput of %s at SLO x%g failed: %s\n" % (s, sc, e))

    if abl:
        d.append("## (b) Ablation: from vllm-v1 to kvaccel\n")
        d.append("One mechanism at a time, goodput at the standard SLOs (the command-line "
                 "options of each step in the first column).\n")
        rows = []
        for k, (name, opts) in enumerate(steps):
            row = [name, "`%s`" % " ".join(opts)]
            for p, _, _ in profiles:
                g = abl.get((p, k))
                row.append(gfmt(g) if isinstance(g, dict) else "-")
            rows.append(row)
        d.append(table(["step", "options"] + ["goodput, %s" % p for p, _, _ in profiles], rows))
        if not ny:
            d.append("(No operator-level yields in this binary: the yields step is the step "
                     "before it.)\n")

    d.append("## (c) A prefix-heavy workload on %s\n" % p0)
    d.append("A generated Mooncake-style trace (%s requests, 8 shared prompts of 2 to 8 blocks "
             "of 512 tokens, Pareto-popular, each request one of them and 1 to 3 blocks of its "
             "own; Poisson at 2/s), TTFT SLO 2 s and TPOT 200 ms, the kvaccel system with the cost model's "
             "swap-or-recompute choice (`--preempt cost`, so that swaps can use the host "
             "tier), the GPU "
             "cut to 3000 blocks so that the host tier matters; and the same trace with every "
             "hash id made unique (no prefix shared). The run is at the trace's own rate, the "
             "goodput by --time-scale.\n" % (60 if a.quick else 400))
    rows = []
    for k, (name, _, _) in enumerate(pre_cases):
        r, g = pre.get(k), pre_good.get(k)
        if not isinstance(r, dict):
            rows.append([name] + ["-"] * 7)
            continue
        m = summary(r)
        rows.append([name, gfmt(g if isinstance(g, dict) else None),
                     pct(m["att"]), ms(m["ttft50"]), ms(m["ttft99"]), str(m["hits"]),
                     "%d / %d" % (m["swaps"], m["recomputes"]), pct(m["tax"])])
    d.append(table(["case", "goodput", "attainment", "TTFT p50", "TTFT p99",
                    "prefix-cache block hits", "swaps / recomputes", "recompute tax"], rows))
    return "\n".join(d)


if __name__ == "__main__":
    main()
