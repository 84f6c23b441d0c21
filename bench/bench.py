#!/usr/bin/env python3
"""Ziyuanku benchmarks P1-P4 and P10 (docs/product.md#performance-targets), each against an anchor
measured in the same run on the same machine and the same bytes.

Run through bench/run.sh, which installs the tools and builds the release binary. This file
only needs the Python standard library. Everything talks to 127.0.0.1 only.

    python3 bench/bench.py --bin .build/release/zyk [--runs 5] [--wrk-duration 10] [--only P3,P4]
"""

import argparse
import datetime
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH_DIR)
WORK_ROOT = os.path.join(BENCH_DIR, "work")  # git-ignored; same filesystem as the repository
RESULTS = os.path.join(BENCH_DIR, "results")

MiB = 1 << 20
GiB = 1 << 30
MP4_HEAD = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41"
PDF_HEAD = b"%PDF-1.7\n"
MARKER_OFFSET = 4096  # where each upload gets its own bytes, so no two uploads deduplicate

ORG = "康复职业技术学院"
VIDEO_META = {
    "title": "康复训练示范",
    "description": "上肢康复训练的示范视频",
    "keywords": ["康复", "训练"],
    "resourceType": "video",
    "granularity": "asset",
    "educationLevel": "higherVocational",
    "majorCodes": ["520601"],
    "authors": [{"name": "王老师", "role": "author"}],
    "copyrightHolder": ORG,
    "license": "CC-BY-4.0",
    "originality": "original",
    "visibility": "public",
}
DOC_META = dict(VIDEO_META, title="康复评定量表", description="常用康复评定量表汇编", resourceType="document")


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


class BenchError(Exception):
    pass


def remove_work(work):
    """Removes a run's work folder, and bench/work too when that is left empty."""
    shutil.rmtree(work, ignore_errors=True)
    try:
        os.rmdir(os.path.dirname(work))
    except OSError:
        pass


def main_run(bench, render, say=None):
    """Runs a benchmark object's go(): SIGTERM and SIGHUP end it through its cleanup(), as
    does any error; prints the report rendered by `render`. Returns the exit status."""
    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)

    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)
    try:
        rep = bench.go()
    except BenchError as e:
        (say or log)(f"FAILED: {e}")
        return 1
    finally:
        bench.cleanup()
    print()
    print(render(rep))
    return 0


# ---------------------------------------------------------------------------------------------
# small helpers


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_status(pid):
    """VmRSS and VmHWM of a process in bytes (None when it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            text = f.read()
    except OSError:
        return None
    out = {}
    for key in ("VmRSS", "VmHWM"):
        m = re.search(rf"^{key}:\s+(\d+) kB", text, re.M)
        out[key] = int(m.group(1)) * 1024 if m else 0
    return out


def summary(values):
    vals = [v for v in values if v is not None]
    if not vals:
        return {"median": None, "min": None, "max": None, "runs": values}
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "runs": values}


def http(method, url, body=None, token=None, ctype=None, expect=(200,)):
    req = urllib.request.Request(url, data=body, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if ctype:
        req.add_header("Content-Type", ctype)
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            status, data, headers = r.status, r.read(), r.headers
    except urllib.error.HTTPError as e:
        status, data, headers = e.code, e.read(), e.headers
    if status not in expect:
        raise BenchError(f"{method} {url} -> {status}: {data[:500]!r}")
    return status, data, headers


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)


def write_random_file(path, size, head):
    with open(path, "wb") as f:
        f.write(head)
        left = size - len(head)
        while left > 0:
            n = min(left, 16 * MiB)
            f.write(os.urandom(n))
            left -= n
    os.chmod(path, 0o644)


def patch_marker(path, marker):
    """Makes the file's bytes unique to one upload (16 bytes at MARKER_OFFSET)."""
    b = hashlib.sha256(marker.encode()).digest()[:16]
    with open(path, "r+b") as f:
        f.seek(MARKER_OFFSET)
        f.write(b)


def cpu_busy_jiffies():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return sum(v[:8]) - idle


def background_cores(seconds=1.0):
    """CPU the rest of the machine uses while nothing of ours runs (cores busy), to judge noise."""
    a = cpu_busy_jiffies()
    time.sleep(seconds)
    return round((cpu_busy_jiffies() - a) / os.sysconf("SC_CLK_TCK") / seconds, 2)


def human_size(n):
    return f"{n / GiB:g} GiB" if n >= GiB else f"{n / MiB:g} MiB"


def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


# ---------------------------------------------------------------------------------------------
# memory sampling


class RSSSampler(threading.Thread):
    """Samples VmRSS/VmHWM of one pid every `interval` seconds for the whole run. Windows
    (start_window/end_window) give the baseline and the peak VmRSS during one operation."""

    def __init__(self, pid, interval=0.02):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.peak_rss = 0
        self.last_hwm = 0
        self.window = None

    def run(self):
        while not self.stop_event.is_set():
            self.sample()
            self.stop_event.wait(self.interval)

    def sample(self):
        st = proc_status(self.pid)
        if not st:
            return None
        with self.lock:
            self.peak_rss = max(self.peak_rss, st["VmRSS"])
            self.last_hwm = max(self.last_hwm, st["VmHWM"])
            if self.window is not None:
                self.window = max(self.window, st["VmRSS"])
        return st

    def start_window(self):
        st = self.sample()
        with self.lock:
            self.window = st["VmRSS"]
        return st

    def end_window(self):
        self.sample()
        with self.lock:
            peak, self.window = self.window, None
        return peak

    def stop(self):
        self.stop_event.set()


# ---------------------------------------------------------------------------------------------
# the two servers


class Processes:
    """Starts the server and nginx; stops them (by pid) whatever happens."""

    def __init__(self, work):
        self.work = work
        self.zyk = None  # /usr/bin/time wrapping zyk
        self.zyk_pid = None  # zyk itself
        self.nginx = None
        self.zyk_log = None

    def start_zyk(self, binary, data_root, port):
        self.zyk_log = open(os.path.join(self.work, "zyk.log"), "wb")
        self.time_out = os.path.join(self.work, "zyk-time.txt")
        cmd = ["/usr/bin/time", "-v", "-o", self.time_out,
               binary, "serve", "--data-root", data_root, "--port", str(port)]
        self.zyk = subprocess.Popen(cmd, stdout=self.zyk_log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 10
        while time.time() < deadline and self.zyk_pid is None:
            try:
                with open(f"/proc/{self.zyk.pid}/task/{self.zyk.pid}/children") as f:
                    kids = f.read().split()
                if kids:
                    self.zyk_pid = int(kids[0])
            except OSError:
                pass
            time.sleep(0.01)
        if self.zyk_pid is None:
            raise BenchError("zyk did not start (see zyk.log)")
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.zyk.poll() is not None:
                raise BenchError("zyk exited at start:\n" + self.tail(os.path.join(self.work, "zyk.log")))
            try:
                with urllib.request.urlopen(url + "/readyz", timeout=2) as r:
                    if r.status == 200:
                        return url
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise BenchError("zyk not ready after 60 s:\n" + self.tail(os.path.join(self.work, "zyk.log")))

    def start_nginx(self, www, port):
        conf = os.path.join(self.work, "nginx.conf")
        tmp = os.path.join(self.work, "nginx-tmp")
        os.makedirs(tmp, exist_ok=True)
        # Stock nginx with sendfile; access log on (the server logs one line per request too).
        text = f"""
worker_processes auto;
daemon off;
pid {self.work}/nginx.pid;
error_log {self.work}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    sendfile on;
    tcp_nopush on;
    types {{ video/mp4 mp4; application/pdf pdf; }}
    default_type application/octet-stream;
    access_log {self.work}/nginx-access.log;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {www};
    }}
}}
"""
        with open(conf, "w") as f:
            f.write(text)
        self.nginx = subprocess.Popen(["nginx", "-c", conf, "-p", self.work + "/"],
                                      stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.work, "nginx-stderr.log"), "wb"),
                                      start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.nginx.poll() is not None:
                raise BenchError("nginx exited at start:\n" + self.tail(os.path.join(self.work, "nginx-stderr.log"))
                                 + self.tail(os.path.join(self.work, "nginx-error.log")))
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return url
            except OSError:
                time.sleep(0.05)
        raise BenchError("nginx did not listen")

    @staticmethod
    def tail(path, n=4000):
        try:
            with open(path, "rb") as f:
                f.seek(0, 2)
                f.seek(max(0, f.tell() - n))
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def stop(self):
        if self.nginx and self.nginx.poll() is None:
            self.nginx.send_signal(signal.SIGQUIT)
            try:
                self.nginx.wait(10)
            except subprocess.TimeoutExpired:
                self.nginx.kill()
                self.nginx.wait()
        if self.zyk and self.zyk.poll() is None:
            if self.zyk_pid:
                try:
                    os.kill(self.zyk_pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            try:
                self.zyk.wait(15)
            except subprocess.TimeoutExpired:
                if self.zyk_pid:
                    try:
                        os.kill(self.zyk_pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                try:
                    self.zyk.wait(5)
                except subprocess.TimeoutExpired:
                    self.zyk.kill()
                    self.zyk.wait()
        if self.zyk_log:
            self.zyk_log.close()
            self.zyk_log = None

    def time_max_rss(self):
        """Peak RSS reported by /usr/bin/time -v after the server exited (bytes)."""
        try:
            with open(self.time_out) as f:
                m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", f.read())
            return int(m.group(1)) * 1024 if m else None
        except (OSError, AttributeError):
            return None


# ---------------------------------------------------------------------------------------------
# load tools


def curl_upload(args):
    """Runs one curl upload; returns (seconds by wall clock, http code, response body)."""
    out = args["out"]
    cmd = ["curl", "-sS", "-o", out, "-w", "%{http_code} %{size_upload} %{time_total}", "-H", "Expect:",
           "-H", f"Authorization: Bearer {args['token']}"] + args["curl"] + [args["url"]]
    t0 = time.perf_counter()
    r = run(cmd)
    dt = time.perf_counter() - t0
    code, up, total = r.stdout.split()
    with open(out, "rb") as f:
        body = f.read()
    return dt, int(code), body, float(total)


def curl_download(url):
    cmd = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{time_total}", url]
    t0 = time.perf_counter()
    r = run(cmd)
    dt = time.perf_counter() - t0
    code, size, total = r.stdout.split()
    return dt, int(code), int(size), float(total)


def wrk(url, duration, threads=2, conns=64):
    r = run(["wrk", f"-t{threads}", f"-c{conns}", f"-d{duration}s", "--latency", url], timeout=duration + 60)
    text = r.stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if not m:
        raise BenchError("cannot read wrk output:\n" + text)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    lat = {}
    for p in ("50%", "99%"):
        mm = re.search(rf"^\s+{re.escape(p)}\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
        if mm:
            v = float(mm.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[mm.group(2)]
            lat["p" + p[:-1] + "_ms"] = v
    return {
        "rps": float(m.group(1)),
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sum(int(x) for x in sock.groups()) if sock else 0,
        "latency": lat,
    }


# ---------------------------------------------------------------------------------------------
# the benchmark run


class Bench:
    def __init__(self, opts):
        self.opts = opts
        self.results = {}
        self.notes = []
        self.background = {}

    def interleaved(self, n, subject_fns, anchor_fn):
        """Runs anchor and subjects n times, alternating which goes first, so drift and
        noise fall on both sides."""
        for i in range(n):
            order = [("anchor", anchor_fn)] + subject_fns if i % 2 == 0 else subject_fns + [("anchor", anchor_fn)]
            for name, fn in order:
                fn(i)

    def record(self, key, what, unit, anchor_name, anchor_vals, subject_vals, target_op, target, extra=None, higher_is_better=True):
        a, s = summary(anchor_vals), summary(subject_vals)
        ratio = (s["median"] / a["median"]) if a["median"] and s["median"] is not None else None
        paired = [round(x / y, 4) for x, y in zip(subject_vals, anchor_vals) if x is not None and y]
        met = None
        if ratio is not None:
            met = ratio >= target if target_op == ">=" else ratio < target
        entry = {
            "what": what,
            "unit": unit,
            "anchor": dict(name=anchor_name, **a),
            "subject": dict(name="zyk", **s),
            "ratio": ratio,
            "paired_ratios": paired,
            "target": {"op": target_op, "value": target, "of": "ratio of medians (subject / anchor)"},
            "met": met,
        }
        if extra:
            entry.update(extra)
        self.results[key] = entry
        log(f"{key}: anchor median {a['median']:.1f} {unit}, zyk median {s['median']:.1f} {unit}, ratio {ratio:.3f} "
            f"(target {target_op} {target}) -> {'met' if met else 'NOT met'}")

    # --- setup ---------------------------------------------------------------------------------

    def setup(self):
        o = self.opts
        os.makedirs(WORK_ROOT, exist_ok=True)
        # Leftovers of runs whose process is gone (killed hard) are removed first.
        for name in os.listdir(WORK_ROOT):
            m = re.match(r"run-(\d+)$", name)
            if m and not os.path.exists(f"/proc/{m.group(1)}"):
                shutil.rmtree(os.path.join(WORK_ROOT, name), ignore_errors=True)
        self.work = os.path.join(WORK_ROOT, f"run-{os.getpid()}")
        os.makedirs(self.work)
        for d in (WORK_ROOT, self.work):
            os.chmod(d, 0o755)  # nginx workers (user nobody) must reach www/
        self.www = os.path.join(self.work, "www")
        os.makedirs(self.www)
        os.chmod(self.www, 0o755)
        self.data_root = os.path.join(self.work, "data")
        st_work, st_repo = os.statvfs(self.work), os.stat(REPO)
        if os.stat(self.work).st_dev != st_repo.st_dev:
            raise BenchError("the work folder is not on the repository's filesystem")
        fstype = run(["stat", "-f", "-c", "%T", self.work]).stdout.strip()
        free = st_work.f_bavail * st_work.f_frsize
        need = (2 * o.runs + 4) * GiB
        if "P1" in o.only and free < need:
            raise BenchError(f"{free / GiB:.1f} GiB free on {self.work}; P1 needs about {need / GiB:.0f} GiB")
        self.fs = {"path": self.work, "type": fstype, "free_gib": round(free / GiB, 1)}

        self.procs = Processes(self.work)
        self.zyk_url = self.procs.start_zyk(o.bin, self.data_root, free_port())
        self.sampler = RSSSampler(self.procs.zyk_pid)
        self.sampler.start()
        self.nginx_url = self.procs.start_nginx(self.www, free_port())
        log(f"zyk pid {self.procs.zyk_pid} at {self.zyk_url}; nginx at {self.nginx_url}; work in {self.work} ({fstype})")

        with open(os.path.join(self.data_root, "admin-token")) as f:
            self.admin = f.read().strip()
        run([o.bin, "org", "add", ORG, "--kind", "higherVocational", "--data-root", self.data_root])
        r = run([o.bin, "user", "add", "--org", ORG, "--name", "王老师", "--role", "teacher",
                 "--data-root", self.data_root, "--json"])
        self.teacher = json.loads(r.stdout)["token"]

    def publish(self, rid):
        http("POST", f"{self.zyk_url}/v1/resources/{rid}/publish", b"", token=self.admin)

    def create_from_blob(self, path, meta, name):
        with open(path, "rb") as f:
            data = f.read()
        _, body, _ = http("POST", f"{self.zyk_url}/v1/blobs", data, token=self.teacher,
                          ctype="application/octet-stream", expect=(201,))
        sha = json.loads(body)["sha256"]
        if sha != hashlib.sha256(data).hexdigest():
            raise BenchError("the server's digest of the small file is wrong")
        doc = dict(meta, files=[{"sha256": sha, "name": name, "role": "primary"}])
        _, body, _ = http("POST", f"{self.zyk_url}/v1/resources", json.dumps(doc).encode(), token=self.teacher,
                          ctype="application/json", expect=(201,))
        rid = json.loads(body)["id"]
        self.publish(rid)
        return rid

    # --- P1 -------------------------------------------------------------------------------------

    def p1(self):
        o = self.opts
        size = o.big_size
        src = os.path.join(self.work, "big.mp4")
        log(f"P1: writing {size / MiB:.0f} MiB of random bytes to {src}")
        write_random_file(src, size, MP4_HEAD)
        os.sync()
        meta_path = os.path.join(self.work, "video-meta.json")
        with open(meta_path, "w") as f:
            json.dump(VIDEO_META, f, ensure_ascii=False)
        dd_out = os.path.join(self.work, "dd.out")
        resp = os.path.join(self.work, "resp.json")
        vals = {"dd": [], "blob": [], "multipart": []}
        growth = {"blob": [], "multipart": []}
        self.last_video = None

        # On these virtual machines, how fast 1 GiB goes into the page cache depends on what ran
        # just before (measured: dd's write phase 0.3 s right after another dd whose file was
        # deleted, 0.9-2.7 s after an upload or into memory not touched lately). So each timed
        # step's output leaves the page cache right after it (dd's file deleted, the server's new
        # blob dropped with POSIX_FADV_DONTNEED, read-only), and every timed step, on either
        # side, is preceded by the same untimed settling dd: both write into the same state.
        settle_out = os.path.join(self.work, "settle.out")

        def prepare(tag):
            run(["dd", f"if={src}", f"of={settle_out}", "bs=1M", "conv=fsync", "status=none"])
            os.unlink(settle_out)
            patch_marker(src, tag)
            os.sync()

        def release_blob(sha):
            path = os.path.join(self.data_root, "blobs", sha[:2], sha[2:4], sha)
            if not os.path.exists(path):
                found = [os.path.join(d, sha) for d, _, names in os.walk(os.path.join(self.data_root, "blobs")) if sha in names]
                if not found:
                    self.notes.append(f"P1: blob {sha[:12]}… not found under blobs/; its page cache was not released")
                    return
                path = found[0]
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)

        def upload(kind, i):
            tag = f"{kind}-{i}"
            prepare(tag)
            if kind == "blob":
                args = {"url": self.zyk_url + "/v1/blobs", "token": self.teacher, "out": resp,
                        "curl": ["-X", "POST", "-H", "Content-Type: application/octet-stream", "-T", src]}
            else:
                args = {"url": self.zyk_url + "/v1/resources", "token": self.teacher, "out": resp,
                        "curl": ["-F", f"metadata=<{meta_path};type=application/json",
                                 "-F", f"file=@{src};filename=video.mp4;type=video/mp4"]}
            before = self.sampler.start_window()
            dt, code, body, curl_total = curl_upload(args)
            peak = self.sampler.end_window()
            if code != 201:
                raise BenchError(f"P1 {kind} upload -> {code}: {body[:500]!r}")
            sha = sha256_file(src)
            doc = json.loads(body)
            if kind == "blob":
                got = doc["sha256"]
            else:
                files = doc.get("files") or [{}]
                got = files[0].get("sha256")
                self.last_video = (doc["id"], tag, sha)
            if got != sha:
                raise BenchError(f"P1 {kind}: server digest {got} != {sha}")
            release_blob(sha)
            mbps = size / dt / 1e6
            vals[kind].append(mbps)
            g = (peak - before["VmRSS"]) / MiB
            growth[kind].append(g)
            log(f"  P1 {kind:9s} run {i + 1}: {mbps:7.1f} MB/s ({dt:.2f} s), RSS {before['VmRSS'] / MiB:.1f} -> peak {peak / MiB:.1f} MiB (+{g:.1f})")

        def dd(i):
            prepare(f"dd-{i}")
            t0 = time.perf_counter()
            run(["dd", f"if={src}", f"of={dd_out}", "bs=1M", "conv=fsync", "status=none"])
            dt = time.perf_counter() - t0
            os.unlink(dd_out)
            vals["dd"].append(size / dt / 1e6)
            log(f"  P1 dd        run {i + 1}: {vals['dd'][-1]:7.1f} MB/s ({dt:.2f} s)")

        self.interleaved(o.runs, [("blob", lambda i: upload("blob", i)), ("multipart", lambda i: upload("multipart", i))], dd)
        for kind, label in (("blob", "raw body, POST /v1/blobs"), ("multipart", "multipart POST /v1/resources (creates the resource)")):
            self.record(f"P1-{kind}", f"upload {human_size(size)}: {label}", "MB/s", "dd bs=1M conv=fsync", vals["dd"], vals[kind], ">=", 0.6,
                        extra={"rss_growth_mib": summary([round(x, 1) for x in growth[kind]])})
        allg = growth["blob"] + growth["multipart"]
        worst = max(allg)
        self.results["P1-rss"] = {
            "what": f"server RSS growth during a {human_size(size)} upload (peak VmRSS during the upload minus VmRSS before it, sampled every 20 ms)",
            "unit": "MiB",
            "subject": dict(name="zyk", **summary([round(x, 1) for x in allg])),
            "anchor": None,
            "ratio": None,
            "value": round(worst, 1),
            "target": {"op": "<", "value": 64, "of": "largest growth over all P1 uploads (MiB)"},
            "met": worst < 64,
        }
        log(f"P1-rss: largest growth {worst:.1f} MiB (target < 64) -> {'met' if worst < 64 else 'NOT met'}")
        self.big_src = src

    # --- P2 -------------------------------------------------------------------------------------

    def p2(self):
        o = self.opts
        src = getattr(self, "big_src", None)
        if src is None or self.last_video is None:
            src = os.path.join(self.work, "big.mp4")
            log(f"P2: writing {o.big_size / MiB:.0f} MiB of random bytes")
            write_random_file(src, o.big_size, MP4_HEAD)
            patch_marker(src, "p2")
            sha = sha256_file(src)
            dt, code, body, _ = curl_upload({"url": self.zyk_url + "/v1/resources", "token": self.teacher,
                                             "out": os.path.join(self.work, "resp.json"),
                                             "curl": ["-F", "metadata=" + json.dumps(VIDEO_META, ensure_ascii=False) + ";type=application/json",
                                                      "-F", f"file=@{src};filename=video.mp4;type=video/mp4"]})
            if code != 201:
                raise BenchError(f"P2 setup upload -> {code}: {body[:300]!r}")
            self.last_video = (json.loads(body)["id"], "p2", sha)
        rid, tag, sha = self.last_video
        patch_marker(src, tag)  # the nginx copy holds exactly the bytes of that resource's file
        if sha256_file(src) != sha:
            raise BenchError("P2: the source file no longer matches the uploaded one")
        self.publish(rid)
        www_file = os.path.join(self.www, "video.mp4")
        os.link(src, www_file)
        size = os.path.getsize(src)
        zurl = f"{self.zyk_url}/v1/resources/{rid}/files/video.mp4"
        nurl = f"{self.nginx_url}/video.mp4"
        # Same bytes on both sides (the server's ETag is the SHA-256); one untimed warm-up each.
        for url in (zurl, nurl):
            _, code, got, _ = curl_download(url)
            if code != 200 or got != size:
                raise BenchError(f"P2 warm-up {url} -> {code}, {got} bytes (want {size})")
        _, _, h = http("HEAD", zurl)
        if h.get("ETag", "").strip('"') != sha:
            raise BenchError(f"P2: server ETag {h.get('ETag')} != {sha}")
        vals = {"zyk": [], "nginx": []}

        def dl(side, url, i):
            dt, code, got, _ = curl_download(url)
            if code != 200 or got != size:
                raise BenchError(f"P2 {side} -> {code}, {got} bytes")
            vals[side].append(size / dt / 1e6)
            log(f"  P2 {side:5s} run {i + 1}: {vals[side][-1]:7.1f} MB/s ({dt:.2f} s)")

        self.interleaved(o.runs, [("zyk", lambda i: dl("zyk", zurl, i))], lambda i: dl("nginx", nurl, i))
        self.record("P2", f"download {human_size(size)} with curl -o /dev/null", "MB/s", "nginx 1.22 sendfile, same bytes",
                    vals["nginx"], vals["zyk"], ">=", 0.85)
        self.rss_note("P2")

    # --- P3 / P4 --------------------------------------------------------------------------------

    def small(self):
        if getattr(self, "doc_id", None):
            return
        path = os.path.join(self.work, "doc.pdf")
        write_random_file(path, 100 * 1024, PDF_HEAD)
        self.doc_id = self.create_from_blob(path, DOC_META, "doc.pdf")
        shutil.copyfile(path, os.path.join(self.www, "doc.pdf"))
        os.chmod(os.path.join(self.www, "doc.pdf"), 0o644)
        self.doc_zyk = f"{self.zyk_url}/v1/resources/{self.doc_id}/files/doc.pdf"
        self.doc_nginx = f"{self.nginx_url}/doc.pdf"
        with open(path, "rb") as f:
            want = f.read()
        for url in (self.doc_zyk, self.doc_nginx):
            _, got, _ = http("GET", url)
            if got != want:
                raise BenchError(f"{url} does not return the 100 KB file's bytes")
        _, meta, h = http("GET", f"{self.zyk_url}/v1/resources/{self.doc_id}")
        if json.loads(meta).get("id") != self.doc_id:
            raise BenchError("metadata GET does not return the resource")
        self.meta_bytes = len(meta)

    def wrk_pair(self, key, what, zurl, nurl, anchor_name, target):
        o = self.opts
        self.small()
        for url in (zurl, nurl):
            wrk(url, 2)  # warm-up
        vals = {"zyk": [], "nginx": []}
        details = {"zyk": [], "nginx": []}

        def go(side, url, i):
            r = wrk(url, o.wrk_duration)
            if r["non2xx"] or r["socket_errors"]:
                self.notes.append(f"{key} {side} run {i + 1}: {r['non2xx']} non-2xx responses, {r['socket_errors']} socket errors")
            vals[side].append(r["rps"])
            details[side].append(r["latency"])
            log(f"  {key} {side:5s} run {i + 1}: {r['rps']:9.0f} req/s  p50 {r['latency'].get('p50_ms', 0):.2f} ms  "
                f"p99 {r['latency'].get('p99_ms', 0):.2f} ms")

        self.interleaved(o.runs, [("zyk", lambda i: go("zyk", zurl, i))], lambda i: go("nginx", nurl, i))
        self.record(key, what, "req/s", anchor_name, vals["nginx"], vals["zyk"], ">=", target,
                    extra={"latency_ms": {"zyk": details["zyk"], "nginx": details["nginx"]}})
        self.rss_note(key)

    def p3(self):
        self.small()
        self.wrk_pair("P3", f"download a 100 KB file, wrk -t2 -c64 -d{self.opts.wrk_duration}s", self.doc_zyk, self.doc_nginx,
                      "nginx 1.22 sendfile, same file, same wrk", 0.5)

    def p4(self):
        self.small()
        self.wrk_pair("P4", f"GET /v1/resources/{{id}} ({self.meta_bytes} B JSON), anonymous, wrk -t2 -c64 -d{self.opts.wrk_duration}s",
                      f"{self.zyk_url}/v1/resources/{self.doc_id}", self.doc_nginx, "nginx 1.22 serving the 100 KB static file", 0.5)

    def rss_note(self, key):
        st = proc_status(self.procs.zyk_pid)
        if st:
            log(f"  zyk after {key}: VmRSS {st['VmRSS'] / MiB:.1f} MiB, VmHWM {st['VmHWM'] / MiB:.1f} MiB")

    # --- whole run --------------------------------------------------------------------------------

    def machine(self):
        def sh(cmd):
            try:
                return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip() or \
                    subprocess.run(cmd, capture_output=True, text=True, timeout=30).stderr.strip()
            except Exception:
                return None

        cpu = None
        with open("/proc/cpuinfo") as f:
            m = re.search(r"^model name\s*:\s*(.+)$", f.read(), re.M)
            cpu = m.group(1) if m else None
        with open("/proc/meminfo") as f:
            mem = int(re.search(r"MemTotal:\s+(\d+)", f.read()).group(1)) * 1024
        commit = sh(["git", "-C", REPO, "rev-parse", "HEAD"])
        dirty = bool(sh(["git", "-C", REPO, "status", "--porcelain", "--", "Sources", "Package.swift", "schema"]))
        return {
            "nproc": os.cpu_count(),
            "cpu": cpu,
            "mem_gib": round(mem / GiB, 1),
            "kernel": platform.release(),
            "os": sh(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
            "git_commit": commit,
            "git_dirty_sources": dirty,
            "tools": {
                "nginx": sh(["nginx", "-v"]),
                "wrk": (sh(["wrk", "-v"]) or "").splitlines()[0] if sh(["wrk", "-v"]) else None,
                "curl": (sh(["curl", "--version"]) or "").splitlines()[0],
                "dd": (sh(["dd", "--version"]) or "").splitlines()[0],
                "swift": (sh(["swift", "--version"]) or "").splitlines()[0],
            },
            "filesystem": self.fs,
            "loadavg_at_end": open("/proc/loadavg").read().split()[:3],
            "background_cpu_cores": self.background,
            "binary": {"path": self.opts.bin,
                       "mtime": datetime.datetime.fromtimestamp(os.path.getmtime(self.opts.bin), datetime.timezone.utc).isoformat(timespec="seconds")},
        }

    def go(self):
        o = self.opts
        started = time.time()
        now = datetime.datetime.now(datetime.timezone.utc)
        try:
            self.setup()
            for name in ("P1", "P2", "P3", "P4"):
                if name in o.only:
                    self.background[f"before {name}"] = background_cores()
                    getattr(self, name.lower())()
            self.background["at the end"] = background_cores()
            final = self.sampler.sample() or {}
            self.sampler.stop()
            hwm = max(final.get("VmHWM", 0), self.sampler.last_hwm)
        finally:
            if hasattr(self, "sampler"):
                self.sampler.stop()
            if hasattr(self, "procs"):
                self.procs.stop()
        time_rss = self.procs.time_max_rss()
        peak = max(hwm, time_rss or 0)
        self.results["P10"] = {
            "what": "server peak RSS over the whole run (VmHWM; /usr/bin/time -v maximum resident set size as a cross-check)",
            "unit": "MiB",
            "anchor": None,
            "ratio": None,
            "subject": {"name": "zyk", "vmhwm_mib": round(hwm / MiB, 1),
                        "time_v_max_rss_mib": round(time_rss / MiB, 1) if time_rss else None,
                        "sampled_peak_vmrss_mib": round(self.sampler.peak_rss / MiB, 1)},
            "value": round(peak / MiB, 1),
            "target": {"op": "<", "value": 256, "of": "peak RSS (MiB)"},
            "met": peak < 256 * MiB,
        }
        log(f"P10: peak RSS {peak / MiB:.1f} MiB (target < 256) -> {'met' if peak < 256 * MiB else 'NOT met'}")
        report = {
            "schema": 1,
            "date": now.isoformat(timespec="seconds"),
            "duration_s": round(time.time() - started, 1),
            "machine": self.machine(),
            "config": {"runs": o.runs, "wrk": f"-t2 -c64 -d{o.wrk_duration}s", "big_file_bytes": o.big_size,
                       "small_file_bytes": 100 * 1024, "order": "interleaved; anchor first on odd-numbered runs, last on even ones",
                       "benchmarks": sorted(o.only)},
            "results": self.results,
            "notes": self.notes,
            "all_met": all(r.get("met") for r in self.results.values()),
        }
        self.write(report, now)
        return report

    def write(self, report, now):
        os.makedirs(RESULTS, exist_ok=True)
        text = json.dumps(report, indent=2, ensure_ascii=False) + "\n"
        for name in ("latest.json", now.strftime("%Y-%m-%d") + ".json"):
            with open(os.path.join(RESULTS, name), "w") as f:
                f.write(text)
        with open(os.path.join(RESULTS, "latest.md"), "w") as f:
            f.write(markdown(report))
        log(f"wrote {RESULTS}/latest.json, latest.md and {now.strftime('%Y-%m-%d')}.json")

    def cleanup(self):
        if not getattr(self, "work", None):
            return
        if self.opts.keep:
            for name in ("big.mp4", "dd.out", "settle.out", "www/video.mp4"):
                try:
                    os.unlink(os.path.join(self.work, name))
                except OSError:
                    pass
            log(f"kept {self.work} (data root still holds the uploaded blobs)")
        else:
            remove_work(self.work)


def fmt(v, unit):
    if v is None:
        return "—"
    if unit == "req/s":
        return f"{v:,.0f}"
    return f"{v:,.1f}"


def markdown(rep):
    m = rep["machine"]
    lines = [
        f"# Benchmark results {rep['date']}",
        "",
        f"{m['nproc']} × {m['cpu']}, {m['mem_gib']} GiB, kernel {m['kernel']}, {m['filesystem']['type']}; "
        f"commit {str(m['git_commit'])[:12]}{' (Sources modified)' if m['git_dirty_sources'] else ''}; "
        f"{rep['config']['runs']} runs per side, interleaved; {rep['duration_s']:.0f} s in all.",
        "",
        "CPU used by other processes while ours were idle (cores, of " + str(m["nproc"]) + "): "
        + ", ".join(f"{k} {v}" for k, v in m["background_cpu_cores"].items()) + ".",
        "",
        "| # | what | anchor: median (min–max) | zyk: median (min–max) | ratio | target | met |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for key, r in rep["results"].items():
        unit = r["unit"]
        t = r["target"]
        if r.get("anchor"):
            a, s = r["anchor"], r["subject"]
            acell = f"{a['name']}: {fmt(a['median'], unit)} ({fmt(a['min'], unit)}–{fmt(a['max'], unit)}) {unit}"
            scell = f"{fmt(s['median'], unit)} ({fmt(s['min'], unit)}–{fmt(s['max'], unit)}) {unit}"
            ratio = f"{r['ratio']:.2f}×"
            target = f"{t['op']} {t['value']}×"
        else:
            acell = "—"
            if key == "P1-rss":
                s = r["subject"]
                scell = f"largest {r['value']:.1f} MiB (median {s['median']:.1f}, min {s['min']:.1f})"
            else:
                s = r["subject"]
                scell = f"{r['value']:.1f} MiB (VmHWM {s['vmhwm_mib']}, time -v {s['time_v_max_rss_mib']})"
            ratio = "—"
            target = f"{t['op']} {t['value']} MiB"
        lines.append(f"| {key} | {r['what']} | {acell} | {scell} | {ratio} | {target} | {'yes' if r['met'] else '**no**'} |")
    if rep["notes"]:
        lines += ["", "Notes:"] + [f"- {n}" for n in rep["notes"]]
    lines.append("")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(REPO, ".build/release/zyk"))
    ap.add_argument("--runs", type=int, default=5, help="runs per side (at least 3)")
    ap.add_argument("--wrk-duration", type=int, default=10, help="seconds per wrk run")
    ap.add_argument("--big-size", type=int, default=GiB, help="bytes of the large file (P1, P2)")
    ap.add_argument("--only", default="P1,P2,P3,P4", help="comma-separated subset of P1,P2,P3,P4 (P10 is always reported)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (data root, logs; big files are still removed)")
    opts = ap.parse_args()
    opts.only = set(x.strip().upper() for x in opts.only.split(",") if x.strip())
    if opts.runs < 1:
        ap.error("--runs must be positive")

    return main_run(Bench(opts), markdown, log)


if __name__ == "__main__":
    sys.exit(main())
