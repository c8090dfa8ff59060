//! The harness: a temporary directory with a config, the real `docflowd`
//! binary started on it, and blocking HTTP helpers that wait for conditions.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long a test waits for the daemon to catch up before failing.
pub const CATCH_UP: Duration = Duration::from_secs(60);

pub const BIN: &str = env!("CARGO_BIN_EXE_docflowd");

/// The golden fixture corpus.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/corpus")
        .join(name)
}

/// What a finished command printed: its stdout, then its stderr.
pub fn printed(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The address in every test config: port 0, so the kernel picks a free
/// port when `docflowd run` binds, and no parallel test can take it in
/// between; the daemon logs the port it got (see [`started_addr`]).
pub const ANY_PORT: &str = "127.0.0.1:0";

/// A free loopback address for a server a test starts itself and must name
/// a port for (aiosmtpd, Prometheus), or one nobody listens on. Its port is
/// below the kernel's ephemeral range (32768–60999 here), so no port-0 bind
/// (the daemons', any client's) can take it meanwhile; this test binary
/// never hands one out twice, and other processes running the suite start
/// elsewhere in the range (by pid) and are skipped when they hold a port.
pub fn tool_addr() -> SocketAddr {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const COUNT: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id() % 100 * (COUNT / 100),
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..COUNT {
        let port = FIRST + NEXT.fetch_add(1, Ordering::SeqCst) % COUNT;
        let addr = SocketAddr::from(([127, 0, 0, 1], port as u16));
        if TcpListener::bind(addr).is_ok() {
            return addr;
        }
    }
    panic!("no free loopback port in {FIRST}..{}", FIRST + COUNT);
}

/// The address `docflowd run` logged it bound ("docflowd started
/// listen=…", text or JSON logs) in `stderr` from byte `from` on; an
/// unspecified IP (`0.0.0.0`) is reached on loopback.
pub fn started_addr(stderr: &Path, from: u64) -> Option<SocketAddr> {
    let text = std::fs::read(stderr).ok()?;
    let text = String::from_utf8_lossy(text.get(from as usize..)?);
    let line = text.lines().find(|l| l.contains("docflowd started"))?;
    let value = line
        .split_once("listen=")
        .or_else(|| line.split_once("\"listen\":\""))?
        .1;
    let end = value.find([' ', '"']).unwrap_or(value.len());
    let mut addr: SocketAddr = value[..end].parse().ok()?;
    if addr.ip().is_unspecified() {
        addr.set_ip([127, 0, 0, 1].into());
    }
    Some(addr)
}

/// Waits until `docflowd run`, started by the test itself, logged its address.
pub fn wait_started_addr(stderr: &Path, from: u64) -> SocketAddr {
    wait_for(
        Duration::from_secs(30),
        "docflowd started listen=…",
        || started_addr(stderr, from),
    )
}

/// One `[[sources]]` block.
pub fn source(name: &str, kind: &str, glob: &str) -> String {
    format!(
        "[[sources]]\nname = \"{name}\"\nkind = \"{kind}\"\nformat = \"jsonl\"\npath = \"{glob}\"\npoll_interval = \"100ms\"\n"
    )
}

/// A test directory: `logs/` for input files, `store/` for the store, `docflow.toml`.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    /// The address the daemon started last bound, and the `listen` line
    /// written into the config for it (see [`Env::start_with_env`]).
    bound: Mutex<Option<(SocketAddr, String)>>,
}

impl Env {
    /// Writes a config with the given `[[sources]]` blocks; globs may use `{logs}`.
    pub fn new(sources: &str) -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("logs")).expect("logs dir");
        let config = dir.path().join("docflow.toml");
        let logs = dir.path().join("logs");
        let text = format!(
            "[agency]\ncode = \"H40.27.01\"\nname = \"UBND xã Hương Bình (test)\"\ntimezone = \"Asia/Ho_Chi_Minh\"\n\n\
             [storage]\npath = \"{}\"\n\n[server]\nlisten = \"{ANY_PORT}\"\n\n{}",
            dir.path().join("store").display(),
            sources.replace("{logs}", &logs.display().to_string()),
        );
        std::fs::write(&config, text).expect("write config");
        Env {
            dir,
            config,
            bound: Mutex::new(None),
        }
    }

    /// The two JSON Lines sources of the corpus: `exchange*.jsonl` and `signatures*.jsonl`.
    pub fn exchange_and_signatures() -> Env {
        Env::new(&format!(
            "{}\n{}",
            source("exchange", "exchange", "{logs}/exchange*.jsonl"),
            source("signatures", "signature", "{logs}/signatures*.jsonl")
        ))
    }

    pub fn logs(&self) -> PathBuf {
        self.dir.path().join("logs")
    }

    pub fn log(&self, name: &str) -> PathBuf {
        self.logs().join(name)
    }

    pub fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    pub fn rejected(&self, source: &str) -> PathBuf {
        self.store()
            .join("rejected")
            .join(format!("{source}.jsonl"))
    }

    pub fn stderr_path(&self) -> PathBuf {
        self.dir.path().join("docflowd.stderr")
    }

    /// Starts `docflowd run` and waits until `/healthz` answers.
    pub fn start(&self) -> Daemon {
        self.start_with_env(&[], |addr| {
            matches!(http_get(addr, "/healthz"), Ok((200, _)))
        })
    }

    /// Starts `docflowd run` with extra environment variables and waits until `up(addr)`.
    ///
    /// The config's `listen` has port 0: the daemon binds a port nobody else
    /// holds and logs it ("docflowd started listen=…"). Once it is up, the
    /// config's `listen` line names that port, so that CLI commands
    /// (`report`) reach the daemon; the next start sets port 0 again.
    pub fn start_with_env(&self, env: &[(&str, &str)], up: impl Fn(SocketAddr) -> bool) -> Daemon {
        self.unpin_listen();
        let from = std::fs::metadata(self.stderr_path()).map_or(0, |m| m.len());
        let stderr = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.stderr_path())
            .expect("stderr file");
        let child = Command::new(BIN)
            .arg("run")
            .arg("-c")
            .arg(&self.config)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn docflowd");
        let mut d = Daemon {
            child: Some(child),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            stderr: self.stderr_path(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut bound = None;
        loop {
            bound = bound.or_else(|| started_addr(&self.stderr_path(), from));
            if let Some(addr) = bound.filter(|a| up(*a)) {
                self.pin_listen(addr);
                d.addr = addr;
                return d;
            }
            if let Some(status) = d.child_mut().try_wait().expect("try_wait") {
                panic!(
                    "docflowd exited at start with {status}; stderr:\n{}",
                    d.stderr_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "docflowd did not come up within 30 s; stderr:\n{}",
                d.stderr_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Writes the bound port into the config's `listen = "…:0"` line.
    fn pin_listen(&self, addr: SocketAddr) {
        let text = std::fs::read_to_string(&self.config).expect("read config");
        let any = text
            .lines()
            .find(|l| l.starts_with("listen = \"") && l.ends_with(":0\""))
            .map(str::to_string);
        let pinned = match any {
            Some(line) => {
                let pinned = format!("{}:{}\"", &line[..line.len() - 3], addr.port());
                std::fs::write(&self.config, text.replacen(&line, &pinned, 1))
                    .expect("write config");
                pinned
            }
            None => String::new(),
        };
        *self.bound.lock().unwrap() = Some((addr, pinned));
    }

    /// Puts port 0 back into the `listen` line [`Env::pin_listen`] wrote.
    fn unpin_listen(&self) {
        let Some((_, pinned)) = self.bound.lock().unwrap().clone() else {
            return;
        };
        let text = std::fs::read_to_string(&self.config).expect("read config");
        if let (false, Some(colon)) = (pinned.is_empty(), pinned.rfind(':')) {
            let any = format!("{}:0\"", &pinned[..colon]);
            std::fs::write(&self.config, text.replacen(&pinned, &any, 1)).expect("write config");
        }
    }

    /// Runs `docflowd run` when it must refuse to start: returns its exit code
    /// and what it wrote to stderr; kills it and panics if it still runs
    /// after `within`.
    pub fn run_refused(&self, within: Duration) -> (Option<i32>, String) {
        self.unpin_listen();
        let stderr = self.dir.path().join("refused.stderr");
        let mut child = Command::new(BIN)
            .arg("run")
            .arg("-c")
            .arg(&self.config)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("spawn docflowd");
        let deadline = Instant::now() + within;
        let status = loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "docflowd run still running after {within:?}; stderr:\n{}",
                    std::fs::read_to_string(&stderr).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let said = std::fs::read_to_string(&stderr).expect("read stderr");
        (status.code(), said)
    }

    /// Runs `docflowd <args>` to completion.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run docflowd")
    }

    /// Appends text to a log file, creating it.
    pub fn append(&self, name: &str, text: &str) {
        append(&self.log(name), text.as_bytes());
    }
}

pub fn append(path: &Path, bytes: &[u8]) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    f.write_all(bytes).expect("append");
    f.sync_all().ok();
}

/// Copies a file in under a name outside every glob, then renames it in, so
/// the daemon never sees it half written.
pub fn install(src: &Path, dst: &Path) {
    let tmp = dst.with_extension("installing");
    std::fs::copy(src, &tmp).expect("copy fixture");
    std::fs::rename(&tmp, dst).expect("rename fixture");
}

/// A running `docflowd run`.
pub struct Daemon {
    child: Option<Child>,
    pub addr: SocketAddr,
    stderr: PathBuf,
}

impl Daemon {
    fn child_mut(&mut self) -> &mut Child {
        self.child.as_mut().expect("daemon running")
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("daemon running").id()
    }

    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Sends a signal by name (`HUP`, `TERM`, ...).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// True while the process has not exited.
    pub fn running(&mut self) -> bool {
        self.child_mut().try_wait().expect("try_wait").is_none()
    }

    /// The exit code, once the process has exited.
    pub fn exit_code(&mut self) -> Option<i32> {
        self.child_mut()
            .try_wait()
            .expect("try_wait")
            .and_then(|s| s.code())
    }

    /// SIGTERM; asserts exit status 0 within 10 s; returns how long it took.
    pub fn stop(mut self) -> Duration {
        let started = Instant::now();
        self.signal("TERM");
        let mut child = self.child.take().expect("daemon running");
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                assert!(
                    status.success(),
                    "docflowd exited with {status} after SIGTERM; stderr:\n{}",
                    self.stderr_text()
                );
                return started.elapsed();
            }
            if started.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "docflowd did not exit within 10 s of SIGTERM; stderr:\n{}",
                    self.stderr_text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no chance to flush anything.
    pub fn crash(mut self) {
        let mut child = self.child.take().expect("daemon running");
        child.kill().expect("SIGKILL");
        child.wait().expect("wait");
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        get(self.addr, path)
    }

    pub fn json(&self, path: &str) -> Value {
        json(self.addr, path)
    }

    pub fn status(&self) -> Value {
        self.json("/api/v1/status")
    }

    pub fn report(&self, query: &str) -> Value {
        report(self.addr, query)
    }

    /// Polls `/api/v1/status` until `caught_up`; panics with the last body after [`CATCH_UP`].
    pub fn wait_caught_up(&self) -> Value {
        self.wait_status(CATCH_UP, "caught_up", |s| s["caught_up"] == true)
    }

    /// Polls `/api/v1/status` until `cond` holds.
    pub fn wait_status(
        &self,
        within: Duration,
        what: &str,
        cond: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + within;
        let mut last = String::new();
        loop {
            if let Ok((200, body)) = http_get(self.addr, "/api/v1/status") {
                if let Ok(v) = serde_json::from_str::<Value>(&body) {
                    if cond(&v) {
                        return v;
                    }
                }
                last = body;
            }
            if Instant::now() > deadline {
                panic!(
                    "status did not reach `{what}` within {within:?}; last status:\n{last}\nstderr tail:\n{}",
                    tail(&self.stderr_text(), 3000)
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn tail(s: &str, n: usize) -> &str {
    let mut start = s.len().saturating_sub(n);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// A plain HTTP/1.0 GET, the simplest client there is; returns status and body.
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((status, body.to_string()))
}

pub fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    http_get(addr, path).unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

pub fn json(addr: SocketAddr, path: &str) -> Value {
    let (code, body) = get(addr, path);
    assert_eq!(code, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {body}"))
}

/// `/api/v1/report?{query}` (empty query = all time).
pub fn report(addr: SocketAddr, query: &str) -> Value {
    if query.is_empty() {
        json(addr, "/api/v1/report")
    } else {
        json(addr, &format!("/api/v1/report?{query}"))
    }
}

/// (accepted, duplicate, invalid) of one source in a status document.
pub fn counts(status: &Value, source: &str) -> (u64, u64, u64) {
    let s = status["sources"]
        .as_array()
        .expect("sources array")
        .iter()
        .find(|s| s["name"] == source)
        .unwrap_or_else(|| panic!("no source {source} in {status}"));
    let n = |k: &str| {
        s["events"][k]
            .as_u64()
            .unwrap_or_else(|| panic!("events.{k} of {source}: {s}"))
    };
    (n("accepted"), n("duplicate"), n("invalid"))
}

/// Lines read so far by all sources (accepted + duplicate + invalid).
pub fn lines_read(status: &Value) -> u64 {
    status["sources"]
        .as_array()
        .expect("sources array")
        .iter()
        .map(|s| {
            ["accepted", "duplicate", "invalid"]
                .iter()
                .map(|k| s["events"][*k].as_u64().unwrap_or(0))
                .sum::<u64>()
        })
        .sum()
}

/// The rejected-events file of a source, one JSON object per line.
pub fn rejected_lines(path: &Path) -> Vec<Value> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => panic!("read {}: {e}", path.display()),
    };
    text.lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("rejected line is not JSON ({e}): {l}"))
        })
        .collect()
}

/// One exchange event as a JSON line.
pub fn exchange_line(event_id: &str, doc_id: &str, time: &str, channel: &str) -> String {
    format!(
        "{{\"event_id\":\"{event_id}\",\"time\":\"{time}\",\"doc_id\":\"{doc_id}\",\"direction\":\"đi\",\"channel\":\"{channel}\",\"unit\":\"Văn phòng\"}}\n"
    )
}

/// `n` electronic outgoing documents `{prefix}-1..n`, one event each, as JSON lines.
pub fn exchange_lines(prefix: &str, range: std::ops::RangeInclusive<u32>) -> String {
    range
        .map(|i| {
            exchange_line(
                &format!("{prefix}-ev-{i}"),
                &format!("{prefix}-{i}"),
                "2026-05-04T09:00:00+07:00",
                "điện tử",
            )
        })
        .collect()
}

/// A generated corpus shared by the tests of one run (generation costs seconds).
pub struct Generated {
    pub dir: PathBuf,
    pub exchange_lines: u64,
    pub signature_lines: u64,
}

/// Exchange events of the generated corpus; `DOCFLOW_IT_EVENTS=200000` for the full-size run.
pub fn generated_events() -> usize {
    std::env::var("DOCFLOW_IT_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40_000)
}

/// Generates the corpus once under `CARGO_TARGET_TMPDIR` (reused by later runs).
pub fn generated() -> &'static Generated {
    static G: OnceLock<Generated> = OnceLock::new();
    G.get_or_init(|| {
        let events = generated_events();
        let dir =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("docflow-generated-{events}"));
        if !dir.join("done").exists() {
            let work = dir.with_extension("partial");
            let _ = std::fs::remove_dir_all(&work);
            let _ = std::fs::remove_dir_all(&dir);
            let out = Command::new(BIN)
                .args(["generate", "--out"])
                .arg(&work)
                .args([
                    "--events",
                    &events.to_string(),
                    "--noise",
                    "--seed",
                    "20260614",
                ])
                .output()
                .expect("run docflowd generate");
            assert!(
                out.status.success(),
                "generate failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::fs::write(work.join("done"), "").expect("marker");
            std::fs::rename(&work, &dir).expect("rename generated corpus");
        }
        let count = |name: &str| {
            let f = std::fs::read(dir.join(name)).expect("generated file");
            f.iter().filter(|&&b| b == b'\n').count() as u64
        };
        Generated {
            exchange_lines: count("exchange.jsonl"),
            signature_lines: count("signatures.jsonl"),
            dir,
        }
    })
}

/// Links the generated corpus into an env's logs (read-only use).
pub fn link_generated(env: &Env) -> &'static Generated {
    let g = generated();
    for name in ["exchange.jsonl", "signatures.jsonl"] {
        std::fs::hard_link(g.dir.join(name), env.log(name))
            .or_else(|_| std::fs::copy(g.dir.join(name), env.log(name)).map(|_| ()))
            .expect("link generated corpus");
    }
    g
}

/// Creates an empty file (e.g. to truncate one in place).
pub fn truncate(path: &Path) {
    File::create(path).expect("truncate");
}

/// The path of a Debian tool a test needs; panics (never skips) when it is missing.
pub fn require_tool(name: &str) -> PathBuf {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .expect("run sh");
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        out.status.success() && !path.is_empty(),
        "`{name}` is not installed: run .ci/run (it apt-get installs the tools) or install it"
    );
    PathBuf::from(path)
}

/// Polls `cond` every 25 ms until it returns `Some`; panics naming `what` after `within`.
pub fn wait_for<T>(within: Duration, what: &str, mut cond: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = cond() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Copies the golden corpus into an env's logs.
pub fn install_corpus(env: &Env) {
    for name in [
        "exchange.jsonl",
        "signatures.jsonl",
        "signatures-late.jsonl",
    ] {
        install(&fixture(name), &env.log(name));
    }
}

/// Datagrams received on the notify socket, accumulated.
pub struct Notifications {
    socket: UnixDatagram,
    pub seen: Vec<String>,
}

impl Notifications {
    pub fn bind(path: &Path) -> Notifications {
        let socket = UnixDatagram::bind(path).expect("bind notify socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        Notifications {
            socket,
            seen: Vec::new(),
        }
    }

    /// Waits for a message containing `line` (a whole line, e.g. `READY=1`)
    /// after the first `from` messages; returns its index.
    pub fn wait(&mut self, from: usize, line: &str) -> usize {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(i) = self.seen[from.min(self.seen.len())..]
                .iter()
                .position(|m| m.lines().any(|l| l == line))
            {
                return from + i;
            }
            assert!(
                Instant::now() < deadline,
                "no {line} within 30 s; got {:?}",
                self.seen
            );
            let mut buf = [0u8; 4096];
            if let Ok(n) = self.socket.recv(&mut buf) {
                self.seen
                    .push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        }
    }

    /// The longest gap between `WATCHDOG=1` pings over `window` (which
    /// starts with a ping), and how many there were.
    pub fn longest_ping_gap(&mut self, window: Duration) -> (Duration, usize) {
        let start = Instant::now();
        let (mut last, mut gap, mut pings) = (start, Duration::ZERO, 0);
        while start.elapsed() < window {
            let mut buf = [0u8; 4096];
            if let Ok(n) = self.socket.recv(&mut buf) {
                let m = String::from_utf8_lossy(&buf[..n]).into_owned();
                if m.lines().any(|l| l == "WATCHDOG=1") {
                    gap = gap.max(last.elapsed());
                    last = Instant::now();
                    pings += 1;
                }
                self.seen.push(m);
            }
        }
        (gap.max(last.elapsed()), pings)
    }
}
