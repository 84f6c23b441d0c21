#!/usr/bin/env python3
"""R6: the data root's disk fills up.

Mounts a small tmpfs (default 48 MB) as the data root's filesystem, starts the server on it and
creates a teacher. Then:

  1. fills most of the space with a filler file (outside the data root, same filesystem) and
     uploads a file larger than what is left, via POST /v1/blobs and via a multipart
     POST /v1/resources: each must answer 507 with an application/problem+json document of type
     .../insufficient-storage; afterwards no partial blob is in blobs/, no tmp/upload-* file is
     left, the space is given back, no catalog row names the bytes, /healthz answers, and a small
     upload succeeds (or fails cleanly with 507);
  2. deletes the filler: the same big uploads now answer 201 with the right sha256 (the resource's
     file downloads byte-exact);
  3. fills the disk to within a few KB and keeps creating resources (JSON bodies referencing an
     uploaded blob, so only SQLite needs space) until SQLite runs out: every answer must be 201
     or a clean 5xx problem document (507 ideally) within the time limit, never a hang, a
     dropped connection or a crash; small uploads on the full disk answer 507; the server keeps
     answering reads; once the filler is gone, writes succeed again, every resource that was
     answered 201 is still there, and the catalog passes integrity_check / foreign_key_check;
  4. stops the server with SIGTERM (exit 0) and starts it again on the same data root.

If mounting is not permitted (not root, or the kernel refuses), prints SKIP and exits 0; in
every other case a problem is a failure. Prints "N passed, M failed"; exits 1 on any failure.
The tmpfs is unmounted and every process and temp folder removed, even on failure.

Standard library only; talks to 127.0.0.1 only.
"""

import sys

sys.dont_write_bytecode = True

import argparse
import errno
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zykproc as zp  # noqa: E402

KB = 1024
MB = zp.MB


HardTimeout = zp.HardTimeout
on_alarm = zp.on_alarm
on_term = zp.on_term


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


class Filler:
    """Filler files on the data root's filesystem, outside the data root."""

    def __init__(self, mnt):
        self.mnt = mnt
        self.paths = []

    def _new(self):
        p = os.path.join(self.mnt, f"filler-{len(self.paths)}")
        self.paths.append(p)
        return p

    def fill_to(self, leave):
        """Takes space until about `leave` bytes are free. Returns the bytes free afterwards."""
        want = free_bytes(self.mnt) - leave
        if want > 0:
            fd = os.open(self._new(), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                try:
                    os.posix_fallocate(fd, 0, want)
                except OSError:
                    # fall back to writing zeros, page by page, until the target or ENOSPC
                    os.ftruncate(fd, 0)
                    left, block = want, b"\0" * (1 * MB)
                    while left > 0:
                        try:
                            left -= os.write(fd, block[:min(len(block), left)])
                        except OSError as e:
                            if e.errno == errno.ENOSPC:
                                break
                            raise
            finally:
                os.close(fd)
        return free_bytes(self.mnt)

    def fill_all(self):
        """Takes every last page. Returns the bytes free afterwards (0 on tmpfs)."""
        self.fill_to(0)
        fd = os.open(self._new(), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        page = b"\xff" * 4096
        try:
            while True:
                try:
                    if os.write(fd, page) <= 0:
                        break
                except OSError as e:
                    if e.errno == errno.ENOSPC:
                        break
                    raise
        finally:
            os.close(fd)
        return free_bytes(self.mnt)

    def remove(self):
        for p in self.paths:
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass
        self.paths = []


def mount_tmpfs(mnt, size_mb):
    """Returns None when mounted, else (skip: bool, reason)."""
    if os.geteuid() != 0:
        return True, f"mounting a tmpfs needs root (running as uid {os.geteuid()})"
    if shutil.which("mount") is None:
        return True, "no mount command on this machine"
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0755", "tmpfs", mnt], capture_output=True, timeout=30)
    if r.returncode == 0:
        return None
    text = (r.stderr + r.stdout).decode(errors="replace").strip()
    low = text.lower()
    if any(s in low for s in ("permission denied", "not permitted", "must be superuser", "only root", "are not allowed")):
        return True, f"mount is not permitted here: {text}"
    return False, f"mount -t tmpfs failed ({r.returncode}): {text}"


def unmount(mnt):
    for args in (["umount", mnt], ["umount", "-l", mnt]):
        r = subprocess.run(args, capture_output=True, timeout=60)
        if r.returncode == 0:
            return True
        time.sleep(0.5)
    return False


def is_mounted(mnt):
    with open("/proc/self/mounts") as f:
        return any(line.split()[1] == mnt for line in f if len(line.split()) > 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=int, default=48, help="tmpfs size in MB (default 48)")
    ap.add_argument("--big-mb", type=int, default=12, help="size of the too-big upload in MB (default 12)")
    ap.add_argument("--deadline", type=float, default=240.0, help="seconds for the whole run (default 240)")
    ap.add_argument("--request-timeout", type=float, default=45.0, help="longest wait for one answer, in seconds (default 45)")
    ap.add_argument("--rounds", type=int, default=10, help="refused uploads at random fill levels, and just-fitting uploads (default 10 each)")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--bin", default=None, help="zyk binary (default $ZYK_BIN or .build/debug/zyk)")
    ap.add_argument("--keep", action="store_true", help="keep the server log folder")
    args = ap.parse_args()

    if args.big_mb < 2 or args.size_mb < 2 * args.big_mb + 16 or args.rounds < 0:
        ap.error("need --big-mb >= 2 and --size-mb >= 2 * --big-mb + 16 (both big uploads are kept once space is freed)")
    seed = args.seed if args.seed is not None else int(time.time() * 1000) % (2 ** 31)
    rng = random.Random(seed)
    binary = zp.find_binary(args.bin)
    res = zp.Results("R6")
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(int(args.deadline))
    t0 = time.monotonic()
    tmo = args.request_timeout

    work = tempfile.mkdtemp(prefix="zyk-r6-")
    mnt = os.path.join(work, "mnt")
    os.mkdir(mnt)
    m = mount_tmpfs(mnt, args.size_mb)
    if m is not None:
        skip, reason = m
        shutil.rmtree(work, ignore_errors=True)
        signal.alarm(0)
        if skip:
            zp.log(f"SKIP R6: {reason}")
            zp.log("0 passed, 0 failed")
            return 0
        zp.log(f"FAIL R6 set-up: {reason}")
        zp.log("0 passed, 1 failed")
        return 1

    root = os.path.join(mnt, "data")
    try:
        binary = zp.snapshot_binary(binary, os.path.join(work, "bin"))
    except SystemExit as e:
        unmount(mnt)
        shutil.rmtree(work, ignore_errors=True)
        zp.log(f"FAIL R6 set-up: {e}")
        zp.log("0 passed, 1 failed")
        return 1
    srv = zp.Server(binary, root, zp.free_port(), os.path.join(work, "server.log"))
    filler = Filler(mnt)
    scanner = zp.BlobScanner(root)
    notes = []
    zp.log(f"R6: tmpfs {args.size_mb} MB at {mnt}, big upload {args.big_mb} MB, seed {seed}, port {srv.port}")

    def alive_and_healthy(what):
        alive = srv.alive()
        st = None
        if alive:
            try:
                st, _, _ = zp.request(srv.port, "GET", "/healthz", timeout=10)
            except OSError as e:
                st = repr(e)
        return res.check(alive and st == 200, f"{what}: server still up, /healthz 200",
                         f"process alive {alive}, /healthz {st}" + ("" if alive else f", exit {srv.proc.returncode}"))

    def disk_problems(absent_sha=None):
        """No tmp/upload-*, no partial blob, catalog consistent, nothing stored for `absent_sha`."""
        stale = zp.tmp_uploads(root)
        files, problems = scanner.scan()
        cat = zp.check_catalog(root, files)
        bad = list(problems) + [f"tmp/{n}" for n in stale] + cat["orphans"]
        if cat["integrity"] != "ok":
            bad.append(f"integrity_check: {cat['integrity'][:200]}")
        if cat["fk"]:
            bad.append(f"foreign_key_check: {cat['fk'][:3]}")
        if absent_sha and (absent_sha in files or absent_sha in cat["blob_rows"]):
            bad.append(f"the refused bytes {absent_sha[:12]}… are in the store (file {absent_sha in files}, row {absent_sha in cat['blob_rows']})")
        return bad, files, cat

    def clean_disk(what, absent_sha=None):
        bad, files, cat = disk_problems(absent_sha)
        res.check(not bad, f"{what}: no partial blob, no tmp/upload-* left, catalog consistent", "; ".join(bad[:5]))
        return files, cat

    def post_blob(data, token, timeout=None):
        return zp.stream_request(srv.port, "POST", "/v1/blobs", zp.auth(token, "application/octet-stream"), data, timeout=timeout or tmo)

    def post_resource(data, token, title, filename="kangfu.mp4", timeout=None):
        ctype, body = zp.multipart_body(zp.resource_metadata(title), filename, data)
        return zp.stream_request(srv.port, "POST", "/v1/resources", zp.auth(token, ctype), body, timeout=timeout or tmo)

    def timed(fn, *a, **kw):
        t = time.monotonic()
        out = fn(*a, **kw)
        return out, time.monotonic() - t

    def resource_count():
        db = zp.open_catalog_ro(root)
        try:
            return db.execute("SELECT count(*) FROM resources").fetchone()[0]
        finally:
            db.close()

    def small_upload_ok_or_507(what, token):
        small = rng.randbytes(64 * KB)
        (r, _, err), dt = timed(post_blob, small, token)
        if r is not None and r.complete and r.status == 201:
            ok = r.json().get("sha256") == hashlib.sha256(small).hexdigest()
            return res.check(ok, f"{what}: a small upload succeeds with the right sha256", f"{dt:.2f} s")
        ok, why = zp.is_problem(r, 507, "insufficient-storage")
        return res.check(ok, f"{what}: a small upload succeeds or fails cleanly with 507", f"{why}; {err or ''}")

    aborted = None
    try:
        srv.start()
        srv.wait_ready()
        token = zp.make_teacher(binary, root)
        size_total = free_bytes(mnt)

        # the small video blob the JSON creates in phase 3 refer to
        ref_video = zp.video_bytes(rng, 256 * KB)
        ref_sha = hashlib.sha256(ref_video).hexdigest()
        r, _, err = post_blob(ref_video, token)
        ok = r is not None and r.status == 201 and r.json().get("sha256") == ref_sha
        res.check(ok, "baseline: upload of a small video blob answers 201 with its sha256", "" if ok else f"{r!r} {err or ''}")

        # ---------------------------------------------------------------- 1. too big for what is left
        big = rng.randbytes(args.big_mb * MB)
        big_sha = hashlib.sha256(big).hexdigest()
        big_video = zp.video_bytes(rng, args.big_mb * MB)
        big_video_sha = hashlib.sha256(big_video).hexdigest()
        leave = args.big_mb * MB // 2
        free_before = filler.fill_to(leave)
        zp.log(f"  filled: {free_before / MB:.1f} MB free of {size_total / MB:.1f} MB; uploading {args.big_mb} MB")

        (r, sent, err), dt = timed(post_blob, big, token)
        ok, why = zp.is_problem(r, 507, "insufficient-storage")
        res.check(ok, "POST /v1/blobs larger than the free space answers 507 insufficient-storage",
                  f"{why}; {dt:.2f} s, {sent / MB:.1f} MB sent" + (f"; client: {err}" if err and not ok else ""))
        clean_disk("after the refused raw upload", absent_sha=big_sha)
        free_after = free_bytes(mnt)
        res.check(free_after >= free_before - 512 * KB, "the refused raw upload's temporary space is given back",
                  f"{free_before / KB:.0f} KB free before, {free_after / KB:.0f} KB after")
        alive_and_healthy("after the refused raw upload")
        small_upload_ok_or_507("after the refused raw upload", token)

        n_before = resource_count()
        free_before = free_bytes(mnt)
        (r, sent, err), dt = timed(post_resource, big_video, token, "康复训练示范 (磁盘满)")
        ok, why = zp.is_problem(r, 507, "insufficient-storage")
        res.check(ok, "multipart POST /v1/resources larger than the free space answers 507 insufficient-storage",
                  f"{why}; {dt:.2f} s, {sent / MB:.1f} MB sent" + (f"; client: {err}" if err and not ok else ""))
        clean_disk("after the refused multipart upload", absent_sha=big_video_sha)
        free_after = free_bytes(mnt)
        res.check(free_after >= free_before - 512 * KB, "the refused multipart upload's temporary space is given back",
                  f"{free_before / KB:.0f} KB free before, {free_after / KB:.0f} KB after")
        n_after = resource_count()
        res.check(n_after == n_before, "the refused multipart upload created no resource", f"{n_before} -> {n_after}")
        alive_and_healthy("after the refused multipart upload")
        small_upload_ok_or_507("after the refused multipart upload", token)

        # the same at other fill levels (including none left at all), alternating the two routes
        varied_bad, varied_sent = [], []
        for k in range(args.rounds):
            filler.remove()
            left = filler.fill_to(0 if k == 0 else rng.randint(0, args.big_mb * MB - MB))
            if k % 2 == 0:
                data = rng.randbytes(args.big_mb * MB)
                (r, sent, err), dt = timed(post_blob, data, token)
            else:
                data = zp.video_bytes(rng, args.big_mb * MB)
                (r, sent, err), dt = timed(post_resource, data, token, f"康复训练示范 (磁盘满 {k})")
            route = "POST /v1/blobs" if k % 2 == 0 else "multipart POST /v1/resources"
            ok, why = zp.is_problem(r, 507, "insufficient-storage")
            if not ok:
                varied_bad.append(f"round {k} ({route}, {left // KB} KB free): {why}; client: {err}")
            bad, _, _ = disk_problems(hashlib.sha256(data).hexdigest())
            varied_bad += [f"round {k} ({route}, {left // KB} KB free): {b}" for b in bad[:3]]
            if not srv.alive():
                varied_bad.append(f"round {k}: the server died (exit {srv.proc.returncode})")
                break
            varied_sent.append(f"{left // KB}")
        res.check(not varied_bad, f"{args.rounds} more refused uploads at random fill levels: 507 insufficient-storage, nothing left behind",
                  "; ".join(varied_bad[:5]) or f"KB free before each: {', '.join(varied_sent)}")
        filler.remove()

        # ---------------------------------------------------------------- 2. space freed
        filler.remove()
        (r, _, err), dt = timed(post_blob, big, token)
        ok = r is not None and r.complete and r.status == 201 and r.json().get("sha256") == big_sha and r.json().get("size") == len(big)
        bp = zp.blob_path(root, big_sha)
        ok = ok and os.path.exists(bp) and zp.sha256_file(bp) == big_sha
        res.check(ok, "space freed: the same raw upload answers 201 with the right sha256", f"{r!r}; {dt:.2f} s {err or ''}" if not ok else f"{dt:.2f} s")
        (r, _, err), dt = timed(post_resource, big_video, token, "康复训练示范 (空间已释放)")
        ok = r is not None and r.complete and r.status == 201
        detail = f"{r!r} {err or ''}"
        big_resource_id = None
        if ok:
            doc = r.json()
            big_resource_id = doc["id"]
            got = [(f.get("sha256"), f.get("size")) for f in doc.get("files", [])]
            ok = got == [(big_video_sha, len(big_video))]
            detail = f"files {got}"
            if ok:
                st, _, b = zp.request(srv.port, "GET", f"/v1/resources/{doc['id']}/files/kangfu.mp4", zp.auth(token), timeout=tmo)
                ok = st == 200 and hashlib.sha256(b).hexdigest() == big_video_sha
                detail = f"download {st}, {len(b)} bytes; {dt:.2f} s"
        res.check(ok, "space freed: the same multipart upload answers 201, the file downloads byte-exact", detail)
        clean_disk("after the uploads with space freed")

        # ---------------------------------------------------------------- 3. SQLite needs space
        desc = ("上肢康复训练的示范视频，包含关节活动度训练、肌力训练与日常生活活动训练。" * 60)[:1600]
        created, answers, failures, slow = [], {}, [], []
        first_5xx = None
        free_start = filler.fill_to(rng.randint(16, 256) * KB)
        zp.log(f"  filled to {free_start / KB:.0f} KB free; creating resources until SQLite runs out of space")
        extra_after_5xx = 3
        for k in range(400):
            meta = zp.resource_metadata(f"磁盘将满 {k}", description=desc)
            meta["files"] = [{"sha256": ref_sha, "name": "kangfu.mp4", "role": "primary"}]
            body = json.dumps(meta, ensure_ascii=False).encode()
            (r, _, err), dt = timed(zp.stream_request, srv.port, "POST", "/v1/resources",
                                    zp.auth(token, "application/json"), body, tmo)
            if dt > 20:
                slow.append(f"create {k}: {dt:.1f} s")
            if r is None or not r.complete:
                failures.append(f"create {k}: no complete answer ({err}) after {dt:.1f} s; {r!r}")
                break
            if r.status == 201:
                created.append(r.json()["id"])
                answers["201"] = answers.get("201", 0) + 1
                continue
            ok, why = zp.is_problem(r)
            key = f"{r.status} {r.json().get('type', '?') if ok else '(not a problem document)'}"
            answers[key] = answers.get(key, 0) + 1
            if not ok or r.status < 500:
                failures.append(f"create {k}: {why}")
            if first_5xx is None:
                first_5xx = (k, r.status, r.json().get("type") if ok else None, r.json().get("detail") if ok else r.body[:200])
            if not srv.alive():
                failures.append(f"create {k}: the server died (exit {srv.proc.returncode})")
                break
            extra_after_5xx -= 1
            if extra_after_5xx < 0:
                break
        zp.log(f"  answers while SQLite filled the disk: {answers}; first 5xx: {first_5xx}")
        res.check(first_5xx is not None, "SQLite ran out of space during resource creation (the case was exercised)",
                  f"{len(created)} created before the first 5xx")
        res.check(not failures, "every answer with the disk full was 201 or a clean 5xx problem document", "; ".join(failures[:5]))
        res.check(not slow, "no answer with the disk full took more than 20 s (no hang)", "; ".join(slow[:5]))
        if first_5xx is not None and first_5xx[1] != 507:
            notes.append(f"SQLite out of space answers {first_5xx[1]} {first_5xx[2]} (507 insufficient-storage would be better): {first_5xx[3]!r}")
        alive_and_healthy("with SQLite out of space")

        # take every last page, then small writes of each kind
        free_now = filler.fill_all()
        zp.log(f"  filled completely: {free_now} bytes free")
        (r, _, err), dt = timed(post_blob, rng.randbytes(8 * KB), token)
        ok, why = zp.is_problem(r, 507, "insufficient-storage")
        res.check(ok, "full disk: a small POST /v1/blobs answers 507 insufficient-storage", f"{why}; {dt:.2f} s {err or ''}")
        (r, _, err), dt = timed(post_resource, zp.video_bytes(rng, 8 * KB), token, "磁盘已满 小文件")
        ok, why = zp.is_problem(r)
        ok = ok and r.status >= 500
        res.check(ok, "full disk: a small multipart create answers a clean 5xx problem document", f"{why}; {dt:.2f} s {err or ''}")
        if ok and r.status != 507:
            notes.append(f"full disk: a small multipart create answers {r.status} {r.json().get('type')}: {r.json().get('detail')!r}")
        alive_and_healthy("with the disk completely full")
        st, _, b = zp.request(srv.port, "GET", f"/v1/resources/{big_resource_id}/files/kangfu.mp4", zp.auth(token), timeout=tmo)
        res.check(st == 200 and hashlib.sha256(b).hexdigest() == big_video_sha, "full disk: reads still work (GET a resource's file)",
                  f"status {st}, {len(b)} bytes")
        st, _, b = zp.request(srv.port, "GET", "/readyz", timeout=tmo)
        zp.log(f"  /readyz with the disk full: {st} {b[:200]!r}")
        n_full = resource_count()

        # free the space again
        filler.remove()
        meta = zp.resource_metadata("空间已释放", description=desc)
        meta["files"] = [{"sha256": ref_sha, "name": "kangfu.mp4", "role": "primary"}]
        (r, _, err), dt = timed(zp.stream_request, srv.port, "POST", "/v1/resources", zp.auth(token, "application/json"),
                                json.dumps(meta, ensure_ascii=False).encode(), tmo)
        res.check(r is not None and r.status == 201, "space freed: creating a resource works again",
                  f"{dt:.2f} s" if r is not None and r.status == 201 else f"{r!r} {err or ''}; {dt:.2f} s")
        if r is not None and r.status == 201:
            created.append(r.json()["id"])
        small_upload_ok_or_507("space freed", token)
        st, _, b = zp.request(srv.port, "GET", "/readyz", timeout=tmo)
        res.check(st == 200, "space freed: /readyz answers 200", f"{st} {b[:200]!r}")
        lost = []
        for rid in created:
            st, _, b = zp.request(srv.port, "GET", f"/v1/resources/{rid}", zp.auth(token), timeout=tmo)
            if st != 200 or [f.get("sha256") for f in json.loads(b).get("files", [])] != [ref_sha]:
                lost.append(f"{rid}: {st}")
        res.check(not lost, f"every resource answered 201 is still there ({len(created)})", "; ".join(lost[:5]))
        n_end = resource_count()
        res.check(n_end == n_full + 1 and n_full >= len(created) - 1,
                  "the refused creates left no resource rows behind",
                  f"{n_full} rows with the disk full, {n_end} after one more create, {len(created)} answered 201 in all")
        clean_disk("after the disk-full episode")
        alive_and_healthy("after the disk-full episode")

        # the blob's bytes fit but the catalog row does not: a clean answer, and the retry works
        fit_bad, fit_answers, fit_unref = [], {}, 0
        for k in range(args.rounds):
            filler.remove()
            free_now = filler.fill_to(1 * MB)
            size = max(4 * KB, free_now - rng.randint(0, 24) * KB)
            if k % 2 == 0:
                data = rng.randbytes(size)
                (r, _, err), dt = timed(post_blob, data, token)
            else:
                data = zp.video_bytes(rng, size)
                (r, _, err), dt = timed(post_resource, data, token, f"刚好放得下 {k}")
            sha = hashlib.sha256(data).hexdigest()
            tag = f"round {k} ({'POST /v1/blobs' if k % 2 == 0 else 'multipart'}, {size} bytes, {free_now} free)"
            if r is None or not r.complete:
                fit_bad.append(f"{tag}: no complete answer ({err}) after {dt:.1f} s")
            elif r.status != 201:
                ok, why = zp.is_problem(r)
                if not ok or r.status < 500:
                    fit_bad.append(f"{tag}: {why}")
            if r is not None and r.complete:
                key = str(r.status) if r.status == 201 else f"{r.status} {r.json().get('type', '').rsplit('/', 1)[-1]}"
                fit_answers[key] = fit_answers.get(key, 0) + 1
            bad, files, cat = disk_problems()
            if sha in cat["unreferenced"]:
                fit_unref += 1
            fit_bad += [f"{tag}: {b}" for b in bad[:3]]
            if not srv.alive():
                fit_bad.append(f"{tag}: the server died (exit {srv.proc.returncode})")
                break
            filler.remove()
            if k % 2 == 0:
                r2, _, err2 = post_blob(data, token)
                ok = r2 is not None and r2.status == 201 and r2.json().get("sha256") == sha
            else:
                r2, _, err2 = post_resource(data, token, f"刚好放得下 {k} (重试)")
                ok = r2 is not None and r2.status == 201 and [f.get("sha256") for f in r2.json().get("files", [])] == [sha]
            if not ok:
                fit_bad.append(f"{tag}: retry with space freed answered {r2!r} {err2 or ''}")
            else:
                db = zp.open_catalog_ro(root)
                try:
                    row = db.execute("SELECT size FROM blobs WHERE sha256 = ?", (sha,)).fetchone()
                finally:
                    db.close()
                if row is None or row[0] != len(data):
                    fit_bad.append(f"{tag}: after the retry the blobs row is {row}")
        res.check(not fit_bad, f"{args.rounds} uploads that just fit the disk (the catalog may not): 201 or clean 5xx, nothing partial, retry 201",
                  "; ".join(fit_bad[:5]) or f"answers {fit_answers}; {fit_unref} left a complete blob file without a catalog row (not partial; recorded by the retry)")
        clean_disk("after the just-fitting uploads")

        # ---------------------------------------------------------------- 4. stop, start again
        rc, secs, graceful = srv.stop()
        res.check(graceful and rc == 0, "SIGTERM stops the server with exit code 0", f"exit {rc} after {secs:.1f} s")
        srv.start()
        srv.wait_ready()
        r, _, err = post_blob(rng.randbytes(32 * KB), token)
        ok = r is not None and r.status == 201
        res.check(ok, "restarted on the same data root: an upload answers 201", "" if ok else f"{r!r} {err or ''}")
        rc, secs, graceful = srv.stop()
        db = zp.open_catalog_ro(root)
        try:
            integ = db.execute("PRAGMA integrity_check").fetchone()[0]
            fk = db.execute("PRAGMA foreign_key_check").fetchall()
        finally:
            db.close()
        res.check(graceful and rc == 0 and integ == "ok" and not fk, "final stop exit 0; catalog integrity_check ok, foreign_key_check empty",
                  f"exit {rc}, integrity {integ}, fk {fk[:3]}")
    except HardTimeout as e:
        aborted = f"{e} ({args.deadline:g} s)"
    except KeyboardInterrupt as e:
        aborted = f"interrupted ({e})"
    except Exception as e:
        aborted = f"{type(e).__name__}: {e}"
    finally:
        signal.alarm(0)
        if srv.alive():
            srv.kill9()
        filler.remove()
        unmounted = unmount(mnt)
    if aborted:
        res.check(False, "run completed", aborted)
    res.check(unmounted and not is_mounted(mnt), "the tmpfs is unmounted", mnt)
    elapsed = time.monotonic() - t0
    for n in notes:
        zp.log(f"NOTE {n}")
    zp.log(f"R6: {elapsed:.1f} s (seed {seed})")
    if res.failed:
        zp.log("server log tail:\n" + srv.log_tail(30))
    if args.keep:
        zp.log(f"kept {work}")
    elif not is_mounted(mnt):
        shutil.rmtree(work, ignore_errors=True)
    zp.log(res.closing_line())
    return 1 if res.failed else 0


if __name__ == "__main__":
    sys.exit(main())
