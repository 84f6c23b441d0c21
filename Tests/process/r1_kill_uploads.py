#!/usr/bin/env python3
"""R1 (plain uploads): `kill -9` of the server at random moments during uploads, then restart.

Each round starts an upload (alternately POST /v1/blobs with a raw body and a multipart
POST /v1/resources; 1-24 MB of random bytes), kills the server with SIGKILL at a random moment
(before the body, in the middle of it, just after it was sent, or just after the answer came),
restarts it, waits for /readyz, and checks:

  (a) every file under blobs/ hashes to its own name and sits at ab/cd/<sha256> (0 partial blobs);
  (b) every `blobs` / `version_files` row has its blob file with the recorded size (0 orphan rows);
  (c) PRAGMA integrity_check = ok and PRAGMA foreign_key_check is empty;
  (e) no tmp/upload-* file is left after the restart;
  (g) an upload answered 201 before the kill is still there after the restart;
  (d) re-sending the same bytes succeeds and returns the right sha256 (resources: the file
      downloads byte-exact), after which the blob has its file and its catalog row.

At the end the server is stopped with SIGTERM (must exit 0), every blob is hashed again without
the cache, the catalog is checked with the server stopped, and `zyk verify` runs if the build
has it. Prints a summary line and the closing line "N passed, M failed"; exits 1 on any failure.

Standard library only; talks to 127.0.0.1 only.
"""

import sys

sys.dont_write_bytecode = True

import argparse
import hashlib
import json
import os
import signal
import socket
import statistics
import subprocess
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zykproc as zp  # noqa: E402

MODES = [("before", 0.10), ("during", 0.60), ("after-send", 0.15), ("after-response", 0.15)]


HardTimeout = zp.HardTimeout


def pick_mode(rng):
    x = rng.random()
    for name, p in MODES:
        if x < p:
            return name
        x -= p
    return MODES[-1][0]


def build_upload(i, kind, rng, size, token):
    """(path, headers, body, expected sha256, filename or None)."""
    if kind == "blob":
        data = rng.randbytes(size)
        return "/v1/blobs", zp.auth(token, "application/octet-stream"), data, data, None
    data = zp.video_bytes(rng, size)
    filename = f"kangfu-demo-{i:04d}.mp4"
    ctype, body = zp.multipart_body(zp.resource_metadata(f"康复训练示范 {i}"), filename, data)
    return "/v1/resources", zp.auth(token, ctype), body, data, filename


def killed_upload(srv, path, headers, body, mode, rng):
    """Sends the request and SIGKILLs the server at a moment chosen by `mode`. Returns
    (Response or None read from the socket, body bytes sent before the kill, problem text or None)."""
    sock = socket.create_connection((zp.HOST, srv.port), timeout=30)
    raw = bytearray()
    problem = None
    sent = 0
    try:
        sock.sendall(zp.request_head("POST", path, headers, len(body)))
        mv = memoryview(body)
        try:
            if mode == "before":
                time.sleep(rng.uniform(0, 0.005))
            elif mode == "during":
                stop = rng.randint(1, len(body) - 1)
                while sent < stop:
                    n = min(256 * 1024, stop - sent)
                    sock.sendall(mv[sent:sent + n])
                    sent += n
                time.sleep(rng.uniform(0, 0.02))
            else:
                sock.sendall(mv)
                sent = len(body)
                if mode == "after-send":
                    # watch for the answer while waiting, so a 201 sent before the kill is seen
                    end = time.monotonic() + rng.uniform(0, 0.04)
                    sock.settimeout(0.005)
                    while time.monotonic() < end:
                        try:
                            d = sock.recv(65536)
                            if not d:
                                break
                            raw += d
                        except socket.timeout:
                            pass
                else:  # after-response
                    sock.settimeout(30)
                    while True:
                        resp = zp.parse_response(bytes(raw))
                        if resp is not None and resp.complete:
                            break
                        d = sock.recv(65536)
                        if not d:
                            break
                        raw += d
                    time.sleep(rng.uniform(0, 0.02))
        except (BrokenPipeError, ConnectionResetError, socket.timeout) as e:
            problem = f"the connection failed before the kill ({mode}, {sent} of {len(body)} body bytes sent): {e!r}"
        srv.kill9()
        # read whatever the server managed to send before it died
        sock.settimeout(2)
        try:
            while True:
                d = sock.recv(65536)
                if not d:
                    break
                raw += d
        except (ConnectionResetError, socket.timeout, OSError):
            pass
    finally:
        sock.close()
        if srv.alive():
            srv.kill9()
    return zp.parse_response(bytes(raw)), sent, problem


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    zp.KillRun.add_arguments(ap)
    ap.add_argument("--min-mb", type=float, default=1.0, help="smallest upload in MB (default 1)")
    ap.add_argument("--max-mb", type=float, default=24.0, help="largest upload in MB (default 24)")
    args = ap.parse_args()

    if not (0 < args.min_mb <= args.max_mb) or args.kills < 1:
        ap.error("need --kills >= 1 and 0 < --min-mb <= --max-mb")

    def space_needed(work):
        # every round keeps about one upload's bytes (the re-upload), so the run needs roughly this much
        need = int(args.kills * (args.min_mb + args.max_mb) / 2 * zp.MB * 1.2) + 64 * zp.MB
        st = os.statvfs(work)
        if st.f_bavail * st.f_frsize >= need:
            return None
        return (f"{need / zp.MB:.0f} MB needed in {os.path.dirname(work)}, only {st.f_bavail * st.f_frsize / zp.MB:.0f} MB free "
                "(use --workdir, or fewer --kills / a smaller --max-mb)")

    run = zp.KillRun("R1", args, space_needed)
    if run.failed:
        return 1
    seed, rng, res, built, binary, work, root, srv = run.seed, run.rng, run.res, run.built, run.binary, run.work, run.root, run.srv
    zp.log(f"R1: {args.kills} kills, uploads {args.min_mb:g}-{args.max_mb:g} MB, seed {seed}, deadline {args.deadline:g} s")
    zp.log(f"R1: binary {built} (run from a copy), data root {root}, port {srv.port}")

    t0 = time.monotonic()
    stats = {
        "kills": 0, "correct": 0, "partial": set(), "orphans": set(), "integrity_bad": [], "fk_bad": [],
        "stale_tmp": [], "acked": 0, "ack_lost": [], "early": [], "final_bad": [], "unref_after": [],
        "restart": [], "modes": {m: 0 for m, _ in MODES}, "kinds": {"blob": 0, "resource": 0},
        "orphan_files_seen": 0, "tmp_left_by_kill": 0, "bytes_sent": 0, "bytes_total": 0,
    }
    scanner = zp.BlobScanner(root)
    deadline_hit = False
    aborted = None
    try:
        srv.start()
        srv.wait_ready()
        token = zp.make_teacher(binary, root)
        lo, hi = int(args.min_mb * zp.MB), int(args.max_mb * zp.MB)

        for i in range(args.kills):
            if time.monotonic() - t0 > args.deadline:
                deadline_hit = True
                break
            kind = "blob" if i % 2 == 0 else "resource"
            mode = pick_mode(rng)
            size = rng.randint(lo, hi)
            path, headers, body, data, filename = build_upload(i, kind, rng, size, token)
            expected = hashlib.sha256(data).hexdigest()
            stats["modes"][mode] += 1
            stats["kinds"][kind] += 1

            resp, sent, problem = killed_upload(srv, path, headers, body, mode, rng)
            stats["kills"] += 1
            stats["bytes_sent"] += sent
            stats["bytes_total"] += len(body)
            tag = f"kill {i + 1} ({kind}, {mode}, {sent}/{len(body)} bytes)"
            if problem:
                stats["early"].append(f"{tag}: {problem}; answer {resp!r}")
            acked = None
            if resp is not None and resp.complete:
                if resp.status == 201:
                    try:
                        doc = resp.json()
                        acked = doc.get("id") if kind == "resource" else doc.get("sha256")
                    except ValueError:
                        stats["early"].append(f"{tag}: 201 with a body that is not JSON: {resp.body[:200]!r}")
                else:
                    stats["early"].append(f"{tag}: the server answered {resp.status} before the kill: {resp.body[:300]!r}")
            if mode == "after-response" and acked is None:
                stats["early"].append(f"{tag}: no 201 before the kill: {resp!r}")

            stats["tmp_left_by_kill"] += len(zp.tmp_uploads(root))
            # restart
            srv.start()
            stats["restart"].append(srv.wait_ready())
            # (e) stale temp files: nothing is in flight, so any upload-* is stale
            stale = zp.tmp_uploads(root)
            if stale:
                stats["stale_tmp"].append(f"{tag}: {stale}")
            # (a) partial blobs
            files, problems = scanner.scan()
            for p in problems:
                stats["partial"].add(p)
            # (b) orphan rows, (c) integrity
            cat = zp.check_catalog(root, files)
            for o in cat["orphans"]:
                stats["orphans"].add(o)
            if cat["integrity"] != "ok":
                stats["integrity_bad"].append(f"{tag}: {cat['integrity'][:300]}")
            if cat["fk"]:
                stats["fk_bad"].append(f"{tag}: {cat['fk'][:5]}")
            stats["orphan_files_seen"] += len(cat["unreferenced"])
            # (g) acknowledged before the kill -> still there
            if acked is not None:
                stats["acked"] += 1
                if kind == "blob":
                    if acked != expected or cat["blob_rows"].get(acked) != len(data) or files.get(acked) != len(data):
                        stats["ack_lost"].append(f"{tag}: 201 sha256 {acked} (expected {expected}) row {cat['blob_rows'].get(acked)} file {files.get(acked)}")
                else:
                    st, _, b = zp.request(srv.port, "GET", f"/v1/resources/{acked}", zp.auth(token))
                    got = None
                    if st == 200:
                        got = [f.get("sha256") for f in json.loads(b).get("files", [])]
                    if st != 200 or got != [expected]:
                        stats["ack_lost"].append(f"{tag}: resource {acked} answered 201 before the kill; now GET -> {st}, files {got}")

            # (d) the same bytes again
            r, _, err = zp.stream_request(srv.port, "POST", path, headers, body, timeout=60)
            ok, why = False, ""
            if r is None or not r.complete or r.status != 201:
                why = f"re-upload answered {r!r} ({err})"
            else:
                doc = r.json()
                if kind == "blob":
                    ok = doc.get("sha256") == expected and doc.get("size") == len(data)
                    why = f"answered sha256 {doc.get('sha256')} size {doc.get('size')}"
                else:
                    got = [(f.get("sha256"), f.get("size")) for f in doc.get("files", [])]
                    ok = got == [(expected, len(data))]
                    why = f"answered files {got}"
                    if ok:
                        name = urllib.parse.quote(filename)
                        st, _, b = zp.request(srv.port, "GET", f"/v1/resources/{doc['id']}/files/{name}", zp.auth(token), timeout=60)
                        ok = st == 200 and hashlib.sha256(b).hexdigest() == expected
                        why = f"download {st}, {len(b)} bytes"
                if ok:
                    # the blob now has both its file and its row
                    db = zp.open_catalog_ro(root)
                    try:
                        row = db.execute("SELECT size FROM blobs WHERE sha256 = ?", (expected,)).fetchone()
                    finally:
                        db.close()
                    bp = zp.blob_path(root, expected)
                    if row is None or row[0] != len(data) or not os.path.exists(bp) or zp.sha256_file(bp) != expected:
                        ok = False
                        why = f"after the re-upload: row {row}, file exists {os.path.exists(bp)}"
            if ok:
                stats["correct"] += 1
            else:
                stats["final_bad"].append(f"{tag}: {why}")
            if (i + 1) % 20 == 0:
                zp.log(f"  {i + 1} kills, {stats['correct']} correct, {time.monotonic() - t0:.0f} s")
    except HardTimeout as e:
        aborted = str(e)
    except KeyboardInterrupt as e:
        aborted = f"interrupted ({e})"
    except Exception as e:  # report, then clean up
        aborted = f"{type(e).__name__}: {e}"

    elapsed_loop = time.monotonic() - t0
    stop_rc, stop_s, graceful = (None, 0.0, True)
    final_problems, final_cat = [], None
    verify = None
    try:
        stop_rc, stop_s, graceful = srv.stop()
        leftover = zp.tmp_uploads(root)
        files, final_problems = scanner.scan(use_cache=False) if os.path.isdir(root) else ({}, ["no data root"])
        final_problems = list(final_problems) + [f"tmp/{n} left after a graceful stop" for n in leftover]
        if os.path.exists(os.path.join(root, "catalog.sqlite")):
            final_cat = zp.check_catalog(root, files)
        if zp.has_subcommand(binary, "verify"):
            r = subprocess.run([binary, "verify", "--data-root", root], capture_output=True, timeout=300)
            verify = (r.returncode, (r.stdout + r.stderr).decode(errors="replace")[-2000:])
    except Exception as e:
        final_problems.append(f"final checks failed: {type(e).__name__}: {e}")
    finally:
        signal.alarm(0)
        if srv.alive():
            srv.kill9()

    n = stats["kills"]
    elapsed = time.monotonic() - t0

    def ex(items, k=5):
        items = sorted(items) if isinstance(items, set) else items
        return "; ".join(items[:k]) + (f" (+{len(items) - k} more)" if len(items) > k else "")

    zp.log("")
    if aborted:
        res.check(False, "run completed", aborted)
    res.check(not deadline_hit and n == args.kills, f"{args.kills} kills within the {args.deadline:g} s deadline",
              f"{n} kills in {elapsed_loop:.1f} s" + ("; DEADLINE HIT" if deadline_hit else ""))
    res.check(not stats["early"], "every killed request was still in progress or answered 201 when killed", ex(stats["early"]))
    res.check(stats["correct"] == args.kills and n > 0, f"final sha256 correct {stats['correct']}/{args.kills}", ex(stats["final_bad"]))
    res.check(not stats["partial"], f"0 partial blobs after every restart", ex(stats["partial"]))
    res.check(not stats["orphans"], f"0 orphan rows after every restart", ex(stats["orphans"]))
    res.check(not stats["integrity_bad"], "integrity_check ok after every restart", ex(stats["integrity_bad"]))
    res.check(not stats["fk_bad"], "foreign_key_check empty after every restart", ex(stats["fk_bad"]))
    res.check(not stats["stale_tmp"], "0 stale tmp/upload-* files after every restart",
              ex(stats["stale_tmp"]) or f"{stats['tmp_left_by_kill']} left by the kills, all removed at restart")
    res.check(not stats["ack_lost"], f"uploads answered 201 before the kill survive it ({stats['acked']} such)", ex(stats["ack_lost"]))
    rs = stats["restart"]
    res.check(len(rs) == n, "server restarted and answered /readyz after every kill",
              f"median {statistics.median(rs):.2f} s, max {max(rs):.2f} s" if rs else "no restarts")
    res.check(graceful and stop_rc == 0, "SIGTERM stops the server with exit code 0", f"exit {stop_rc} after {stop_s:.1f} s")
    res.check(not final_problems, "final full re-hash: every blob hashes to its name, no temp files left", ex(final_problems))
    if final_cat is not None:
        fc_ok = final_cat["integrity"] == "ok" and not final_cat["fk"] and not final_cat["orphans"] and not final_cat["unreferenced"]
        res.check(fc_ok, "final catalog (server stopped): integrity ok, fk empty, 0 orphan rows, every blob file has its row",
                  f"integrity {final_cat['integrity'][:100]}, fk {final_cat['fk'][:3]}, orphans {ex(final_cat['orphans'], 3)}, "
                  f"unreferenced files {final_cat['unreferenced'][:3]}; {len(final_cat['blob_rows'])} blob rows")
    else:
        res.check(False, "final catalog check", "catalog.sqlite missing")
    if verify is not None:
        res.check(verify[0] == 0, "zyk verify on the data root exits 0", f"exit {verify[0]}: {verify[1][-500:]}")
    else:
        zp.log("NOTE zyk verify is not in this build; skipped")

    zp.log("")
    zp.log(f"R1: kill modes {stats['modes']}, kinds {stats['kinds']}, {stats['bytes_sent'] / zp.MB:.0f} of "
           f"{stats['bytes_total'] / zp.MB:.0f} MB of bodies sent before kills, {stats['acked']} acknowledged before the kill, "
           f"blob files seen without a row right after a restart: {stats['orphan_files_seen']} (allowed; the re-upload records them)")
    zp.log(f"R1: {n} kills, {stats['correct']}/{args.kills} sha256 correct, {len(stats['partial'])} partial blobs, "
           f"{len(stats['orphans'])} orphan rows, {elapsed:.1f} s (seed {seed})")
    return run.finish(args.keep)


if __name__ == "__main__":
    sys.exit(main())
