#!/usr/bin/env python3
"""Ziyuanku sync benchmark: P8 of docs/product.md#performance-targets.

  P8        `zyk sync run` of 1,000 published resources with one small file each (10-20 KB) to the
            loopback mock platform (tools/zyk-mock-platform), against `curl --parallel` sending
            the same 3,000 signed requests (HEAD /files, PUT /files, PUT /resources with the
            identical bodies and Idempotency-Key headers); items/s, target >= 0.5x.
  P8-cN     the same at another concurrency (zyk --concurrency N, curl --parallel-max N).
  large     a few large files (default 4 x 256 MiB): MB/s of zyk sync against curl --parallel.
  diag      where zyk's time goes: syscall counts of one run under strace (fsyncs, connects),
            a run with the data root on tmpfs (no fsync cost), CPU of zyk, curl and the mock.

Run through bench/sync/run.sh, which builds the release binary. Standard library only; shares
helpers with bench/bench.py. Only 127.0.0.1 is contacted.
"""

import argparse
import datetime
import hashlib
import hmac
import http.client
import json
import os
import platform
import random
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH_DIR = os.path.dirname(HERE)
REPO = os.path.dirname(BENCH_DIR)
sys.path.insert(0, BENCH_DIR)
import bench as common  # noqa: E402  (bench/bench.py: Processes, background_cores, free_port, …)

WORK_ROOT = os.path.join(BENCH_DIR, "work")
RESULTS = os.path.join(BENCH_DIR, "results")
MOCK = os.path.join(REPO, "tools", "zyk-mock-platform")
MiB = 1 << 20
GiB = 1 << 30
ORG = common.ORG
APP_KEY = "zyk-demo"
APP_SECRET = "zyk-demo-secret"
BASE_PATH = "/api/v1"
SMALL_MAJOR = "520601"  # 康复治疗技术: the small resources (selected with --major)
LARGE_MAJOR = "520201"  # 护理: the large ones (selected by id), so --major 520601 does not catch them
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
EXPECT_100_THRESHOLD = 1 << 20
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg):
    print(f"[sync {time.strftime('%H:%M:%S')}] {msg}", flush=True)


BenchError = common.BenchError


summary = common.summary


run = common.run


def sh_first_line(cmd):
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        out = r.stdout.strip() or r.stderr.strip()
        return out.splitlines()[0] if out else None
    except Exception:
        return None


def proc_cpu(pid):
    """user + system CPU seconds of a running process (all its threads)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return None


def cpu_snapshot():
    """(busy jiffies excluding steal, steal jiffies) of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    steal = v[7] if len(v) > 7 else 0
    return sum(v[:8]) - idle - steal, steal


def machine_during(before, seconds, own_cpu):
    """Cores the rest of the machine kept busy during a timed step (all busy CPU minus our own
    processes'), and cores stolen by the hypervisor."""
    busy, steal = cpu_snapshot()
    other = ((busy - before[0]) / CLK_TCK - own_cpu) / seconds
    return {"other_cores": round(max(other, 0.0), 2), "steal_cores": round((steal - before[1]) / CLK_TCK / seconds, 2)}


def timed(cmd, out_path, err_path, env=None):
    """Runs a command to completion; wall-clock seconds, exit code and CPU seconds (wait4)."""
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        _, status, ru = os.wait4(p.pid, 0)
        dt = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    with open(out_path, "rb") as f:
        stdout = f.read().decode(errors="replace")
    with open(err_path, "rb") as f:
        stderr = f.read()[-4000:].decode(errors="replace")
    return {"seconds": dt, "rc": p.returncode, "cpu": ru.ru_utime + ru.ru_stime, "user": ru.ru_utime, "sys": ru.ru_stime,
            "stdout": stdout, "stderr": stderr}


def blob_path(root, sha):
    return os.path.join(root, "blobs", sha[:2], sha[2:4], sha)


def sign(method, path, body_sha):
    """The contract's signing headers (schema/platform-v1.md, Signing) with a fresh nonce."""
    ts = str(int(time.time()))
    nonce = secrets.token_hex(16)
    sts = "\n".join(("ZYK1-HMAC-SHA256", method, path, ts, nonce, body_sha))
    sig = hmac.new(APP_SECRET.encode(), sts.encode(), hashlib.sha256).hexdigest()
    return [f"X-ZYK-Key: {APP_KEY}", f"X-ZYK-Timestamp: {ts}", f"X-ZYK-Nonce: {nonce}",
            f"X-ZYK-Content-SHA256: {body_sha}", f"X-ZYK-Signature: {sig}"]


def cfg_quote(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Mock:
    """One zyk-mock-platform process with a fresh data directory."""

    def __init__(self, work, name, data_parent=None):
        self.data = os.path.join(data_parent or work, name)
        shutil.rmtree(self.data, ignore_errors=True)
        port_file = os.path.join(work, f"{name}.port")
        if os.path.exists(port_file):
            os.unlink(port_file)
        self.log_path = os.path.join(work, f"{name}.log")
        self.proc = subprocess.Popen(
            [sys.executable, MOCK, "--data", self.data, "--port", "0", "--port-file", port_file, "--quiet"],
            stdout=open(self.log_path, "wb"), stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 20
        while not os.path.exists(port_file):
            if self.proc.poll() is not None or time.time() > deadline:
                raise BenchError("the mock platform did not start:\n" + common.Processes.tail(self.log_path))
            time.sleep(0.02)
        with open(port_file) as f:
            self.port = int(f.read().strip())
        self.base = f"http://127.0.0.1:{self.port}{BASE_PATH}"

    def get(self, path):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        c.close()
        if r.status != 200:
            raise BenchError(f"mock GET {path} -> {r.status}: {body[:300]!r}")
        return json.loads(body)

    def stats(self):
        return self.get("/_mock/stats")

    def cpu(self):
        return proc_cpu(self.proc.pid)

    def records(self):
        """What the platform holds: id -> the stored document (record, key, body digest)."""
        out = {}
        d = os.path.join(self.data, "resources")
        for name in os.listdir(d):
            if name.endswith(".json") and not name.startswith(".tmp-"):
                with open(os.path.join(d, name), "rb") as f:
                    doc = json.load(f)
                out[doc["identifier"]] = doc
        return out

    def stop(self, remove=True):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if remove:
            shutil.rmtree(self.data, ignore_errors=True)


class SyncBench:
    def __init__(self, opts):
        self.opts = opts
        self.results = {}
        self.notes = []
        self.background = {}
        self.procs = None
        self.mock = None
        self.shm = None
        self.rounds = {}  # key -> list of per-run details

    # --- helpers ------------------------------------------------------------------------------

    def quiet(self, label):
        """Background CPU (cores busy with other processes, 1 s sample) before a timed round;
        waits a little while the machine is busy, then goes on and records what it found."""
        o = self.opts
        seen = []
        for attempt in range(o.max_waits + 1):
            b = common.background_cores()
            seen.append(b)
            if b <= o.max_background or attempt == o.max_waits:
                break
            log(f"  other processes keep {b} cores busy before {label}; waiting {o.wait_seconds:g} s")
            time.sleep(o.wait_seconds)
        self.background[label] = seen[-1] if len(seen) == 1 else {"final": seen[-1], "samples": seen}
        return seen[-1]

    def zyk_env(self, root, mock=None):
        env = dict(os.environ)
        for k in ("ZYK_TOKEN", "ZYK_SYNC_CONCURRENCY", "ZYK_CONFIG"):
            env.pop(k, None)
        env["ZYK_DATA_ROOT"] = root
        env["ZYK_SYNC_INTERVAL_MINUTES"] = "0"
        if mock:
            env["ZYK_PLATFORM_URL"] = mock.base
            env["ZYK_PLATFORM_APP_KEY"] = APP_KEY
            env["ZYK_PLATFORM_APP_SECRET"] = APP_SECRET
        return env

    def zyk(self, *args, root, mock=None):
        r = run([self.bin, *args], env=self.zyk_env(root, mock))
        return json.loads(r.stdout) if "--json" in args else r.stdout

    # --- set-up ---------------------------------------------------------------------------------

    def setup_work(self):
        os.makedirs(WORK_ROOT, exist_ok=True)
        for name in os.listdir(WORK_ROOT):
            m = re.match(r"sync-(\d+)$", name)
            if m and not os.path.exists(f"/proc/{m.group(1)}"):
                shutil.rmtree(os.path.join(WORK_ROOT, name), ignore_errors=True)
        for name in os.listdir("/dev/shm"):
            m = re.match(r"zyk-sync-(\d+)$", name)
            if m and not os.path.exists(f"/proc/{m.group(1)}"):
                shutil.rmtree(os.path.join("/dev/shm", name), ignore_errors=True)
        self.work = os.path.join(WORK_ROOT, f"sync-{os.getpid()}")
        os.makedirs(self.work)
        self.shm = f"/dev/shm/zyk-sync-{os.getpid()}"
        os.makedirs(self.shm)
        # The mock platform keeps what it receives on tmpfs unless --mock-on-disk: it is the
        # fixture, not the subject, and on ext4 its file creations slow down from round to round
        # (inode allocation skipping recently deleted inodes: the mock's kernel CPU doubled over
        # six rounds, measured with perf), which would drift both sides' figures.
        self.mock_parent = self.work if self.opts.mock_on_disk else self.shm
        st = os.statvfs("/dev/shm")
        if not self.opts.mock_on_disk and st.f_bavail * st.f_frsize < self.opts.large_files * self.opts.large_size + GiB:
            raise BenchError("not enough room in /dev/shm for the mock platform's data; use --mock-on-disk")
        st = os.statvfs(self.work)
        free = st.f_bavail * st.f_frsize
        fstype = run(["stat", "-f", "-c", "%T", self.work]).stdout.strip()
        self.fs = {"path": self.work, "type": fstype, "free_gib": round(free / GiB, 1)}
        need = 4 * self.opts.large_files * self.opts.large_size + 2 * GiB
        if free < need:
            raise BenchError(f"{free / GiB:.1f} GiB free on {self.work}; needs about {need / GiB:.0f} GiB")
        # A copy of the binary (and the resource bundles next to it), so that a rebuild during
        # the run does not change what is measured.
        src = self.opts.bin
        bindir = os.path.join(self.work, "bin")
        os.makedirs(bindir)
        shutil.copy2(src, os.path.join(bindir, "zyk"))
        for name in os.listdir(os.path.dirname(src)):
            if name.endswith(".resources"):
                shutil.copytree(os.path.join(os.path.dirname(src), name), os.path.join(bindir, name), symlinks=True)
        self.bin = os.path.join(bindir, "zyk")
        self.binary_info = {"path": src, "sha256": common.sha256_file(self.bin)[:16],
                            "mtime": datetime.datetime.fromtimestamp(os.path.getmtime(src), datetime.timezone.utc).isoformat(timespec="seconds")}

    def make_files(self):
        """The small files (%PDF-1.4 + random bytes, 10-20 KB) and the large ones (MP4 head + random)."""
        o = self.opts
        rng = random.Random(20261130)
        self.src = os.path.join(self.work, "src")
        os.makedirs(self.src)
        rows = []
        meta = dict(common.DOC_META, pushToPlatform=True, majorCodes=[SMALL_MAJOR])
        small_bytes = 0
        for i in range(o.items):
            name = f"doc-{i:05d}.pdf"
            size = rng.randint(o.small_min, o.small_max)
            head = b"%PDF-1.4\n"
            with open(os.path.join(self.src, name), "wb") as f:
                f.write(head + os.urandom(size - len(head)))
            small_bytes += size
            rows.append(dict(meta, key=f"SYNC-S-{i:05d}", title=f"康复评定量表 {i + 1}", files=[{"path": name, "role": "primary"}]))
        vmeta = dict(common.VIDEO_META, pushToPlatform=True, majorCodes=[LARGE_MAJOR])
        for i in range(o.large_files):
            name = f"video-{i}.mp4"
            common.write_random_file(os.path.join(self.src, name), o.large_size, common.MP4_HEAD)
            rows.append(dict(vmeta, key=f"SYNC-L-{i}", title=f"护理操作示范 {i + 1}", files=[{"path": name, "role": "primary"}]))
        self.manifest = os.path.join(self.work, "manifest.jsonl")
        with open(self.manifest, "w") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        self.small_bytes = small_bytes

    def setup_root(self):
        """A data root with the resources imported (zyk import), then published by an admin
        through the running server (POST /v1/resources/{id}/publish), then the server stops."""
        o = self.opts
        root = os.path.join(self.work, "setup-root")
        env_root = self.zyk_env(root)
        run([self.bin, "org", "add", ORG, "--kind", "higherVocational", "--data-root", root], env=env_root)
        teacher = json.loads(run([self.bin, "user", "add", "--org", ORG, "--name", "王老师", "--role", "teacher", "--data-root", root, "--json"],
                                 env=env_root).stdout)
        admin = json.loads(run([self.bin, "user", "add", "--org", ORG, "--name", "管理员", "--role", "admin", "--data-root", root, "--json"],
                               env=env_root).stdout)
        t0 = time.time()
        r = subprocess.run([self.bin, "import", self.manifest, "--files", self.src, "--user", teacher["id"], "--data-root", root, "--json"],
                           env=env_root, capture_output=True, text=True)
        if r.returncode != 0:
            raise BenchError(f"zyk import failed ({r.returncode}): {r.stderr[-2000:]}\n{r.stdout[-2000:]}")
        rep = json.loads(r.stdout)
        total = o.items + o.large_files
        if rep.get("created") != total:
            raise BenchError(f"zyk import created {rep.get('created')} resources, expected {total}: {r.stdout[:2000]}")
        import_s = time.time() - t0
        log(f"imported {total} resources in {import_s:.1f} s; publishing them through the server")

        os.environ["ZYK_SYNC_INTERVAL_MINUTES"] = "0"  # the server's own sync schedule stays off
        for k in ("ZYK_PLATFORM_URL", "ZYK_PLATFORM_APP_KEY", "ZYK_PLATFORM_APP_SECRET"):
            os.environ.pop(k, None)
        self.procs = common.Processes(self.work)
        port = common.free_port()
        self.procs.start_zyk(self.bin, root, port)
        tok = admin["token"]

        def request(conn, method, path, token=None):
            conn.request(method, path, headers={"Authorization": f"Bearer {token}"} if token else {})
            resp = conn.getresponse()
            return resp.status, resp.read()

        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        ids = []
        page = 1
        while True:
            st, body = request(conn, "GET", f"/v1/resources?status=draft&sort=newest&pageSize=100&page={page}", tok)
            if st != 200:
                raise BenchError(f"listing drafts -> {st}: {body[:300]!r}")
            items = json.loads(body)["items"]
            if not items:
                break
            ids += [it["id"] for it in items]
            page += 1
        if len(set(ids)) != total:
            raise BenchError(f"found {len(set(ids))} drafts, expected {total}")
        t1 = time.time()
        errors = []
        lock = threading.Lock()

        def publisher(part):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            for rid in part:
                st, body = request(c, "POST", f"/v1/resources/{rid}/publish", tok)
                if st != 200:
                    with lock:
                        errors.append(f"{rid}: {st} {body[:200]!r}")
            c.close()

        threads = [threading.Thread(target=publisher, args=(ids[k::4],)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise BenchError(f"{len(errors)} publishes failed: {errors[:3]}")
        publish_s = time.time() - t1
        st, body = request(conn, "GET", f"/v1/resources?major={SMALL_MAJOR}&pageSize=1")
        n_small = json.loads(body)["total"]
        st, body = request(conn, "GET", f"/v1/resources?major={LARGE_MAJOR}&pageSize=100")
        large = json.loads(body)
        conn.close()
        if n_small != o.items or large["total"] != o.large_files:
            raise BenchError(f"anonymous search sees {n_small} + {large['total']} published resources, expected {o.items} + {o.large_files}")
        self.large_ids = sorted(it["id"] for it in large["items"])
        log(f"published {total} in {publish_s:.1f} s (4 threads); stopping the server")
        self.procs.stop()
        self.procs = None
        os.sync()
        self.pristine = os.path.join(self.work, "pristine")
        os.rename(root, self.pristine)
        self.setup_info = {"import_seconds": round(import_s, 1), "publish_seconds": round(publish_s, 1)}

    def restore(self, dst):
        """A fresh copy of the pristine data root: the catalog copied, blobs hard-linked (read-only)."""
        shutil.rmtree(dst, ignore_errors=True)
        os.makedirs(dst)
        for name in os.listdir(self.pristine):
            s = os.path.join(self.pristine, name)
            run(["cp", "-al" if name == "blobs" else "-a", s, os.path.join(dst, name)])
        return dst

    # --- one round of each side -------------------------------------------------------------------

    def zyk_round(self, label, kind, concurrency, strace_out=None, root_dir=None):
        """Fresh root and mock; select (untimed); `zyk sync run --json` (timed); checks; returns details."""
        o = self.opts
        root = root_dir or self.restore(os.path.join(self.work, "root"))
        self.mock = mock = Mock(self.work, "mock", self.mock_parent)
        env = self.zyk_env(root, mock)
        if kind == "small":
            sel = self.zyk("sync", "select", "--major", SMALL_MAJOR, "--json", root=root, mock=mock)
            n = o.items
        else:
            ids = self.large_ids if kind == "large" else kind  # or a list of ids
            args = ["sync", "select", "--json"]
            for rid in ids:
                args += ["--id", rid]
            sel = self.zyk(*args, root=root, mock=mock)
            n = len(ids)
        if len(sel["queued"]) != n:
            raise BenchError(f"zyk sync select queued {len(sel['queued'])}, expected {n}")
        cmd = [self.bin, "sync", "run", "--json", "--max-wait", "0"]
        if concurrency != 4:
            cmd += ["--concurrency", str(concurrency)]
        if strace_out:
            cmd = ["strace", "-f", "-c", "-o", strace_out] + cmd
        os.sync()
        bg = self.quiet(label) if not strace_out and not label.startswith("diag one") else None
        cpu0 = mock.cpu()
        snap = cpu_snapshot()
        r = timed(cmd, os.path.join(self.work, "zyk.out"), os.path.join(self.work, "zyk.err"), env=env)
        mock_cpu = mock.cpu() - cpu0
        during = machine_during(snap, r["seconds"], r["cpu"] + mock_cpu)
        if r["rc"] != 0:
            raise BenchError(f"zyk sync run exited {r['rc']}:\n{r['stderr']}\n{r['stdout'][:2000]}")
        s = json.loads(r["stdout"])
        if s["done"] != n or s["dead"] or s["failed"] or s["outbox"]["done"] != n:
            raise BenchError(f"zyk sync run did not send everything: {json.dumps(s)[:1500]}")
        st = mock.stats()
        self.check_mock(st, n, "zyk")
        recs = mock.records()
        mock.stop()
        self.mock = None
        return {"seconds": r["seconds"], "self_seconds": s["seconds"], "cpu": r["cpu"], "mock_cpu": mock_cpu, "bytes_sent": s["bytesSent"],
                "background_cores": bg, **during, "records": recs}

    def check_mock(self, st, n, who):
        by_status = st["requests"]["byStatus"]
        bad = {k: v for k, v in by_status.items() if k not in ("200", "201", "404")}
        if st["resources"] != n or st["files"] != n or st["signatureFailures"] or st["digestMismatches"] or bad:
            raise BenchError(f"{who}: the mock platform holds {st['resources']} resources and {st['files']} files (expected {n}); "
                             f"signature failures {st['signatureFailures']}, digest mismatches {st['digestMismatches']}, statuses {by_status}")
        kinds = st["requests"]["byKind"]
        if kinds.get("HEAD /files") != n or kinds.get("PUT /files") != n or kinds.get("PUT /resources") != n:
            raise BenchError(f"{who}: expected {n} requests of each kind, the mock counted {kinds}")

    def requests_from(self, recs, kind):
        """The exact requests zyk made, from what the mock stored: the body is the stored record
        re-serialized (sorted keys, compact, UTF-8) and must hash to the digest the mock computed
        of the bytes it received."""
        reqdir = os.path.join(self.work, f"bodies-{kind}")
        shutil.rmtree(reqdir, ignore_errors=True)
        os.makedirs(reqdir)
        out = []
        for rid in sorted(recs):
            doc = recs[rid]
            body = json.dumps(doc["record"], ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
            sha = hashlib.sha256(body).hexdigest()
            if sha != doc["bodySha256"]:
                raise BenchError(f"cannot rebuild the exact body zyk sent for {rid} (digest {sha} != {doc['bodySha256']})")
            if doc["idempotencyKey"] != f"{rid}:{doc['version']}":
                raise BenchError(f"unexpected Idempotency-Key {doc['idempotencyKey']!r} for {rid}")
            path = os.path.join(reqdir, f"{rid}.json")
            with open(path, "wb") as f:
                f.write(body)
            files = []
            for fl in doc["record"]["files"]:
                p = blob_path(self.pristine, fl["sha256"])
                if os.path.getsize(p) != fl["size"]:
                    raise BenchError(f"blob {p} is not {fl['size']} bytes")
                files.append((fl["sha256"], p, fl["size"]))
            out.append({"id": rid, "key": doc["idempotencyKey"], "body": path, "body_sha": sha, "files": files})
        return out

    def write_config(self, path, mock, reqs, phase):
        """A curl config file with one block per request, separated by `next`; signed now."""
        lines = []
        for req in reqs:
            blocks = []
            if phase == "head":
                for sha, _, _ in req["files"]:
                    p = f"{BASE_PATH}/files/{sha}"
                    blocks.append((p, ["head"], sign("HEAD", p, EMPTY_SHA256)))
            elif phase == "file":
                for sha, fpath, size in req["files"]:
                    p = f"{BASE_PATH}/files/{sha}"
                    # zyk's libcurl asks for `100 Continue` only above 1 MiB (EXPECT_100_THRESHOLD);
                    # the curl tool's -T asks for it on any PUT, so it is turned off below that
                    # size to send the same request (checked with strace on zyk's side).
                    expect = ["Expect:"] if size <= EXPECT_100_THRESHOLD else []
                    blocks.append((p, [f"upload-file = {cfg_quote(fpath)}"],
                                   sign("PUT", p, sha) + ["Content-Type: application/octet-stream"] + expect))
            else:
                p = f"{BASE_PATH}/resources/{urllib.parse.quote(req['id'], safe='')}"
                blocks.append((p, [f"upload-file = {cfg_quote(req['body'])}"],
                               sign("PUT", p, req["body_sha"]) + ["Content-Type: application/json; charset=utf-8",
                                                                  f"Idempotency-Key: {req['key']}", "Expect:"]))
            for p, opts, headers in blocks:
                if lines:
                    lines.append("next")
                lines.append(f"url = {cfg_quote(f'http://127.0.0.1:{mock.port}{p}')}")
                lines += opts
                lines.append('output = "/dev/null"')
                lines.append('write-out = "%{http_code} %{num_connects} %{size_upload}\\n"')
                lines += [f"header = {cfg_quote(h)}" for h in headers]
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")

    def curl_round(self, label, kind, concurrency, reqs):
        """Fresh mock; the same requests in three phases with curl --parallel (each timed)."""
        n = len(reqs)
        self.mock = mock = Mock(self.work, "mock", self.mock_parent)
        expect = {"head": "404", "file": "201", "record": "201"}
        phases = {}
        cfgs = {}
        for ph in ("head", "file", "record"):
            cfgs[ph] = os.path.join(self.work, f"curl-{ph}.cfg")
        os.sync()
        bg = self.quiet(label)
        total = cpu = mock_cpu = 0.0
        other = steal = 0.0
        conns = 0
        sent = 0
        for ph in ("head", "file", "record"):
            self.write_config(cfgs[ph], mock, reqs, ph)  # signed just before the phase (untimed)
            cpu0 = mock.cpu()
            snap = cpu_snapshot()
            r = timed(["curl", "--parallel", "--parallel-max", str(concurrency), "-sS", "-K", cfgs[ph]],
                      os.path.join(self.work, "curl.out"), os.path.join(self.work, "curl.err"))
            mcpu = mock.cpu() - cpu0
            during = machine_during(snap, r["seconds"], r["cpu"] + mcpu)
            other += during["other_cores"] * r["seconds"]
            steal += during["steal_cores"] * r["seconds"]
            codes = [ln.split() for ln in r["stdout"].splitlines() if ln.strip()]
            wrong = [c for c in codes if c[0] != expect[ph]]
            if r["rc"] != 0 or len(codes) != n or wrong:
                raise BenchError(f"curl {ph} phase: exit {r['rc']}, {len(codes)} answers (expected {n}), "
                                 f"{len(wrong)} not {expect[ph]} (e.g. {wrong[:3]}); stderr: {r['stderr'][:1000]}")
            c = sum(int(x[1]) for x in codes)
            up = sum(int(x[2]) for x in codes)
            phases[ph] = {"seconds": round(r["seconds"], 4), "cpu": round(r["cpu"], 3), "mock_cpu": round(mcpu, 3), "connections": c}
            total += r["seconds"]
            cpu += r["cpu"]
            mock_cpu += mcpu
            conns += c
            sent += up
        st = mock.stats()
        self.check_mock(st, n, "curl")
        recs = mock.records()
        for req in reqs:
            d = recs.get(req["id"])
            if not d or d["bodySha256"] != req["body_sha"] or d["idempotencyKey"] != req["key"]:
                raise BenchError(f"curl: the mock did not store the expected record for {req['id']}")
        mock.stop()
        self.mock = None
        return {"seconds": total, "cpu": cpu, "mock_cpu": mock_cpu, "phases": phases, "connections": conns, "bytes_sent": sent,
                "background_cores": bg, "other_cores": round(other / total, 2), "steal_cores": round(steal / total, 2)}

    # --- the benchmarks -----------------------------------------------------------------------------

    def capture(self, kind):
        """One zyk run (untimed warm-up) whose requests, read back from the mock, the curl side replays."""
        log(f"{kind}: capture run (zyk, concurrency 4; a warm-up, not counted)")
        d = self.zyk_round(f"{kind} capture", kind, 4)
        reqs = self.requests_from(d["records"], kind)
        log(f"  {len(reqs)} records rebuilt byte for byte (digests match the mock's), {d['seconds']:.2f} s")
        return reqs, d

    def series(self, key, kind, concurrency, reqs, n_items, unit_bytes=None, runs=None):
        o = self.opts
        z_runs, c_runs = [], []
        for i in range(runs or o.runs):
            def do_zyk():
                d = self.zyk_round(f"{key} round {i + 1} zyk", kind, concurrency)
                del d["records"]
                z_runs.append(d)
                log(f"  round {i + 1} zyk:  {d['seconds']:.3f} s ({n_items / d['seconds']:.0f} items/s"
                    + (f", {unit_bytes / d['seconds'] / 1e6:.0f} MB/s" if unit_bytes else "")
                    + f"), cpu {d['cpu']:.2f} s, mock cpu {d['mock_cpu']:.2f} s, other processes {d['other_cores']:.2f} cores")

            def do_curl():
                d = self.curl_round(f"{key} round {i + 1} curl", kind, concurrency, reqs)
                c_runs.append(d)
                ph = d["phases"]
                log(f"  round {i + 1} curl: {d['seconds']:.3f} s ({n_items / d['seconds']:.0f} items/s"
                    + (f", {unit_bytes / d['seconds'] / 1e6:.0f} MB/s" if unit_bytes else "")
                    + f"; HEAD {ph['head']['seconds']:.2f} + PUT files {ph['file']['seconds']:.2f} + PUT records {ph['record']['seconds']:.2f}), "
                    f"cpu {d['cpu']:.2f} s, mock cpu {d['mock_cpu']:.2f} s, {d['connections']} connections, other processes {d['other_cores']:.2f} cores")

            for fn in ((do_curl, do_zyk) if i % 2 == 0 else (do_zyk, do_curl)):
                fn()
        return z_runs, c_runs

    def record(self, key, what, unit, z_runs, c_runs, per_run, target=None, anchor_name=None, extra=None):
        zv = [round(per_run(d), 3) for d in z_runs]
        cv = [round(per_run(d), 3) for d in c_runs]
        a, s = summary(cv), summary(zv)
        ratio = s["median"] / a["median"] if a["median"] else None
        entry = {
            "what": what, "unit": unit,
            "anchor": dict(name=anchor_name, **a), "subject": dict(name="zyk sync run", **s),
            "ratio": round(ratio, 4) if ratio is not None else None,
            "paired_ratios": [round(x / y, 4) for x, y in zip(zv, cv) if y],
            "target": {"op": ">=", "value": target, "of": "ratio of medians (subject / anchor)"} if target else None,
            "met": (ratio >= target) if target and ratio is not None else None,
            "runs_detail": {"zyk": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in d.items()} for d in z_runs],
                            "curl": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in d.items()} for d in c_runs]},
        }
        if extra:
            entry.update(extra)
        self.results[key] = entry
        log(f"{key}: zyk {s['median']:.1f} {unit}, curl {a['median']:.1f} {unit} -> {ratio:.3f}×"
            + (f" (target ≥ {target}: {'met' if entry['met'] else 'NOT met'})" if target else ""))

    def small(self):
        o = self.opts
        reqs, cap = self.capture("small")
        self.small_capture = cap
        for c in o.concurrency:
            key = "P8" if c == 4 else f"P8-c{c}"
            log(f"{key}: {o.items} resources, concurrency {c}, {o.runs} rounds each side, alternating")
            z, cr = self.series(key, "small", c, reqs, o.items)
            self.record(
                key, f"sync {o.items} resources with one small file each ({o.small_min // 1000}-{o.small_max // 1000} KB, "
                     f"{self.small_bytes / 1e6:.1f} MB in all) to the loopback mock platform: {3 * o.items} signed requests, concurrency {c}",
                "items/s", z, cr, lambda d: o.items / d["seconds"], target=0.5 if c == 4 else None,
                anchor_name=f"curl --parallel --parallel-max {c}, the same {3 * o.items} requests in three phases "
                            f"(all HEAD, all PUT /files, all PUT /resources), time = sum",
                extra={"items": o.items, "concurrency": c,
                       "zyk_self_reported_items_per_s": summary([round(o.items / d["self_seconds"], 1) for d in z])})
        self.small_reqs = reqs

    def large(self):
        o = self.opts
        if not o.large_files:
            return
        reqs, cap = self.capture("large")
        total = sum(f[2] for r in reqs for f in r["files"])
        log(f"large: {o.large_files} × {o.large_size / MiB:g} MiB, concurrency 4, {o.large_runs} rounds each side")
        z, cr = self.series("large", "large", 4, reqs, o.large_files, unit_bytes=total, runs=o.large_runs)
        self.record(
            "large", f"sync {o.large_files} resources with one {o.large_size / MiB:g} MiB file each ({total / GiB:.2f} GiB) "
                     f"to the loopback mock platform, concurrency 4",
            "MB/s", z, cr, lambda d: total / d["seconds"] / 1e6,
            anchor_name="curl --parallel --parallel-max 4, the same signed requests (HEAD, PUT /files, PUT /resources), time = sum",
            extra={"bytes": total, "capture_run_seconds": round(cap["seconds"], 3),
                   "items_per_s": {"zyk": summary([round(o.large_files / d["seconds"], 3) for d in z]),
                                   "curl": summary([round(o.large_files / d["seconds"], 3) for d in cr])}})

    def diagnostics(self):
        """Where zyk's time goes: syscalls of one run under strace -f -c (not timed), two runs with
        the data root on tmpfs (fsync is free there), one run at concurrency 1."""
        o = self.opts
        diag = {}
        if shutil.which("strace"):
            out = os.path.join(self.work, "strace.txt")
            log("diag: one zyk run under strace -f -c (syscall counts; its time is not a figure)")
            d = self.zyk_round("diag strace", "small", 4, strace_out=out)
            calls = {}
            with open(out) as f:
                for line in f:
                    m = re.match(r"\s*([\d.]+)\s+([\d.]+)\s+(\d+)\s+(\d+)\s+(?:(\d+)\s+)?(\w+)\s*$", line)
                    if m:
                        calls[m.group(6)] = {"calls": int(m.group(4)), "seconds": float(m.group(2)), "errors": int(m.group(5) or 0)}
            keep = ["fsync", "fdatasync", "pwrite64", "pread64", "write", "read", "connect", "socket", "futex", "poll", "ppoll",
                    "epoll_wait", "sendto", "recvfrom", "openat", "close", "fcntl", "mmap", "munmap", "clock_nanosleep", "nanosleep",
                    "getrandom", "sched_yield"]
            diag["strace"] = {"items": o.items, "seconds_under_strace": round(d["seconds"], 2),
                              "syscalls": {k: calls[k] for k in keep if k in calls},
                              "per_item": {k: round(calls[k]["calls"] / o.items, 2) for k in keep if k in calls}}
            fs = sum(calls.get(k, {}).get("calls", 0) for k in ("fsync", "fdatasync"))
            log(f"  fsync+fdatasync {fs} ({fs / o.items:.2f} per item), connect {calls.get('connect', {}).get('calls', 0)}, "
                f"pwrite64 {calls.get('pwrite64', {}).get('calls', 0)}, futex {calls.get('futex', {}).get('calls', 0)}")
        else:
            self.notes.append("strace is not installed: no syscall counts")
        # tmpfs: the catalog without fsync cost (copy of the root with the small blobs only)
        runs = []
        for i in range(o.tmpfs_runs):
            root = os.path.join(self.shm, "root")
            shutil.rmtree(root, ignore_errors=True)
            os.makedirs(root)
            for name in os.listdir(self.pristine):
                if name != "blobs":
                    run(["cp", "-a", os.path.join(self.pristine, name), os.path.join(root, name)])
            for req in self.small_reqs:
                for sha, p, _ in req["files"]:
                    dst = blob_path(root, sha)
                    os.makedirs(os.path.dirname(dst), exist_ok=True)
                    shutil.copy2(p, dst)
            d = self.zyk_round(f"diag tmpfs {i + 1}", "small", 4, root_dir=root)
            runs.append(round(d["seconds"], 3))
            log(f"  diag: zyk with the data root on tmpfs: {d['seconds']:.3f} s ({o.items / d['seconds']:.0f} items/s), cpu {d['cpu']:.2f} s")
        shutil.rmtree(os.path.join(self.shm, "root"), ignore_errors=True)
        if runs:
            diag["tmpfs_root"] = {"what": "zyk sync run (concurrency 4) with the data root (catalog) on /dev/shm: SQLite commits cost no fsync",
                                  "seconds": runs, "items_per_s": summary([round(o.items / s, 1) for s in runs])}
        # The fixed cost of a run: one small resource at concurrency 4 and 1 (median of 3 each).
        one = [self.small_reqs[0]["id"]]
        fixed = {}
        for c in (4, 1):
            secs = sorted(self.zyk_round(f"diag one item c{c}", one, c)["seconds"] for _ in range(3))
            fixed[f"concurrency_{c}"] = {"seconds": [round(x, 3) for x in secs], "median": round(secs[1], 3)}
        diag["one_item"] = dict(fixed, what="zyk sync run --json of a single small resource (wall clock): the fixed cost of a run")
        log(f"  diag: one item: {fixed['concurrency_4']['median']:.3f} s at concurrency 4, {fixed['concurrency_1']['median']:.3f} s at concurrency 1")
        if o.c1:
            d = self.zyk_round("diag concurrency 1", "small", 1)
            diag["concurrency_1"] = {"seconds": round(d["seconds"], 3), "items_per_s": round(o.items / d["seconds"], 1),
                                     "ms_per_item": round(1000 * d["seconds"] / o.items, 3), "cpu": round(d["cpu"], 3),
                                     "mock_cpu": round(d["mock_cpu"], 3)}
            log(f"  diag: zyk at concurrency 1: {d['seconds']:.3f} s ({1000 * d['seconds'] / o.items:.2f} ms per item)")
        self.results["diag"] = diag

    # --- whole run ----------------------------------------------------------------------------------

    def machine(self):
        cpuinfo = open("/proc/cpuinfo").read()
        cpu = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
        mem = int(re.search(r"MemTotal:\s+(\d+)", open("/proc/meminfo").read()).group(1)) * 1024
        return {
            "nproc": os.cpu_count(), "cpu": cpu.group(1) if cpu else None, "mem_gib": round(mem / GiB, 1),
            "kernel": platform.release(), "os": sh_first_line(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
            **self.git,
            "tools": {"curl": sh_first_line(["curl", "--version"]), "swift": sh_first_line(["swift", "--version"]),
                      "python": platform.python_version(), "strace": sh_first_line(["strace", "-V"])},
            "filesystem": self.fs,
            "loadavg_at_start": self.load_start, "loadavg_at_end": open("/proc/loadavg").read().split()[:3],
            "background_cpu_cores": self.background,
            "binary": self.binary_info,
        }

    def go(self):
        o = self.opts
        started = time.time()
        now = datetime.datetime.now(datetime.timezone.utc)
        self.load_start = open("/proc/loadavg").read().split()[:3]
        self.git = {"git_commit": run(["git", "-C", REPO, "rev-parse", "HEAD"]).stdout.strip(),
                    "git_dirty_sources": bool(run(["git", "-C", REPO, "status", "--porcelain", "--", "Sources", "Package.swift", "schema"]).stdout.strip())}
        self.setup_work()
        log(f"work in {self.work} ({self.fs['type']}); writing {o.items} small files and {o.large_files} × {o.large_size / MiB:g} MiB")
        t0 = time.time()
        self.make_files()
        self.setup_root()
        self.setup_info["seconds"] = round(time.time() - t0, 1)
        self.small()
        self.large()
        if o.diag:
            self.diagnostics()
        self.background["at the end"] = common.background_cores()
        report = {
            "schema": 1, "date": now.isoformat(timespec="seconds"), "duration_s": round(time.time() - started, 1),
            "machine": self.machine(),
            "config": {"runs": o.runs, "items": o.items, "small_sizes": [o.small_min, o.small_max], "small_bytes": self.small_bytes,
                       "large": f"{o.large_files} × {o.large_size}", "concurrency": o.concurrency, "setup": self.setup_info,
                       "order": "interleaved; curl first in odd-numbered rounds, zyk first in even ones; one untimed zyk capture run first",
                       "mock": "tools/zyk-mock-platform --quiet, no faults, a fresh data directory per run"
                               + (" in the work folder (disk)" if o.mock_on_disk else " on /dev/shm (tmpfs)"),
                       "zyk_figure": "wall clock of the whole `zyk sync run --json --max-wait 0` command (start-up, catalog, lock included); "
                                     "zyk's own `seconds` is in runs_detail as self_seconds",
                       "max_background_cores": o.max_background},
            "results": self.results, "notes": self.notes,
            "all_met": all(r["met"] for r in self.results.values() if isinstance(r, dict) and r.get("target")),
        }
        self.write(report, now)
        return report

    def write(self, report, now):
        os.makedirs(RESULTS, exist_ok=True)
        text = json.dumps(report, indent=2, ensure_ascii=False) + "\n"
        for name in ("sync-latest.json", f"sync-{now.strftime('%Y-%m-%d')}.json"):
            with open(os.path.join(RESULTS, name), "w") as f:
                f.write(text)
        with open(os.path.join(RESULTS, "sync-latest.md"), "w") as f:
            f.write(markdown(report))
        log(f"wrote {RESULTS}/sync-latest.json, sync-latest.md and sync-{now.strftime('%Y-%m-%d')}.json")

    def cleanup(self):
        if self.mock:
            self.mock.stop(remove=False)
        if self.procs:
            self.procs.stop()
        if self.shm:
            shutil.rmtree(self.shm, ignore_errors=True)
        if getattr(self, "work", None) and not self.opts.keep:
            common.remove_work(self.work)


def markdown(rep):
    m = rep["machine"]
    res = rep["results"]
    cfg = rep["config"]
    bg = m["background_cpu_cores"]
    bgs = [v if isinstance(v, (int, float)) else v["final"] for v in bg.values()]
    lines = [
        f"# Sync benchmark results (P8) {rep['date']}",
        "",
        f"{m['nproc']} × {m['cpu']}, {m['mem_gib']} GiB, kernel {m['kernel']}, {m['filesystem']['type']}; "
        f"commit {str(m['git_commit'])[:12]}{' (Sources modified)' if m['git_dirty_sources'] else ''}; {m['tools']['curl']}; "
        f"{cfg['runs']} runs per side, interleaved; {rep['duration_s']:.0f} s in all. Load average at start {' '.join(m['loadavg_at_start'])}, "
        f"at end {' '.join(m['loadavg_at_end'])}.",
        "",
        f"Mock platform: {cfg['mock']}. zyk's figure: {cfg['zyk_figure']}.",
        "",
    ]
    if bgs:
        lines += [f"CPU used by other processes before each timed round (cores, of {m['nproc']}): median {statistics.median(bgs):.2f}, "
                  f"max {max(bgs):.2f} (all values in the JSON).", ""]
    lines += ["| # | what | curl: median (min–max) | zyk: median (min–max) | ratio | target | met |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for key, r in res.items():
        if key == "diag":
            continue
        a, s, u = r["anchor"], r["subject"], r["unit"]
        t = r.get("target")
        lines.append(f"| {key} | {r['what']} | {a['median']:,.1f} ({a['min']:,.1f}–{a['max']:,.1f}) {u} | "
                     f"{s['median']:,.1f} ({s['min']:,.1f}–{s['max']:,.1f}) {u} | {r['ratio']:.2f}× | "
                     + (f"≥ {t['value']}× | {'yes' if r['met'] else '**no**'} |" if t else "— | — |"))
    lines += ["", "Per run: wall-clock seconds; CPU seconds of the client and of the mock platform (the mock is one Python "
              "process: its CPU close to the wall clock means it was the bottleneck); cores other processes kept busy "
              "during the step:", "",
              "| # | side | seconds | client CPU | mock CPU | others (cores) | other |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for key, r in res.items():
        if key == "diag":
            continue
        for d in r["runs_detail"]["curl"]:
            ph = d["phases"]
            lines.append(f"| {key} | curl | {d['seconds']:.3f} | {d['cpu']:.2f} | {d['mock_cpu']:.2f} | {d['other_cores']:.2f} | HEAD {ph['head']['seconds']:.2f} s, "
                         f"PUT files {ph['file']['seconds']:.2f} s, PUT records {ph['record']['seconds']:.2f} s; {d['connections']} connections |")
        for d in r["runs_detail"]["zyk"]:
            lines.append(f"| {key} | zyk | {d['seconds']:.3f} | {d['cpu']:.2f} | {d['mock_cpu']:.2f} | {d['other_cores']:.2f} | zyk's own seconds {d['self_seconds']:.3f} |")
    dg = res.get("diag") or {}
    if "P8" in res:
        r = res["P8"]
        n = r["items"]

        def per_item(side, k):
            return 1000 * statistics.median(d[k] for d in r["runs_detail"][side]) / n

        lines += ["", f"CPU per item at concurrency 4 (medians): zyk {per_item('zyk', 'cpu'):.2f} ms, curl {per_item('curl', 'cpu'):.2f} ms; "
                  f"the mock platform {per_item('zyk', 'mock_cpu'):.2f} ms serving zyk, {per_item('curl', 'mock_cpu'):.2f} ms serving curl."]
    if dg:
        lines += ["", "Diagnostics (zyk, small files, not targets):", ""]
        if "strace" in dg:
            st = dg["strace"]
            pi = st["per_item"]
            lines.append(f"- `strace -f -c` of one run ({st['items']} items): per item "
                         + ", ".join(f"{k} {v}" for k, v in pi.items()) + ".")
        if "tmpfs_root" in dg:
            t = dg["tmpfs_root"]
            lines.append(f"- data root on tmpfs (no fsync cost): {t['items_per_s']['median']:.0f} items/s (runs {', '.join(f'{x:.3f}' for x in t['seconds'])} s).")
        if "one_item" in dg:
            oi = dg["one_item"]
            lines.append(f"- a single small resource: {oi['concurrency_4']['median']:.3f} s at concurrency 4, "
                         f"{oi['concurrency_1']['median']:.3f} s at concurrency 1 (medians of 3; the fixed cost of a run).")
        if "concurrency_1" in dg:
            c = dg["concurrency_1"]
            lines.append(f"- concurrency 1: {c['items_per_s']:.0f} items/s, {c['ms_per_item']:.2f} ms per item (3 requests + outbox).")
    lines += ["", f"All targets met: {'yes' if rep['all_met'] else '**no**'}"]
    if rep["notes"]:
        lines += ["", "Notes:"] + [f"- {n}" for n in rep["notes"]]
    lines.append("")
    return "\n".join(lines)


def parse_size(text):
    m = re.fullmatch(r"\s*([0-9]+)\s*([KMG]?)(?:i?B)?\s*", text, re.IGNORECASE)
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r}")
    return int(m.group(1)) * 1024 ** " KMG".index(m.group(2).upper() or " ")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(REPO, ".build/release/zyk"))
    ap.add_argument("--runs", type=int, default=3, help="timed runs per side (default 3)")
    ap.add_argument("--items", type=int, default=1000, help="small resources (default 1000)")
    ap.add_argument("--small-min", type=int, default=10_000)
    ap.add_argument("--small-max", type=int, default=20_000)
    ap.add_argument("--concurrency", default="4,8", help="comma-separated; 4 is P8 (default 4,8)")
    ap.add_argument("--large-files", type=int, default=4, help="large resources; 0 skips the large-file figure")
    ap.add_argument("--large-size", type=parse_size, default=256 * MiB)
    ap.add_argument("--large-runs", type=int, default=3, help="timed runs per side for the large files (default 3)")
    ap.add_argument("--no-diag", dest="diag", action="store_false", help="skip strace / tmpfs diagnostics")
    ap.add_argument("--tmpfs-runs", type=int, default=2)
    ap.add_argument("--no-c1", dest="c1", action="store_false", help="skip the concurrency-1 diagnostic run")
    ap.add_argument("--max-background", type=float, default=0.5, help="wait while other processes keep more cores busy than this")
    ap.add_argument("--max-waits", type=int, default=2)
    ap.add_argument("--wait-seconds", type=float, default=10)
    ap.add_argument("--mock-on-disk", action="store_true", help="keep the mock platform's data in the work folder instead of /dev/shm")
    ap.add_argument("--keep", action="store_true", help="keep bench/work/sync-PID")
    opts = ap.parse_args()
    opts.concurrency = [int(x) for x in opts.concurrency.split(",") if x.strip()]
    if 4 not in opts.concurrency:
        opts.concurrency.insert(0, 4)

    return common.main_run(SyncBench(opts), markdown, log)


if __name__ == "__main__":
    sys.exit(main())
