#!/usr/bin/env python3
"""Bulk import through the zyk CLI: R13 (hostile zips), kill -9 midway, bad rows.

  1. R13: each of these zips is refused within 2 s (wall time of the zyk process) with a plain
     message naming the problem, imports nothing, leaves no ROOT/tmp/import-* behind and keeps
     ROOT/tmp (polled every few ms while zyk runs) within the cap:
       (a) zip slip: an entry ../../evil-….pdf;
       (b) an absolute entry /tmp/zyk-evil-….pdf;
       (c) a symbolic link entry (unix mode 0120777);
       (d) a zip bomb: one entry of --bomb-mb MB of zeros (default 2048, deflated ~1000×), refused
           by the 200× ratio limit while ROOT/tmp stays below a few MB; and the total-size limit:
           three 600 KB random entries with --max-unzipped-bytes 1000000;
       (e) 100,000 tiny entries: refused by the entry limit (10,000) before anything is written.
     A refused zip exits 65 (bad input; 2 means "some rows skipped", 0 "all imported").
     A well-formed zip with the same manifest imports (the control).
  2. Kill midway: 300 rows with small PDFs in a zip; zyk import is killed with SIGKILL while it
     imports (once 10–80% of the rows are committed), then run again to completion. A
     second data root gets the same import uninterrupted. Both: the same import keys with the
     same titles and files, import_rows = distinct keys = resources = 300 (no duplicates),
     `zyk verify` exits 0, and no ROOT/tmp/import-* is left (also none from the killed run).
  3. 1,000 rows of which 5% are bad (missing file, bad license, no title, no key, a path with
     .., an unknown resource type, a duplicate key): exit 2, the --report CSV starts with a BOM
     and lists exactly the bad rows (by row number), 950 resources; a second run creates
     nothing (--json: created 0, alreadyImported 950, failed 50).

Standard library only; no server, nothing on the network. Prints "N passed, M failed"; exits 1
on any failure.

  Tests/process/import_zip.py [--bin PATH] [--seed N] [--deadline S] [--workdir DIR] [--keep]
                              [--bomb-mb MB]
"""

import sys

sys.dont_write_bytecode = True

import argparse  # noqa: E402
import csv  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import sqlite3  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import zipfile  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zykproc as zp  # noqa: E402

MB = zp.MB
ORG = "护理职业技术学院"
COLUMNS = ["key", "title", "description", "keywords", "resourceType", "granularity", "educationLevel", "majorCodes",
           "authors", "copyrightHolder", "license", "originality", "visibility", "files"]
REFUSE_SECONDS = 2.0
BOMB_PEAK_LIMIT = 8 * MB  # "a few MB": the ratio check may let the first MiB or so through
TOTAL_CAP = 1_000_000


def pdf_bytes(rng, tag):
    return b"%PDF-1.7\n% " + tag.encode("utf-8") + b"\n" + rng.randbytes(rng.randint(200, 2000)) + b"\n%%EOF\n"


def good_row(key, title, files):
    return {
        "key": key, "title": title, "description": f"{title}：操作步骤与注意事项", "keywords": "护理；操作",
        "resourceType": "document", "granularity": "asset", "educationLevel": "higherVocational",
        "majorCodes": "520201", "authors": "王老师|author;李老师|reviewer", "copyrightHolder": ORG,
        "license": "CC-BY-4.0", "originality": "original", "visibility": "public", "files": files,
    }


def write_manifest(path, rows):
    """CSV, UTF-8 with the BOM Excel writes; no cell holds a newline, so row n is line n."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow(r)
    with open(path, "w", encoding="utf-8-sig", newline="") as f:
        f.write(buf.getvalue())


def db_count(root, sql):
    """One number from the catalog, read-only (retries while a writer holds a lock)."""
    path = os.path.join(root, "catalog.sqlite")
    for _ in range(200):
        try:
            con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
            try:
                return con.execute(sql).fetchone()[0]
            finally:
                con.close()
        except sqlite3.OperationalError:
            time.sleep(0.01)
    raise RuntimeError(f"cannot read {path}")


def db_rows(root, sql):
    con = sqlite3.connect(f"file:{os.path.join(root, 'catalog.sqlite')}?mode=ro", uri=True, timeout=10)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def import_dirs(root):
    try:
        return sorted(n for n in os.listdir(os.path.join(root, "tmp")) if n.startswith("import-"))
    except FileNotFoundError:
        return []


def tree_bytes(path):
    """Apparent size of every file under path (0 if it is gone); tolerant of concurrent removal."""
    total = 0
    stack = [path]
    while stack:
        d = stack.pop()
        try:
            it = os.scandir(d)
        except OSError:
            continue
        with it:
            for e in it:
                try:
                    if e.is_dir(follow_symlinks=False):
                        stack.append(e.path)
                    else:
                        total += e.stat(follow_symlinks=False).st_size
                except OSError:
                    pass
    return total


class Ctx:
    def __init__(self, args):
        self.args = args
        self.seed = args.seed if args.seed is not None else int(time.time() * 1000) % (2 ** 31)
        self.rng = random.Random(self.seed)
        self.res = zp.Results("IMPORT")
        self.work = tempfile.mkdtemp(prefix="zyk-import-", dir=args.workdir)
        self.binary = zp.snapshot_binary(zp.find_binary(args.bin), os.path.join(self.work, "bin"))
        self.notes = []
        self.n = 0

    def check(self, ok, what, detail=""):
        return self.res.check(ok, what, detail)

    def path(self, *p):
        return os.path.join(self.work, *p)

    def make_root(self, name):
        root = self.path(name)
        zp.cli(self.binary, "org", "add", ORG, "--kind", "higherVocational", "--data-root", root)
        out = zp.cli(self.binary, "user", "add", "--org", ORG, "--name", "王老师", "--role", "teacher", "--data-root", root, "--json")
        return root, json.loads(out)["id"]

    def start_import(self, root, user, manifest, files, *extra):
        self.n += 1
        out = open(self.path(f"zyk-{self.n}.out"), "wb")
        err = open(self.path(f"zyk-{self.n}.err"), "wb")
        cmd = [self.binary, "import", manifest, "--files", files, "--user", user, "--data-root", root, *extra]
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err, preexec_fn=zp._die_with_parent, close_fds=True)
        out.close()
        err.close()
        return proc, t0, self.n

    def outputs(self, n):
        with open(self.path(f"zyk-{n}.out"), "rb") as f:
            out = f.read().decode("utf-8", "replace")
        with open(self.path(f"zyk-{n}.err"), "rb") as f:
            err = f.read().decode("utf-8", "replace")
        return out, err

    def run_import(self, root, user, manifest, files, *extra, timeout=120.0, watch_tmp=False):
        """Runs zyk import to the end. Returns a dict: rc, out, err, seconds, and with watch_tmp
        the largest size ROOT/tmp reached (polled every ~2 ms) and whether an import-* folder was
        ever seen."""
        tmp = os.path.join(root, "tmp")
        peak, seen = 0, False
        proc, t0, n = self.start_import(root, user, manifest, files, *extra)
        try:
            while proc.poll() is None:
                if time.monotonic() - t0 > timeout:
                    proc.kill()
                    proc.wait()
                    raise RuntimeError(f"zyk import did not finish within {timeout:.0f} s")
                if watch_tmp:
                    peak = max(peak, tree_bytes(tmp))
                    seen = seen or bool(import_dirs(root))
                    time.sleep(0.002)
                else:
                    time.sleep(0.01)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        seconds = time.monotonic() - t0
        out, err = self.outputs(n)
        return {"rc": proc.returncode, "out": out, "err": err, "seconds": seconds, "peak": peak, "seen": seen}


def summary_of(r):
    try:
        return json.loads(r["out"])
    except ValueError:
        return None


# --------------------------------------------------------------------------------------------
# 1. R13: hostile zips.


def build_bomb(path, size):
    """One entry of `size` zeros (after a PDF header), deflated at level 9, streamed."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("ok.pdf", b"%PDF-1.7\nok\n%%EOF\n")
        with z.open("bomb.pdf", "w", force_zip64=True) as f:
            f.write(b"%PDF-1.7\n")
            chunk = bytes(8 * MB)
            left = size
            while left > 0:
                n = min(left, len(chunk))
                f.write(chunk[:n] if n < len(chunk) else chunk)
                left -= n


def r13(t):
    root, user = t.make_root("r13")
    manifest = t.path("r13.csv")
    write_manifest(manifest, [good_row("R13-OK", "静脉输液操作规范", "ok.pdf")])
    ok_pdf = b"%PDF-1.7\nok\n%%EOF\n"
    tag = "%08x" % t.rng.getrandbits(32)
    slip_name = f"evil-{tag}.pdf"
    abs_name = f"/tmp/zyk-evil-{tag}.pdf"

    def zip_with(path, extra, method=zipfile.ZIP_DEFLATED):
        with zipfile.ZipFile(path, "w", method) as z:
            z.writestr("ok.pdf", ok_pdf)  # a good entry first, so a refusal has something to clean up
            extra(z)
        return path

    cases = []

    def slip(z):
        z.writestr(zipfile.ZipInfo("../../" + slip_name), b"%PDF-1.7\nevil\n")
    cases.append(("(a) zip slip ../../" + slip_name, zip_with(t.path("slip.zip"), slip), (), ["outside"], 64 * 1024))

    def absolute(z):
        z.writestr(zipfile.ZipInfo(abs_name), b"%PDF-1.7\nevil\n")
    cases.append(("(b) absolute path " + abs_name, zip_with(t.path("absolute.zip"), absolute), (), ["outside"], 64 * 1024))

    def link(z):
        info = zipfile.ZipInfo("link.pdf")
        info.create_system = 3
        info.external_attr = (0o120777 << 16)
        z.writestr(info, "/etc/passwd")
    cases.append(("(c) symbolic link entry", zip_with(t.path("link.zip"), link), (), ["link"], 64 * 1024))

    g0 = time.monotonic()
    bomb = t.path("bomb.zip")
    build_bomb(bomb, t.args.bomb_mb * MB)
    zi = zipfile.ZipFile(bomb).getinfo("bomb.pdf")
    t.notes.append(f"bomb: {zi.file_size} bytes deflated to {zi.compress_size} ({zi.file_size / zi.compress_size:.0f}×), built in {time.monotonic() - g0:.1f} s")
    cases.append((f"(d) zip bomb ({t.args.bomb_mb} MB of zeros)", bomb, (), ["inflates", "200"], BOMB_PEAK_LIMIT))

    def big(z):
        for i in range(3):
            z.writestr(f"大文件-{i}.pdf", b"%PDF-1.7\n" + t.rng.randbytes(600 * 1024))
    cases.append((f"(d) total size over --max-unzipped-bytes {TOTAL_CAP}", zip_with(t.path("total.zip"), big),
                  ("--max-unzipped-bytes", str(TOTAL_CAP)), ["more than", str(TOTAL_CAP)], TOTAL_CAP))

    g0 = time.monotonic()
    many = t.path("many.zip")
    with zipfile.ZipFile(many, "w", zipfile.ZIP_STORED) as z:
        z.writestr("ok.pdf", ok_pdf)
        for i in range(100_000):
            z.writestr(f"d{i // 1000:03d}/f{i:06d}.txt", b"x")
    t.notes.append(f"100,000-entry zip: {os.path.getsize(many)} bytes, built in {time.monotonic() - g0:.1f} s")
    cases.append(("(e) 100,000 entries", many, (), ["10000", "entries"], 0))

    codes = []
    for name, zpath, extra, words, cap in cases:
        zp.log(f"-- R13 {name}")
        before = db_count(root, "SELECT count(*) FROM resources")
        r = t.run_import(root, user, manifest, zpath, *extra, timeout=60, watch_tmp=True)
        codes.append(f"{name.split(' ')[0]} {r['rc']}")
        after = db_count(root, "SELECT count(*) FROM resources")
        err = r["err"].strip()
        first = err.splitlines()[0] if err else ""
        plain = first.startswith("zyk: ") and len(err) < 1000 and "Fatal error" not in err and "Stack" not in err
        t.check(r["rc"] != 0 and plain and all(w in err for w in words), f"R13 {name}: refused with a plain message",
                f"exit {r['rc']}, stderr {err[:300]!r}")
        t.check(r["seconds"] <= REFUSE_SECONDS, f"R13 {name}: refused within {REFUSE_SECONDS:g} s", f"{r['seconds']:.2f} s")
        t.check(after == before, f"R13 {name}: nothing imported", f"resources {before} → {after}")
        left = import_dirs(root)
        t.check(not left, f"R13 {name}: no ROOT/tmp/import-* left", ", ".join(left) or "none")
        if cap == 0:
            t.check(r["peak"] == 0 and not r["seen"], f"R13 {name}: nothing written before the refusal",
                    f"ROOT/tmp peak {r['peak']} bytes, an import-* folder {'was' if r['seen'] else 'was never'} seen")
        else:
            t.check(r["peak"] <= cap, f"R13 {name}: ROOT/tmp stayed within {cap} bytes", f"peak {r['peak']} bytes")
        if "slip" in name:
            stray = [p for p in (os.path.join(root, slip_name), os.path.join(t.work, slip_name), os.path.join(root, "tmp", slip_name))
                     if os.path.lexists(p)]
            t.check(not stray, "R13 (a): nothing written outside the extraction folder", ", ".join(stray) or "no evil-*.pdf")
        if "absolute" in name:
            t.check(not os.path.lexists(abs_name), "R13 (b): nothing written at the absolute path", abs_name)
    t.check(all(c.endswith(" 65") for c in codes),
            "R13: a refused zip exits 65 (bad input), not 0 and not 2 (2 means rows were skipped)", ", ".join(codes))
    for p in (bomb, many):
        os.unlink(p)

    # Control: the same manifest with a clean zip imports.
    good = zip_with(t.path("good.zip"), lambda z: None)
    r = t.run_import(root, user, manifest, good, watch_tmp=True)
    t.check(r["rc"] == 0 and db_count(root, "SELECT count(*) FROM resources") == 1 and not import_dirs(root),
            "R13 control: the same manifest with a clean zip imports (exit 0, 1 resource, tmp clean)",
            f"exit {r['rc']}, {r['seconds']:.2f} s, stderr {r['err'].strip()[:200]!r}")

    # A zip made on Chinese Windows: GBK names without the UTF-8 flag (Explorer, 360压缩).
    gbk_manifest = t.path("gbk.csv")
    write_manifest(gbk_manifest, [good_row("GBK-1", "护理评估表", "素材/护理评估表.pdf")])
    gbk_zip = t.path("gbk.zip")
    original = zipfile.ZipInfo._encodeFilenameFlags
    try:
        zipfile.ZipInfo._encodeFilenameFlags = lambda self: (self.filename.encode("gbk"), self.flag_bits & ~0x800)
        with zipfile.ZipFile(gbk_zip, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("素材/护理评估表.pdf", ok_pdf)
    finally:
        zipfile.ZipInfo._encodeFilenameFlags = original
    r = t.run_import(root, user, gbk_manifest, gbk_zip)
    t.check(r["rc"] == 0 and db_count(root, "SELECT count(*) FROM resources") == 2,
            "a zip with GBK names (no UTF-8 flag, as Chinese Windows writes) imports",
            f"exit {r['rc']}, stderr {r['err'].strip()[:200]!r}")


# --------------------------------------------------------------------------------------------
# 2. Kill midway, resume, compare with an uninterrupted import.

ROWS_KILL = 300


def state(root):
    """{key: (title, ((file name, sha256, size, role), ...))} and the three counts."""
    rows = db_rows(root, """
        SELECT i.import_key, r.title, f.name, f.sha256, f.size, f.role
        FROM import_rows i JOIN resources r ON r.id = i.resource_id
        LEFT JOIN version_files f ON f.resource_id = r.id AND f.version = r.current_version
        ORDER BY i.import_key, f.position""")
    out = {}
    for key, title, name, sha, size, role in rows:
        _, files = out.get(key, (title, ()))
        out[key] = (title, files + ((name, sha, size, role),))
    counts = (db_count(root, "SELECT count(*) FROM import_rows"), db_count(root, "SELECT count(DISTINCT import_key) FROM import_rows"),
              db_count(root, "SELECT count(*) FROM resources"))
    return out, counts


def kill_midway(t):
    rng = t.rng
    manifest = t.path("kill.csv")
    rows = []
    zpath = t.path("kill.zip")
    with zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED) as z:
        for i in range(ROWS_KILL):
            key = f"HL-K-{i:04d}"
            main = f"第{i // 50 + 1}章/课件-{i:04d}.pdf"
            files = [main]
            z.writestr(main, pdf_bytes(rng, key))
            if i % 3 == 0:
                extra = f"第{i // 50 + 1}章/附件-{i:04d}.pdf"
                z.writestr(extra, pdf_bytes(rng, key + "-附件"))
                files.append(extra + "|attachment")
            rows.append(good_row(key, f"护理操作课件 第{i:04d}号", ";".join(files)))
    write_manifest(manifest, rows)
    keys = {r["key"] for r in rows}

    root_a, user_a = t.make_root("kill-a")
    root_b, user_b = t.make_root("kill-b")

    # The kill lands while rows are being created: once a random number of them (10–80%) is
    # committed (polled every 5 ms), so it is midway whatever the machine's speed (~0.5–1.5 s
    # after the start with a debug build).
    target = rng.randint(ROWS_KILL // 10, ROWS_KILL * 8 // 10)
    proc, t0, n = t.start_import(root_a, user_a, manifest, zpath, "--json")
    created_at_kill, killed_after, exited, first_row = None, None, None, None
    while True:
        if proc.poll() is not None:
            exited = proc.returncode
            break
        el = time.monotonic() - t0
        c = db_count(root_a, "SELECT count(*) FROM import_rows")
        if c >= 1 and first_row is None:
            first_row = el
        if c >= target:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            killed_after = el
            break
        if el > 60:
            proc.kill()
            proc.wait()
            break
        time.sleep(0.005)
    created_at_kill = db_count(root_a, "SELECT count(*) FROM import_rows")
    resources_at_kill = db_count(root_a, "SELECT count(*) FROM resources")
    pid_dirs = [d for d in import_dirs(root_a) if d.startswith(f"import-{proc.pid}-")]
    t.notes.append(f"kill: SIGKILL after {killed_after if killed_after is None else round(killed_after, 2)} s "
                   f"(first row committed after {first_row if first_row is None else round(first_row, 2)} s, aimed at {target} rows), "
                   f"{created_at_kill} of {ROWS_KILL} rows committed, "
                   f"its extraction folder {'present' if pid_dirs else 'absent'} after the kill")
    t.check(killed_after is not None and 0 < created_at_kill < ROWS_KILL,
            "kill midway: zyk import killed with SIGKILL while importing (some rows created, not all)",
            f"killed after {killed_after:.2f} s with {created_at_kill} of {ROWS_KILL}" if killed_after is not None
            else f"the import ended by itself (exit {exited}) before it could be killed")
    t.check(resources_at_kill == created_at_kill, "kill midway: every resource has its import row (one transaction)",
            f"{resources_at_kill} resources, {created_at_kill} import rows")

    r = t.run_import(root_a, user_a, manifest, zpath, "--json")
    s = summary_of(r) or {}
    t.check(r["rc"] == 0 and s.get("created") == ROWS_KILL - created_at_kill and s.get("alreadyImported") == created_at_kill
            and s.get("failed") == 0,
            "kill midway: the re-run completes the rest (exit 0, created = rest, alreadyImported = done before)",
            f"exit {r['rc']}, created {s.get('created')}, alreadyImported {s.get('alreadyImported')}, failed {s.get('failed')}, "
            f"{r['seconds']:.1f} s, stderr {r['err'].strip()[:200]!r}")

    r = t.run_import(root_b, user_b, manifest, zpath, "--json")
    s = summary_of(r) or {}
    t.notes.append(f"uninterrupted import of {ROWS_KILL} rows (zip): {r['seconds']:.1f} s")
    t.check(r["rc"] == 0 and s.get("created") == ROWS_KILL, "kill midway: the uninterrupted import into a second root creates all rows",
            f"exit {r['rc']}, created {s.get('created')}, {r['seconds']:.1f} s, stderr {r['err'].strip()[:200]!r}")

    sa, ca = state(root_a)
    sb, cb = state(root_b)
    t.check(set(sa) == keys and set(sb) == keys, "kill midway: both roots hold exactly the manifest's import keys",
            f"resumed {len(set(sa) & keys)}/{len(keys)} (+{len(set(sa) - keys)} other), uninterrupted {len(set(sb) & keys)}/{len(keys)}")
    diff = [k for k in sorted(keys) if sa.get(k) != sb.get(k)]
    t.check(not diff, "kill midway: same key → same title and files (names, sha256, sizes, roles) in both roots",
            f"{len(diff)} differ" + (f", e.g. {diff[0]}: {sa.get(diff[0])} vs {sb.get(diff[0])}" if diff else ""))
    t.check(ca == (ROWS_KILL,) * 3 and cb == (ROWS_KILL,) * 3,
            "kill midway: import_rows = distinct keys = resources = 300 in both roots (no duplicates)",
            f"resumed {ca}, uninterrupted {cb}")
    for name, root in (("resumed", root_a), ("uninterrupted", root_b)):
        v = subprocess.run([t.binary, "verify", "--data-root", root], capture_output=True, timeout=120)
        t.check(v.returncode == 0, f"kill midway: zyk verify exits 0 on the {name} root",
                f"exit {v.returncode}: " + " | ".join((v.stdout + v.stderr).decode(errors="replace").strip().splitlines())[:400])
    left_a, left_b = import_dirs(root_a), import_dirs(root_b)
    others = left_b + [d for d in left_a if not d.startswith(f"import-{proc.pid}-")]
    t.check(not others, "kill midway: the completed imports leave no ROOT/tmp/import-* of their own", ", ".join(others) or "none")
    t.check(not left_a, "kill midway: the killed run's extraction folder does not stay behind (the next import sweeps it)",
            (f"{', '.join(left_a)} ({tree_bytes(os.path.join(root_a, 'tmp')) // 1024} KB) still in ROOT/tmp after the re-run"
             if left_a else "none left"))
    uploads = [n for n in os.listdir(os.path.join(root_a, "tmp")) if n.startswith("upload-")]
    if uploads:
        t.notes.append(f"kill: {len(uploads)} tmp/upload-* file(s) of the killed run remain (removed at the next server start)")
    os.unlink(zpath)


# --------------------------------------------------------------------------------------------
# 3. 1,000 rows, 5% bad.

ROWS_BAD = 1000
BAD_KINDS = ["missing file", "license", "title", "no key", "dotdot", "resourceType", "duplicate key"]


def bad_rows(t):
    rng = t.rng
    root, user = t.make_root("bad")
    files = t.path("bad-files")
    os.makedirs(os.path.join(files, "课件"))
    with open(os.path.join(t.work, "secret.pdf"), "wb") as f:
        f.write(b"%PDF-1.7\nsecret\n")
    bad = set(rng.sample(range(1, ROWS_BAD), ROWS_BAD // 20))  # row 0 stays good (the duplicated key)
    rows, expected, kinds = [], {}, {}
    for i in range(ROWS_BAD):
        key = f"HL-B-{i:04d}"
        name = f"课件/资源-{i:04d}.pdf"
        with open(os.path.join(files, name), "wb") as f:
            f.write(pdf_bytes(rng, key))
        row = good_row(key, f"护理评估表 第{i:04d}号", name)
        if i in bad:
            kind = BAD_KINDS[len(expected) % len(BAD_KINDS)]
            if kind == "missing file":
                row["files"] = f"课件/不存在-{i:04d}.pdf"
            elif kind == "license":
                row["license"] = "WTFPL-9"
            elif kind == "title":
                row["title"] = ""
            elif kind == "no key":
                row["key"] = ""
            elif kind == "dotdot":
                row["files"] = "../secret.pdf"
            elif kind == "resourceType":
                row["resourceType"] = "hologram"
            elif kind == "duplicate key":
                row["key"] = "HL-B-0000"
            expected[i + 2] = kind  # the header is row 1
            kinds[kind] = kinds.get(kind, 0) + 1
        rows.append(row)
    manifest = t.path("bad.csv")
    write_manifest(manifest, rows)
    good = ROWS_BAD - len(bad)
    report = t.path("report.csv")

    r = t.run_import(root, user, manifest, files, "--report", report, "--json")
    s = summary_of(r) or {}
    t.notes.append(f"{ROWS_BAD} rows ({len(bad)} bad: {', '.join(f'{k} {v}' for k, v in kinds.items())}) imported from a folder in {r['seconds']:.1f} s")
    t.check(r["rc"] == 2, "bad rows: exit 2 when some rows were skipped", f"exit {r['rc']}, stderr {r['err'].strip()[:200]!r}")
    t.check(s.get("rows") == ROWS_BAD and s.get("created") == good and s.get("failed") == len(bad) and s.get("alreadyImported") == 0,
            f"bad rows: --json summary rows {ROWS_BAD}, created {good}, failed {len(bad)}",
            f"rows {s.get('rows')}, created {s.get('created')}, failed {s.get('failed')}, alreadyImported {s.get('alreadyImported')}")
    n = db_count(root, "SELECT count(*) FROM resources")
    t.check(n == good, f"bad rows: {good} resources created", f"{n}")
    try:
        with open(report, "rb") as f:
            raw = f.read()
    except OSError as e:
        raw = b""
        t.check(False, "bad rows: the report CSV was written", repr(e))
    t.check(raw.startswith(b"\xef\xbb\xbf"), "bad rows: the report CSV opens with a UTF-8 BOM", repr(raw[:12]))
    listed = {}
    header = None
    try:
        reader = csv.reader(io.StringIO(raw.decode("utf-8-sig")))
        header = next(reader, None)
        for rec in reader:
            if rec:
                listed.setdefault(int(rec[0]), []).append(rec[2] if len(rec) > 2 else "")
    except (ValueError, UnicodeDecodeError) as e:
        t.check(False, "bad rows: the report CSV parses", repr(e))
    t.check(header == ["row", "key", "field", "message"], "bad rows: the report's header is row,key,field,message", repr(header))
    missing = sorted(set(expected) - set(listed))
    extra = sorted(set(listed) - set(expected))
    t.check(not missing and not extra, f"bad rows: the report lists exactly the {len(bad)} bad rows by row number",
            f"{len(listed)} listed; missing {[(m, expected[m]) for m in missing][:10]}, extra {extra[:10]}")
    want_field = {"missing file": "files", "license": "license", "title": "title", "no key": "key", "dotdot": "files",
                  "resourceType": "resourceType", "duplicate key": "key"}
    wrong = [(row, expected[row], listed.get(row)) for row in sorted(expected)
             if row in listed and not any(f.startswith(want_field[expected[row]]) for f in listed[row])]
    t.check(not wrong, "bad rows: each bad row is reported against the field that is wrong", f"{len(wrong)} not, e.g. {wrong[:3]}")

    r = t.run_import(root, user, manifest, files, "--json")
    s = summary_of(r) or {}
    n2 = db_count(root, "SELECT count(*) FROM resources")
    t.check(r["rc"] == 2 and s.get("created") == 0 and s.get("alreadyImported") == good and s.get("failed") == len(bad) and n2 == good,
            f"bad rows: a second run creates nothing (created 0, alreadyImported {good}, failed {len(bad)}, exit 2)",
            f"exit {r['rc']}, created {s.get('created')}, alreadyImported {s.get('alreadyImported')}, failed {s.get('failed')}, "
            f"resources {n2}, {r['seconds']:.1f} s")


# --------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=None, help="zyk binary (default $ZYK_BIN or .build/debug/zyk)")
    ap.add_argument("--seed", type=int, default=None, help="random seed (default: from the clock; printed)")
    ap.add_argument("--deadline", type=float, default=180.0, help="seconds for the whole run; hitting it fails (default 180)")
    ap.add_argument("--workdir", default=None, help="parent folder for the temporary data roots and zips")
    ap.add_argument("--keep", action="store_true", help="keep the data roots, zips and zyk outputs")
    ap.add_argument("--bomb-mb", type=int, default=2048, help="zeros in the zip bomb's one entry, in MB (default 2048)")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, zp.on_term)
    signal.signal(signal.SIGALRM, zp.on_alarm)
    signal.alarm(int(args.deadline) + 60)  # backstop if something hangs beyond all timeouts
    try:
        t = Ctx(args)
    except SystemExit as e:
        zp.log(f"FAIL IMPORT set-up: {e}")
        zp.log("0 passed, 1 failed")
        return 1
    zp.log(f"IMPORT: binary {t.binary}, work {t.work}, seed {t.seed}, deadline {args.deadline:g} s")
    t0 = time.monotonic()
    aborted, skipped = None, []
    try:
        for name, fn in (("1. R13: hostile zips", r13), ("2. kill -9 midway, resume", kill_midway), ("3. 1,000 rows, 5% bad", bad_rows)):
            if time.monotonic() - t0 > args.deadline:
                skipped.append(name)
                continue
            s0 = time.monotonic()
            zp.log(f"== {name}")
            try:
                fn(t)
            except (zp.HardTimeout, KeyboardInterrupt):
                raise
            except Exception as e:  # this part fails; the others still run
                t.check(False, f"{name} ran to the end", f"{type(e).__name__}: {e}")
            zp.log(f"   ({time.monotonic() - s0:.1f} s)")
    except zp.HardTimeout as e:
        aborted = str(e)
    except KeyboardInterrupt as e:
        aborted = f"interrupted ({e})"
    finally:
        signal.alarm(0)
    elapsed = time.monotonic() - t0
    if aborted:
        t.check(False, "run completed", aborted)
    t.check(not skipped and elapsed <= args.deadline, f"the run finished within the {args.deadline:g} s deadline",
            f"{elapsed:.1f} s" + (f"; skipped: {', '.join(skipped)}" if skipped else ""))
    zp.log("")
    for n in t.notes:
        zp.log(f"IMPORT: {n}")
    zp.log(f"IMPORT: {elapsed:.1f} s (seed {t.seed})")
    if args.keep or (t.res.failed and os.environ.get("ZYK_KEEP_ON_FAILURE")):
        zp.log(f"kept {t.work}")
    else:
        shutil.rmtree(t.work, ignore_errors=True)
    zp.log(t.res.closing_line())
    return 1 if t.res.failed else 0


if __name__ == "__main__":
    sys.exit(main())
