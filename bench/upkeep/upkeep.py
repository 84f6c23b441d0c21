#!/usr/bin/env python3
"""Ziyuanku upkeep benchmarks (P9 of docs/product.md#performance-targets, and the issue "Upkeep jobs"):

  P9      `zyk fixity` over >= 2 GiB of blobs against `openssl dgst -sha256` over the same files,
          cold (page cache dropped before every run) and warm; ratio of MB/s, target >= 0.8.
  backup  `zyk backup` of the same data root: to the same filesystem (hard links) against
          `cp -al`, and to other filesystems (copies: an ext4 image on a loop device, and tmpfs)
          against `cp -a`; each anchor is followed by `sync -f` on the target, as zyk fsyncs.
  report  `zyk report` (and `zyk verify`, `zyk backup` as information) on a catalog of 100,000
          generated resources made by `SearchBench make-root`; per-run seconds and p50.
  P10     the peak RSS of every zyk job run above (< 256 MiB).

Run through bench/upkeep/run.sh, which builds the release binaries. Standard library only;
shares helpers with bench/bench.py. Only 127.0.0.1 is contacted.
"""

import argparse
import datetime
import hashlib
import http.client
import json
import math
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH_DIR = os.path.dirname(HERE)
REPO = os.path.dirname(BENCH_DIR)
sys.path.insert(0, BENCH_DIR)
import bench as common  # noqa: E402  (bench/bench.py: Processes, background_cores, free_port, …)

WORK_ROOT = os.path.join(BENCH_DIR, "work")
RESULTS = os.path.join(BENCH_DIR, "results")
MiB = 1 << 20
GiB = 1 << 30
ORG = common.ORG


def log(msg):
    print(f"[upkeep {time.strftime('%H:%M:%S')}] {msg}", flush=True)


BenchError = common.BenchError


def median(v):
    return statistics.median(v) if v else None


summary = common.summary


def timed(cmd, shell=False, out_path=None, env=None):
    """Runs a command to completion: wall-clock seconds, exit code, CPU seconds (user, sys) of it
    and its waited-for descendants (wait4), stdout (or it went to out_path)."""
    out = open(out_path, "wb") if out_path else subprocess.PIPE
    err_path = os.path.join(WORK_ROOT, f".stderr-{os.getpid()}")
    err = open(err_path, "wb")
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, shell=shell, executable="/bin/bash" if shell else None, stdout=out if out_path else subprocess.PIPE,
                         stderr=err, env=env)
    data = b""
    if not out_path:
        data = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    dt = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if out_path:
        out.close()
    else:
        p.stdout.close()
    err.close()
    with open(err_path, "rb") as f:
        stderr = f.read()[-4000:].decode(errors="replace")
    os.unlink(err_path)
    return {"seconds": dt, "rc": p.returncode, "user": ru.ru_utime, "sys": ru.ru_stime,
            "stdout": data.decode(errors="replace"), "stderr": stderr}


run = common.run


def zyk_env():
    env = dict(os.environ)
    env.pop("ZYK_TOKEN", None)
    env.pop("ZYK_DATA_ROOT", None)
    return env


def drop_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def read_all(paths):
    """Reads files once (untimed) so that they are in the page cache."""
    buf = bytearray(4 * MiB)
    for p in paths:
        with open(p, "rb", buffering=0) as f:
            while f.readinto(buf):
                pass


def fs_type(path):
    r = subprocess.run(["findmnt", "-n", "-o", "FSTYPE", "-T", path], capture_output=True, text=True)
    lines = r.stdout.split()
    return lines[-1] if lines else run(["stat", "-f", "-c", "%T", path]).stdout.strip()


def mounts_under(path):
    out = []
    with open("/proc/mounts") as f:
        for line in f:
            mp = line.split()[1].replace("\\040", " ")
            if mp == path or mp.startswith(path.rstrip("/") + "/"):
                out.append(mp)
    return sorted(out, key=len, reverse=True)


def umount(mp):
    r = subprocess.run(["umount", mp], capture_output=True, text=True)
    if r.returncode != 0:
        subprocess.run(["umount", "-l", mp], capture_output=True, text=True)


class Upkeep:
    def __init__(self, opts):
        self.opts = opts
        self.results = {}
        self.notes = []
        self.background = {}
        self.rss = {}  # zyk command -> peak RSS MiB over all its runs
        self.procs = None
        self.shm = None
        self.loop_mnt = None

    # --- helpers ------------------------------------------------------------------------------

    def quiet(self, label):
        """Background CPU (cores busy with other processes, 1 s sample) before a timed step;
        waits a little while the machine is busy, then goes on and records what it found."""
        o = self.opts
        seen = []
        for attempt in range(o.max_waits + 1):
            b = common.background_cores()
            seen.append(b)
            if b <= o.max_background or attempt == o.max_waits:
                break
            log(f"  other processes keep {b} cores busy before {label}; waiting {o.wait_seconds} s")
            time.sleep(o.wait_seconds)
        self.background[label] = seen[-1] if len(seen) == 1 else {"final": seen[-1], "samples": seen}
        return seen[-1]

    def zyk(self, *args, label=None):
        # Peak RSS through /usr/bin/time (a small C parent): wait4's ru_maxrss on our own child
        # would include this Python process's RSS, which a vfork()ed child carries until exec.
        rss_out = os.path.join(self.work, ".zyk-rss")
        r = timed(["/usr/bin/time", "-f", "%M", "-o", rss_out, self.opts.bin, *args], env=zyk_env())
        with open(rss_out) as f:
            r["maxrss_mib"] = int(f.read().strip().splitlines()[-1]) / 1024
        os.unlink(rss_out)
        key = label or args[0]
        self.rss[key] = max(self.rss.get(key, 0), r["maxrss_mib"])
        return r

    def zyk_json(self, *args, ok_codes=(0,)):
        r = self.zyk(*args)
        if r["rc"] not in ok_codes:
            raise BenchError(f"zyk {' '.join(args)} -> exit {r['rc']}:\n{r['stderr']}\n{r['stdout'][:2000]}")
        try:
            r["json"] = json.loads(r["stdout"])
        except json.JSONDecodeError:
            raise BenchError(f"zyk {' '.join(args)} printed no JSON:\n{r['stdout'][:2000]}")
        return r

    def record(self, key, what, anchor_name, anchor_vals, subject_vals, target=None, extra=None):
        a, s = summary(anchor_vals), summary(subject_vals)
        ratio = (s["median"] / a["median"]) if a["median"] and s["median"] is not None else None
        paired = [round(x / y, 4) for x, y in zip(subject_vals, anchor_vals) if x is not None and y]
        entry = {
            "what": what, "unit": "MB/s",
            "anchor": dict(name=anchor_name, **a),
            "subject": dict(name="zyk", **s),
            "ratio": ratio, "paired_ratios": paired,
            "target": {"op": ">=", "value": target, "of": "ratio of medians (subject / anchor)"} if target else None,
            "met": (ratio >= target) if target and ratio is not None else None,
        }
        if extra:
            entry.update(extra)
        self.results[key] = entry
        log(f"{key}: zyk {s['median']:.0f} MB/s, {anchor_name.split(',')[0]} {a['median']:.0f} MB/s -> {ratio:.3f}×"
            + (f" (target ≥ {target}: {'met' if entry['met'] else 'NOT met'})" if target else ""))

    # --- set-up ---------------------------------------------------------------------------------

    def setup_work(self):
        os.makedirs(WORK_ROOT, exist_ok=True)
        for name in os.listdir(WORK_ROOT):
            m = re.match(r"upkeep-(\d+)$", name)
            if m and not os.path.exists(f"/proc/{m.group(1)}"):
                stale = os.path.join(WORK_ROOT, name)
                for mp in mounts_under(stale):
                    umount(mp)
                shutil.rmtree(stale, ignore_errors=True)
        for name in os.listdir("/dev/shm"):
            m = re.match(r"zyk-upkeep-(\d+)$", name)
            if m and not os.path.exists(f"/proc/{m.group(1)}"):
                shutil.rmtree(os.path.join("/dev/shm", name), ignore_errors=True)
        self.work = os.path.join(WORK_ROOT, f"upkeep-{os.getpid()}")
        os.makedirs(self.work)
        st = os.statvfs(self.work)
        free = st.f_bavail * st.f_frsize
        self.fs = {"path": self.work, "type": fs_type(self.work), "free_gib": round(free / GiB, 1)}
        need = self.opts.big_files * self.opts.big_size * 3 + 4 * GiB
        if free < need:
            raise BenchError(f"{free / GiB:.1f} GiB free on {self.work}; needs about {need / GiB:.0f} GiB")

    def setup_blobs(self):
        """A data root with the blobs uploaded through the running server (POST /v1/blobs) and
        attached to resources (POST /v1/resources with blob references), then the server stops."""
        o = self.opts
        self.root = os.path.join(self.work, "data")
        self.procs = common.Processes(self.work)
        port = common.free_port()
        url = self.procs.start_zyk(o.bin, self.root, port)
        log(f"zyk serve pid {self.procs.zyk_pid} at {url}, data root {self.root}")
        run([o.bin, "org", "add", ORG, "--kind", "higherVocational", "--data-root", self.root], env=zyk_env())
        r = run([o.bin, "user", "add", "--org", ORG, "--name", "王老师", "--role", "teacher", "--data-root", self.root, "--json"], env=zyk_env())
        teacher = json.loads(r.stdout)["token"]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300, blocksize=1 * MiB)

        def post(path, body, ctype, expect=201):
            conn.request("POST", path, body=body, headers={"Authorization": f"Bearer {teacher}", "Content-Type": ctype})
            resp = conn.getresponse()
            data = resp.read()
            if resp.status != expect:
                raise BenchError(f"POST {path} -> {resp.status}: {data[:400]!r}")
            return json.loads(data)

        def upload(head, size):
            data = head + os.urandom(size - len(head))
            got = post("/v1/blobs", data, "application/octet-stream")
            if got["sha256"] != hashlib.sha256(data).hexdigest() or got["size"] != size:
                raise BenchError(f"the server's digest or size of an upload is wrong: {got}")
            return got["sha256"]

        rng = random.Random(20261130)
        small_sizes = [int(math.exp(rng.uniform(math.log(o.small_min), math.log(o.small_max)))) for _ in range(o.small_files)]
        total = o.big_files * o.big_size + sum(small_sizes)
        log(f"uploading {o.big_files} × {o.big_size / MiB:g} MiB + {o.small_files} small files "
            f"({o.small_min / 1024:g}–{o.small_max / 1024:g} KiB, log-uniform) = {total / GiB:.2f} GiB of random bytes")
        t0 = time.time()
        for i in range(o.big_files):
            sha = upload(common.MP4_HEAD, o.big_size)
            doc = dict(common.VIDEO_META, title=f"康复训练示范 {i + 1}", files=[{"sha256": sha, "name": "video.mp4", "role": "primary"}])
            post("/v1/resources", json.dumps(doc, ensure_ascii=False).encode(), "application/json")
        group = []
        for k, size in enumerate(small_sizes):
            group.append(upload(common.PDF_HEAD, size))
            if len(group) == o.files_per_resource or k == len(small_sizes) - 1:
                files = [{"sha256": s, "name": f"part-{j + 1}.pdf"} for j, s in enumerate(group)]
                files[0]["role"] = "primary"
                doc = dict(common.DOC_META, title=f"康复评定量表 {k + 1}", files=files)
                post("/v1/resources", json.dumps(doc, ensure_ascii=False).encode(), "application/json")
                group = []
        conn.close()
        self.setup_seconds = time.time() - t0
        log(f"uploaded in {self.setup_seconds:.0f} s ({total / self.setup_seconds / 1e6:.0f} MB/s through the API); stopping the server")
        self.procs.stop()
        self.procs = None
        os.sync()
        self.blob_files = []
        self.blob_bytes = 0
        for d, _, names in os.walk(os.path.join(self.root, "blobs")):
            for n in names:
                if not re.fullmatch(r"[0-9a-f]{64}", n):
                    raise BenchError(f"unexpected file in blobs/: {os.path.join(d, n)}")
                p = os.path.join(d, n)
                self.blob_files.append(p)
                self.blob_bytes += os.path.getsize(p)
        self.blob_count = len(self.blob_files)
        if self.blob_count != o.big_files + o.small_files or self.blob_bytes != total:
            raise BenchError(f"blobs/ holds {self.blob_count} files, {self.blob_bytes} bytes; expected {o.big_files + o.small_files}, {total}")
        self.data = {"blobs": self.blob_count, "bytes": self.blob_bytes, "large": f"{o.big_files} × {o.big_size / MiB:g} MiB",
                     "small": f"{o.small_files}, {o.small_min}–{o.small_max} B log-uniform, {sum(small_sizes)} B",
                     "resources": o.big_files + (o.small_files + o.files_per_resource - 1) // o.files_per_resource,
                     "upload_seconds": round(self.setup_seconds, 1)}

    # --- P9: fixity -------------------------------------------------------------------------------

    def fixity_zyk(self):
        r = self.zyk_json("fixity", "--data-root", self.root, "--json")
        rep = r["json"]["report"]
        if rep["checked"] != self.blob_count or rep["bytes"] != self.blob_bytes or rep["ok"] != self.blob_count or rep["remaining"] != 0:
            raise BenchError(f"zyk fixity did not re-hash every blob: {json.dumps({k: rep[k] for k in ('checked', 'bytes', 'ok', 'remaining')})}, "
                             f"expected {self.blob_count} blobs, {self.blob_bytes} bytes")
        r["self_seconds"] = rep["seconds"]
        return r

    def fixity_openssl(self):
        out = os.path.join(self.work, "openssl.out")
        blobs = os.path.join(self.root, "blobs")
        r = timed(f"set -o pipefail; find '{blobs}' -type f -print0 | xargs -0 openssl dgst -sha256", shell=True, out_path=out)
        if r["rc"] != 0:
            raise BenchError(f"openssl dgst failed ({r['rc']}): {r['stderr']}")
        n = 0
        with open(out) as f:  # the anchor must have hashed every file, correctly
            for line in f:
                m = re.fullmatch(r"SHA2?-?256\((.+)\)= ([0-9a-f]{64})\n?", line)
                if not m or os.path.basename(m.group(1)) != m.group(2):
                    raise BenchError(f"openssl dgst output does not match the blob's name: {line!r}")
                n += 1
        if n != self.blob_count:
            raise BenchError(f"openssl dgst hashed {n} files, expected {self.blob_count}")
        os.unlink(out)
        return r

    def p9(self, cold):
        o = self.opts
        key = "P9-cold" if cold else "P9-warm"
        if cold:
            try:
                drop_caches()
            except OSError as e:
                self.notes.append(f"P9-cold skipped: cannot write /proc/sys/vm/drop_caches ({e}); run as root on a machine that allows it")
                log(self.notes[-1])
                return
        else:
            mem = int(re.search(r"MemAvailable:\s+(\d+)", open("/proc/meminfo").read()).group(1)) * 1024
            if mem < 2 * self.blob_bytes:
                self.notes.append(f"P9-warm: only {mem / GiB:.1f} GiB available for {self.blob_bytes / GiB:.1f} GiB of blobs; runs may be partly cold")
            read_all(self.blob_files)
        log(f"{key}: zyk fixity vs openssl dgst -sha256 over {self.blob_count} blobs, {self.blob_bytes / GiB:.2f} GiB, {o.runs} runs each")
        vals = {"zyk": [], "openssl": []}
        detail = {"zyk": [], "openssl": []}

        def one(side, i):
            if cold:
                drop_caches()
                # The programs themselves come back from disk for both: only the blobs are cold.
                timed([o.bin, "--help"], env=zyk_env())
                timed(["openssl", "version"])
                timed("find / -maxdepth 0 -print0 | xargs -0 true", shell=True)
            r = self.fixity_zyk() if side == "zyk" else self.fixity_openssl()
            mbs = self.blob_bytes / r["seconds"] / 1e6
            vals[side].append(mbs)
            d = {"seconds": round(r["seconds"], 3), "cpu_seconds": round(r["user"] + r["sys"], 3)}
            if side == "zyk":
                d["self_reported_seconds"] = round(r["self_seconds"], 3)
                d["peak_rss_mib"] = round(r["maxrss_mib"], 1)
            detail[side].append(d)
            log(f"  {key} {side:7s} run {i + 1}: {r['seconds']:6.2f} s = {mbs:6.0f} MB/s (CPU {r['user'] + r['sys']:.2f} s"
                + (f", zyk's own figure {r['self_seconds']:.2f} s" if side == "zyk" else "") + ")")

        for i in range(o.runs):
            self.quiet(f"{key} round {i + 1}")
            order = ["openssl", "zyk"] if i % 2 == 0 else ["zyk", "openssl"]
            for side in order:
                one(side, i)
        what = (f"fixity: re-hash {self.blob_count} blobs, {self.blob_bytes / GiB:.2f} GiB, "
                + ("page cache dropped before every run" if cold else "all blobs in the page cache"))
        self.record(key, what, "openssl dgst -sha256 " + run(["openssl", "version"]).stdout.split()[1] + " over find's list (xargs -0), same files",
                    vals["openssl"], vals["zyk"], target=0.8, extra={"runs_detail": detail})

    # --- backup -----------------------------------------------------------------------------------

    def backup_case(self, key, target_dir, link):
        """zyk backup into target_dir/zyk against cp -a[l] of blobs/ into target_dir/cp, each
        followed by sync -f on the target's filesystem (zyk fsyncs what it writes)."""
        o = self.opts
        zdst = os.path.join(target_dir, "zyk")
        cdst = os.path.join(target_dir, "cp")
        src_blobs = os.path.join(self.root, "blobs")
        read_all(self.blob_files)  # the source is in the page cache for both sides
        fstype = fs_type(target_dir)
        log(f"{key}: zyk backup vs cp -a{'l' if link else ''} + sync -f into {target_dir} ({fstype}), {o.runs} runs each")
        vals = {"zyk": [], "cp": []}
        detail = {"zyk": [], "cp": []}

        def one(side, i):
            shutil.rmtree(zdst, ignore_errors=True)
            shutil.rmtree(cdst, ignore_errors=True)
            os.sync()
            if side == "zyk":
                r = self.zyk_json("backup", zdst, "--data-root", self.root, "--json")
                rep = r["json"]["report"]
                want = ("linked" if link else "copied")
                if rep["blobs"] != self.blob_count or rep["blobBytes"] != self.blob_bytes or rep[want] != self.blob_count or rep["missing"]:
                    raise BenchError(f"zyk backup: {json.dumps({k: rep[k] for k in ('blobs', 'blobBytes', 'linked', 'copied', 'alreadyThere')})}, "
                                     f"expected {self.blob_count} blobs {want}")
                secs = r["seconds"]
                d = {"seconds": round(secs, 3), "self_reported_seconds": round(rep["seconds"], 3), "cpu_seconds": round(r["user"] + r["sys"], 3),
                     "catalog_bytes": rep["catalogBytes"], "peak_rss_mib": round(r["maxrss_mib"], 1)}
            else:
                r = timed(["cp", "-al" if link else "-a", src_blobs, cdst])
                if r["rc"] != 0:
                    raise BenchError(f"cp failed: {r['stderr']}")
                s = timed(["sync", "-f", cdst])
                secs = r["seconds"] + s["seconds"]
                d = {"seconds": round(secs, 3), "cp_seconds": round(r["seconds"], 3), "sync_seconds": round(s["seconds"], 3),
                     "cpu_seconds": round(r["user"] + r["sys"] + s["user"] + s["sys"], 3)}
            mbs = self.blob_bytes / secs / 1e6
            vals[side].append(mbs)
            detail[side].append(d)
            log(f"  {key} {side:3s} run {i + 1}: {secs:6.2f} s = {mbs:6.0f} MB/s"
                + (f" (cp {d['cp_seconds']:.2f} s + sync {d['sync_seconds']:.2f} s)" if side == "cp" else f" (zyk's own figure {d['self_reported_seconds']:.2f} s)"))

        for i in range(o.runs):
            self.quiet(f"{key} round {i + 1}")
            for side in (["cp", "zyk"] if i % 2 == 0 else ["zyk", "cp"]):
                one(side, i)
        shutil.rmtree(zdst, ignore_errors=True)
        shutil.rmtree(cdst, ignore_errors=True)
        what = (f"backup of {self.blob_count} blobs ({self.blob_bytes / GiB:.2f} GiB) + the catalog to {fstype} "
                + ("on the same filesystem (hard links)" if link else "on another filesystem (copies)"))
        anchor = f"cp -a{'l' if link else ''} of blobs/ + sync -f"
        self.record(key, what, anchor, vals["cp"], vals["zyk"], extra={
            "runs_detail": detail, "filesystem": fstype,
            "seconds": {"zyk_median": median([d["seconds"] for d in detail["zyk"]]), "anchor_median": median([d["seconds"] for d in detail["cp"]]),
                        "cp_only_median": median([d["cp_seconds"] for d in detail["cp"]])}})

    def backups(self):
        o = self.opts
        same = os.path.join(self.work, "backup-same")
        os.makedirs(same)
        self.backup_case("backup-link", same, link=True)
        shutil.rmtree(same, ignore_errors=True)
        if o.loop:
            img = os.path.join(self.work, "ext4.img")
            mnt = os.path.join(self.work, "mnt-ext4")
            size = (self.blob_bytes * 13 // 10 // MiB + 512) * MiB
            try:
                # Written out in full first (no discard at mkfs or mount, so it stays so): a sparse
                # image made the first round slow for whichever side wrote new host blocks first.
                log(f"backup-copy-ext4: writing a {size / GiB:.1f} GiB ext4 image (untimed)")
                run(["dd", "if=/dev/zero", f"of={img}", "bs=4M", f"count={size // (4 * MiB)}", "conv=fsync", "status=none"])
                run(["mkfs.ext4", "-q", "-F", "-E", "nodiscard,lazy_itable_init=0,lazy_journal_init=0", img])
                os.makedirs(mnt)
                run(["mount", "-o", "loop", img, mnt])
                self.loop_mnt = mnt
                warm = os.path.join(mnt, "warm-up")  # one untimed copy, so round 1 meets a used filesystem like the others
                run(["cp", "-a", os.path.join(self.root, "blobs"), warm])
                run(["sync", "-f", mnt])
                shutil.rmtree(warm)
            except (OSError, subprocess.CalledProcessError) as e:
                msg = getattr(e, "stderr", "") or str(e)
                self.notes.append(f"backup-copy-ext4 skipped: cannot mount an ext4 image on a loop device ({msg.strip()})")
                log(self.notes[-1])
            if self.loop_mnt:
                self.backup_case("backup-copy-ext4", mnt, link=False)
                self.results["backup-copy-ext4"]["note"] = (
                    f"an ext4 filesystem in a {size / GiB:.1f} GiB image file (written out in full) on the same virtual disk, mounted with -o loop; one untimed cp -a into it first")
                umount(mnt)
                self.loop_mnt = None
                os.unlink(img)
        if o.tmpfs:
            self.shm = f"/dev/shm/zyk-upkeep-{os.getpid()}"
            os.makedirs(self.shm)
            self.backup_case("backup-copy-tmpfs", self.shm, link=False)
            self.results["backup-copy-tmpfs"]["note"] = "tmpfs (/dev/shm): no disk, so this is the copying cost alone (fsync is a no-op)"
            shutil.rmtree(self.shm, ignore_errors=True)
            self.shm = None

    # --- report at 100,000 ------------------------------------------------------------------------

    def report(self):
        o = self.opts
        rroot = os.path.join(self.work, "library", "zyk")
        self.quiet("make-root")
        log(f"report: making a data root with {o.rows:,} generated resources (SearchBench make-root)")
        r = timed([o.search_bench, "make-root", "--rows", str(o.rows), "--root", rroot])
        if r["rc"] != 0:
            raise BenchError(f"SearchBench make-root failed: {r['stderr']}")
        made = json.loads(r["stdout"].strip().splitlines()[-1])
        log(f"  made in {r['seconds']:.0f} s; catalog {made['catalogBytes'] / MiB:.0f} MiB")
        lib = {"resources": o.rows, "make_root_seconds": round(r["seconds"], 1), "catalog_bytes": made["catalogBytes"],
               "made_by": "SearchBench make-root (generator seed 20260701, Catalog.createResources in batches of 5000, all published, one shared 60-byte PDF)"}

        def series(name, args, n, warmup, check=None):
            first = None
            if warmup:
                w = self.zyk_json(*args)
                first = round(w["seconds"], 3)
            runs, cpu = [], []
            self.quiet(f"{name} at {o.rows}")
            for i in range(n):
                x = self.zyk_json(*args)
                if check:
                    check(x["json"])
                runs.append(round(x["seconds"], 3))
                cpu.append(round(x["user"] + x["sys"], 3))
            log(f"  {name}: p50 {median(runs):.3f} s; runs {', '.join(f'{v:.3f}' for v in runs)}" + (f"; first (untimed warm-up) {first:.3f} s" if first else ""))
            return {"p50_seconds": median(runs), "min": min(runs), "max": max(runs), "runs_seconds": runs, "cpu_seconds": cpu,
                    "warmup_run_seconds": first}

        def check_report(j):
            rep = j["report"]
            if rep["resources"] != o.rows or rep["published"] != o.rows:
                raise BenchError(f"zyk report counted {rep['resources']} resources ({rep['published']} published), expected {o.rows}")

        def check_verify(j):
            rep = j["report"]
            if rep["findings"] or rep["searchIndexed"] != o.rows:
                raise BenchError(f"zyk verify found problems on a fresh library: {json.dumps(rep, ensure_ascii=False)[:1500]}")

        base = series("zyk jobs --limit 1 (start-up + catalog open, for reference)", ["jobs", "--data-root", rroot, "--limit", "1", "--json"], o.report_runs, True)
        rep = series("zyk report", ["report", "--data-root", rroot, "--json"], o.report_runs, True, check_report)
        cold = None
        try:
            drop_caches()
            timed([o.bin, "--help"], env=zyk_env())
            x = self.zyk_json("report", "--data-root", rroot, "--json")
            cold = round(x["seconds"], 3)
            log(f"  zyk report with the page cache dropped first: {cold:.3f} s")
        except OSError:
            pass
        rep["cold_run_seconds"] = cold
        ver = series("zyk verify", ["verify", "--data-root", rroot, "--json"], o.verify_runs, True, check_verify)
        self.quiet(f"backup at {o.rows}")
        bdst = os.path.join(self.work, "library-backup")
        b = self.zyk_json("backup", bdst, "--data-root", rroot, "--json")
        brep = b["json"]["report"]
        log(f"  zyk backup of the {o.rows:,}-resource library: {b['seconds']:.2f} s, catalog {brep['catalogBytes'] / MiB:.0f} MiB")
        shutil.rmtree(bdst, ignore_errors=True)
        self.results["report-100k"] = {
            "what": f"zyk report --json on {o.rows:,} resources (wall clock of the whole command)", "unit": "s", "anchor": None,
            "library": lib, "subject": rep, "reference_jobs_limit_1": base, "target": None, "met": None}
        self.results["verify-100k"] = {
            "what": f"zyk verify --json on {o.rows:,} resources (integrity_check, foreign keys, blobs, search index, audit chain)",
            "unit": "s", "anchor": None, "subject": ver, "target": None, "met": None}
        self.results["backup-100k"] = {
            "what": f"zyk backup --json of the {o.rows:,}-resource library to the same filesystem (mostly the catalog snapshot)",
            "unit": "s", "anchor": None, "subject": {"seconds": round(b["seconds"], 3), "self_reported_seconds": round(brep["seconds"], 3),
                                                      "catalog_bytes": brep["catalogBytes"],
                                                      "catalog_MB_per_s": round(brep["catalogBytes"] / b["seconds"] / 1e6, 1)},
            "target": None, "met": None}
        shutil.rmtree(os.path.dirname(rroot), ignore_errors=True)

    # --- whole run --------------------------------------------------------------------------------

    def machine(self):
        def sh(cmd):
            try:
                r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
                return (r.stdout.strip() or r.stderr.strip()).splitlines()[0]
            except Exception:
                return None

        cpu = re.search(r"^model name\s*:\s*(.+)$", open("/proc/cpuinfo").read(), re.M)
        flags = re.search(r"^flags\s*:\s*(.+)$", open("/proc/cpuinfo").read(), re.M)
        mem = int(re.search(r"MemTotal:\s+(\d+)", open("/proc/meminfo").read()).group(1)) * 1024
        return {
            "nproc": os.cpu_count(), "cpu": cpu.group(1) if cpu else None,
            "cpu_sha_ni": bool(flags and "sha_ni" in flags.group(1).split()),
            "mem_gib": round(mem / GiB, 1), "kernel": platform.release(),
            "os": sh(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
            **self.git,  # at the start of the run (the binary may have been built earlier: see binary.mtime)
            "tools": {"openssl": sh(["openssl", "version"]), "cp": sh(["cp", "--version"]), "swift": sh(["swift", "--version"]),
                      "python": platform.python_version()},
            "filesystem": self.fs,
            "loadavg_at_end": open("/proc/loadavg").read().split()[:3],
            "background_cpu_cores": self.background,
            "binary": {"path": self.opts.bin, "mtime": datetime.datetime.fromtimestamp(os.path.getmtime(self.opts.bin), datetime.timezone.utc).isoformat(timespec="seconds")},
        }

    def go(self):
        o = self.opts
        started = time.time()
        now = datetime.datetime.now(datetime.timezone.utc)
        self.git = {"git_commit": run(["git", "-C", REPO, "rev-parse", "HEAD"]).stdout.strip(),
                    "git_dirty_sources": bool(run(["git", "-C", REPO, "status", "--porcelain", "--", "Sources", "Package.swift", "schema"]).stdout.strip())}
        self.setup_work()
        if o.only & {"fixity", "backup"}:
            self.quiet("set-up")
            self.setup_blobs()
            if "fixity" in o.only:
                self.p9(cold=True)
                self.p9(cold=False)
            if "backup" in o.only:
                self.backups()
            shutil.rmtree(self.root, ignore_errors=True)
        if "report" in o.only:
            self.report()
        worst = max(self.rss.values()) if self.rss else None
        self.results["P10-jobs"] = {
            "what": "peak RSS of each zyk job command above (/usr/bin/time %M, largest run)", "unit": "MiB", "anchor": None,
            "subject": {k: round(v, 1) for k, v in sorted(self.rss.items())}, "value": round(worst, 1) if worst else None,
            "target": {"op": "<", "value": 256, "of": "largest peak RSS of any job run (MiB)"},
            "met": worst < 256 if worst else None}
        self.background["at the end"] = common.background_cores()
        report = {
            "schema": 1, "date": now.isoformat(timespec="seconds"), "duration_s": round(time.time() - started, 1),
            "machine": self.machine(),
            "config": {"runs": o.runs, "report_runs": o.report_runs, "verify_runs": o.verify_runs, "rows": o.rows,
                       "data": getattr(self, "data", None), "benchmarks": sorted(o.only),
                       "order": "interleaved; the anchor first in odd-numbered rounds, zyk first in even ones",
                       "max_background_cores": o.max_background},
            "results": self.results, "notes": self.notes,
            "all_met": all(r["met"] for r in self.results.values() if r.get("target")),
        }
        self.write(report, now)
        return report

    def write(self, report, now):
        os.makedirs(RESULTS, exist_ok=True)
        text = json.dumps(report, indent=2, ensure_ascii=False) + "\n"
        for name in ("upkeep-latest.json", f"upkeep-{now.strftime('%Y-%m-%d')}.json"):
            with open(os.path.join(RESULTS, name), "w") as f:
                f.write(text)
        with open(os.path.join(RESULTS, "upkeep-latest.md"), "w") as f:
            f.write(markdown(report))
        log(f"wrote {RESULTS}/upkeep-latest.json, upkeep-latest.md and upkeep-{now.strftime('%Y-%m-%d')}.json")

    def cleanup(self):
        if self.procs:
            self.procs.stop()
        if self.loop_mnt:
            umount(self.loop_mnt)
        if getattr(self, "work", None):
            for mp in mounts_under(self.work):
                umount(mp)
        if self.shm:
            shutil.rmtree(self.shm, ignore_errors=True)
        if getattr(self, "work", None) and not self.opts.keep:
            common.remove_work(self.work)


def markdown(rep):
    m = rep["machine"]
    res = rep["results"]
    bg = m["background_cpu_cores"]
    bgs = [v if isinstance(v, (int, float)) else v["final"] for v in bg.values()]
    d = rep["config"].get("data") or {}
    lines = [
        f"# Upkeep benchmark results {rep['date']}",
        "",
        f"{m['nproc']} × {m['cpu']}{' (SHA-NI)' if m.get('cpu_sha_ni') else ''}, {m['mem_gib']} GiB, kernel {m['kernel']}, {m['filesystem']['type']}; "
        f"commit {str(m['git_commit'])[:12]}{' (Sources modified)' if m['git_dirty_sources'] else ''}; {m['tools']['openssl']}; "
        f"{rep['config']['runs']} runs per side, interleaved; {rep['duration_s']:.0f} s in all.",
        "",
    ]
    if d:
        lines += [f"Blobs: {d['blobs']} files, {d['bytes'] / GiB:.2f} GiB ({d['large']} + {d['small']}), uploaded through `POST /v1/blobs` "
                  f"and attached to {d['resources']} resources in {d['upload_seconds']:.0f} s.", ""]
    if bgs:
        lines += [f"CPU used by other processes before each timed round (cores, of {m['nproc']}): median {statistics.median(bgs):.2f}, "
                  f"max {max(bgs):.2f} (all values in the JSON).", ""]
    lines += ["| # | what | anchor: median (min–max) | zyk: median (min–max) | ratio | target | met |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for key, r in res.items():
        if r.get("unit") != "MB/s":
            continue
        a, s = r["anchor"], r["subject"]

        def secs(side):
            v = [x["seconds"] for x in r["runs_detail"][side]]
            return f"{statistics.median(v):.2f} s"

        aside = "openssl" if key.startswith("P9") else "cp"
        acell = f"{a['name']}: {a['median']:,.0f} ({a['min']:,.0f}–{a['max']:,.0f}) MB/s, {secs(aside)}"
        scell = f"{s['median']:,.0f} ({s['min']:,.0f}–{s['max']:,.0f}) MB/s, {secs('zyk')}"
        t = r.get("target")
        lines.append(f"| {key} | {r['what']} | {acell} | {scell} | {r['ratio']:.2f}× | "
                     + (f"≥ {t['value']}× | {'yes' if r['met'] else '**no**'} |" if t else "— | — |"))
    if "P10-jobs" in res and res["P10-jobs"]["value"] is not None:
        r = res["P10-jobs"]
        lines.append(f"| P10-jobs | {r['what']} | — | largest {r['value']:.1f} MiB ("
                     + ", ".join(f"{k} {v}" for k, v in r["subject"].items()) + f") | — | < 256 MiB | {'yes' if r['met'] else '**no**'} |")
    if "report-100k" in res:
        r, v, b = res["report-100k"], res["verify-100k"], res["backup-100k"]
        s, base = r["subject"], r["reference_jobs_limit_1"]
        lib = r["library"]
        lines += [
            "",
            f"Library of {lib['resources']:,} resources (catalog {lib['catalog_bytes'] / MiB:.0f} MiB, made in {lib['make_root_seconds']:.0f} s; no anchor):",
            "",
            "| command | p50 | runs (s) | other |",
            "| --- | --- | --- | --- |",
            f"| `zyk report --json` | {s['p50_seconds']:.3f} s | {', '.join(f'{x:.3f}' for x in s['runs_seconds'])} | "
            f"warm-up run {s['warmup_run_seconds']:.3f} s"
            + (f", page cache dropped first {s['cold_run_seconds']:.3f} s" if s.get("cold_run_seconds") else "") + " |",
            f"| `zyk verify --json` | {v['subject']['p50_seconds']:.3f} s | {', '.join(f'{x:.3f}' for x in v['subject']['runs_seconds'])} | "
            f"warm-up run {v['subject']['warmup_run_seconds']:.3f} s (after the cold report: reads what the report did not) |",
            f"| `zyk jobs --limit 1 --json` (start-up and catalog open, for reference) | {base['p50_seconds']:.3f} s | "
            f"{', '.join(f'{x:.3f}' for x in base['runs_seconds'])} | |",
            f"| `zyk backup` (same filesystem) | {b['subject']['seconds']:.2f} s | one run | catalog {b['subject']['catalog_bytes'] / MiB:.0f} MiB, "
            f"{b['subject']['catalog_MB_per_s']:.0f} MB/s |",
        ]
    lines += ["", f"All targets met: {'yes' if rep['all_met'] else '**no**'}"]
    if rep["notes"]:
        lines += ["", "Notes:"] + [f"- {n}" for n in rep["notes"]]
    lines.append("")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(REPO, ".build/release/zyk"))
    ap.add_argument("--search-bench", default=os.path.join(REPO, "bench/search/.build/release/SearchBench"))
    ap.add_argument("--only", default="fixity,backup,report", help="comma-separated subset of fixity, backup, report")
    ap.add_argument("--runs", type=int, default=3, help="runs per side for fixity and backup")
    ap.add_argument("--report-runs", type=int, default=5)
    ap.add_argument("--verify-runs", type=int, default=3)
    ap.add_argument("--rows", type=int, default=100_000, help="resources in the report library")
    ap.add_argument("--big-files", type=int, default=64)
    ap.add_argument("--big-size", type=int, default=32 * MiB)
    ap.add_argument("--small-files", type=int, default=3000)
    ap.add_argument("--small-min", type=int, default=4 * 1024)
    ap.add_argument("--small-max", type=int, default=512 * 1024)
    ap.add_argument("--files-per-resource", type=int, default=20)
    ap.add_argument("--no-loop", dest="loop", action="store_false", help="skip the copy to an ext4 image on a loop device")
    ap.add_argument("--no-tmpfs", dest="tmpfs", action="store_false", help="skip the copy to /dev/shm")
    ap.add_argument("--max-background", type=float, default=0.5, help="wait while other processes keep more cores busy than this")
    ap.add_argument("--max-waits", type=int, default=4)
    ap.add_argument("--wait-seconds", type=float, default=15)
    ap.add_argument("--keep", action="store_true", help="keep bench/work/upkeep-PID (the blob data root is removed anyway)")
    opts = ap.parse_args()
    opts.only = set(x.strip().lower() for x in opts.only.split(",") if x.strip())
    if not opts.only <= {"fixity", "backup", "report"}:
        ap.error("--only takes fixity, backup, report")

    return common.main_run(Upkeep(opts), markdown, log)


if __name__ == "__main__":
    sys.exit(main())
