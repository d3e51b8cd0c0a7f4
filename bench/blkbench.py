#!/usr/bin/env python3
"""pvio block benchmark: one run, side by side, on the same image file.

  limit     fio with io_uring (O_DIRECT) straight on the backing file
  pvio      pvblk bench in a guest: blkfront -> ring -> tapdisk -> file
  pvio-vhd  the same through tapdisk from a dynamic VHD holding the same data
  pvio-chain3  ... from a 3-deep VHD chain (base <- snapshot <- snapshot, each
            level written) whose view is the same data
  pvio-nbd  fio's nbd engine -> nbdkit pvio plugin in the guest -> blkfront -> tapdisk
  qemu-nbd  fio's nbd engine -> qemu-nbd serving the same file (the peer)

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
             "indirect": ["--no-indirect"]}

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
    return {"iops": side["iops"], "mb_per_s": side["bw_bytes"] / 1e6,
            "lat_p50_us": side["clat_ns"]["percentile"].get("50.000000", 0) / 1000.0}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"), help="meson build dir")
    ap.add_argument("--dir", default="/var/tmp", help="where the image lives (a local disk for O_DIRECT)")
    ap.add_argument("--size", type=int, default=1024, help="image size in MiB")
    ap.add_argument("--time", type=int, default=8, help="seconds per measurement")
    ap.add_argument("--engine", default="io_uring", choices=["io_uring", "libaio", "null"],
                    help="tapdisk engine; null completes at once without I/O: the pvio column is then the transport alone")
    ap.add_argument("--only", default="", help="comma-separated workload names")
    ap.add_argument("--skip", default="",
                    help="comma-separated configs to skip (pvio-vhd,pvio-chain3,pvio-nbd,qemu-nbd)")
    ap.add_argument("--off", default="",
                    help="also measure pvio with features switched off, as extra columns: "
                         "comma-separated from persistent (no persistent grants), multipage (1-page ring), "
                         "indirect (no indirect descriptors: 11 segments, 44 KiB, per request)")
    ap.add_argument("--json", help="write results as JSON here")
    ap.add_argument("--png", help="write a plot of IOPS against queue depth here (needs gnuplot)")
    a = ap.parse_args()

    b = a.build
    xensim = os.path.join(b, "sim/xensim")
    tapback = os.path.join(b, "tapdisk/tapback/pvio-tapback")
    pvblk = os.path.join(b, "tools/pvblk/pvblk")
    plugin = os.path.join(b, "tools/nbdkit/nbdkit-pvio-plugin.so")
    vhdtool = os.path.join(b, "tools/vhdtool/vhdtool")
    for p in (xensim, tapback, pvblk):
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
    try:
        run([xensim, "start"], env=env)
        dom = run([xensim, "domain", "create", "bench", "--memory", "256"], env=env).strip()
        procs.append(subprocess.Popen([xensim, "run", "0", "--", tapback, "--engine", a.engine,
                                       "--log", os.path.join(tmp, "tapback.log")], env=env))
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
            run([xensim, "vbd", "attach", dom, dyn, "--vdev", "xvdb"], env=env)
            run([xensim, "vbd", "attach", dom, leaf, "--vdev", "xvdc"], env=env)
        run([xensim, "vbd", "attach", dom, img, "--vdev", "xvda"], env=env)
        run([xensim, "run", dom, "--", pvblk, "info"], env=env)
        nbd_sock = os.path.join(tmp, "pvio.sock")
        for name, frw, prw, bs, qd in work:
            r = results.setdefault(name, {"bs": bs, "qd": qd})
            log("blkbench: %s" % name)
            r["limit"] = fio(["--ioengine=io_uring", "--direct=1"], ["--filename=" + img],
                             frw, bs, qd, a.time, size)
            out = run([xensim, "run", dom, "--", pvblk, "bench", "--rw", prw, "--bs", str(bs),
                       "--qd", str(qd), "--time", str(a.time), "--json"], env=env)
            p = json.loads(out.strip().splitlines()[-1])
            r["pvio"] = {"iops": p["iops"], "mb_per_s": p["mb_per_s"], "lat_p50_us": p["lat_us"]["p50"]}
            for c in vhds:
                out = run([xensim, "run", dom, "--", pvblk, "--vdev", vdev[c], "bench", "--rw", prw,
                           "--bs", str(bs), "--qd", str(qd), "--time", str(a.time), "--json"], env=env)
                p = json.loads(out.strip().splitlines()[-1])
                r[c] = {"iops": p["iops"], "mb_per_s": p["mb_per_s"], "lat_p50_us": p["lat_us"]["p50"]}
            for feat in offs:
                out = run([xensim, "run", dom, "--", pvblk] + OFF_FLAGS[feat] +
                          ["bench", "--rw", prw, "--bs", str(bs), "--qd", str(qd), "--time", str(a.time),
                           "--json"], env=env)
                p = json.loads(out.strip().splitlines()[-1])
                r["pvio-no-" + feat] = {"iops": p["iops"], "mb_per_s": p["mb_per_s"],
                                        "lat_p50_us": p["lat_us"]["p50"]}
            if "pvio-nbd" not in skip:
                # one frontend per disk at a time: nbdkit opens it only now
                nb = subprocess.Popen([xensim, "run", dom, "--", "nbdkit", "--foreground", "--unix",
                                       nbd_sock, plugin, "vdev=xvda"], env=env,
                                      stderr=open(os.path.join(tmp, "nbdkit.log"), "a"))
                try:
                    wait_path(nbd_sock)
                    r["pvio-nbd"] = fio(["--ioengine=nbd", "--uri=nbd+unix:///?socket=" + nbd_sock], [],
                                        frw, bs, qd, a.time, size)
                finally:
                    nb.terminate()
                    nb.wait()
                    if os.path.exists(nbd_sock):
                        os.unlink(nbd_sock)
            if "qemu-nbd" not in skip:
                qsock = os.path.join(tmp, "qemu.sock")
                q = subprocess.Popen(["qemu-nbd", "--socket=" + qsock, "--format=raw", "--cache=none",
                                      "--aio=io_uring", "--persistent", img],
                                     stderr=subprocess.DEVNULL)
                try:
                    wait_path(qsock)
                    r["qemu-nbd"] = fio(["--ioengine=nbd", "--uri=nbd+unix:///?socket=" + qsock], [],
                                        frw, bs, qd, a.time, size)
                finally:
                    q.terminate()
                    q.wait()
                    if os.path.exists(qsock):
                        os.unlink(qsock)
            for k in ["pvio", "pvio-nbd"] + ["pvio-no-" + f for f in offs]:
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

    cols = ["limit", "pvio"] + vhds + ["pvio-no-" + f for f in offs] + ["pvio-nbd", "qemu-nbd"]
    head = "%-20s %12s" % ("workload (IOPS)", "fio direct")
    for c in cols[1:]:
        head += " %14s" % c + ("  ratio" if c.startswith("pvio") else "")
    print(head)
    for name, r in results.items():
        line = "%-20s %12s" % (name, ("%12.0f" % r["limit"]["iops"]) if "limit" in r else "-")
        for c in cols[1:]:
            line += " %14s" % (("%.0f" % r[c]["iops"]) if c in r else "-")
            if c.startswith("pvio"):
                rk = "ratio_to_raw" if c in vhds else "ratio_to_limit"
                line += " %6s" % (("%.2f" % r[c][rk]) if c in r and rk in r[c] else "-")
        print(line)
    if vhds:
        print("(ratios: pvio, pvio-no-*, pvio-nbd to fio direct; pvio-vhd and pvio-chain3 to pvio on the raw file)")
    doc = {"image_mib": a.size, "image_dir": a.dir, "seconds": a.time, "engine": a.engine,
           "configs": cols, "results": results}
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
