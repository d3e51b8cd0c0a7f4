#!/usr/bin/env python3
"""pvio block benchmark: one run, side by side, on the same image file.

  limit     fio with io_uring (O_DIRECT) straight on the backing file
            (--limit-engine libaio: with libaio)
  pvio      pvblk bench in a guest: blkfront -> ring -> tapdisk -> file, from
            zero-copy buffers (blkfront's granted pages; --off zerocopy: bounced)
  pvio-vhd  the same through tapdisk from a dynamic VHD holding the same data
  pvio-chain3  ... from a 3-deep VHD chain (base <- snapshot <- snapshot, each
            level written) whose view is the same data
  pvio-nbd  fio's nbd engine -> nbdkit pvio plugin in the guest -> blkfront -> tapdisk
            (requests in parallel, all on one driver thread that owns blkfront)
  tapdisk-nbd  fio's nbd engine -> tapdisk's own NBD export of the raw image
            (dom0 access; the same role as qemu-nbd)
  qemu-nbd  fio's nbd engine -> qemu-nbd serving the same file (the peer)
  pvio-mq   (--queues N) pvio with the guest on N rings
  pvio-gpoll (--guest-poll-us N) pvio with only the guest polling
  pvio-poll (--poll-us N) pvio with both ends polling: tapdisk's adaptive
            ring polling and the guest's hybrid polling (pvblk --poll-us N)
  pvio-no-X (--off X) pvio with feature X switched off

and the transport rows: tapdisk's null engine (no I/O) at --transport-qd,
with CPU per I/O and notifications per request (and qdN-poll rows with
--poll-us),

for 4 KiB random read and write at queue depth 1 and 32 and 1 MiB sequential
read and write; each pvio figure also as a ratio to the limit (the VHD
columns as a ratio to pvio on the raw file, their goal). Prints a table,
writes JSON (--json), and a PNG of IOPS against queue depth when gnuplot is
installed (--png). Configurations are interleaved per workload so that drift
of the machine hits all of them alike.
"""
import argparse, json, os, shutil, signal, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def run(cmd, env=None, check=True, capture=True):
    r = subprocess.run(cmd, env=env, capture_output=capture, text=True)
    if check and r.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(cmd), r.returncode, r.stderr.strip()[-400:]))
    return r.stdout


def wait_path(p, secs=30):
    d = time.monotonic() + secs
    while not os.path.exists(p):
        if time.monotonic() > d:
            raise RuntimeError("timed out waiting for " + p)
        time.sleep(0.02)


OFF_FLAGS = {"persistent": ["--no-persistent"], "multipage": ["--ring-order", "0"],
             "indirect": ["--no-indirect"], "zerocopy": ["--bounce"]}

WORKLOADS = [  # name, fio rw, pvblk rw, bs, qd
    ("randread-4k-qd1", "randread", "randread", 4096, 1),
    ("randread-4k-qd32", "randread", "randread", 4096, 32),
    ("randwrite-4k-qd1", "randwrite", "randwrite", 4096, 1),
    ("randwrite-4k-qd32", "randwrite", "randwrite", 4096, 32),
    ("read-1m-qd4", "read", "read", 1 << 20, 4),
    ("write-1m-qd4", "write", "write", 1 << 20, 4),
]


def fio(args, target, rw, bs, qd, secs, size):
    cmd = ["fio", "--name=b", "--rw=" + rw, "--bs=%d" % bs, "--iodepth=%d" % qd,
           "--time_based", "--runtime=%d" % secs, "--size=%d" % size,
           "--output-format=json", "--randrepeat=0", "--norandommap"] + args + target
    text = run(cmd)
    out = json.loads(text[text.index("{"):])  # the nbd engine chats before the JSON
    j = out["jobs"][0]
    side = j["read"] if rw in ("read", "randread") else j["write"]
    r = {"iops": side["iops"], "mb_per_s": side["bw_bytes"] / 1e6,
         "lat_p50_us": side["clat_ns"]["percentile"].get("50.000000", 0) / 1000.0}
    # fio's own CPU (its job process, user + system) per I/O completed
    cpu_s = (j.get("usr_cpu", 0) + j.get("sys_cpu", 0)) / 100.0 * j.get("job_runtime", 0) / 1000.0
    if side.get("total_ios"):
        r["cpu_us_per_io"] = cpu_s * 1e6 / side["total_ios"]
    return r


def proc_cpu_s(pid):
    """User + system CPU seconds of process @pid so far (/proc/PID/stat)."""
    with open("/proc/%d/stat" % pid) as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


def tapdisk_stats(tapctl, env, dom, devid):
    st = json.loads(run([tapctl, "stats", str(dom), str(devid)], env=env))
    return st, proc_cpu_s(st["pid"])


def pvblk_bench(xensim, pvblk, tapctl, env, dom, vdev, devid, extra, rw, bs, qd, secs):
    """pvblk bench on @vdev with the tapdisk serving it sampled around the
    run: IOPS, p50, CPU per I/O (guest process + tapdisk) and notifications
    per ring request (blkfront's + blkback's)."""
    st0, cpu0 = tapdisk_stats(tapctl, env, dom, devid)
    out = run([xensim, "run", dom, "--", pvblk, "--vdev", vdev] + extra +
              ["bench", "--rw", rw, "--bs", str(bs), "--qd", str(qd), "--time", str(secs), "--json"],
              env=env)
    st1, cpu1 = tapdisk_stats(tapctl, env, dom, devid)
    p = json.loads(out.strip().splitlines()[-1])
    r = {"iops": p["iops"], "mb_per_s": p["mb_per_s"], "lat_p50_us": p["lat_us"]["p50"]}
    if "cpu_s" in p and p["ios"]:
        back_ntf = st1["notifies_sent"] - st0["notifies_sent"]
        r["cpu_us_per_io"] = (p["cpu_s"] + cpu1 - cpu0) * 1e6 / p["ios"]
        r["guest_cpu_us_per_io"] = p["cpu_us_per_io"]
        r["tapdisk_cpu_us_per_io"] = (cpu1 - cpu0) * 1e6 / p["ios"]
        r["ring_requests"] = p["ring_requests"]
        r["front_notifies"] = p["notifies"]
        r["back_notifies"] = back_ntf
        if p["ring_requests"]:
            r["notifies_per_request"] = (p["notifies"] + back_ntf) / p["ring_requests"]
    return r


POLL_DEVID = "51760"  # xvdd: the disk served by a polling tapdisk


def tapdisk_wrapper(tmp, tapdisk, poll_us):
    """A --tapdisk for pvio-tapback that adds --poll-us to the tapdisk of
    xvdd only, so one run has the same image with and without polling."""
    w = os.path.join(tmp, "tapdisk-poll")
    with open(w, "w") as f:
        f.write('#!/bin/sh\ncase " $* " in *"/%s "*) exec "%s" "$@" --poll-us %d;; esac\nexec "%s" "$@"\n'
                % (POLL_DEVID, tapdisk, poll_us, tapdisk))
    os.chmod(w, 0o755)
    return w


def transport(a, xensim, tapback, pvblk, tapctl):
    """The transport alone: tapdisk's null engine (completes at once, moves
    no data) under pvblk bench, 4 KiB random reads at each queue depth."""
    tmp = tempfile.mkdtemp(prefix="pvio-bench-null.")
    env = dict(os.environ, XENSIM_DIR=tmp)
    img = os.path.join(tmp, "null.img")
    with open(img, "wb") as f:
        f.truncate(a.size << 20)  # never read: the null engine does no I/O
    res = {}
    tb = None
    try:
        run([xensim, "start"], env=env)
        dom = run([xensim, "domain", "create", "bench-null", "--memory", "256"], env=env).strip()
        tbargs = ["--tapdisk", tapdisk_wrapper(tmp, a.tapdisk, a.poll_us)] if a.poll_us else []
        tb = subprocess.Popen([xensim, "run", "0", "--", tapback, "--engine", "null", "--no-nbd",
                               "--log", os.path.join(tmp, "tapback.log")] + tbargs, env=env)
        devid = run([xensim, "vbd", "attach", dom, img, "--vdev", "xvda"], env=env).strip()
        if a.poll_us:
            run([xensim, "vbd", "attach", dom, img, "--vdev", "xvdd"], env=env)
        run([xensim, "run", dom, "--", pvblk, "info"], env=env)
        for qd in [int(q) for q in a.transport_qd.split(",") if q]:
            log("blkbench: transport qd%d" % qd)
            res["qd%d" % qd] = pvblk_bench(xensim, pvblk, tapctl, env, dom, "xvda", devid, [],
                                           "randread", 4096, qd, a.time)
            if a.poll_us:
                res["qd%d-poll" % qd] = pvblk_bench(xensim, pvblk, tapctl, env, dom, "xvdd", POLL_DEVID,
                                                    ["--poll-us", str(a.poll_us)],
                                                    "randread", 4096, qd, a.time)
    finally:
        if tb:
            tb.send_signal(signal.SIGTERM)
            try:
                tb.wait(timeout=20)
            except subprocess.TimeoutExpired:
                tb.kill()
        subprocess.run([xensim, "stop"], env=env, capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
    return res


def measure(a, work, skip, offs, xensim, tapback, pvblk, plugin, vhdtool, tapctl):
    """The main table: every configuration, interleaved per workload."""
    tmp = tempfile.mkdtemp(prefix="pvio-bench.")
    env = dict(os.environ, XENSIM_DIR=tmp)
    img = tempfile.mktemp(prefix="pvio-bench-", suffix=".img", dir=a.dir)
    size = a.size << 20
    procs = []
    results = {}
    vhds = [c for c in ("pvio-vhd", "pvio-chain3") if c not in skip]
    if vhds and not os.path.exists(vhdtool):
        sys.exit("blkbench: %s not built (run scripts/build)" % vhdtool)
    vdev = {"pvio": "xvda", "pvio-vhd": "xvdb", "pvio-chain3": "xvdc"}
    made = []  # VHD files to remove
    devids = {}
    try:
        run([xensim, "start"], env=env)
        dom = run([xensim, "domain", "create", "bench", "--memory", "256"], env=env).strip()
        tbargs = ["--tapdisk", tapdisk_wrapper(tmp, a.tapdisk, a.poll_us)] if a.poll_us else []
        procs.append(subprocess.Popen([xensim, "run", "0", "--", tapback, "--engine", a.engine,
                                       "--log", os.path.join(tmp, "tapback.log")] + tbargs, env=env))
        log("blkbench: writing a %d MiB image at %s" % (a.size, img))
        run(["fio", "--name=fill", "--rw=write", "--bs=1m", "--size=%d" % size, "--filename=" + img,
             "--ioengine=psync", "--direct=1", "--output-format=terse"])
        if vhds:
            # A 3-deep chain: the filled image as a dynamic base, then two
            # snapshots, each written at random through tapdisk (64 KiB
            # writes over a quarter of the disk), so reads resolve through
            # every level.  The raw image then gets the chain's view
            # (vhdtool convert) and the dynamic VHD is made from that: all
            # three hold the same data.
            base, mid, leaf, dyn = (img[:-4] + s for s in ("-base.vhd", "-mid.vhd", "-leaf.vhd", "-dyn.vhd"))
            made += [base, mid, leaf, dyn]
            log("blkbench: building a 3-deep VHD chain")
            run([vhdtool, "convert", "--type", "dynamic", img, base])
            for parent, child in ((base, mid), (mid, leaf)):
                run([vhdtool, "snapshot", parent, child])
                run([xensim, "vbd", "attach", dom, child, "--vdev", "xvdc"], env=env)
                run([xensim, "run", dom, "--", pvblk, "--vdev", "xvdc", "bench", "--rw", "randwrite",
                     "--bs", "64k", "--qd", "16", "--count", str(max(1, size // (64 << 10) // 4))], env=env)
                run([xensim, "vbd", "detach", dom, "xvdc"], env=env)
            os.unlink(img)
            run([vhdtool, "convert", leaf, img])
            run([vhdtool, "convert", "--type", "dynamic", img, dyn])
            devids["pvio-vhd"] = run([xensim, "vbd", "attach", dom, dyn, "--vdev", "xvdb"], env=env).strip()
            devids["pvio-chain3"] = run([xensim, "vbd", "attach", dom, leaf, "--vdev", "xvdc"], env=env).strip()
        devids["pvio"] = run([xensim, "vbd", "attach", dom, img, "--vdev", "xvda"], env=env).strip()
        if a.poll_us:  # the same image, served by a polling tapdisk
            run([xensim, "vbd", "attach", dom, img, "--vdev", "xvdd"], env=env)
        run([xensim, "run", dom, "--", pvblk, "info"], env=env)
        nbd_sock = os.path.join(tmp, "pvio.sock")
        for name, frw, prw, bs, qd in work:
            r = results.setdefault(name, {"bs": bs, "qd": qd})
            log("blkbench: %s" % name)
            r["limit"] = fio(["--ioengine=" + a.limit_engine, "--direct=1"], ["--filename=" + img],
                             frw, bs, qd, a.time, size)
            for c in ["pvio"] + vhds:
                r[c] = pvblk_bench(xensim, pvblk, tapctl, env, dom, vdev[c], devids[c], [],
                                   prw, bs, qd, a.time)
            for feat in offs:
                r["pvio-no-" + feat] = pvblk_bench(xensim, pvblk, tapctl, env, dom, "xvda", devids["pvio"],
                                                   OFF_FLAGS[feat], prw, bs, qd, a.time)
            if a.queues > 1:
                r["pvio-mq"] = pvblk_bench(xensim, pvblk, tapctl, env, dom, "xvda", devids["pvio"],
                                           ["--queues", str(a.queues)], prw, bs, qd, a.time)
            if a.guest_poll_us:
                r["pvio-gpoll"] = pvblk_bench(xensim, pvblk, tapctl, env, dom, "xvda", devids["pvio"],
                                              ["--poll-us", str(a.guest_poll_us)], prw, bs, qd, a.time)
            if a.poll_us:
                r["pvio-poll"] = pvblk_bench(xensim, pvblk, tapctl, env, dom, "xvdd", POLL_DEVID,
                                             ["--poll-us", str(a.poll_us)],
                                             prw, bs, qd, a.time)
            if "pvio-nbd" not in skip:
                # one frontend per disk at a time: nbdkit opens it only now
                nb = subprocess.Popen([xensim, "run", dom, "--", "nbdkit", "--foreground", "--unix",
                                       nbd_sock, plugin, "vdev=xvda"], env=env,
                                      stderr=open(os.path.join(tmp, "nbdkit.log"), "a"))
                try:
                    wait_path(nbd_sock)
                    r["pvio-nbd"] = fio(["--ioengine=nbd", "--uri=nbd+unix:///?socket=" + nbd_sock], [],
                                        frw, bs, qd, a.time, size)
                    # fio's CPU alone would hide nbdkit's and tapdisk's
                    r["pvio-nbd"].pop("cpu_us_per_io", None)
                finally:
                    nb.terminate()
                    nb.wait()
                    if os.path.exists(nbd_sock):
                        os.unlink(nbd_sock)
            if "tapdisk-nbd" not in skip:
                # tapdisk's own NBD export of the raw image (dom0 access),
                # the same role as qemu-nbd's: fio's CPU alone would hide tapdisk's
                tsock = os.path.join(tmp, "tapdisk", "tapdisk-%s-%s.nbd" % (dom, devids["pvio"]))
                r["tapdisk-nbd"] = fio(["--ioengine=nbd", "--uri=nbd+unix:///?socket=" + tsock], [],
                                       frw, bs, qd, a.time, size)
                r["tapdisk-nbd"].pop("cpu_us_per_io", None)
            if "qemu-nbd" not in skip:
                qsock = os.path.join(tmp, "qemu.sock")
                q = subprocess.Popen(["qemu-nbd", "--socket=" + qsock, "--format=raw", "--cache=none",
                                      "--aio=io_uring", "--persistent", img],
                                     stderr=subprocess.DEVNULL)
                try:
                    wait_path(qsock)
                    r["qemu-nbd"] = fio(["--ioengine=nbd", "--uri=nbd+unix:///?socket=" + qsock], [],
                                        frw, bs, qd, a.time, size)
                    r["qemu-nbd"].pop("cpu_us_per_io", None)
                finally:
                    q.terminate()
                    q.wait()
                    if os.path.exists(qsock):
                        os.unlink(qsock)
            for k in (["pvio", "pvio-nbd", "tapdisk-nbd", "pvio-mq", "pvio-gpoll", "pvio-poll"]
                      + ["pvio-no-" + f for f in offs]):
                if k in r and r["limit"]["iops"]:
                    r[k]["ratio_to_limit"] = r[k]["iops"] / r["limit"]["iops"]
            for k in vhds:
                if r["pvio"]["iops"]:
                    r[k]["ratio_to_raw"] = r[k]["iops"] / r["pvio"]["iops"]
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        subprocess.run([xensim, "stop"], env=env, capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
        for f in [img] + made:
            if os.path.exists(f):
                os.unlink(f)
    return results, vhds

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"), help="meson build dir")
    ap.add_argument("--dir", default="/var/tmp", help="where the image lives (a local disk for O_DIRECT)")
    ap.add_argument("--size", type=int, default=1024, help="image size in MiB")
    ap.add_argument("--time", type=int, default=8, help="seconds per measurement")
    ap.add_argument("--engine", default="io_uring", choices=["io_uring", "io_uring:nofixed", "libaio", "null"],
                    help="tapdisk engine; null completes at once without I/O: the pvio column is then the transport alone")
    ap.add_argument("--only", default="", help="comma-separated workload names")
    ap.add_argument("--skip", default="",
                    help="comma-separated configs to skip (pvio-vhd,pvio-chain3,pvio-nbd,tapdisk-nbd,qemu-nbd)")
    ap.add_argument("--off", default="",
                    help="also measure pvio with features switched off, as extra columns: "
                         "comma-separated from persistent (no persistent grants), multipage (1-page ring), "
                         "indirect (no indirect descriptors: 11 segments, 44 KiB, per request), "
                         "zerocopy (the guest's buffers are plain memory, copied through blkfront's "
                         "bounce pool)")
    ap.add_argument("--limit-engine", choices=["io_uring", "libaio"], default="io_uring",
                    help="fio's engine for the limit column (libaio: the comparison the goal names for "
                         "tmpfs, --dir /dev/shm, where io_uring hands reads to a worker thread)")
    ap.add_argument("--poll-us", type=int, default=0,
                    help="also measure pvio with both ends polling for N us (tapdisk --poll-us N, "
                         "pvblk --poll-us N): a pvio-poll column and transport rows qdN-poll; 0: not measured")
    ap.add_argument("--guest-poll-us", type=int, default=0,
                    help="also measure pvio with only the guest polling for N us (pvblk --poll-us N, "
                         "tapdisk not polling): a pvio-gpoll column; 0: not measured")
    ap.add_argument("--queues", type=int, default=0,
                    help="also measure pvio with the guest using N rings (multi-queue): a pvio-mq column")
    ap.add_argument("--transport-qd", default="1,8,32",
                    help="queue depths of the transport rows (null engine, 4 KiB random read); empty: none")
    ap.add_argument("--transport-only", action="store_true", help="measure only the transport rows")
    ap.add_argument("--json", help="write results as JSON here")
    ap.add_argument("--png", help="write a plot of IOPS against queue depth here (needs gnuplot)")
    a = ap.parse_args()

    b = a.build
    xensim = os.path.join(b, "sim/xensim")
    tapback = os.path.join(b, "tapdisk/tapback/pvio-tapback")
    pvblk = os.path.join(b, "tools/pvblk/pvblk")
    plugin = os.path.join(b, "tools/nbdkit/nbdkit-pvio-plugin.so")
    vhdtool = os.path.join(b, "tools/vhdtool/vhdtool")
    tapctl = os.path.join(b, "tools/tapctl/tapctl")
    a.tapdisk = os.path.join(b, "tapdisk/tapdisk")
    for p in (xensim, tapback, pvblk, tapctl):
        if not os.path.exists(p):
            sys.exit("blkbench: %s not built (run scripts/build)" % p)
    skip = set(filter(None, a.skip.split(",")))
    if not shutil.which("qemu-nbd"):
        skip.add("qemu-nbd")
    if not os.path.exists(plugin) or not shutil.which("nbdkit"):
        skip.add("pvio-nbd")
    work = [w for w in WORKLOADS if not a.only or w[0] in a.only.split(",")]
    offs = [f for f in a.off.split(",") if f]
    for f in offs:
        if f not in OFF_FLAGS:
            sys.exit("blkbench: --off knows %s" % ", ".join(OFF_FLAGS))

    trans = transport(a, xensim, tapback, pvblk, tapctl) if a.transport_qd else {}
    results = {}
    vhds = [c for c in ("pvio-vhd", "pvio-chain3") if c not in skip]
    if not a.transport_only:
        results, vhds = measure(a, work, skip, offs, xensim, tapback, pvblk, plugin, vhdtool, tapctl)

    cols = (["limit", "pvio"] + vhds + ["pvio-no-" + f for f in offs] + (["pvio-mq"] if a.queues > 1 else [])
            + (["pvio-gpoll"] if a.guest_poll_us else []) + (["pvio-poll"] if a.poll_us else [])
            + ["pvio-nbd", "tapdisk-nbd", "qemu-nbd"])
    head = "%-20s %12s" % ("workload (IOPS)", "fio direct")
    for c in cols[1:]:
        head += " %14s" % c + ("  ratio" if (c.startswith("pvio") or c == "tapdisk-nbd") else "")
    if results:
        print(head)
    for name, r in results.items():
        line = "%-20s %12s" % (name, ("%12.0f" % r["limit"]["iops"]) if "limit" in r else "-")
        for c in cols[1:]:
            line += " %14s" % (("%.0f" % r[c]["iops"]) if c in r else "-")
            if (c.startswith("pvio") or c == "tapdisk-nbd"):
                rk = "ratio_to_raw" if c in vhds else "ratio_to_limit"
                line += " %6s" % (("%.2f" % r[c][rk]) if c in r and rk in r[c] else "-")
        print(line)
    if vhds and results:
        print("(ratios: pvio, pvio-no-*, pvio-mq, pvio-gpoll, pvio-poll, pvio-nbd to fio direct; pvio-vhd and "
              "pvio-chain3 to pvio on the raw file)")
    # Per-I/O costs: p50 latency, CPU per I/O (fio: its own process;
    # pvio: the guest process plus its tapdisk) and notifications per ring
    # request (blkfront's plus blkback's), where measured.
    for title, key, fmt in (("p50 latency (us)", "lat_p50_us", "%.1f"),
                            ("CPU us per I/O", "cpu_us_per_io", "%.2f"),
                            ("notif/request", "notifies_per_request", "%.3f")):
        if not results:
            break
        print()
        print("%-20s %12s" % (title, "fio direct") + "".join(" %14s" % c + ("       " if (c.startswith("pvio") or c == "tapdisk-nbd") else "")
                                                            for c in cols[1:]))
        for name, r in results.items():
            line = "%-20s %12s" % (name, (fmt % r["limit"][key]) if key in r.get("limit", {}) else "-")
            for c in cols[1:]:
                line += " %14s" % ((fmt % r[c][key]) if c in r and key in r[c] else "-")
                if (c.startswith("pvio") or c == "tapdisk-nbd"):
                    line += "       "
            print(line)
    if trans:
        print()
        print("transport (null engine, 4 KiB random read: ring, grants, events; no I/O)")
        print("%-8s %12s %16s %12s %10s %12s" % ("qd", "req/s", "notif/request", "front/back", "p50 us",
                                                  "CPU us/I/O"))
        for k, t in trans.items():
            print("%-8s %12.0f %16s %12s %10.1f %12s" % (
                k, t["iops"], ("%.3f" % t["notifies_per_request"]) if "notifies_per_request" in t else "-",
                ("%d/%d" % (t["front_notifies"], t["back_notifies"])) if "front_notifies" in t else "-",
                t["lat_p50_us"], ("%.2f" % t["cpu_us_per_io"]) if "cpu_us_per_io" in t else "-"))
    doc = {"image_mib": a.size, "image_dir": a.dir, "seconds": a.time, "engine": a.engine,
           "limit_engine": a.limit_engine,
           "configs": cols, "results": results, "transport": trans}
    if a.json:
        with open(a.json, "w") as f:
            json.dump(doc, f, indent=2)
        log("blkbench: wrote %s" % a.json)
    if a.png and shutil.which("gnuplot"):
        dat = tempfile.mktemp(suffix=".dat")
        with open(dat, "w") as f:
            for name in ("randread-4k-qd1", "randread-4k-qd32"):
                if name in results:
                    r = results[name]
                    f.write("%d %s\n" % (r["qd"], " ".join("%.0f" % r[c]["iops"] if c in r else "NaN"
                                                            for c in cols)))
        script = ("set terminal png size 800,500; set output '%s'; set logscale x 2; "
                  "set xlabel 'queue depth'; set ylabel 'IOPS (4 KiB random read)'; set key left; "
                  "plot " % a.png + ", ".join("'%s' using 1:%d with linespoints title '%s'" % (dat, i + 2, c)
                                              for i, c in enumerate(cols)))
        subprocess.run(["gnuplot", "-e", script])
        os.unlink(dat)
        log("blkbench: wrote %s" % a.png)


if __name__ == "__main__":
    main()
