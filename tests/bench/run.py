#!/usr/bin/env python3
"""Ingest, scrape and report benchmark of docflowd, with mtail as the peer.

    cargo build --release && python3 tests/bench/run.py [--events 1000000] [--growth 5000000]

Generates N exchange events plus their signature events with the demo
generator (fixed seed), runs docflowd on them from an empty store until
/api/v1/status says caught up, and prints events/s, peak RSS, store bytes per
document, scrape latency (median of 100) and one-year report latency (median
of 20, both once the daemon is idle after ingest), then restarts it on the
finished store (time until the report is served, until the full check has
passed) and runs `docflowd verify` on it (time, peak RSS), at 10,000 events
and at N. The same run counts the exchange file by
channel and confidentiality with mtail (--one_shot) and times `cat` as the
physical ceiling. Needs the Debian package `mtail` for the peer figures.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
DOCFLOWD = os.path.join(TARGET, "release", "docflowd")

MTAIL_PROGRAM = r'''
counter docflow_bench_events_by_channel by channel
counter docflow_bench_events_by_confidentiality by confidentiality
/"channel":"(?P<channel>[^"]*)"/ {
  docflow_bench_events_by_channel[$channel]++
}
/"confidentiality":"(?P<confidentiality>[^"]*)"/ {
  docflow_bench_events_by_confidentiality[$confidentiality]++
}
'''


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def get(url):
    with urllib.request.urlopen(url, timeout=60) as r:
        return r.read()


def lines(path):
    n = 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            n += chunk.count(b"\n")
    return n


def generate(work, events, seed):
    marker = os.path.join(work, f"generated-{events}-{seed}")
    if os.path.exists(marker):
        return
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    subprocess.run([DOCFLOWD, "generate", "--out", work, "--events", str(events), "--seed", str(seed)],
                   check=True, stdout=subprocess.DEVNULL)
    open(marker, "w").close()


def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def du(path):
    total = 0
    for d, _, files in os.walk(path):
        for name in files:
            total += os.path.getsize(os.path.join(d, name))
    return total


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def wait_idle(pid, limit_s=60):
    """Waits until the process used under 5 % of a core for a second (sled settles after ingest)."""
    hz = os.sysconf("SC_CLK_TCK")
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        before = cpu_ticks(pid)
        time.sleep(1)
        if cpu_ticks(pid) - before <= hz * 0.05:
            return


def write_config(work, store, port, exchange_only=False):
    config = os.path.join(work, "docflow-exchange-only.toml" if exchange_only else "docflow.toml")
    signatures = "" if exchange_only else f'''[[sources]]
name = "signatures"
kind = "signature"
format = "jsonl"
path = "{work}/signatures.jsonl"
'''
    with open(config, "w") as f:
        f.write(f'''[agency]
code = "BENCH"
name = "benchmark"
[storage]
path = "{store}"
[server]
listen = "127.0.0.1:{port}"
[[sources]]
name = "exchange"
kind = "exchange"
format = "jsonl"
path = "{work}/exchange.jsonl"
''' + signatures)
    return config


def ingest(config, base, log):
    """Starts docflowd on an empty store and waits until it says caught up:
    (process, last status, seconds)."""
    start = time.monotonic()
    proc = subprocess.Popen([DOCFLOWD, "run", "-c", config], stderr=log)
    while True:
        if proc.poll() is not None:
            sys.exit(f"docflowd exited early, see {log.name}")
        try:
            status = json.loads(get(base + "/api/v1/status"))
            if status["caught_up"]:
                return proc, status, time.monotonic() - start
        except OSError:
            pass
        time.sleep(0.05)


def accepted_events(status):
    return sum(s["events"]["accepted"] + s["events"]["duplicate"] + s["events"]["invalid"] for s in status["sources"])


def run_exchange_only(work):
    """The exchange file alone (no signature events): events/s."""
    store = os.path.join(work, "store-exchange-only")
    shutil.rmtree(store, ignore_errors=True)
    port = free_port()
    config = write_config(work, store, port, exchange_only=True)
    with open(os.path.join(work, "docflowd-exchange-only.log"), "w") as log:
        proc, status, seconds = ingest(config, f"http://127.0.0.1:{port}", log)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    shutil.rmtree(store, ignore_errors=True)
    return accepted_events(status) / seconds


def run_docflowd(work):
    store = os.path.join(work, "store")
    shutil.rmtree(store, ignore_errors=True)
    port = free_port()
    config = write_config(work, store, port)
    log = open(os.path.join(work, "docflowd.log"), "w")
    base = f"http://127.0.0.1:{port}"
    proc, status, ingest_s = ingest(config, base, log)
    wait_idle(proc.pid)
    events = accepted_events(status)
    rss_ingest = peak_rss_kib(proc.pid)
    report = json.loads(get(base + "/api/v1/report"))
    documents = sum(report[d]["total"] for d in ("outgoing", "incoming"))

    def median_ms(path, n):
        times = []
        for _ in range(n):
            t = time.perf_counter()
            get(base + path)
            times.append((time.perf_counter() - t) * 1000)
        return statistics.median(times)

    year = time.strftime("%Y")
    scrape_ms = median_ms("/metrics", 100)
    report_ms = median_ms(f"/api/v1/report?period={year}", 20)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    store_bytes = du(store)
    checks = restart_checks(config, base, log)
    return {**checks,
        "events": events,
        "documents": documents,
        "ingest_s": ingest_s,
        "events_per_s": events / ingest_s,
        "peak_rss_mib": rss_ingest / 1024,
        "store_bytes_per_doc": store_bytes / max(documents, 1),
        "scrape_ms": scrape_ms,
        "report_ms": report_ms,
    }


def restart_checks(config, base, log):
    """Restarts on the finished store: time until the report is served (open
    and the quick check), until the full check has passed; then the offline
    `docflowd verify` (full check, recount, sha256 log) with its peak RSS."""
    start = time.monotonic()
    proc = subprocess.Popen([DOCFLOWD, "run", "-c", config], stderr=log)
    served = verified = None
    while verified is None:
        if proc.poll() is not None:
            sys.exit(f"docflowd exited early on restart, see {log.name}")
        try:
            if served is None:
                get(base + "/api/v1/report")
                served = time.monotonic() - start
            status = json.loads(get(base + "/api/v1/status"))
            if status["store"]["verified"]:
                verified = time.monotonic() - start
        except OSError:
            pass
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    start = time.monotonic()
    verify = subprocess.Popen([DOCFLOWD, "verify", "-c", config], stdout=subprocess.DEVNULL, stderr=log)
    _, code, usage = os.wait4(verify.pid, 0)
    if code != 0:
        sys.exit(f"docflowd verify failed ({code}), see {log.name}")
    verify_s = time.monotonic() - start
    # `docflowd rebuild`: a new store re-read from the logs (daemon stopped).
    start = time.monotonic()
    rebuild = subprocess.run([DOCFLOWD, "rebuild", "-c", config], stdout=subprocess.DEVNULL, stderr=log)
    if rebuild.returncode != 0:
        sys.exit(f"docflowd rebuild failed ({rebuild.returncode}), see {log.name}")
    rebuild_s = time.monotonic() - start
    return {
        "rebuild_s": rebuild_s,
        "restart_served_s": served,
        "restart_verified_s": verified,
        "verify_s": verify_s,
        "verify_rss_mib": usage.ru_maxrss / 1024,
    }


def run_mtail(work):
    if not shutil.which("mtail"):
        return None
    prog_dir = os.path.join(work, "mtail-progs")
    os.makedirs(prog_dir, exist_ok=True)
    with open(os.path.join(prog_dir, "docflow.mtail"), "w") as f:
        f.write(MTAIL_PROGRAM)
    path = os.path.join(work, "exchange.jsonl")
    start = time.monotonic()
    proc = subprocess.Popen(["mtail", "--one_shot", "--one_shot_format", "prometheus", "--progs", prog_dir,
                             "--logs", path, "--address", "127.0.0.1", "--port", "0", "--logtostderr"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - start
    if status != 0:
        sys.exit(f"mtail failed with status {status}")
    n = lines(path)
    return {"lines": n, "seconds": seconds, "lines_per_s": n / seconds, "peak_rss_mib": usage.ru_maxrss / 1024}


def cat_rate(work):
    path = os.path.join(work, "exchange.jsonl")
    size = os.path.getsize(path)
    start = time.monotonic()
    subprocess.run(["cat", path], check=True, stdout=subprocess.DEVNULL)
    return size / (time.monotonic() - start)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1_000_000, help="exchange events of the large run")
    ap.add_argument("--small", type=int, default=10_000, help="exchange events of the small run")
    ap.add_argument("--growth", type=int, default=0,
                    help="also a run at this many exchange events (e.g. 5000000), compared with --events")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--work", default="/tmp/docflow-bench")
    args = ap.parse_args()
    if not os.path.exists(DOCFLOWD):
        sys.exit(f"{DOCFLOWD} missing: run `cargo build --release` first")

    results = {}
    sizes = [args.small, args.events] + ([args.growth] if args.growth else [])
    for n in sizes:
        work = os.path.join(args.work, str(n))
        generate(work, n, args.seed)
        results[n] = run_docflowd(work)
    big = os.path.join(args.work, str(args.events))
    exchange_only = run_exchange_only(big)
    mtail = run_mtail(big)
    cat = cat_rate(big)

    print(f"machine: {os.cpu_count()} cores, {os.uname().release}")
    print(f"{'':34}" + "".join(f"{n:>14,}" for n in sizes) + "  (exchange events; signature events come on top)")
    rows = [
        ("events ingested", "events", "{:,.0f}"),
        ("documents", "documents", "{:,.0f}"),
        ("ingest wall time (s)", "ingest_s", "{:.1f}"),
        ("ingest events/s", "events_per_s", "{:,.0f}"),
        ("peak RSS (MiB)", "peak_rss_mib", "{:.0f}"),
        ("store bytes per document", "store_bytes_per_doc", "{:.0f}"),
        ("scrape /metrics, median of 100 (ms)", "scrape_ms", "{:.2f}"),
        ("one-year report, median of 20 (ms)", "report_ms", "{:.2f}"),
        ("restart: report served after (s)", "restart_served_s", "{:.2f}"),
        ("restart: full check passed after (s)", "restart_verified_s", "{:.2f}"),
        ("docflowd verify, offline (s)", "verify_s", "{:.1f}"),
        ("docflowd verify peak RSS (MiB)", "verify_rss_mib", "{:.0f}"),
        ("docflowd rebuild, offline (s)", "rebuild_s", "{:.1f}"),
    ]
    for label, key, fmt in rows:
        print(f"{label:34}" + "".join(f"{fmt.format(results[n][key]):>14}" for n in sizes))
    small, large = results[args.small], results[args.events]
    print(f"scrape latency ratio {args.events:,} / {args.small:,}: {large['scrape_ms'] / small['scrape_ms']:.2f} (target <= 1.5)")
    print(f"rebuild vs live ingest at {args.events:,}: {large['rebuild_s']:.1f} s vs {large['ingest_s']:.1f} s (target: rebuild not slower)")
    if args.growth:
        grown = results[args.growth]
        print(f"growth: events/s at {args.growth:,} / at {args.events:,}: {grown['events_per_s'] / large['events_per_s']:.2f} (target >= 0.8); "
              f"peak RSS {grown['peak_rss_mib']:.0f} MiB (target <= 200)")
    print(f"cat exchange.jsonl: {cat / 1e9:.2f} GB/s (physical ceiling)")
    if not mtail:
        print(f"exchange file alone: docflowd {exchange_only:,.0f} events/s")
    if mtail:
        print(f"mtail --one_shot on exchange.jsonl: {mtail['lines']:,} lines in {mtail['seconds']:.1f} s = {mtail['lines_per_s']:,.0f} lines/s, peak RSS {mtail['peak_rss_mib']:.0f} MiB")
        print(f"docflowd events/s / mtail lines/s: {large['events_per_s'] / mtail['lines_per_s']:.2f} (target >= 3)")
        print(f"exchange file alone: docflowd {exchange_only:,.0f} events/s / mtail: {exchange_only / mtail['lines_per_s']:.2f} (target >= 3)")
    else:
        print("mtail not installed (apt-get install mtail): no peer figures")


if __name__ == "__main__":
    main()
