#!/usr/bin/env python3
"""Resumable uploads (tus 1.0.0 at /v1/uploads) with the reference Python client tuspy, at the
process level: real server process, real client processes, kill -9 of either side.

  1. tuspy, unmodified, uploads a >= 200 MB file (8 MB chunks, a Chinese filename in
     Upload-Metadata) from a client subprocess that is SIGKILLed while a chunk is on its way;
     a new client process given the upload URL resumes from the server's offset (tuspy asks
     HEAD) and finishes. The offset the server settles on lies between the bytes acknowledged to
     the killed client and the bytes it could have sent, and the tmp file holds exactly those
     bytes; the final PATCH answers Upload-Sha256, GET /v1/uploads/{id} says complete with the
     file's sha256, and blobs/ab/cd/<sha256> holds the file's bytes.
  2. The same with the SERVER killed (kill -9) while a chunk is on its way, then restarted; after
     the restart HEAD's Upload-Offset is >= what was acknowledged and never beyond the bytes the
     server really received (the tmp file's prefix equals the source); a new client process
     resumes; the sha256 is checked as in 1.
 2b. The server killed while it turns a finished upload into a blob (the kill timed by watching
     the catalog read-only: after the last offset is recorded, and after the file was renamed
     into blobs/); after the restart a tuspy client resumes (finding offset = length, it sends
     nothing) and the upload must be complete, its blob stored and attachable.
  3. R5: a PATCH with a wrong Upload-Checksum (sha256, then sha1) -> 460 problem document, the
     offset unchanged (HEAD) and the chunk gone from the tmp file; the correct retry -> 204.
     A malformed or unsupported Upload-Checksum -> 400.
  4. R4: offset races: two PATCHes with the same Upload-Offset sent at once (threads, raw
     http.client), 1,000 times over several small uploads: never both 204, the loser answers
     409 or 423 (a problem document), and each completed upload's sha256 is the one of the
     winners' bytes in order (no interleaving).
  5. Another teacher gets 404 for HEAD / PATCH / DELETE / GET of the first one's upload (which
     stays untouched); no token or a bad token -> 401; missing or wrong Tus-Resumable -> 412.
  6. Termination: DELETE -> 204, then HEAD / PATCH / GET -> 404, and tmp/tus-<id> is gone.
  7. Attach: POST /v1/resources (application/json, metadata + files: [{sha256, name, role}])
     referencing the blob of upload 1 -> 201, the file downloads byte-exact; another teacher
     cannot attach that blob (422).
Also: OPTIONS advertises the version, extensions and checksum algorithms; creation-with-upload
in one POST completes an upload; at the end the server stops on SIGTERM with exit 0, every blob
hashes to its name, the catalog passes integrity_check / foreign_key_check and no tus-* file
is left in tmp/ (blob files without a `blobs` row, which a kill can leave, are reported, not
failed, as in R1 / R2).

The client side runs as `tus_resumable.py --tus-client JSON` (this file). Needs tuspy
(`scripts/setup-deps` installs it). Standard library and tuspy only; talks to 127.0.0.1 only.
Prints PASS/FAIL lines and the closing line "N passed, M failed"; exits 1 on any failure.
"""

import sys

sys.dont_write_bytecode = True

import argparse
import base64
import hashlib
import http.client
import json
import os
import queue
import signal
import subprocess
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zykproc as zp  # noqa: E402

CLIENT_FLAG = "--tus-client"
TUS = "1.0.0"
OFFSET_TYPE = "application/offset+octet-stream"
CHUNK = 8 * zp.MB
FILENAME = "康复训练示范.mp4"
PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


# --------------------------------------------------------------------------------------------
# The client process: tuspy as an application would use it. One JSON line per event on stdout.


def client_main(arg):
    cfg = json.loads(arg)

    def emit(**kv):
        print(json.dumps(kv), flush=True)

    try:
        from tusclient import client
        c = client.TusClient(cfg["endpoint"], headers={"Authorization": f"Bearer {cfg['token']}"})
        kw = dict(file_path=cfg["file"], chunk_size=cfg["chunk"], retries=cfg.get("retries", 0), retry_delay=cfg.get("retry_delay", 1))
        if cfg.get("url"):
            uploader = c.uploader(url=cfg["url"], **kw)  # resumes: tuspy asks the server (HEAD) for the offset
        else:
            uploader = c.uploader(metadata={"filename": cfg["filename"]}, **kw)
            uploader.set_url(uploader.create_url())
        emit(event="start", url=uploader.url, offset=uploader.offset, size=uploader.stop_at)
        if cfg.get("whole"):
            uploader.upload()
        else:
            while uploader.offset < uploader.stop_at:
                uploader.upload_chunk()
                emit(event="chunk", offset=uploader.offset)
        req = uploader.request
        emit(event="done", offset=uploader.offset, status=req.status_code if req else None,
             sha256=(req.response_headers.get("upload-sha256") if req else None))
        return 0
    except Exception as e:
        emit(event="error", error=f"{type(e).__name__}: {e}"[:600])
        return 1


class ClientProc:
    """A tuspy client subprocess and the events it prints."""

    def __init__(self, cfg, stderr_path):
        env = {k: v for k, v in os.environ.items() if k not in PROXY_VARS}
        env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
        with open(stderr_path, "ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-B", os.path.abspath(__file__), CLIENT_FLAG, json.dumps(cfg)],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, env=env,
                preexec_fn=zp._die_with_parent, close_fds=True)
        self.events = queue.Queue()
        self.all = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                ev = {"event": "garbage", "line": line[:200].decode(errors="replace")}
            self.events.put(ev)
        self.events.put(None)  # EOF

    def next(self, timeout):
        """The next event, None at EOF; raises queue.Empty on timeout."""
        ev = self.events.get(timeout=timeout)
        if ev is not None:
            self.all.append(ev)
        return ev

    def poll(self):
        """Events already printed, without waiting; (events, eof)."""
        out = []
        while True:
            try:
                ev = self.events.get_nowait()
            except queue.Empty:
                return out, False
            if ev is None:
                return out, True
            self.all.append(ev)
            out.append(ev)

    def kill(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def finish(self, timeout):
        """Waits for the process to end; returns (last event, exit code). Kills it on timeout."""
        end = time.monotonic() + timeout
        last = None
        while True:
            try:
                ev = self.next(max(0.01, end - time.monotonic()))
            except queue.Empty:
                self.kill()
                return {"event": "timeout", "after": timeout, "last": last}, self.proc.returncode
            if ev is None:
                break
            last = ev
        try:
            rc = self.proc.wait(timeout=max(1.0, end - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.kill()
            rc = self.proc.returncode
        return last, rc


# --------------------------------------------------------------------------------------------
# Raw tus requests.


def tus_headers(token, **extra):
    h = {"Tus-Resumable": TUS}
    if token:
        h["Authorization"] = f"Bearer {token}"
    for k, v in extra.items():
        h[k.replace("_", "-")] = v
    return h


def b64(b):
    return base64.b64encode(b).decode("ascii")


def create_upload(port, token, length, filename=None, body=None, headers=None):
    h = tus_headers(token, Upload_Length=str(length))
    if filename:
        h["Upload-Metadata"] = "filename " + b64(filename.encode("utf-8"))
    if body is not None:
        h["Content-Type"] = OFFSET_TYPE
    h.update(headers or {})
    return zp.request(port, "POST", "/v1/uploads", h, body)


def upload_id(st, hd, body):
    if st != 201 or not hd.get("location", "").startswith("/v1/uploads/"):
        raise RuntimeError(f"POST /v1/uploads answered {st}, Location {hd.get('location')!r}: {body[:300]!r}")
    return hd["location"].rsplit("/", 1)[1]


def patch(port, token, uid, offset, data, checksum=None, headers=None):
    h = tus_headers(token, Upload_Offset=str(offset), Content_Type=OFFSET_TYPE)
    if checksum:
        h["Upload-Checksum"] = checksum
    h.update(headers or {})
    return zp.request(port, "PATCH", f"/v1/uploads/{uid}", h, data)


def head(port, token, uid, headers=None):
    h = tus_headers(token)
    h.update(headers or {})
    return zp.request(port, "HEAD", f"/v1/uploads/{uid}", h)


def head_offset(port, token, uid):
    st, hd, _ = head(port, token, uid)
    if st != 200 or "upload-offset" not in hd:
        raise RuntimeError(f"HEAD /v1/uploads/{uid} answered {st} {hd}")
    return int(hd["upload-offset"])


def get_upload(port, token, uid):
    st, _, b = zp.request(port, "GET", f"/v1/uploads/{uid}", zp.auth(token))
    try:
        doc = json.loads(b) if b else None
    except ValueError:
        doc = None
    return st, doc


def problem(st, hd, body, status, type_suffix=None):
    return zp.is_problem(zp.Response(st, hd, body, True), status, type_suffix)


def tmp_file(root, uid):
    return os.path.join(root, "tmp", "tus-" + uid)


def file_size(path):
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return None


def same_prefix(a, b, n):
    """The first n bytes of files a and b are equal (and both have them)."""
    with open(a, "rb") as fa, open(b, "rb") as fb:
        done = 0
        while done < n:
            k = min(4 * zp.MB, n - done)
            x, y = fa.read(k), fb.read(k)
            if len(x) != k or x != y:
                return False
            done += k
    return True


def make_source(path, size):
    """A file of `size` bytes (an MP4 header, then random bytes); returns its sha256."""
    h = hashlib.sha256()
    with open(path, "wb") as f:
        first = zp.MP4_HEADER
        f.write(first)
        h.update(first)
        left = size - len(first)
        while left > 0:
            b = os.urandom(min(4 * zp.MB, left))
            f.write(b)
            h.update(b)
            left -= len(b)
    return h.hexdigest()


def download_sha256(port, token, path, timeout=120):
    conn = http.client.HTTPConnection(zp.HOST, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}", "Connection": "close"})
        r = conn.getresponse()
        h = hashlib.sha256()
        n = 0
        while True:
            b = r.read(zp.MB)
            if not b:
                break
            h.update(b)
            n += len(b)
        return r.status, n, h.hexdigest()
    finally:
        conn.close()


# --------------------------------------------------------------------------------------------
# The scenarios. Each gets the context `t` and records its checks on t.res.


class Ctx:
    def __init__(self, run, args):
        self.run = run
        self.args = args
        self.res = run.res
        self.srv = run.srv
        self.root = run.root
        self.work = run.work
        self.binary = run.binary
        self.rng = run.rng
        self.token = None
        self.token2 = None
        self.blob1 = None  # (sha256, size) of scenario 1's upload, for scenario 7
        self.notes = []

    @property
    def port(self):
        return self.srv.port

    def endpoint(self):
        return f"http://{zp.HOST}:{self.port}/v1/uploads"

    def client(self, name, **cfg):
        base = {"endpoint": self.endpoint(), "token": self.token, "chunk": CHUNK, "filename": FILENAME}
        base.update(cfg)
        return ClientProc(base, os.path.join(self.work, f"client-{name}.log"))

    def check(self, ok, what, detail=""):
        return self.res.check(ok, what, detail)


def basics(t):
    st, hd, _ = zp.request(t.port, "OPTIONS", "/v1/uploads")
    ext = set(x.strip() for x in hd.get("tus-extension", "").split(","))
    algs = set(x.strip() for x in hd.get("tus-checksum-algorithm", "").split(","))
    t.check(st in (200, 204) and hd.get("tus-resumable") == TUS and TUS in hd.get("tus-version", "")
            and {"creation", "creation-with-upload", "checksum", "termination"} <= ext and {"sha1", "sha256"} <= algs,
            "OPTIONS /v1/uploads advertises tus 1.0.0, creation(-with-upload), checksum sha1/sha256, termination",
            f"{st}, version {hd.get('tus-version')!r}, extensions {hd.get('tus-extension')!r}, algorithms {hd.get('tus-checksum-algorithm')!r}, "
            f"max size {hd.get('tus-max-size')!r}")
    data = zp.video_bytes(t.rng, 300 * 1024)
    sha = hashlib.sha256(data).hexdigest()
    st, hd, b = create_upload(t.port, t.token, len(data), "一次上传.mp4", body=data)
    ok = st == 201 and hd.get("upload-offset") == str(len(data)) and hd.get("upload-sha256") == sha and hd.get("location", "").startswith("/v1/uploads/")
    detail = f"{st}, Upload-Offset {hd.get('upload-offset')}, Upload-Sha256 {hd.get('upload-sha256')}, Location {hd.get('location')}"
    if ok:
        uid = hd["location"].rsplit("/", 1)[1]
        gst, doc = get_upload(t.port, t.token, uid)
        ok = gst == 200 and doc.get("complete") is True and doc.get("sha256") == sha and doc.get("filename") == "一次上传.mp4"
        detail += f"; GET {gst} {doc}"
        bp = zp.blob_path(t.root, sha)
        ok = ok and os.path.exists(bp) and zp.sha256_file(bp) == sha
    t.check(ok, "creation-with-upload: one POST with the whole body -> 201, complete, Upload-Sha256, blob stored", detail if not ok else "")


def checksums(t):
    """R5."""
    piece = 64 * 1024
    data = t.rng.randbytes(3 * piece)
    uid = upload_id(*create_upload(t.port, t.token, len(data), "checksum.bin"))
    off = 0
    for alg, fn in (("sha256", hashlib.sha256), ("sha1", hashlib.sha1)):
        chunk = data[off:off + piece]
        wrong = f"{alg} {b64(fn(chunk + b'x').digest())}"
        st, hd, b = patch(t.port, t.token, uid, off, chunk, checksum=wrong)
        ok, why = problem(st, hd, b, 460, "checksum-mismatch")
        t.check(ok, f"R5 {alg}: a PATCH with a wrong Upload-Checksum -> 460 problem document", why)
        now = head_offset(t.port, t.token, uid)
        size = file_size(tmp_file(t.root, uid))
        t.check(now == off and size == off, f"R5 {alg}: after the 460 the offset is unchanged and the chunk is not kept",
                f"HEAD Upload-Offset {now} (was {off}), tmp file {size} bytes")
        right = f"{alg} {b64(fn(chunk).digest())}"
        st, hd, b = patch(t.port, t.token, uid, off, chunk, checksum=right)
        t.check(st == 204 and hd.get("upload-offset") == str(off + len(chunk)), f"R5 {alg}: the retry with the right checksum -> 204",
                f"{st}, Upload-Offset {hd.get('upload-offset')} {b[:200]!r}")
        off += len(chunk)
    chunk = data[off:]
    bad = []
    for header in ("sha256", "sha256 !!!notbase64", f"md5 {b64(hashlib.md5(chunk).digest())}"):
        st, hd, b = patch(t.port, t.token, uid, off, chunk, checksum=header)
        ok, why = problem(st, hd, b, 400)
        if not ok:
            bad.append(f"{header!r}: {why}")
    now = head_offset(t.port, t.token, uid)
    t.check(not bad and now == off, "R5: a malformed or unsupported Upload-Checksum -> 400, nothing kept", "; ".join(bad + [f"offset {now} (wanted {off})"]))
    st, hd, b = patch(t.port, t.token, uid, off, chunk, checksum=f"sha256 {b64(hashlib.sha256(chunk).digest())}")
    sha = hashlib.sha256(data).hexdigest()
    gst, doc = get_upload(t.port, t.token, uid)
    t.check(st == 204 and hd.get("upload-sha256") == sha and gst == 200 and doc.get("sha256") == sha,
            "R5: the upload completes with the sha256 of the right bytes", f"{st}, Upload-Sha256 {hd.get('upload-sha256')}, GET {gst} {doc}")


def race_round(port, token, uid, offset, bodies):
    """Sends the PATCHes at once (one thread each, connected first, released together)."""
    results = [None] * len(bodies)
    barrier = threading.Barrier(len(bodies))

    def go(i):
        conn = http.client.HTTPConnection(zp.HOST, port, timeout=30)
        try:
            conn.connect()
            barrier.wait(timeout=10)
            conn.request("PATCH", f"/v1/uploads/{uid}", body=bodies[i], headers=tus_headers(
                token, Upload_Offset=str(offset), Content_Type=OFFSET_TYPE, Connection="close"))
            r = conn.getresponse()
            data = r.read()
            results[i] = (r.status, {k.lower(): v for k, v in r.getheaders()}, data)
        except Exception as e:  # noqa: BLE001 - recorded
            results[i] = ("error", {}, repr(e).encode())
        finally:
            conn.close()

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(bodies))]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    return results


def races(t):
    """R4."""
    total = t.args.races
    uploads = max(1, min(10, total // 50))
    per = [total // uploads + (1 if i < total % uploads else 0) for i in range(uploads)]
    stats = {"races": 0, "409": 0, "423": 0, "no_winner": 0, "both": [], "bad_loser": [], "bad_winner": [], "final_bad": [], "errors": []}
    t0 = time.monotonic()
    for u, rounds in enumerate(per):
        sizes = [t.rng.choice((1, 17, 512, 4096, 16 * 1024, 32 * 1024, 48 * 1024)) for _ in range(rounds)]
        length = sum(sizes)
        uid = upload_id(*create_upload(t.port, t.token, length, f"race-{u}.bin"))
        expected = bytearray()
        offset = 0
        last = None
        broken = False
        for r, size in enumerate(sizes):
            a, b = t.rng.randbytes(size), t.rng.randbytes(size)
            if a == b:
                b = bytes(x ^ 0xFF for x in a)
            res = race_round(t.port, t.token, uid, offset, [a, b])
            stats["races"] += 1
            wins = [i for i, x in enumerate(res) if x[0] == 204]
            tag = f"upload {u} round {r} (offset {offset}, {size} bytes)"
            for i, (st, hd, body) in enumerate(res):
                if st == 204:
                    continue
                if st in (409, 423):
                    stats[str(st)] += 1
                    ok, why = problem(st, hd, body, st)
                    if not ok:
                        stats["bad_loser"].append(f"{tag}: {why}")
                else:
                    stats["bad_loser"].append(f"{tag}: the other PATCH answered {st} {body[:200]!r}")
            if len(wins) > 1:
                stats["both"].append(f"{tag}: both answered 204 (Upload-Offset {[x[1].get('upload-offset') for x in res]})")
                broken = True
                break
            if not wins:
                stats["no_winner"] += 1
                # move on with one PATCH so the upload can still be checked
                st, hd, body = patch(t.port, t.token, uid, offset, a)
                if st != 204:
                    stats["errors"].append(f"{tag}: no winner, and a lone PATCH then answered {st} {body[:200]!r}")
                    broken = True
                    break
                win = a
                last = hd
            else:
                st, hd, body = res[wins[0]]
                win = a if wins[0] == 0 else b
                last = hd
            if hd.get("upload-offset") != str(offset + size):
                stats["bad_winner"].append(f"{tag}: 204 with Upload-Offset {hd.get('upload-offset')} (wanted {offset + size})")
            expected += win
            offset += size
        want = hashlib.sha256(bytes(expected)).hexdigest()
        if broken:
            zp.request(t.port, "DELETE", f"/v1/uploads/{uid}", tus_headers(t.token))
            stats["final_bad"].append(f"upload {u}: abandoned after a broken round")
            continue
        gst, doc = get_upload(t.port, t.token, uid)
        bp = zp.blob_path(t.root, want)
        disk = zp.sha256_file(bp) if os.path.exists(bp) else None
        if last.get("upload-sha256") != want or gst != 200 or doc.get("sha256") != want or doc.get("offset") != length or disk != want:
            stats["final_bad"].append(f"upload {u}: winners' bytes hash to {want}; final PATCH Upload-Sha256 {last.get('upload-sha256')}, "
                                      f"GET {gst} {doc}, blob file {disk}")
    dt = time.monotonic() - t0

    def ex(items, k=4):
        return "; ".join(items[:k]) + (f" (+{len(items) - k} more)" if len(items) > k else "")

    t.check(stats["races"] >= total, f"R4: {total} offset races run", f"{stats['races']} races over {uploads} uploads in {dt:.1f} s")
    t.check(not stats["both"], "R4: never both PATCHes of a race answered 204", ex(stats["both"]))
    t.check(not stats["bad_loser"], "R4: the losing PATCH answers 409 or 423 with a problem document",
            ex(stats["bad_loser"]) or f"409 x {stats['409']}, 423 x {stats['423']}")
    t.check(not stats["bad_winner"] and not stats["errors"], "R4: the winning PATCH's Upload-Offset is the offset plus its bytes",
            ex(stats["bad_winner"] + stats["errors"]))
    t.check(not stats["final_bad"], "R4: each raced upload completes with the sha256 of the winners' bytes (no interleaving)", ex(stats["final_bad"]))
    t.notes.append(f"R4: {stats['races']} races in {dt:.1f} s: losers 409 x {stats['409']}, 423 x {stats['423']}; "
                   f"rounds where neither PATCH won: {stats['no_winner']}")
    if stats["no_winner"]:
        t.notes.append("R4 NOTE: in some rounds neither PATCH answered 204 (allowed: 'at most one wins'; the round was finished with a lone PATCH)")


def access(t):
    """Scenario 5: other users, no token, no Tus-Resumable."""
    data = t.rng.randbytes(200 * 1024)
    uid = upload_id(*create_upload(t.port, t.token, len(data), "access.bin"))
    st, hd, b = patch(t.port, t.token, uid, 0, data[:100 * 1024])
    if st != 204:
        raise RuntimeError(f"set-up PATCH answered {st} {b[:200]!r}")
    off = 100 * 1024
    path = f"/v1/uploads/{uid}"
    bad = []
    st, _, _ = head(t.port, t.token2, uid)
    if st != 404:
        bad.append(f"HEAD {st}")
    st, hd, b = patch(t.port, t.token2, uid, off, data[off:])
    ok, why = problem(st, hd, b, 404)
    if not ok:
        bad.append(f"PATCH {why}")
    st, hd, b = zp.request(t.port, "DELETE", path, tus_headers(t.token2))
    ok, why = problem(st, hd, b, 404)
    if not ok:
        bad.append(f"DELETE {why}")
    st, hd, b = zp.request(t.port, "GET", path, zp.auth(t.token2))
    ok, why = problem(st, hd, b, 404)
    if not ok:
        bad.append(f"GET {why}")
    now = head_offset(t.port, t.token, uid)
    size = file_size(tmp_file(t.root, uid))
    t.check(not bad and now == off and size == off, "another teacher gets 404 for HEAD / PATCH / DELETE / GET of the upload, which stays untouched",
            "; ".join(bad + [f"owner's HEAD offset {now} (wanted {off}), tmp file {size} bytes"]))

    def each_method(headers, expected):
        """HEAD, PATCH, DELETE and POST (a new upload) with these headers; yields each method,
        whether it got `expected` (HEAD: the bare status, others: a problem document), why not,
        and the answer's headers."""
        for method in ("HEAD", "PATCH", "DELETE", "POST"):
            h = dict(headers)
            body = None
            p = path
            if method == "PATCH":
                h.update({"Upload-Offset": str(off), "Content-Type": OFFSET_TYPE})
                body = data[off:]
            elif method == "POST":
                h["Upload-Length"] = "10"
                p = "/v1/uploads"
            st, hd, b = zp.request(t.port, method, p, h, body)
            ok, why = (st == expected, f"{st}") if method == "HEAD" else problem(st, hd, b, expected)
            yield method, ok, why, st, hd

    bad = []
    for token, what in ((None, "no token"), ("zyk_not_a_real_token", "a bad token")):
        for method, ok, why, _, _ in each_method(tus_headers(token), 401):
            if not ok:
                bad.append(f"{what}: {method} {why}")
    t.check(not bad, "no token or a bad token -> 401 (HEAD, PATCH, DELETE, POST)", "; ".join(bad))

    bad = []
    for version in (None, "0.2.2"):
        h = zp.auth(t.token)
        if version:
            h["Tus-Resumable"] = version
        for method, ok, why, st, hd in each_method(h, 412):
            if ok and hd.get("tus-version") != TUS:
                ok, why = False, f"{st} without Tus-Version: {TUS} ({hd.get('tus-version')!r})"
            if not ok:
                bad.append(f"Tus-Resumable {version!r}: {method} {why}")
    now = head_offset(t.port, t.token, uid)
    t.check(not bad and now == off, "missing or wrong Tus-Resumable -> 412 with Tus-Version (HEAD, PATCH, DELETE, POST); nothing changed",
            "; ".join(bad + [f"offset {now} (wanted {off})"]))
    st, _, _ = zp.request(t.port, "DELETE", path, tus_headers(t.token))  # clean up (checked in scenario 6)
    if st != 204:
        t.notes.append(f"clean-up DELETE of the access-test upload answered {st}")


def termination(t):
    data = t.rng.randbytes(300 * 1024)
    uid = upload_id(*create_upload(t.port, t.token, len(data), "terminate.bin"))
    st, _, b = patch(t.port, t.token, uid, 0, data[:120 * 1024])
    tmp = tmp_file(t.root, uid)
    existed = os.path.exists(tmp)
    st, hd, b = zp.request(t.port, "DELETE", f"/v1/uploads/{uid}", tus_headers(t.token))
    t.check(st == 204 and hd.get("tus-resumable") == TUS, "termination: DELETE -> 204", f"{st} {b[:200]!r}")
    hst, _, _ = head(t.port, t.token, uid)
    pst, phd, pb = patch(t.port, t.token, uid, 120 * 1024, data[120 * 1024:])
    gst, _ = get_upload(t.port, t.token, uid)
    t.check(hst == 404 and pst == 404 and gst == 404, "termination: afterwards HEAD / PATCH / GET -> 404", f"HEAD {hst}, PATCH {pst}, GET {gst}")
    t.check(existed and not os.path.exists(tmp), "termination: the partial file tmp/tus-<id> is gone",
            f"existed before {existed}, exists after {os.path.exists(tmp)}")


def settle(t, uid, timeout=15.0):
    """HEAD until the offset stays the same for 0.5 s (the server finishing a cut-short PATCH)."""
    end = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while time.monotonic() < end:
        o = head_offset(t.port, t.token, uid)
        if o != last:
            last, since = o, time.monotonic()
        elif time.monotonic() - since >= 0.5:
            return o
        time.sleep(0.05)
    return last


def kill_midway(t, c, uid, min_chunks, victim):
    """Lets the client get `min_chunks` chunks acknowledged, waits until the server has written
    part of the next one to tmp/tus-<id>, then SIGKILLs the victim ("client" or "server").
    Returns (bytes acknowledged to the client, tmp file size seen at the kill, chunks)."""
    acked, chunks = 0, 0
    while chunks < min_chunks:
        ev = c.next(120)
        if ev is None or ev.get("event") != "chunk":
            raise RuntimeError(f"the client stopped before {min_chunks} chunks: {ev} (events {c.all[-3:]})")
        acked, chunks = ev["offset"], chunks + 1
    tmp = tmp_file(t.root, uid)
    trigger = t.rng.randint(1 * zp.MB, CHUNK - 2 * zp.MB)
    end = time.monotonic() + 60
    seen = None
    while time.monotonic() < end:
        seen = file_size(tmp) or 0
        if seen >= acked + trigger:
            break
        evs, eof = c.poll()
        for ev in evs:
            if ev.get("event") == "chunk":
                acked, chunks = ev["offset"], chunks + 1
        if eof:
            raise RuntimeError(f"the client ended before the kill: {c.all[-3:]}")
        time.sleep(0.0002)
    if victim == "client":
        c.kill()
    else:
        t.srv.kill9()
    # every event the client printed (for the server kill: until it gives up without a server)
    last, rc = c.finish(60)
    if victim == "server":
        t.notes.append(f"the first client after the server kill: exit {rc}, last event {str(last)[:200]}")
    offsets = [ev["offset"] for ev in c.all if ev.get("event") == "chunk"]
    return (max(offsets) if offsets else 0), seen, len(offsets)


def verify_complete(t, label, uid, done, rc, expected, size):
    ok = done is not None and done.get("event") == "done" and rc == 0 and done.get("sha256") == expected and done.get("offset") == size
    t.check(ok, f"{label}: the resumed tuspy client finishes; the final PATCH answers Upload-Sha256 = the file's sha256", f"exit {rc}, last event {done}")
    gst, doc = get_upload(t.port, t.token, uid)
    ok = gst == 200 and doc and doc.get("complete") is True and doc.get("sha256") == expected and doc.get("offset") == size \
        and doc.get("length") == size and doc.get("filename") == FILENAME and doc.get("id") == uid
    t.check(ok, f"{label}: GET /v1/uploads/{{id}} -> complete, sha256 of the file, filename {FILENAME}", f"{gst} {doc}")
    bp = zp.blob_path(t.root, expected)
    disk = zp.sha256_file(bp) if os.path.exists(bp) else None
    t.check(disk == expected and os.path.getsize(bp) == size and not os.path.exists(tmp_file(t.root, uid)),
            f"{label}: blobs/ab/cd/<sha256> holds the file's bytes; tmp/tus-<id> is gone",
            f"blob file {'hashes to ' + str(disk) if disk else 'missing'}, tmp file exists {os.path.exists(tmp_file(t.root, uid))}")


def client_killed(t, src, expected, size):
    """Scenario 1."""
    c = t.client("s1-first", file=src)
    ev = c.next(60)
    if not ev or ev.get("event") != "start":
        c.kill()
        raise RuntimeError(f"the tuspy client did not start: {ev} (see client-s1-first.log)")
    url = ev["url"]
    uid = url.rsplit("/", 1)[1]
    acked, seen, chunks = kill_midway(t, c, uid, t.rng.randint(2, max(2, size // CHUNK // 3)), "client")
    zp.log(f"  scenario 1: client SIGKILLed after {chunks} chunks ({acked} bytes acknowledged, tmp file at {seen})")
    o = settle(t, uid)
    tmp = tmp_file(t.root, uid)
    tsize = file_size(tmp)
    t.check(acked <= o <= acked + CHUNK, "client killed: the server's offset lies between the bytes acknowledged and the bytes the client could have sent",
            f"acknowledged {acked}, HEAD Upload-Offset {o}, at most {acked + CHUNK}")
    t.check(tsize is not None and o <= tsize and same_prefix(tmp, src, o), "client killed: every byte below the offset is on disk and equals the source",
            f"offset {o}, tmp file {tsize} bytes")
    t0 = time.monotonic()
    c2 = t.client("s1-resume", file=src, url=url, whole=True, retries=5, retry_delay=0.5)
    done, rc = c2.finish(300)
    start = next((e for e in c2.all if e.get("event") == "start"), None)
    t.check(start is not None and start.get("offset") == o, "client killed: the new tuspy client resumes from the server's offset (HEAD)",
            f"resumed at {start.get('offset') if start else None}, server offset {o}")
    zp.log(f"  scenario 1: resumed in {time.monotonic() - t0:.1f} s")
    verify_complete(t, "client killed", uid, done, rc, expected, size)
    return uid


def server_killed(t, src, expected, size):
    """Scenario 2."""
    c = t.client("s2-first", file=src)
    ev = c.next(60)
    if not ev or ev.get("event") != "start":
        c.kill()
        raise RuntimeError(f"the tuspy client did not start: {ev} (see client-s2-first.log)")
    url = ev["url"]
    uid = url.rsplit("/", 1)[1]
    n = size // CHUNK  # whole chunks; the kill lands in the middle third of the upload
    chunks_before = t.rng.randint(max(3, n // 3), max(3, 2 * n // 3 - 1))
    acked, seen, chunks = kill_midway(t, c, uid, chunks_before, "server")
    tmp = tmp_file(t.root, uid)
    size_at_kill = file_size(tmp)
    zp.log(f"  scenario 2: server SIGKILLed after {chunks} chunks ({acked} bytes acknowledged, tmp file at {seen}, {size_at_kill} after)")
    t.srv.start()
    ready = t.srv.wait_ready()
    st, hd, _ = head(t.port, t.token, uid)
    o = int(hd.get("upload-offset", -1)) if st == 200 else None
    tsize = file_size(tmp)
    t.check(st == 200 and o is not None, "server killed: after the restart HEAD answers the upload", f"{st} {hd} (ready after {ready:.2f} s)")
    if o is None:
        return None
    t.check(acked <= o, "server killed: every chunk acknowledged (204) before the kill survives it", f"acknowledged {acked}, HEAD Upload-Offset {o}")
    t.check(o <= acked + CHUNK and tsize is not None and o <= tsize and same_prefix(tmp, src, o),
            "server killed: HEAD's Upload-Offset never exceeds the bytes actually received (the tmp file's prefix equals the source)",
            f"offset {o}, tmp file {tsize} bytes, client sent at most {acked + CHUNK}")
    t.notes.append(f"scenario 2: acknowledged {acked}, tmp file {size_at_kill} bytes at the kill, offset after the restart {o} "
                   f"({(size_at_kill or 0) - o} bytes written but not recorded, resent by the client)")
    c2 = t.client("s2-resume", file=src, url=url, whole=True, retries=5, retry_delay=0.5)
    done, rc = c2.finish(300)
    start = next((e for e in c2.all if e.get("event") == "start"), None)
    t.check(start is not None and start.get("offset") == o, "server killed: the new tuspy client resumes from the server's offset (HEAD)",
            f"resumed at {start.get('offset') if start else None}, server offset {o}")
    verify_complete(t, "server killed", uid, done, rc, expected, size)
    return uid


def killed_while_completing(t):
    """Scenario 2b: kill -9 while the server turns the finished upload into a blob, i.e. after
    the last chunk's offset is recorded (received = length) but before the upload is marked
    complete; the kill is timed by watching the catalog (read-only) and blobs/. Two windows:
    "recorded" (tmp/tus-<id> still there) and "moved" (the file already renamed into blobs/).
    After the restart a tuspy client resumes (it finds offset = length and sends nothing); the
    upload must then be complete with its sha256, the blob stored with its catalog row and
    attachable to a resource."""
    size = 3 * CHUNK
    hit = {}
    attempts = 0
    while len(hit) < 2 and attempts < 8:
        attempts += 1
        target = "moved" if "recorded" in hit else "recorded"
        src = os.path.join(t.work, "source-2b.bin")
        sha = make_source(src, size)
        bp = zp.blob_path(t.root, sha)
        c = t.client(f"s2b-{attempts}", file=src)
        ev = c.next(60)
        if not ev or ev.get("event") != "start":
            c.kill()
            raise RuntimeError(f"the tuspy client did not start: {ev}")
        url = ev["url"]
        uid = url.rsplit("/", 1)[1]
        tmp = tmp_file(t.root, uid)
        db = zp.open_catalog_ro(t.root)
        killed = False
        try:
            end = time.monotonic() + 60
            while time.monotonic() < end:
                row = db.execute("SELECT received, sha256 FROM tus_uploads WHERE id = ?", (uid,)).fetchone()
                if row is None or row[1] is not None:
                    break  # completed before the kill: missed
                if row[0] == size and (target == "recorded" or os.path.exists(bp)):
                    t.srv.kill9()
                    killed = True
                    break
                if c.proc.poll() is not None:
                    break
        finally:
            db.close()
        c.finish(60)
        if not killed:
            os.unlink(src)
            continue
        db = zp.open_catalog_ro(t.root)
        try:
            row = db.execute("SELECT received, sha256 FROM tus_uploads WHERE id = ?", (uid,)).fetchone()
        finally:
            db.close()
        if row[1] is not None:
            window = None  # the kill came just too late
        elif os.path.exists(tmp) and not os.path.exists(bp):
            window = "recorded"
        elif os.path.exists(bp) and not os.path.exists(tmp):
            window = "moved"
        else:
            window = f"other (tmp {os.path.exists(tmp)}, blob {os.path.exists(bp)})"
        t.srv.start()
        t.srv.wait_ready()
        if window is None or window in hit:
            c2 = t.client(f"s2b-{attempts}-resume", file=src, url=url, whole=True, retries=2, retry_delay=0.5)
            c2.finish(120)
            os.unlink(src)
            gst, doc = get_upload(t.port, t.token, uid)
            if not (gst == 200 and doc.get("complete") is True):  # stuck again (already reported): clean up
                zp.request(t.port, "DELETE", f"/v1/uploads/{uid}", tus_headers(t.token))
            continue
        st, hd, _ = head(t.port, t.token, uid)
        c2 = t.client(f"s2b-{attempts}-resume", file=src, url=url, whole=True, retries=2, retry_delay=0.5)
        done, rc = c2.finish(120)
        os.unlink(src)
        gst, doc = get_upload(t.port, t.token, uid)
        disk = zp.sha256_file(bp) if os.path.exists(bp) else None
        body = dict(zp.resource_metadata(f"康复训练示范（{window}）"))
        body["files"] = [{"sha256": sha, "name": FILENAME, "role": "primary"}]
        ast, _, ab = zp.request(t.port, "POST", "/v1/resources", zp.auth(t.token, "application/json"),
                                json.dumps(body, ensure_ascii=False).encode())
        ok = gst == 200 and doc.get("complete") is True and doc.get("sha256") == sha and disk == sha and ast == 201
        hit[window] = (ok, f"[{window}] after the restart HEAD {st} Upload-Offset {hd.get('upload-offset')} of {size}, "
                           f"Upload-Sha256 {hd.get('upload-sha256')}; the resumed client: exit {rc}, {done}; GET {gst} {doc}; "
                           f"blob file {'there' if disk == sha else disk}; attach {ast} {ab[:160]!r}")
        if not ok:
            dst, _, _ = zp.request(t.port, "DELETE", f"/v1/uploads/{uid}", tus_headers(t.token))
            t.notes.append(f"scenario 2b: the stuck upload {uid} ({window}) was removed with DELETE -> {dst}")
    t.notes.append(f"scenario 2b: completion windows hit: {sorted(hit) or 'none'} in {attempts} attempts")
    if hit:
        bad = [d for ok, d in hit.values() if not ok]
        t.check(not bad, f"server killed while completing ({', '.join(sorted(hit))}): after the restart and a tuspy resume the upload "
                "is complete with its sha256, the blob stored and attachable", " || ".join(bad))


def attach(t, sha, size):
    """Scenario 7."""
    meta = zp.resource_metadata("康复训练示范（断点续传）")
    body = dict(meta)
    body["files"] = [{"sha256": sha, "name": FILENAME, "role": "primary"}]
    st, hd, b = zp.request(t.port, "POST", "/v1/resources", zp.auth(t.token2, "application/json"),
                           json.dumps(dict(body), ensure_ascii=False).encode())
    ok, why = problem(st, hd, b, 422)
    t.check(ok, "attach: another teacher cannot reference the blob by sha256 (422)", why)
    st, hd, b = zp.request(t.port, "POST", "/v1/resources", zp.auth(t.token, "application/json"),
                           json.dumps(body, ensure_ascii=False).encode())
    doc = {}
    try:
        doc = json.loads(b)
    except ValueError:
        pass
    files = [(f.get("name"), f.get("sha256"), f.get("size"), f.get("role")) for f in doc.get("files", [])]
    ok = st == 201 and files == [(FILENAME, sha, size, "primary")]
    t.check(ok, "attach: POST /v1/resources (application/json) referencing the uploaded blob -> 201 with that file", f"{st} files {files} {b[:300]!r}")
    if not ok:
        return
    path = f"/v1/resources/{doc['id']}/files/{urllib.parse.quote(FILENAME)}"
    dst, n, dsha = download_sha256(t.port, t.token, path)
    t.check(dst == 200 and n == size and dsha == sha, "attach: the file downloads byte-exact", f"{dst}, {n} bytes, sha256 {dsha}")


def final_checks(t):
    rc, secs, graceful = t.srv.stop()
    t.check(graceful and rc == 0, "SIGTERM stops the server with exit code 0", f"exit {rc} after {secs:.1f} s")
    files, problems = zp.BlobScanner(t.root).scan(use_cache=False)
    cat = zp.check_catalog(t.root, files)
    t.check(not problems and cat["integrity"] == "ok" and not cat["fk"] and not cat["orphans"],
            "final: every blob hashes to its name, every blob row has its file; integrity_check ok, foreign_key_check empty",
            f"{problems[:3]} integrity {cat['integrity'][:100]} fk {cat['fk'][:3]} orphans {cat['orphans'][:3]}")
    if cat["unreferenced"]:  # as in R1 / R2: a kill between the rename and the catalog; reported, not failed
        t.notes.append(f"blob files without a blobs row at the end: {len(cat['unreferenced'])} ({', '.join(x[:12] for x in cat['unreferenced'][:4])})")
    left = sorted(n for n in os.listdir(os.path.join(t.root, "tmp")) if n.startswith(("tus-", "upload-")))
    db = zp.open_catalog_ro(t.root)
    try:
        open_rows = db.execute("SELECT id, received, length FROM tus_uploads WHERE sha256 IS NULL").fetchall()
    finally:
        db.close()
    t.check(not left and not open_rows, "final: no tus-* / upload-* file left in tmp/, no unfinished upload row",
            f"files {left[:5]}, unfinished rows {open_rows[:5]}")


# --------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--deadline", type=float, default=300.0, help="seconds for the whole run; hitting it fails (default 300)")
    ap.add_argument("--seed", type=int, default=None, help="random seed (default: from the clock; printed)")
    ap.add_argument("--bin", default=None, help="zyk binary (default $ZYK_BIN or .build/debug/zyk)")
    ap.add_argument("--workdir", default=None, help="parent folder for the temporary data root and the big files")
    ap.add_argument("--keep", action="store_true", help="keep the data root, server and client logs (the big source files are removed)")
    ap.add_argument("--size-mb", type=float, default=200.0, help="size of the two big uploads in MB (default 200; the brief asks >= 200)")
    ap.add_argument("--races", type=int, default=1000, help="offset races in R4 (default 1000)")
    args = ap.parse_args()
    if args.size_mb * zp.MB < 4 * CHUNK or args.races < 1:
        ap.error(f"need --size-mb >= {4 * CHUNK / zp.MB:.0f} and --races >= 1")
    size = int(args.size_mb * zp.MB)

    def space_needed(work):
        need = 5 * size + 256 * zp.MB  # two sources, two blobs, one tmp file, the rest
        st = os.statvfs(work)
        if st.f_bavail * st.f_frsize >= need:
            return None
        return f"{need / zp.MB:.0f} MB needed in {os.path.dirname(work)}, only {st.f_bavail * st.f_frsize / zp.MB:.0f} MB free (use --workdir or --size-mb)"

    try:
        import tusclient.client  # noqa: F401
    except ImportError as e:
        zp.log(f"FAIL TUS set-up: tuspy is not installed for {sys.executable} ({e}); scripts/setup-deps installs it")
        zp.log("0 passed, 1 failed")
        return 1

    run = zp.KillRun("TUS", args, space_needed)
    if run.failed:
        return 1
    t = Ctx(run, args)
    zp.log(f"TUS: uploads of {size / zp.MB:g} MB in {CHUNK // zp.MB} MB chunks, {args.races} races, seed {run.seed}, deadline {args.deadline:g} s")
    zp.log(f"TUS: binary {run.built} (run from a copy), data root {run.root}, port {run.srv.port}")
    t0 = time.monotonic()
    aborted = None
    deadline_hit = []
    src1, src2 = os.path.join(run.work, "source-1.mp4"), os.path.join(run.work, "source-2.mp4")

    def scenario(name, fn, *a):
        if time.monotonic() - t0 > args.deadline:
            deadline_hit.append(name)
            return None
        s0 = time.monotonic()
        zp.log(f"-- {name}")
        try:
            return fn(t, *a)
        except (zp.HardTimeout, KeyboardInterrupt):
            raise
        except Exception as e:  # the scenario fails; the others still run
            t.check(False, f"{name} ran to the end", f"{type(e).__name__}: {e}")
            if not t.srv.alive():
                t.srv.start()
                t.srv.wait_ready()
            return None
        finally:
            zp.log(f"   ({time.monotonic() - s0:.1f} s)")

    try:
        run.srv.start()
        run.srv.wait_ready()
        t.token = zp.make_teacher(run.binary, run.root)
        t.token2 = zp.make_teacher(run.binary, run.root, name="李老师")
        g0 = time.monotonic()
        sha1 = make_source(src1, size)
        sha2 = make_source(src2, size)
        zp.log(f"TUS: two source files of {size} bytes written in {time.monotonic() - g0:.1f} s")

        scenario("basics: OPTIONS, creation-with-upload", basics)
        uid1 = scenario("scenario 1: tuspy client killed mid-chunk, resumed by a new client", client_killed, src1, sha1, size)
        if uid1 is not None:
            scenario("scenario 7: attach the uploaded blob to a new resource", attach, sha1, size)
        os.unlink(src1)
        scenario("scenario 2: server killed (kill -9) mid-chunk, restarted, client resumes", server_killed, src2, sha2, size)
        os.unlink(src2)
        scenario("scenario 2b: server killed while the finished upload becomes a blob", killed_while_completing)
        scenario("scenario 3 (R5): Upload-Checksum mismatch", checksums)
        scenario("scenario 5: other users, no token, no Tus-Resumable", access)
        scenario("scenario 6: termination", termination)
        scenario("scenario 4 (R4): offset races", races)
    except zp.HardTimeout as e:
        aborted = str(e)
    except KeyboardInterrupt as e:
        aborted = f"interrupted ({e})"
    except Exception as e:  # report, then clean up
        aborted = f"{type(e).__name__}: {e}"

    try:
        if aborted is None:
            final_checks(t)
    except Exception as e:
        t.check(False, "final checks ran", f"{type(e).__name__}: {e}")
    finally:
        signal.alarm(0)
        if run.srv.alive():
            run.srv.kill9()
        for p in (src1, src2, os.path.join(run.work, "source-2b.bin")):
            if os.path.exists(p):
                os.unlink(p)

    elapsed = time.monotonic() - t0
    if aborted:
        t.check(False, "run completed", aborted)
    t.check(not deadline_hit and elapsed <= args.deadline, f"the run finished within the {args.deadline:g} s deadline",
            f"{elapsed:.1f} s" + (f"; skipped: {', '.join(deadline_hit)}" if deadline_hit else ""))
    zp.log("")
    for n in t.notes:
        zp.log(f"TUS: {n}")
    zp.log(f"TUS: {elapsed:.1f} s (seed {run.seed})")
    return run.finish(args.keep)


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == CLIENT_FLAG:
        sys.exit(client_main(sys.argv[2]))
    sys.exit(main())
