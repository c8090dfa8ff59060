#!/usr/bin/env python3
"""PDF signature verification benchmark of `docflowd check-pdf`.

    cargo build --release && python3 tests/bench/pdf.py [--files 10000]

1. Builds a folder of N signed PDFs: the fixtures whose signatures are valid
   or detected as modified (person, person + organization in two revisions,
   organization, deputy P-384, content changed after signing), each copy
   given its own incremental update (a text annotation, harmless), so that
   every file has its own sha256 and every one is verified fully: byte
   range, CMS digest and signature, chain, CRL, timestamp, revision diff.
   Runs `docflowd check-pdf` on the folder (one process, one thread, as a PDF
   source reads) and prints files/s and the process's peak RSS.
2. Makes a ~1 MB PDF signed twice (leader, then agency in a second revision)
   with pyHanko (tests/fixtures/pdf/make.py --big, needs the venv .ci/run
   makes) and times its verification: the same file 200 times in one run
   (per-file time, start-up excluded) and one run of the whole process.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
DOCFLOWD = os.path.join(TARGET, "release", "docflowd")
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "pdf")
PYHANKO_PYTHON = os.path.join(os.environ.get("DOCFLOW_PYHANKO_VENV", "/var/tmp/pyhanko-venv"), "bin", "python")
MIX = ["person.pdf", "person-organization.pdf", "organization.pdf", "deputy-p384.pdf", "content-changed.pdf"]


def variant(pdf, i):
    """`pdf` plus an incremental update adding one text annotation (copy `i`)."""
    prev = int(re.findall(rb"startxref\s+(\d+)", pdf[-4096:])[-1])
    root = re.findall(rb"/Root\s+(\d+\s+\d+)\s+R", pdf[-65536:])[-1]
    n = 90000
    at = len(pdf)
    body = b"%d 0 obj\n<< /Type /Annot /Subtype /Text /Contents (ban sao %d) >>\nendobj\n" % (n, i)
    update = b"xref\n%d 1\n%010d 00000 n \ntrailer\n<< /Size %d /Root %s R /Prev %d >>\nstartxref\n%d\n%%%%EOF\n" % (
        n, at, n + 1, root, prev, at + len(body))
    return pdf + body + update


def config(path, glob, anchors, intermediates, crls):
    quoted = lambda xs: "[" + ", ".join('"%s"' % x for x in xs) + "]"
    with open(path, "w") as f:
        f.write(f"""[agency]
code = "H40.27.01"
name = "benchmark"
timezone = "Asia/Ho_Chi_Minh"
[storage]
path = "{os.path.dirname(path)}/store"
[[sources]]
name = "signed-pdfs"
kind = "signature"
format = "pdf"
path = "{glob}"
trust_anchors = {quoted(anchors)}
intermediates = {quoted(intermediates)}
crl_files = {quoted(crls)}
[[sources.role_rules]]
role = "organization"
subject_matches = 'OU=Văn thư'
[[sources.role_rules]]
role = "person"
subject_matches = 'OU=Lãnh đạo'
""")


def check(cfg, args):
    """Runs check-pdf; its JSON lines, its closing line and the wall time."""
    started = time.monotonic()
    r = subprocess.run([DOCFLOWD, "check-pdf", "-c", cfg, *args], capture_output=True, text=True, check=True)
    wall = time.monotonic() - started
    return [json.loads(l) for l in r.stdout.splitlines()], r.stderr.strip().splitlines()[-1], wall


def summary_numbers(line):
    """(seconds, peak RSS KiB) from check-pdf's closing line."""
    seconds = float(re.search(r"in ([0-9.]+) s", line).group(1))
    rss = int(re.search(r"peak RSS (\d+) KiB", line).group(1))
    return seconds, rss


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--work", default="/tmp/docflow-bench-pdf")
    args = ap.parse_args()
    if not os.path.exists(DOCFLOWD):
        sys.exit(f"{DOCFLOWD} missing: cargo build --release first")
    shutil.rmtree(args.work, ignore_errors=True)
    folder = os.path.join(args.work, "pdfs")
    os.makedirs(folder)
    sources = [open(os.path.join(FIXTURES, f), "rb").read() for f in MIX]
    for i in range(args.files):
        with open(os.path.join(folder, "vb-%05d.pdf" % i), "wb") as f:
            f.write(variant(sources[i % len(sources)], i))
    size = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))
    pki = os.path.join(FIXTURES, "pki")
    cfg = os.path.join(args.work, "docflow.toml")
    config(cfg, folder + "/*.pdf", [pki + "/root.pem"], [pki + "/intermediate.pem"], [pki + "/*.crl"])
    lines, closing, wall = check(cfg, [folder + "/*.pdf"])
    seconds, rss = summary_numbers(closing)
    results = {}
    for l in lines:
        for s in l.get("signatures") or []:
            results[s["result"]] = results.get(s["result"], 0) + 1
    rejected = sum(1 for l in lines if "error" in l)
    print(f"{len(lines)} PDFs ({size / 1e6:.1f} MB), {rejected} rejected, signatures by result {results}")
    print(f"  verified in {seconds:.2f} s: {len(lines) / seconds:.0f} files/s "
          f"(process {wall:.2f} s: {len(lines) / wall:.0f} files/s), peak RSS {rss / 1024:.1f} MiB")

    big_dir = os.path.join(args.work, "big")
    subprocess.run([PYHANKO_PYTHON, os.path.join(FIXTURES, "make.py"), "--big", big_dir], check=True)
    big = os.path.join(big_dir, "big.pdf")
    big_cfg = os.path.join(big_dir, "docflow.toml")
    config(big_cfg, big_dir + "/*.pdf", [big_dir + "/root.pem"], [big_dir + "/intermediate.pem"], [])
    lines, closing, _ = check(big_cfg, [big] * 200)
    verdicts = [s["result"] for s in lines[0]["signatures"]]
    assert verdicts == ["valid", "valid"], lines[0]
    seconds, _ = summary_numbers(closing)
    _, _, wall = check(big_cfg, [big])
    print(f"1 MB two-signature PDF ({os.path.getsize(big)} bytes, {verdicts}): "
          f"{seconds / 200 * 1000:.2f} ms per file (200 in one run); one whole process {wall * 1000:.1f} ms")


if __name__ == "__main__":
    main()
