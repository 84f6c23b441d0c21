#!/usr/bin/env python3
"""Sync to the national platform (`zyk sync`) against tools/zyk-mock-platform: R9, R10, R11, a
large file, withdrawal and new versions.

Every phase has its own data root (a `zyk serve` creates the resources over HTTP and is stopped
before anything syncs, except where the phase needs it to publish or withdraw) and its own mock
platform. Sync runs are separate `zyk sync run --json` processes, never two at once.

  1. R9, flaky platform: --items (default 1000) published, public resources with pushToPlatform
     and small distinct PDF files; the mock answers 30% of contract requests with a fault drawn
     from all kinds (500, 503, 408, 429, reset, reset-after, stall, drip, delay; Retry-After 1,
     drip interval 5 s, stalls of up to 30 s). Sync with low-speed 1000 B / 2 s, backoff base
     0.05 s cap 1 s, 1000 attempts, concurrency 8: `zyk sync run --max-wait 60`, again while it
     exits 1 with work left. Checks: the mock holds exactly the selected resources, each at its
     version; no duplicate effect; no Retry-After violation; every fault kind injected; every
     stall and drip cut by the client within low_speed_seconds + 2 s (plus 0.25 s for libcurl's
     one-second check tick; none left uncut); no request refused for its signature; the outbox
     all done with the mock's remote ids; failed attempts recorded (retries happened) and after
     every 429 the next attempt started no earlier than Retry-After (sync_attempts).
  2. R10, kill -9 between the platform's 2xx and the local mark: a fresh mock without faults,
     max(400, 2 x --kills) + 4 x --kills resources; --kills (default 200) runs, each with the
     mock told to hold its k-th successful PUT /resources answer and later ones (k random 1..3;
     POST /_mock/hold: the effect applied, the answer not sent). This script SIGKILLs the run as
     soon as the mock holds an answer, then releases it: each run must die by SIGKILL after the
     mock answered at least k PUT /resources with 2xx and with at most k-1 entries newly marked
     done (the k-th ack never recorded), mixed with --kills/10 runs killed from outside at a
     random moment; then a clean run. Checks: kills counted; no duplicate effect; the mock holds every
     resource; the outbox all done with the mock's remote ids; idempotent replays (the mock's
     idempotentReplays counter) >= hook kills; interrupted attempts recorded.
  3. R11, the platform refuses a record: forced 422 invalid_record "课程编码不存在" for some ids,
     then (the mock holds one rejection at a time) 400 with another Chinese message for others.
     Checks: exit 1; exactly those entries dead with the platform's message intact in
     `zyk sync status --json`, `--state dead --json` and the table; one attempt each (outbox,
     sync_attempts, the mock's forcedRejections); the others done. Lift it, `zyk sync retry
     --dead`, run: exit 0, all done, the mock holds them all.
  4. A --big-mb (default 1024) MiB file (sparse PDF, uploaded with POST /v1/blobs), synced to a
     fresh mock while /proc/PID/status VmRSS is sampled every 50 ms: peak minus the RSS just
     before the first byte reached the platform < 64 MB (the mock delays every request by 1.5 s,
     so the run has started up and sits idle when the upload begins); the mock stored the bytes
     under their sha256 (its own digest check, its file size, and hashed again here); MB/s.
  5. Withdraw a synced resource (DELETE reaches the mock, the resource is gone), publish two new
     versions of another before syncing (only the last one is sent: one resource.update effect,
     no other version), re-publish the withdrawn one (created again).
  6. The server's own sync: POST /v1/admin/sync/select and /run (202, a second run 409), the
     status while every transfer stalls, SIGTERM then (a clean exit within 10 s; the entries
     back to pending, attempts not counted, recorded as cancelled), and a run after a restart.

Standard library only; 127.0.0.1 only. Prints "N passed, M failed"; exits 1 on any failure.

  Tests/process/sync_platform.py [--bin PATH] [--seed N] [--deadline S] [--workdir DIR] [--keep]
                                 [--items N] [--kills N] [--big-mb MB] [--phases R9,R10,...]
"""

import sys

sys.dont_write_bytecode = True

import argparse  # noqa: E402
import collections  # noqa: E402
import datetime  # noqa: E402
import http.client  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import sqlite3  # noqa: E402
import subprocess  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zykproc as zp  # noqa: E402

MB = zp.MB
ORG = "康复职业技术学院"
MAJOR = "520601"
APP_KEY = "zyk-demo"
APP_SECRET = "zyk-demo-secret"
FAULT_KINDS = ["500", "503", "408", "429", "reset", "reset-after", "stall", "drip", "delay"]
LOW_SPEED_SECONDS = 2
# libcurl checks the low-speed window on a one-second tick against its transfer speed averaged
# over the last few seconds, so a stall right after a burst of bytes (a small file's upload) starts
# the window a second or two late: cuts land at 2 s, 3 s or 4 s plus a few ms. CUT_SLACK absorbs
# the tick and the mock's own measurement on a loaded machine (4.2 s seen), not a missing cut.
CUT_LIMIT = LOW_SPEED_SECONDS + 2.0
CUT_SLACK = 0.75
RSS_LIMIT = 64 * MB
REJECT_422 = "课程编码不存在"
REJECT_400 = "记录格式错误：字段“版权方”不能为空"


def iso(ts):
    """RFC 3339 (as stored in sync_attempts) to Unix seconds."""
    return datetime.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def pdf_bytes(rng, tag):
    return b"%PDF-1.4\n% " + tag.encode("utf-8") + b"\n" + rng.randbytes(rng.randint(200, 1200)) + b"\n%%EOF\n"


# --------------------------------------------------------------------------------------------
# The mock platform.


class Mock:
    def __init__(self, ctx, name, extra=()):
        self.ctx = ctx
        self.name = name
        self.dir = os.path.join(ctx.work, name)
        self.data = os.path.join(self.dir, "mock")
        self.port_file = os.path.join(self.dir, "mock.port")
        self.log_path = os.path.join(self.dir, "mock.log")
        self.extra = list(extra)
        self.proc = None
        self.port = None

    @property
    def url(self):
        return f"http://{zp.HOST}:{self.port}/api/v1"

    def start(self, timeout=20.0):
        os.makedirs(self.dir, exist_ok=True)
        logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-B", self.ctx.mock_script, "--host", zp.HOST, "--port", "0", "--data", self.data,
             "--port-file", self.port_file] + self.extra,
            stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT, preexec_fn=zp._die_with_parent, close_fds=True)
        logf.close()
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mock platform exited {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with open(self.port_file) as f:
                    self.port = int(f.read().strip())
                status, _ = self.call("GET", "/_mock/stats")
                if status == 200:
                    return
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        raise RuntimeError(f"mock platform not up after {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def call(self, method, path, obj=None):
        body = None if obj is None else json.dumps(obj, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json"} if body is not None else {}
        status, _, data = zp.request(self.port, method, path, headers, body, timeout=30)
        try:
            return status, json.loads(data.decode("utf-8")) if data else None
        except ValueError:
            return status, data

    def stats(self):
        status, doc = self.call("GET", "/_mock/stats")
        if status != 200:
            raise RuntimeError(f"GET /_mock/stats answered {status}: {doc!r}")
        return doc

    def resources(self):
        status, doc = self.call("GET", "/_mock/resources")
        if status != 200:
            raise RuntimeError(f"GET /_mock/resources answered {status}: {doc!r}")
        return {r["identifier"]: r for r in doc}

    def resource(self, rid):
        return self.call("GET", f"/_mock/resources/{rid}")

    def faults(self, obj):
        status, doc = self.call("POST", "/_mock/faults", obj)
        if status != 200:
            raise RuntimeError(f"POST /_mock/faults {obj!r} answered {status}: {doc!r}")
        return doc

    def hold(self, after):
        """Hold the `after`-th successful PUT /resources answer and later ones (None: release them)."""
        status, doc = self.call("POST", "/_mock/hold", {"after": after})
        if status != 200:
            raise RuntimeError(f"POST /_mock/hold {after!r} answered {status}: {doc!r}")
        return doc

    def held(self, wait):
        """The hold state, as soon as an answer is held or after `wait` seconds."""
        status, doc = self.call("GET", f"/_mock/hold?wait={wait}")
        if status != 200:
            raise RuntimeError(f"GET /_mock/hold answered {status}: {doc!r}")
        return doc

    def reset_stats(self):
        status, doc = self.call("POST", "/_mock/reset-stats", {})
        if status != 200:
            raise RuntimeError(f"POST /_mock/reset-stats answered {status}: {doc!r}")

    def effects(self):
        out = []
        try:
            with open(os.path.join(self.data, "effects.jsonl"), "rb") as f:
                for line in f:
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        pass
        except FileNotFoundError:
            pass
        return out

    def log_tail(self, lines=20):
        try:
            with open(self.log_path, "rb") as f:
                data = f.read()[-32 * 1024:]
            return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


# --------------------------------------------------------------------------------------------
# A data root with its server, and the zyk commands run on it.


class Library:
    def __init__(self, ctx, name):
        self.ctx = ctx
        self.name = name
        self.dir = os.path.join(ctx.work, name)
        self.root = os.path.join(self.dir, "data")
        os.makedirs(self.dir, exist_ok=True)
        self.srv = zp.Server(ctx.binary, self.root, zp.free_port(), os.path.join(self.dir, "server.log"))
        self.admin = None
        self.teacher = None

    @property
    def port(self):
        return self.srv.port

    def start(self):
        self.srv.start()
        self.ctx.kr.srv = self.srv  # the log tail printed on failure
        self.srv.wait_ready(60)
        with open(os.path.join(self.root, "admin-token")) as f:
            self.admin = f.read().strip()
        if self.teacher is None:
            self.teacher = zp.make_teacher(self.ctx.binary, self.root, org=ORG)

    def stop(self):
        self.srv.stop()

    def api(self, method, path, token, obj=None, headers=None, timeout=60):
        h = zp.auth(token, "application/json" if obj is not None else None)
        h.update(headers or {})
        body = None if obj is None else json.dumps(obj, ensure_ascii=False).encode("utf-8")
        status, rh, data = zp.request(self.port, method, path, h, body, timeout=timeout)
        try:
            doc = json.loads(data.decode("utf-8")) if data else None
        except ValueError:
            doc = data
        return status, rh, doc

    def publish(self, rid):
        status, _, doc = self.api("POST", f"/v1/resources/{rid}/publish", self.admin)
        if status != 200:
            raise RuntimeError(f"publish {rid}: {status} {doc!r}")

    def create(self, n, tag, threads=4):
        """n published, public, pushToPlatform resources with distinct small PDFs; their ids in order."""
        ids = [None] * n
        errors = []

        def work(k):
            import random
            rng = random.Random(self.ctx.kr.seed * 1000 + k * 7 + sum(tag.encode()))
            try:
                for i in range(k, n, threads):
                    if errors:
                        return
                    title = f"{tag} 康复评定文档 {i + 1:04d}"
                    meta = zp.resource_metadata(title, resourceType="document", description=f"{title}：评定量表与操作要点",
                                                pushToPlatform=True)
                    ct, body = zp.multipart_body(meta, f"评定文档-{tag}-{i + 1:04d}.pdf", pdf_bytes(rng, f"{tag}-{i}"))
                    status, _, data = zp.request(self.port, "POST", "/v1/resources", zp.auth(self.teacher, ct), body, timeout=60)
                    if status != 201:
                        raise RuntimeError(f"POST /v1/resources answered {status}: {data[:300]!r}")
                    rid = json.loads(data)["id"]
                    self.publish(rid)
                    ids[i] = rid
            except Exception as e:  # reported by the caller
                errors.append(repr(e))

        ts = [threading.Thread(target=work, args=(k,), daemon=True) for k in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        if errors:
            raise RuntimeError(f"creating {tag} resources: {errors[0]}")
        return ids

    def zyk(self, *args, env=None, timeout=120):
        r = subprocess.run([self.ctx.binary, *args, "--data-root", self.root], capture_output=True, timeout=timeout,
                           env=env or self.ctx.base_env(), preexec_fn=zp._die_with_parent)
        return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")

    def select(self, ids=None):
        args = ["sync", "select", "--json"]
        if ids is None:
            args += ["--major", MAJOR]
        else:
            for rid in ids:
                args += ["--id", rid]
        rc, out, err = self.zyk(*args)
        if rc != 0:
            raise RuntimeError(f"zyk sync select exited {rc}: {err}{out}")
        return json.loads(out)

    def sync_run_killed_at_hold(self, env, mock, k, timeout=60.0):
        """One `zyk sync run --json` against `mock` holding its k-th successful PUT /resources
        answer and later ones: SIGKILL the run as soon as an answer is held, then release them.
        (exit code, summary or None, stderr, seconds, whether an answer was held before the kill).
        A run that neither exits nor gets an answer held within `timeout` is killed too."""
        mock.hold(k)
        t0 = time.monotonic()
        out_path, err_path = os.path.join(self.dir, "hold-run.out"), os.path.join(self.dir, "hold-run.err")
        held = False
        try:
            with open(out_path, "wb") as out, open(err_path, "wb") as err:
                p = subprocess.Popen([self.ctx.binary, "sync", "run", "--data-root", self.root, "--json"], env=env,
                                     stdin=subprocess.DEVNULL, stdout=out, stderr=err, preexec_fn=zp._die_with_parent)
                try:
                    while p.poll() is None and time.monotonic() - t0 < timeout:
                        if mock.held(0.2)["heldNow"] > 0:
                            held = True
                            break
                    if p.poll() is None:
                        p.kill()  # SIGKILL: the k-th 2xx is applied at the platform, not yet received here
                    rc = p.wait(timeout=30)
                except BaseException:
                    p.kill()
                    p.wait()
                    raise
        finally:
            mock.hold(None)
        with open(out_path, "rb") as f:
            out_text = f.read().decode("utf-8", "replace")
        with open(err_path, "rb") as f:
            err_text = f.read().decode("utf-8", "replace")
        try:
            summary = json.loads(out_text)
        except ValueError:
            summary = None
        if not held:
            err_text += "\n(sync_platform.py: the mock held no answer before the run ended or was stopped)"
        return rc, summary, err_text, time.monotonic() - t0, held

    def sync_run(self, env, args=(), timeout=120.0):
        """One `zyk sync run --json`: (exit code, summary or None, stderr, seconds). A run that
        outlives `timeout` gets SIGTERM, then SIGKILL."""
        t0 = time.monotonic()
        p = subprocess.Popen([self.ctx.binary, "sync", "run", "--data-root", self.root, "--json", *args], env=env,
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             preexec_fn=zp._die_with_parent)
        try:
            out, err = p.communicate(timeout=max(1.0, timeout))
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGTERM)
            try:
                out, err = p.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                out, err = p.communicate()
            err = (err or b"") + f"\n(sync_platform.py: stopped after {timeout:.0f} s)".encode()
        try:
            summary = json.loads(out.decode("utf-8"))
        except ValueError:
            summary = None
        return p.returncode, summary, err.decode("utf-8", "replace"), time.monotonic() - t0

    def _ro(self):
        return sqlite3.connect(f"file:{os.path.join(self.root, 'catalog.sqlite')}?mode=ro", uri=True, timeout=30)

    def rows(self, sql, args=()):
        for attempt in range(50):
            try:
                con = self._ro()
                try:
                    con.row_factory = sqlite3.Row
                    return [dict(r) for r in con.execute(sql, args).fetchall()]
                finally:
                    con.close()
            except sqlite3.OperationalError:
                if attempt == 49:
                    raise
                time.sleep(0.05)

    def outbox(self):
        return {r["resource_id"]: r for r in self.rows("SELECT * FROM sync_outbox")}

    def counts(self):
        c = collections.Counter({s: 0 for s in ("pending", "inFlight", "done", "failed", "dead")})
        for r in self.rows("SELECT state, count(*) AS n FROM sync_outbox GROUP BY state"):
            c[r["state"]] = r["n"]
        return c

    def attempts(self):
        return self.rows("SELECT * FROM sync_attempts ORDER BY id")


# --------------------------------------------------------------------------------------------
# The run.


class Ctx:
    def __init__(self, args, kr):
        self.args = args
        self.kr = kr
        self.res = kr.res
        self.work = kr.work
        self.binary = kr.binary
        self.t0 = time.monotonic()
        self.deadline = args.deadline
        self.figures = []
        self.mocks = []
        self.libs = []
        src = os.path.join(zp.repo_root(), "tools", "zyk-mock-platform")
        self.mock_script = os.path.join(self.work, "bin", "zyk-mock-platform")
        shutil.copy2(src, self.mock_script)  # someone editing the mock meanwhile cannot change this run

    def left(self):
        return self.deadline - (time.monotonic() - self.t0)

    def figure(self, text):
        self.figures.append(text)
        zp.log(f"  figure: {text}")

    def base_env(self):
        """The environment without any ZYK_ setting of the caller's."""
        return {k: v for k, v in os.environ.items() if not k.startswith("ZYK_")}

    def sync_env(self, mock, **extra):
        env = self.base_env()
        env.update(ZYK_PLATFORM_URL=mock.url, ZYK_PLATFORM_APP_KEY=APP_KEY, ZYK_PLATFORM_APP_SECRET=APP_SECRET)
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def mock(self, name, extra=()):
        m = Mock(self, name, extra)
        self.mocks.append(m)
        m.start()
        return m

    def library(self, name):
        lib = Library(self, name)
        self.libs.append(lib)
        lib.start()
        return lib

    def cleanup(self):
        for m in self.mocks:
            try:
                m.stop()
            except Exception:
                pass
        for lib in self.libs:
            try:
                lib.stop()
            except Exception:
                pass


def remote_ids_match(lib, mock_res, ids):
    """Problems: a done entry whose remote_id or sent_version differs from the mock's record (or
    that the mock does not hold). Entries not done are counted by the callers."""
    box = lib.outbox()
    bad = []
    for rid in ids:
        row = box.get(rid)
        m = mock_res.get(rid)
        if row is None or row["state"] != "done":
            continue
        if m is None:
            bad.append(f"{rid}: done here, not on the mock")
            continue
        if row["remote_id"] != m["remoteId"] or row["sent_version"] != m["version"]:
            bad.append(f"{rid}: outbox {row['remote_id']} v{row['sent_version']}, mock {m['remoteId']} v{m['version']}")
    return bad


def summary_text(s):
    if not isinstance(s, dict):
        return "no JSON summary"
    o = s.get("outbox", {})
    return (f"{s.get('seconds', 0):.1f} s, this run done {s.get('done')} failed {s.get('failed')} dead {s.get('dead')}, "
            f"outbox done {o.get('done')} failed {o.get('failed')} dead {o.get('dead')} pending {o.get('pending')} "
            f"inFlight {o.get('inFlight')}, {s.get('stoppedBecause')}")


# --------------------------------------------------------------------------------------------
# 1. R9


def phase_r9(ctx):
    res, n = ctx.res, ctx.args.items
    lib = ctx.library("r9")
    t0 = time.monotonic()
    ids = lib.create(n, "R9")
    dt = time.monotonic() - t0
    zp.log(f"R9: created and published {n} resources over HTTP in {dt:.1f} s ({n / dt:.0f}/s)")
    lib.stop()
    mock = ctx.mock("r9", ["--fault-rate", "0.3", "--faults", ",".join(FAULT_KINDS), "--retry-after", "1",
                           "--drip-interval", "5", "--stall-seconds", "30", "--seed", str(ctx.kr.seed)])
    sel = lib.select()
    res.check(sorted(sel["queued"]) == sorted(ids), f"R9 zyk sync select --major {MAJOR} queues the {n} resources",
              f"queued {len(sel['queued'])}, skipped {len(sel['skipped'])}")
    env = ctx.sync_env(mock, ZYK_SYNC_LOW_SPEED_BYTES=1000, ZYK_SYNC_LOW_SPEED_SECONDS=LOW_SPEED_SECONDS,
                       ZYK_SYNC_BACKOFF_BASE_SECONDS=0.05, ZYK_SYNC_BACKOFF_CAP_SECONDS=1, ZYK_SYNC_MAX_ATTEMPTS=1000,
                       ZYK_SYNC_CONCURRENCY=8)
    runs = []
    t_sync = time.monotonic()
    while True:
        budget = min(ctx.left() - 150, 260 - (time.monotonic() - t_sync))
        if budget < 15:
            runs.append((None, None, "not started: out of time", 0.0))
            break
        rc, summ, err, secs = lib.sync_run(env, ["--max-wait", "60"], timeout=budget)
        runs.append((rc, summ, err, secs))
        zp.log(f"R9: zyk sync run --max-wait 60 exited {rc}: {summary_text(summ)}")
        if rc != 1:
            break
        c = lib.counts()
        if c["pending"] + c["failed"] + c["inFlight"] == 0:
            break  # only dead entries left: another run cannot change them
    sync_secs = time.monotonic() - t_sync
    st = mock.stats()
    mres = mock.resources()
    box = lib.outbox()
    att = lib.attempts()
    done = sum(1 for r in box.values() if r["state"] == "done")
    by_outcome = collections.Counter(a["outcome"] for a in att)
    ctx.figure(f"R9: {done}/{n} items done in {sync_secs:.1f} s over {len(runs)} run(s) = {done / max(sync_secs, 0.001):.1f} items/s; "
               f"attempts {len(att)} ({dict(by_outcome)}); mock requests {st['requests']['total']}, "
               f"faults injected {sum(st['faultsInjected'].values())} {st['faultsInjected']}")

    last = runs[-1]
    res.check(last[0] == 0, "R9 zyk sync run ends with exit 0 (nothing failed, pending or dead)",
              f"runs: {[r[0] for r in runs]}, last: {summary_text(last[1])}; {last[2].strip()[-300:]}")
    wrong_version = [rid for rid in ids if rid in mres and box.get(rid, {}).get("version") != mres[rid]["version"]]
    missing = [rid for rid in ids if rid not in mres]
    extra = sorted(set(mres) - set(ids))
    res.check(not missing and not extra and not wrong_version and len(mres) == n,
              f"R9 the mock holds exactly the {n} resources, each at its version",
              f"mock {len(mres)}, missing {len(missing)} (e.g. {missing[:3]}), extra {len(extra)}, wrong version {wrong_version[:3]}")
    res.check(st["duplicateEffects"] == 0, "R9 no duplicate effect on the platform",
              f"duplicateEffects {st['duplicateEffects']} {st['duplicateEffectExamples'][:3]}")
    res.check(st["retryAfterViolations"] == 0, "R9 no request came back before Retry-After (mock)",
              f"retryAfterViolations {st['retryAfterViolations']} {st['retryAfterViolationExamples'][:3]}")
    injected = st["faultsInjected"]
    res.check(all(injected.get(k, 0) > 0 for k in FAULT_KINDS), "R9 every fault kind was injected at least once",
              ", ".join(f"{k} {injected.get(k, 0)}" for k in FAULT_KINDS))
    stalls = st["stalls"]
    outcomes = collections.Counter((s["kind"], s["outcome"]) for s in stalls)
    cuts = sorted(s["cutAfterSeconds"] for s in stalls if s["cutAfterSeconds"] is not None)
    late = [s for s in stalls if s["outcome"] != "cut" or s["cutAfterSeconds"] is None
            or s["cutAfterSeconds"] > CUT_LIMIT + CUT_SLACK]
    med = cuts[len(cuts) // 2] if cuts else None
    by_second = collections.Counter(f"{s['method']} {s['path'].split('/')[3]} {s['kind']} ~{round(s['cutAfterSeconds'])} s"
                                    for s in stalls if s["cutAfterSeconds"] is not None)
    ctx.figure(f"R9: {len(stalls)} stalls/drips, outcomes {dict((f'{k}/{o}', v) for (k, o), v in outcomes.items())}; "
               f"cut after min {cuts[0] if cuts else None} median {med} max {st['maxCutSeconds']} s; "
               f"{sum(1 for c in cuts if c > CUT_LIMIT)} past {CUT_LIMIT:.0f}.000 s; by request {dict(sorted(by_second.items()))}")
    res.check(len(stalls) > 0 and not late,
              f"R9 every stall and drip was cut by the client within low_speed_seconds + 2 s = {CUT_LIMIT:.0f} s "
              f"(+{CUT_SLACK} s tick slack; none left uncut)",
              f"{len(stalls)} stalls/drips, maxCutSeconds {st['maxCutSeconds']}, not cut in time: {late[:3]}")
    # libcurl re-sends a HEAD or DELETE on a fresh connection, same headers, when its reused
    # connection died before any answer (the mock's reset-after): the platform answers 401
    # nonce_reused, and the client must sign afresh and go on (the entry is not lost or dead).
    # Any other signature failure is a bug.
    reasons = dict(st["signatureFailuresByReason"])
    resent = reasons.pop("nonce_reused", 0)
    ctx.figure(f"R9: {resent} requests re-sent by libcurl with their old nonce (refused 401 nonce_reused, then signed afresh)")
    res.check(not reasons, "R9 no request refused for a bad signature (only libcurl's re-sends, as nonce_reused, which are re-signed)",
              f"signature failures {st['signatureFailuresByReason']}")
    dead = {rid: r for rid, r in box.items() if r["state"] == "dead"}
    if dead:
        errs = collections.Counter((r["last_error"] or "")[:40] for r in dead.values())
        zp.log(f"R9: {len(dead)} dead entries; last errors: {dict(errs.most_common(5))}")
    bad_ids = remote_ids_match(lib, mres, ids)
    states = collections.Counter(r["state"] for r in box.values())
    res.check(done == n and not bad_ids, f"R9 outbox: {n} done, remote_id equal to the mock's remoteId for each",
              f"states {dict(states)}, mismatched remote ids {len(bad_ids)} {bad_ids[:2]}")
    failed_att = [a for a in att if a["outcome"] == "failed"]
    kinds = collections.Counter(str(a["http_status"]) if a["http_status"] else
                                ("timeout/stall" if "timed out" in (a["error"] or "") else "connection")
                                for a in failed_att)
    ctx.figure(f"R9: retries (failed attempts) {len(failed_att)} by cause {dict(kinds)}; "
               f"max attempts on one entry {max((r['attempts'] for r in box.values()), default=0)}")
    res.check(len(failed_att) > 0, "R9 retries happened (failed attempts in sync_attempts)", f"{len(failed_att)} failed attempts")
    # Retry-After, from the client's own record: after an attempt that got 429, the entry's next
    # attempt started no earlier than finished_at + retry_after.
    per = collections.defaultdict(list)
    for a in att:
        per[a["resource_id"]].append(a)
    got429 = [a for a in att if a["http_status"] == 429]
    early, no_ra, checked = [], [], 0
    for a in got429:
        if not a["retry_after"] or a["retry_after"] < 1:
            no_ra.append(a["resource_id"])
            continue
        seq = per[a["resource_id"]]
        nxt = [b for b in seq if b["id"] > a["id"]]
        if not nxt:
            continue
        checked += 1
        gap = iso(nxt[0]["started_at"]) - iso(a["finished_at"])
        if gap < a["retry_after"] - 0.002:
            early.append(f"{a['resource_id']}: next attempt {gap:.3f} s after the 429 (Retry-After {a['retry_after']})")
    res.check(len(got429) > 0 and not early and not no_ra,
              "R9 after every 429 the entry's next attempt started no earlier than Retry-After (sync_attempts)",
              f"{len(got429)} attempts got 429, {checked} followed by another attempt, early {early[:3]}, "
              f"without retry_after {no_ra[:3]}")
    mock.stop()


# --------------------------------------------------------------------------------------------
# 2. R10


def phase_r10(ctx):
    res, rng = ctx.res, ctx.kr.rng
    kills = ctx.args.kills
    outside_target = max(1, kills // 10)
    # A hook run marks about one entry done; a run killed from outside may get through a few
    # dozen first. Enough entries that the loop never runs dry:
    n = max(400, 2 * kills) + 40 * outside_target
    lib = ctx.library("r10")
    t0 = time.monotonic()
    ids = lib.create(n, "R10")
    zp.log(f"R10: created and published {n} resources in {time.monotonic() - t0:.1f} s")
    lib.stop()
    mock = ctx.mock("r10", ["--quiet"])
    sel = lib.select()
    res.check(len(sel["queued"]) == n, f"R10 {n} resources queued", f"queued {len(sel['queued'])}")
    env = ctx.sync_env(mock, ZYK_SYNC_CONCURRENCY=8, ZYK_SYNC_BACKOFF_BASE_SECONDS=0.05, ZYK_SYNC_BACKOFF_CAP_SECONDS=1)
    hook_kills, outside_kills, outside_missed = 0, 0, 0
    unexpected = []
    ran_out = False

    def snapshot():
        """(entries done here, PUT /resources answered 2xx by the mock so far). Without faults
        every 201 is a stored file (an effect) or a PUT /resources (created, or a replay). Taken
        once the mock has finished every request it began (a killed client's last requests may
        still be finishing there)."""
        t_end = time.monotonic() + 2
        while True:
            st = mock.stats()
            if sum(st["requests"]["byStatus"].values()) >= st["requests"]["total"] or time.monotonic() > t_end:
                break
            time.sleep(0.005)
        bs = st["requests"]["byStatus"]
        return lib.counts()["done"], bs.get("201", 0) + bs.get("send-failed(201)", 0) - st["effects"].get("file.store", 0)

    recorded_kth, early_death = [], []
    acks_per_run = collections.Counter()
    t_loop = time.monotonic()
    budget = min(ctx.left() - 100, 150)
    while (hook_kills < kills or outside_kills < outside_target) and time.monotonic() - t_loop < budget:
        c = lib.counts()
        if c["pending"] + c["failed"] + c["inFlight"] == 0:
            ran_out = True
            break
        want_outside = outside_kills < outside_target and (
            hook_kills >= kills or rng.random() < outside_target / (kills + outside_target))
        if want_outside:
            p = subprocess.Popen([ctx.binary, "sync", "run", "--data-root", lib.root, "--json"], env=env,
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 preexec_fn=zp._die_with_parent)
            time.sleep(rng.uniform(0.005, 0.15))  # from start-up (lock take-over) to mid-transfer
            if p.poll() is None:
                p.kill()
            rc = p.wait(timeout=30)
            if rc == -signal.SIGKILL:
                outside_kills += 1
            else:
                outside_missed += 1  # it finished before the kill (only when little work is left)
        else:
            k = rng.randint(1, 3)
            done0, acks0 = snapshot()
            rc, summ, err, secs, held = lib.sync_run_killed_at_hold(env, mock, k, timeout=60)
            done1, acks1 = snapshot()
            acks_per_run[min(acks1 - acks0, 12)] += 1
            if acks1 - acks0 < k:
                early_death.append(f"k={k}: the mock answered {acks1 - acks0} PUT /resources with 2xx")
            if done1 - done0 > k - 1:
                recorded_kth.append(f"k={k}: {done1 - done0} entries marked done")
            if rc == -signal.SIGKILL and held:
                hook_kills += 1
            else:
                unexpected.append(f"k={k}: exit {rc} ({summary_text(summ)}; {err.strip()[-200:]})")
                if len(unexpected) >= 5:
                    break
    loop_secs = time.monotonic() - t_loop
    before = lib.counts()
    ctx.figure(f"R10: {hook_kills} kills after acks + {outside_kills} kills from outside in {loop_secs:.1f} s "
               f"({(hook_kills + outside_kills) / max(loop_secs, 0.001):.1f} runs/s); outbox then {dict(before)}")
    res.check(hook_kills >= kills and not unexpected,
              f"R10 {kills} runs killed with SIGKILL while the mock held their k-th ack (k=1..3)",
              f"{hook_kills} killed, unexpected {unexpected[:3]}, ran out of work: {ran_out}")
    ctx.figure(f"R10: PUT /resources answered 2xx per hook run (12 = 12 or more): {dict(sorted(acks_per_run.items()))}")
    res.check(hook_kills > 0 and not early_death and not recorded_kth,
              "R10 each hook run died after its k-th 2xx and before recording it (>= k acks at the mock, <= k-1 entries done)",
              f"died before the k-th ack: {len(early_death)} {early_death[:3]}; recorded the k-th: {len(recorded_kth)} {recorded_kth[:3]}")
    res.check(outside_kills >= outside_target, f"R10 {outside_target} runs killed from outside at random moments",
              f"{outside_kills} killed, {outside_missed} finished before the kill")
    rc, summ, err, secs = lib.sync_run(env, ["--max-wait", "30"], timeout=max(20, min(120, ctx.left() - 80)))
    res.check(rc == 0, "R10 the clean run afterwards exits 0", f"exit {rc}: {summary_text(summ)}; {err.strip()[-300:]}")
    st = mock.stats()
    mres = mock.resources()
    box = lib.outbox()
    att = lib.attempts()
    res.check(st["duplicateEffects"] == 0, "R10 no duplicate effect on the platform",
              f"duplicateEffects {st['duplicateEffects']} {st['duplicateEffectExamples'][:3]}")
    res.check(set(mres) == set(ids) and all(m["version"] == 1 for m in mres.values()),
              f"R10 the mock holds exactly the {n} resources", f"mock has {len(mres)}")
    states = collections.Counter(r["state"] for r in box.values())
    bad_ids = remote_ids_match(lib, mres, ids)
    res.check(states.get("done", 0) == n and not bad_ids, f"R10 outbox: all {n} done with the mock's remote ids",
              f"states {dict(states)}, mismatched remote ids {bad_ids[:2]}")
    by_status = st["requests"]["byStatus"]
    eff = st["effects"]
    replays = st["idempotentReplays"]
    ctx.figure(f"R10: mock requests {st['requests']['byKind']}, statuses {by_status}, effects {eff}; "
               f"idempotent replays {replays}; aborted uploads {st['abortedUploads']}")
    res.check(replays >= hook_kills, "R10 idempotent replays answered by the mock >= kills after acks",
              f"{replays} replays, {hook_kills} hook kills")
    interrupted = sum(1 for a in att if a["outcome"] == "interrupted")
    ctx.figure(f"R10: sync_attempts {len(att)}, interrupted {interrupted}, done {sum(1 for a in att if a['outcome'] == 'done')}")
    res.check(interrupted > 0, "R10 sync_attempts records the interrupted attempts", f"{interrupted} interrupted")
    res.check(st["signatureFailures"] == 0 and st["digestMismatches"] == 0, "R10 no signature failure or digest mismatch",
              f"signatureFailures {st['signatureFailures']} {st['signatureFailuresByReason']}, digestMismatches {st['digestMismatches']}")
    mock.stop()


# --------------------------------------------------------------------------------------------
# 3. R11


def phase_r11(ctx):
    res = ctx.res
    lib = ctx.library("r11")
    ids = lib.create(16, "R11")
    lib.stop()
    a_ids, n1, b_ids, n2 = ids[0:5], ids[5:8], ids[8:13], ids[13:16]
    mock = ctx.mock("r11")
    env = ctx.sync_env(mock, ZYK_SYNC_BACKOFF_BASE_SECONDS=0.05, ZYK_SYNC_BACKOFF_CAP_SECONDS=1)
    # The mock holds one forced rejection at a time: 422 for the first group, then 400 for the second.
    mock.faults({"reject": {"ids": a_ids, "status": 422, "code": "invalid_record", "message": REJECT_422}})
    lib.select(a_ids + n1)
    rc1, s1, e1, _ = lib.sync_run(env, ["--max-wait", "10"], timeout=60)
    mock.faults({"reject": {"ids": b_ids, "status": 400, "code": "invalid_json", "message": REJECT_400}})
    lib.select(b_ids + n2)
    rc2, s2, e2, _ = lib.sync_run(env, ["--max-wait", "10"], timeout=60)
    res.check(rc1 == 1 and rc2 == 1, "R11 zyk sync run exits 1 when the platform refuses records",
              f"exits {rc1}, {rc2}: {summary_text(s1)} / {summary_text(s2)}")
    rejected = {rid: (422, REJECT_422) for rid in a_ids}
    rejected.update({rid: (400, REJECT_400) for rid in b_ids})
    rc, out, err = lib.zyk("sync", "status", "--json", "--limit", "1000")
    status_all = json.loads(out) if rc == 0 else {"entries": [], "outbox": {}}
    rc_d, out_d, err_d = lib.zyk("sync", "status", "--state", "dead", "--json", "--limit", "1000")
    status_dead = json.loads(out_d) if rc_d == 0 else {"entries": []}
    rc_t, out_t, _ = lib.zyk("sync", "status", "--state", "dead", "--limit", "1000")
    by_id = {e["resourceId"]: e for e in status_all["entries"]}
    dead_ids = {e["resourceId"] for e in status_dead["entries"]}
    wrong = []
    for rid, (code, msg) in rejected.items():
        e = by_id.get(rid)
        if e is None or e["state"] != "dead" or msg not in (e.get("lastError") or "") or e.get("lastStatus") != code:
            wrong.append(f"{rid}: {e and (e['state'], e.get('lastStatus'), e.get('lastError'))}")
    sample = by_id.get(a_ids[0], {}).get("lastError")
    zp.log(f"R11: lastError of a 422 entry: {sample!r}; of a 400 entry: {by_id.get(b_ids[0], {}).get('lastError')!r}")
    res.check(not wrong and dead_ids == set(rejected),
              "R11 the refused entries are dead with the platform's message intact (zyk sync status --json, --state dead)",
              f"wrong {wrong[:2]}, --state dead lists {len(dead_ids)} of {len(rejected)} (exit {rc_d})")
    res.check(rc_t == 0 and REJECT_422 in out_t and REJECT_400 in out_t,
              "R11 the status table shows the Chinese messages intact", f"exit {rc_t}")
    box = lib.outbox()
    att = lib.attempts()
    per = collections.Counter(a["resource_id"] for a in att)
    st = mock.stats()
    loops = [f"{rid}: outbox attempts {box[rid]['attempts']}, sync_attempts {per[rid]}" for rid in rejected
             if box[rid]["attempts"] != 1 or per[rid] != 1]
    res.check(not loops and st["forcedRejections"] == len(rejected),
              "R11 each refused entry had exactly one attempt (no retry loop)",
              f"mock forcedRejections {st['forcedRejections']} for {len(rejected)} refused ids; {loops[:3]}")
    others = n1 + n2
    res.check(all(box[rid]["state"] == "done" for rid in others), "R11 the other entries are done",
              str(collections.Counter(box[rid]["state"] for rid in others)))
    mock.faults({"reject": None})
    rc, out, err = lib.zyk("sync", "retry", "--dead", "--json")
    requeued = json.loads(out).get("requeued") if rc == 0 else None
    rc3, s3, e3, _ = lib.sync_run(env, ["--max-wait", "10"], timeout=60)
    box = lib.outbox()
    mres = mock.resources()
    res.check(requeued == len(rejected) and rc3 == 0 and all(r["state"] == "done" for r in box.values())
              and set(mres) == set(ids) and not remote_ids_match(lib, mres, ids),
              "R11 after lifting the rejection, zyk sync retry --dead and a run: all done, the mock holds all",
              f"requeued {requeued}, exit {rc3}: {summary_text(s3)}; mock has {len(mres)} of {len(ids)}")
    mock.stop()


# --------------------------------------------------------------------------------------------
# 4. Large file


def vmrss(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


class RssSampler(threading.Thread):
    """Samples VmRSS every 50 ms and watches the mock's tmp folder for the upload's .part file."""

    def __init__(self, pid, part_dir):
        super().__init__(daemon=True)
        self.pid = pid
        self.part_dir = part_dir
        self.stop_flag = threading.Event()
        self.samples = []
        self.baseline = None
        self.peak = 0
        self.t_start = None
        self.t_end = None

    def run(self):
        prev = None
        while not self.stop_flag.is_set():
            rss = vmrss(self.pid)
            now = time.monotonic()
            if rss is None:
                break
            try:
                parts = [n for n in os.listdir(self.part_dir) if n.endswith(".part")]
            except OSError:
                parts = []
            if parts and self.t_start is None:
                self.t_start = now
                # the RSS when the first byte reached the platform: the sample just before it
                self.baseline = min(rss, prev) if prev is not None else rss
            if self.t_start is not None:
                self.peak = max(self.peak, rss)
                if not parts and self.t_end is None:
                    self.t_end = now
            self.samples.append((now, rss))
            prev = rss
            time.sleep(0.05)
        if self.t_start is not None and self.t_end is None:
            self.t_end = time.monotonic()


def phase_big(ctx):
    res = ctx.res
    size = ctx.args.big_mb * MB
    lib = ctx.library("big")
    path = os.path.join(lib.dir, "大文件.pdf")
    with open(path, "wb") as f:
        f.write(b"%PDF-1.4\n% sync_platform big file " + os.urandom(16).hex().encode() + b"\n")
        f.truncate(size - 32)
        f.seek(size - 32)
        f.write(b"\n%%EOF\n" + os.urandom(8).hex().encode() + b"\n" * 9)
    assert os.path.getsize(path) == size
    t0 = time.monotonic()
    conn = http.client.HTTPConnection(zp.HOST, lib.port, timeout=600, blocksize=1 << 20)
    try:
        with open(path, "rb") as f:
            conn.request("POST", "/v1/blobs", body=f, headers={
                "Authorization": f"Bearer {lib.teacher}", "Content-Type": "application/pdf", "Content-Length": str(size)})
            r = conn.getresponse()
            data = r.read()
    finally:
        conn.close()
    up_secs = time.monotonic() - t0
    if r.status != 201:
        raise RuntimeError(f"POST /v1/blobs answered {r.status}: {data[:300]!r}")
    sha = json.loads(data)["sha256"]
    zp.log(f"big: uploaded {size / MB:.0f} MiB to the server in {up_secs:.1f} s ({size / MB / up_secs:.0f} MB/s)")
    os.unlink(path)  # the server holds the bytes now
    meta = zp.resource_metadata("大文件同步测试", resourceType="document", description="一个很大的 PDF 文件", pushToPlatform=True)
    meta["files"] = [{"sha256": sha, "name": "大文件.pdf", "role": "primary"}]
    status, _, doc = lib.api("POST", "/v1/resources", lib.teacher, meta)
    if status != 201:
        raise RuntimeError(f"POST /v1/resources (JSON) answered {status}: {doc!r}")
    rid = doc["id"]
    lib.publish(rid)
    lib.stop()
    lib.select([rid])
    # Every request waits 1.5 s at the mock first, so the run has started up and sits idle when
    # the upload begins: the RSS just before the first byte arrives is the baseline.
    mock = ctx.mock("big", ["--quiet", "--fault-rate", "1", "--faults", "delay", "--delay-ms", "1500"])
    env = ctx.sync_env(mock)
    p = subprocess.Popen([ctx.binary, "sync", "run", "--data-root", lib.root, "--json", "--max-wait", "10"], env=env,
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=zp._die_with_parent)
    sampler = RssSampler(p.pid, os.path.join(mock.data, "tmp"))
    sampler.start()
    try:
        out, err = p.communicate(timeout=max(30, min(300, ctx.left() - 40)))
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    sampler.stop_flag.set()
    sampler.join(5)
    try:
        summ = json.loads(out.decode("utf-8"))
    except ValueError:
        summ = None
    res.check(p.returncode == 0, f"big: zyk sync run sends the {size / MB:.0f} MiB resource (exit 0)",
              f"exit {p.returncode}: {summary_text(summ)}; {err.decode('utf-8', 'replace').strip()[-300:]}")
    st = mock.stats()
    stored = os.path.join(mock.data, "files", sha)
    stored_size = os.path.getsize(stored) if os.path.exists(stored) else None
    rehash = None
    if stored_size == size and ctx.left() > 40:
        rehash = zp.sha256_file(stored)
    mres = mock.resources()
    res.check(stored_size == size and st["effects"].get("file.store") == 1 and st["requests"]["byKind"].get("PUT /files") == 1 and st["digestMismatches"] == 0
              and rehash in (None, sha) and rid in mres,
              "big: the mock stored the file under its sha256 (its own digest check, its size, hashed again here)",
              f"stored size {stored_size} of {size}, file.store {st['effects'].get('file.store')}, "
              f"digestMismatches {st['digestMismatches']}, rehash {'skipped' if rehash is None else rehash == sha}, "
              f"resource on the mock: {rid in mres}")
    if sampler.t_start is not None:
        secs = max(sampler.t_end - sampler.t_start, 0.001)
        baseline, peak, when = sampler.baseline, sampler.peak, "just before the first byte"
        rate = f"{size / MB:.0f} MiB to the mock in {secs:.1f} s = {size / MB / secs:.0f} MB/s"
    else:
        # A small file goes faster than one 50 ms sample: the baseline is then the idle RSS
        # while the delayed HEAD waits (after start-up, before the upload).
        t0 = sampler.samples[0][0] if sampler.samples else 0
        idle = [r for t, r in sampler.samples if 1.0 <= t - t0]
        baseline, peak, when = (idle[0], max(idle), "while idle before the upload") if idle else (None, None, "")
        rate = f"{size / MB:.0f} MiB, too fast to time between two samples"
    if baseline is not None:
        growth = peak - baseline
        ctx.figure(f"big: {rate} (run summary: {summ.get('bytesSent', 0) / MB if summ else 0:.0f} MiB in "
                   f"{summ.get('seconds', 0) if summ else 0:.1f} s, 4.5 s of it the mock's delays); RSS {when} "
                   f"{baseline / MB:.1f} MB, peak {peak / MB:.1f} MB (+{growth / MB:.1f} MB), {len(sampler.samples)} samples")
        res.check(growth < RSS_LIMIT, "big: peak RSS of zyk sync run minus its RSS at the start of the transfer < 64 MB",
                  f"+{growth / MB:.1f} MB")
    else:
        res.check(False, "big: peak RSS of zyk sync run minus its RSS at the start of the transfer < 64 MB",
                  f"no RSS sample while the run was idle before the upload ({len(sampler.samples)} samples)")
    mock.stop()


# --------------------------------------------------------------------------------------------
# 5. Withdrawal, new versions, re-publication


def phase_extras(ctx):
    res = ctx.res
    lib = ctx.library("extras")
    w, v, c = lib.create(3, "EX")
    mock = ctx.mock("extras")
    env = ctx.sync_env(mock)
    lib.select()
    rc, s, err, _ = lib.sync_run(env, timeout=60)
    first = mock.resources()
    if rc != 0 or set(first) != {w, v, c}:
        raise RuntimeError(f"the first run did not send the 3 resources: exit {rc}, {summary_text(s)}, mock {len(first)}")
    status, _, doc = lib.api("POST", f"/v1/resources/{w}/withdraw", lib.admin)
    if status != 200:
        raise RuntimeError(f"withdraw answered {status}: {doc!r}")
    for n, title in ((2, "EX 第二版"), (3, "EX 第三版")):
        status, _, doc = lib.api("PATCH", f"/v1/resources/{v}", lib.teacher, {"title": title})
        if status != 200:
            raise RuntimeError(f"PATCH answered {status}: {doc!r}")
        lib.publish(v)
    box = lib.outbox()
    zp.log(f"extras: outbox before the run: withdrawn {box[w]['op']} {box[w]['state']}, "
           f"twice changed {box[v]['op']} v{box[v]['version']} {box[v]['state']}")
    mock.reset_stats()
    n_eff = len(mock.effects())
    rc, s, err, _ = lib.sync_run(env, timeout=60)
    st = mock.stats()
    new = mock.effects()[n_eff:]
    gone_status, _ = mock.resource(w)
    box = lib.outbox()
    res.check(rc == 0 and gone_status == 404 and [e["kind"] for e in new if e["id"] == w] == ["resource.delete"]
              and st["requests"]["byKind"].get("DELETE /resources") == 1 and box[w]["state"] == "done" and box[w]["op"] == "delete",
              "extras: a withdrawn resource is deleted from the platform by the next run",
              f"exit {rc}, GET /_mock/resources/{{id}} {gone_status}, effects {[(e['kind'], e['version']) for e in new if e['id'] == w]}, "
              f"outbox {box[w]['op']} {box[w]['state']}")
    v_eff = [(e["kind"], e["version"]) for e in new if e["id"] == v]
    mv = mock.resources().get(v, {})
    res.check(v_eff == [("resource.update", 3)] and mv.get("version") == 3 and mv.get("title") == "EX 第三版"
              and st["requests"]["byKind"].get("PUT /resources") == 1 and box[v]["sent_version"] == 3,
              "extras: a resource changed twice before the run reaches the platform once, at its latest version",
              f"effects {v_eff}, mock v{mv.get('version')} {mv.get('title')!r}, PUT /resources this run "
              f"{st['requests']['byKind'].get('PUT /resources')}, outbox sent_version {box[v]['sent_version']}")
    lib.publish(w)
    n_eff = len(mock.effects())
    rc, s, err, _ = lib.sync_run(env, timeout=60)
    again = [(e["kind"], e["version"]) for e in mock.effects()[n_eff:]]
    res.check(rc == 0 and again == [("resource.create", 1)] and w in mock.resources(),
              "extras: a withdrawn resource published again is created again on the platform",
              f"exit {rc}, effects {again}")
    lib.stop()
    mock.stop()


def phase_server(ctx):
    """The server's own sync: started through the API, one run at a time, stopped cleanly by
    SIGTERM in the middle of stalled transfers (entries back to the queue, not left in flight),
    then finished after a restart."""
    res = ctx.res
    mock = ctx.mock("server", extra=("--fault-rate", "1", "--faults", "stall", "--stall-seconds", "60"))
    lib = Library(ctx, "server")
    conf = os.path.join(lib.dir, "zyk.conf")
    with open(conf, "w") as f:
        f.write(f"platform_url = {mock.url}\nplatform_app_key = {APP_KEY}\nplatform_app_secret = {APP_SECRET}\n")
    lib.srv.extra_args = ["--config", conf]
    ctx.libs.append(lib)
    lib.start()
    ids = lib.create(3, "SV")
    status, _, doc = lib.api("POST", "/v1/admin/sync/select", lib.admin, {"ids": ids})
    res.check(status == 200 and sorted(doc.get("queued", [])) == sorted(ids), "server: POST /v1/admin/sync/select queues the 3 resources",
              f"{status} {doc!r}"[:300])
    status, headers, doc = lib.api("POST", "/v1/admin/sync/run", lib.admin)
    again, _, doc2 = lib.api("POST", "/v1/admin/sync/run", lib.admin)
    res.check(status == 202 and again == 409, "server: POST /v1/admin/sync/run starts a run (202); a second one is refused (409)",
              f"{status}, then {again} {doc2!r}"[:300])
    t_end = time.monotonic() + 10
    running = None
    while time.monotonic() < t_end:
        st = mock.stats()
        _, _, sdoc = lib.api("GET", "/v1/admin/sync/status", lib.admin)
        running = (sdoc or {}).get("running")
        if len(st["stalls"]) >= 3 and running:
            break
        time.sleep(0.1)
    res.check(bool(running) and len(mock.stats()["stalls"]) >= 3, "server: GET /v1/admin/sync/status shows the run while transfers stall",
              f"running {running!r}, stalls at the mock {len(mock.stats()['stalls'])}")
    rc, secs, graceful = lib.srv.stop(timeout=30)
    box = lib.outbox()
    att = lib.attempts()
    states = collections.Counter(r["state"] for r in box.values())
    cancelled = sum(1 for a in att if a["outcome"] == "cancelled")
    res.check(graceful and rc == 0 and secs < 10, "server: SIGTERM during stalled transfers stops the server cleanly and quickly",
              f"exit {rc} after {secs:.1f} s, graceful {graceful}")
    res.check(states == collections.Counter({"pending": 3}) and cancelled == 3 and all(r["attempts"] == 0 for r in box.values()),
              "server: the stopped transfers' entries are back in the queue (not in flight, attempt not counted, recorded as cancelled)",
              f"states {dict(states)}, cancelled attempts {cancelled}, attempts {[r['attempts'] for r in box.values()]}")
    mock.faults({"rate": 0})
    lib.start()
    status, _, _ = lib.api("POST", "/v1/admin/sync/run", lib.admin)
    t_end = time.monotonic() + 30
    sdoc = {}
    while time.monotonic() < t_end:
        _, _, sdoc = lib.api("GET", "/v1/admin/sync/status", lib.admin)
        if not sdoc.get("running") and sdoc.get("outbox", {}).get("done") == 3:
            break
        time.sleep(0.1)
    got = mock.resources()
    res.check(status == 202 and sdoc.get("outbox", {}).get("done") == 3 and all(i in got for i in ids)
              and (sdoc.get("lastRun") or {}).get("done") == 3,
              "server: after a restart, a run through the API sends all 3 and the status shows the last run",
              f"{status}, outbox {sdoc.get('outbox')}, lastRun {sdoc.get('lastRun')}, at the mock {sum(1 for i in ids if i in got)}")
    lib.stop()
    mock.stop()


# --------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    zp.KillRun.add_arguments(ap)
    ap.add_argument("--items", type=int, default=1000, help="R9: resources synced through the faults (default 1000)")
    ap.add_argument("--big-mb", type=int, default=1024, help="size of the large file in MiB (default 1024)")
    ap.add_argument("--phases", default="R9,R10,R11,big,extras,server", help="which parts to run (default all)")
    args = ap.parse_args()
    if args.items < 1 or args.kills < 1 or args.big_mb < 1:
        ap.error("--items, --kills and --big-mb must be positive")

    def space(work):
        st = os.statvfs(work)
        need = 2 * args.big_mb * MB + 1024 * MB
        free = st.f_bavail * st.f_frsize
        return None if free >= need else f"{work} has {free / MB:.0f} MB free, the run needs {need / MB:.0f} MB"

    for k in [k for k in os.environ if k.startswith("ZYK_PLATFORM_")]:
        del os.environ[k]  # the servers started here must never sync
    os.environ["ZYK_SYNC_INTERVAL_MINUTES"] = "0"
    kr = zp.KillRun("SYNC", args, space_needed=space)
    if kr.failed:
        return 1
    zp.log(f"sync_platform: seed {kr.seed}, items {args.items}, kills {args.kills}, big {args.big_mb} MiB, "
           f"deadline {args.deadline:.0f} s, binary {kr.binary}")
    ctx = None
    try:
        ctx = Ctx(args, kr)
        phases = [("R9", phase_r9, 150), ("R10", phase_r10, 60), ("R11", phase_r11, 20), ("big", phase_big, 40),
                  ("extras", phase_extras, 15), ("server", phase_server, 30)]
        wanted = {p.strip().lower() for p in args.phases.split(",")}
        for name, fn, need in phases:
            if name.lower() not in wanted:
                continue
            if ctx.left() < need:
                kr.res.check(False, f"{name} skipped", f"{ctx.left():.0f} s left of the {args.deadline:.0f} s deadline")
                continue
            t0 = time.monotonic()
            zp.log(f"== {name} ({ctx.left():.0f} s left)")
            try:
                fn(ctx)
            except zp.HardTimeout:
                raise
            except Exception as e:
                traceback.print_exc()
                kr.res.check(False, f"{name} ran to the end", f"{type(e).__name__}: {e}")
            finally:
                for m in ctx.mocks:
                    m.stop()
                for lib in ctx.libs:
                    lib.stop()
            zp.log(f"== {name} took {time.monotonic() - t0:.1f} s")
        total = time.monotonic() - ctx.t0
        zp.log("figures:")
        for f in ctx.figures:
            zp.log(f"  {f}")
        zp.log(f"  total run time {total:.1f} s")
        kr.res.check(total <= args.deadline, f"the whole run fits the {args.deadline:.0f} s deadline", f"{total:.1f} s")
    except (zp.HardTimeout, KeyboardInterrupt) as e:
        kr.res.check(False, "the run finished", f"{type(e).__name__}: {e}")
    finally:
        if ctx is not None:
            ctx.cleanup()
        signal.alarm(0)
    return kr.finish(args.keep)


if __name__ == "__main__":
    sys.exit(main())
