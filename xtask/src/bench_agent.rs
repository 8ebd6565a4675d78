//! `immutable-agent` as an app's instances run it: the release binary's size, and its
//! memory and CPU while it polls a stand-in instance metadata service (IMDSv2, a Spot
//! instance with no notice). Size and memory are set against their targets (10 MB,
//! 10 MiB), with a floor measured in the same run for context: a minimal Rust program
//! built in the same profile, and `sleep`'s resident memory.

use anyhow::{Context as _, Result, bail};
use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::bench::{Findings, Row, progress};

/// The size the binary should stay under (decimal megabytes).
const SIZE_TARGET: u64 = 10_000_000;
/// The resident memory it should stay under while polling.
const MEMORY_TARGET_KIB: u64 = 10 * 1024;
/// Memory is sampled this long after the `polling` event, and after this many polls.
const SETTLE: Duration = Duration::from_secs(3);
const SETTLE_POLLS: usize = 3;
/// The busy case's CPU is measured over this window: long enough for a few hundred
/// polls, since /proc/<pid>/stat counts CPU time in clock ticks (10 ms).
const CPU_WINDOW: Duration = Duration::from_secs(30);

const INSTANCE: &str = "i-0123456789abcdef0";
const REGION: &str = "eu-west-1";
const ROLE: &str = "web-instance";
const TARGET_GROUP: &str =
    "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/web/0123456789abcdef";
const INSTANCE_ACTION: &str = "/latest/meta-data/spot/instance-action";

pub fn run() -> Result<Findings> {
    progress("building immutable-agent (release)");
    let mut command = crate::cargo();
    command.args(["build", "--quiet", "--release", "-p", "agent", "--bin", "immutable-agent"]);
    crate::run(command)?;
    let binary = tests::target_dir().join("release").join("immutable-agent");
    if !binary.exists() {
        bail!("built immutable-agent but found no binary at {}", binary.display());
    }
    let dir = TempDir::new()?;

    let size = sizes(&binary, dir.path())?;
    let floor_rss = sleep_rss()?;
    progress("immutable-agent polling every 5s (the default)");
    let default = polling(&binary, "5s", None)?;
    progress("immutable-agent polling every 100ms");
    let busy = polling(&binary, "100ms", Some(CPU_WINDOW))?;
    let cpu = busy.window.as_ref().context("no CPU window measured")?;

    let mb = |bytes: u64| format!("{:.2} MB", bytes as f64 / 1e6);
    let mib = |kib: u64| format!("{:.1} MiB", kib as f64 / 1024.0);
    let memory_baseline =
        format!("{} target; for context: {} (VmRSS of `sleep 60`)", mib(MEMORY_TARGET_KIB), mib(floor_rss));
    let memory_row = |run: &Polling, when: &str| Row {
        what: format!("immutable-agent resident memory polling every {}, {when}", run.interval),
        measured: format!("{} VmRSS (peak VmHWM {})", mib(run.rss_kib), mib(run.hwm_kib)),
        baseline: memory_baseline.clone(),
        ratio: run.hwm_kib as f64 / MEMORY_TARGET_KIB as f64,
    };
    let rows = vec![
        Row {
            what: "immutable-agent binary size (release)".into(),
            measured: format!(
                "{} bytes ({}); stripped {} (`{}`)",
                thousands(size.binary),
                mb(size.binary),
                mb(size.binary_stripped),
                size.strip_tool
            ),
            baseline: format!(
                "{} target; for context: {}, stripped {} (`fn main() {{}}`, same release profile)",
                mb(SIZE_TARGET),
                mb(size.floor),
                mb(size.floor_stripped)
            ),
            ratio: size.binary as f64 / SIZE_TARGET as f64,
        },
        memory_row(&default, &format!("after {} polls", default.polls_at_sample)),
        memory_row(&busy, &format!("{} s in ({} polls)", SETTLE.as_secs(), busy.polls_at_sample)),
        Row {
            what: format!(
                "immutable-agent CPU time polling every {}, over {} s",
                busy.interval,
                cpu.wall.as_secs()
            ),
            measured: format!(
                "{:.0} ms ({} polls, {:.2} ms per poll)",
                cpu.cpu.as_secs_f64() * 1e3,
                cpu.polls,
                cpu.cpu.as_secs_f64() * 1e3 / cpu.polls.max(1) as f64
            ),
            baseline: format!("{} (the window's wall time)", crate::bench::secs(cpu.wall)),
            ratio: crate::bench::ratio(cpu.cpu, cpu.wall),
        },
    ];
    let details = vec![details(&size, floor_rss, &default, &busy, cpu)];
    Ok(Findings { rows, details })
}

fn details(size: &Sizes, floor_rss: u64, default: &Polling, busy: &Polling, cpu: &Window) -> String {
    let mib = |kib: u64| format!("{:.1} MiB", kib as f64 / 1024.0);
    let mut text = format!(
        "## immutable-agent: size, memory and CPU\n\n\
         The release binary (`cargo build --release -p agent`, the workspace's release profile, which strips \
         debug information) is {} bytes; without its symbol table (`{}` of a copy) {} bytes. A `fn main() {{}}` \
         compiled by `rustc -C opt-level=3 -C strip=debuginfo` in the same run is {} bytes ({} stripped): the \
         standard library's share. Sizes are in decimal megabytes; the ratio is the binary as built to the \
         10 MB target.\n\n\
         Memory and CPU: the binary runs with the default ELB endpoint (HTTPS, the system's trust store loaded \
         at start, as on an instance; never called, since no notice comes) against a stand-in instance \
         metadata service on 127.0.0.1 that answers IMDSv2 as for a Spot instance with no notice: a session \
         token, the instance's identity and region, its tags (one target group, a drain time), the instance \
         profile's credentials (expiring in 6 h), and 404 for `spot/instance-action` and \
         `events/recommendations/rebalance`, the two reads of each poll. Once it logged `polling`, VmRSS and \
         VmHWM (the peak since it started) are read from `/proc/<pid>/status`; the ratio is the peak to the \
         10 MiB target. The busy case's CPU is user + system time from `/proc/<pid>/stat` over a {} s window \
         right after that sample: the kernel counts it in clock ticks (10 ms), so the window holds a few \
         hundred polls; the scheduler's own count (`se.sum_exec_runtime` of every thread, to the nanosecond) \
         is given beside it where the kernel shows it{}. Each run ends with SIGTERM, which the agent must answer \
         by exiting 0; it did.\n\n\
         | poll interval | polls before the sample | VmRSS | VmHWM | VmRSS at the end | CPU from start to SIGTERM (scheduler's count) | requests to the stand-in |\n\
         |---|---|---|---|---|---|---|\n",
        thousands(size.binary),
        size.strip_tool,
        thousands(size.binary_stripped),
        thousands(size.floor),
        thousands(size.floor_stripped),
        cpu.wall.as_secs(),
        cpu.runtime.map_or_else(String::new, |runtime| format!(
            ": {:.1} ms over the window, {:.3} ms per poll",
            runtime.as_secs_f64() * 1e3,
            runtime.as_secs_f64() * 1e3 / cpu.polls.max(1) as f64
        )),
    );
    for run in [default, busy] {
        text.push_str(&format!(
            "| {} | {} | {} | {} | {} | {:.0} ms ({}) | {} |\n",
            run.interval,
            run.polls_at_sample,
            mib(run.rss_kib),
            mib(run.hwm_kib),
            mib(run.end_rss_kib),
            run.total_cpu.as_secs_f64() * 1e3,
            run.total_runtime
                .map_or_else(|| "not shown".into(), |r| format!("{:.1} ms", r.as_secs_f64() * 1e3)),
            run.requests.values().sum::<u64>(),
        ));
    }
    text.push_str(&format!(
        "\n`sleep 60` (the context for memory) had {} resident. The requests of the busy run, by path:\n\n\
         | request | count |\n|---|---|\n",
        mib(floor_rss)
    ));
    for (request, count) in &busy.requests {
        text.push_str(&format!("| {request} | {count} |\n"));
    }
    text
}

struct Sizes {
    binary: u64,
    binary_stripped: u64,
    floor: u64,
    floor_stripped: u64,
    /// `strip` or `objcopy --strip-all`.
    strip_tool: &'static str,
}

fn sizes(binary: &Path, dir: &Path) -> Result<Sizes> {
    let file_size = |path: &Path| -> Result<u64> {
        Ok(std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?.len())
    };
    let source = dir.join("main.rs");
    std::fs::write(&source, "fn main() {}\n")?;
    let floor = dir.join("minimal");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let mut command = Command::new(rustc);
    command
        .args(["--edition", "2024", "-C", "opt-level=3", "-C", "strip=debuginfo", "-o"])
        .arg(&floor)
        .arg(&source);
    crate::run(command)?;

    let strip_tool = if Command::new("strip").arg("--version").output().is_ok_and(|o| o.status.success()) {
        "strip"
    } else {
        "objcopy --strip-all"
    };
    let stripped = |path: &Path, name: &str| -> Result<u64> {
        let copy = dir.join(name);
        std::fs::copy(path, &copy).with_context(|| format!("copying {}", path.display()))?;
        let mut command = match strip_tool {
            "strip" => Command::new("strip"),
            _ => {
                let mut objcopy = Command::new("objcopy");
                objcopy.arg("--strip-all");
                objcopy
            }
        };
        command.arg(&copy);
        crate::run(command)?;
        file_size(&copy)
    };
    Ok(Sizes {
        binary: file_size(binary)?,
        binary_stripped: stripped(binary, "immutable-agent-stripped")?,
        floor: file_size(&floor)?,
        floor_stripped: stripped(&floor, "minimal-stripped")?,
        strip_tool,
    })
}

/// VmRSS of `sleep 60` once it runs.
fn sleep_rss() -> Result<u64> {
    let mut sleep = Command::new("sleep").arg("60").stdin(Stdio::null()).spawn().context("running sleep")?;
    std::thread::sleep(Duration::from_millis(300));
    let rss = proc_status_kib(sleep.id(), "VmRSS");
    let _ = sleep.kill();
    let _ = sleep.wait();
    rss
}

/// A field of `/proc/<pid>/status` in KiB (`VmRSS`, `VmHWM`).
fn proc_status_kib(pid: u32, field: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .with_context(|| format!("no {field} in /proc/{pid}/status"))
}

struct Polling {
    interval: &'static str,
    polls_at_sample: usize,
    rss_kib: u64,
    hwm_kib: u64,
    end_rss_kib: u64,
    total_cpu: Duration,
    /// The scheduler's count, where the kernel shows it.
    total_runtime: Option<Duration>,
    window: Option<Window>,
    /// Every request the stand-in answered, by method and path.
    requests: BTreeMap<String, u64>,
}

struct Window {
    wall: Duration,
    cpu: Duration,
    /// The scheduler's count over the same window, where the kernel shows it.
    runtime: Option<Duration>,
    polls: usize,
}

/// Runs the agent polling every `interval`, samples its memory once it has settled,
/// then its CPU over `window` if asked, and stops it with SIGTERM.
fn polling(binary: &Path, interval: &'static str, window: Option<Duration>) -> Result<Polling> {
    let imds = StandIn::start()?;
    let mut agent = Agent::start(binary, &imds.url(), interval)?;
    let polling_at = agent.wait_for_event("polling", Duration::from_secs(30))?;
    let before = agent.events();
    for needed in ["instance", "target-groups", "credentials"] {
        if !before.iter().any(|e| e.event == needed) {
            bail!("immutable-agent started polling without a {needed} event:\n{}", agent.lines().join("\n"));
        }
    }
    let deadline = polling_at + Duration::from_secs(60);
    while polling_at.elapsed() < SETTLE || imds.count(INSTANCE_ACTION) < SETTLE_POLLS {
        agent.check_running()?;
        if Instant::now() > deadline {
            bail!("immutable-agent polled {} times in 60 s", imds.count(INSTANCE_ACTION));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = agent.child.id();
    let polls_at_sample = imds.count(INSTANCE_ACTION);
    let rss_kib = proc_status_kib(pid, "VmRSS")?;
    let hwm_kib = proc_status_kib(pid, "VmHWM")?;

    let window = match window {
        Some(length) => {
            let (cpu_before, runtime_before, polls_before, started) =
                (process_cpu(pid)?, scheduler_runtime(pid), imds.count(INSTANCE_ACTION), Instant::now());
            std::thread::sleep(length);
            let (cpu_after, runtime_after, polls_after, wall) =
                (process_cpu(pid)?, scheduler_runtime(pid), imds.count(INSTANCE_ACTION), started.elapsed());
            agent.check_running()?;
            Some(Window {
                wall,
                cpu: cpu_after.saturating_sub(cpu_before),
                runtime: runtime_before
                    .zip(runtime_after)
                    .map(|(before, after)| after.saturating_sub(before)),
                polls: polls_after - polls_before,
            })
        }
        None => None,
    };
    let end_rss_kib = proc_status_kib(pid, "VmRSS")?;
    let total_cpu = process_cpu(pid)?;
    let total_runtime = scheduler_runtime(pid);
    agent.terminate()?;

    let problems: Vec<String> = agent
        .events()
        .into_iter()
        .filter(|e| e.level != "info")
        .map(|e| format!("{} {}", e.level, e.event))
        .collect();
    if !problems.is_empty() {
        bail!("immutable-agent logged {}:\n{}", problems.join(", "), agent.lines().join("\n"));
    }
    let requests = imds.finish()?;
    Ok(Polling {
        interval,
        polls_at_sample,
        rss_kib,
        hwm_kib,
        end_rss_kib,
        total_cpu,
        total_runtime,
        window,
        requests,
    })
}

fn process_cpu(pid: u32) -> Result<Duration> {
    crate::bench_cpu::process_cpu(pid).with_context(|| format!("no CPU times in /proc/{pid}/stat"))
}

/// The CPU time of every thread of `pid` as the scheduler counts it, to the
/// nanosecond (`se.sum_exec_runtime` of `/proc/<pid>/task/<tid>/sched`, in
/// milliseconds); `None` where the kernel does not show it.
fn scheduler_runtime(pid: u32) -> Option<Duration> {
    let mut total = Duration::ZERO;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let sched = std::fs::read_to_string(task.ok()?.path().join("sched")).ok()?;
        let ms = sched
            .lines()
            .find_map(|l| l.strip_prefix("se.sum_exec_runtime"))?
            .trim_start_matches([' ', '\t', ':'])
            .trim()
            .parse::<f64>()
            .ok()?;
        total += Duration::from_secs_f64(ms / 1e3);
    }
    Some(total)
}

struct Event {
    level: String,
    event: String,
}

/// The agent's process, its stdout lines collected by a thread.
struct Agent {
    child: Child,
    lines: Arc<Mutex<Vec<(Instant, String)>>>,
    reader: Option<JoinHandle<()>>,
}

impl Agent {
    fn start(binary: &Path, imds: &str, interval: &str) -> Result<Agent> {
        let mut command = Command::new(binary);
        // As systemd starts it: no AWS credentials in the environment (the instance
        // profile's are read from IMDS), no options but these.
        command.env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default());
        for trust in ["SSL_CERT_FILE", "SSL_CERT_DIR"] {
            if let Some(value) = std::env::var_os(trust) {
                command.env(trust, value);
            }
        }
        command
            .args(["--imds-endpoint", imds, "--poll-interval", interval])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command.spawn().with_context(|| format!("running {}", binary.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let collected = Arc::clone(&lines);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(mut lines) = collected.lock() {
                    lines.push((Instant::now(), line));
                }
            }
        });
        Ok(Agent { child, lines, reader: Some(reader) })
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().map(|l| l.iter().map(|(_, line)| line.clone()).collect()).unwrap_or_default()
    }

    fn events(&self) -> Vec<Event> {
        self.lines()
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .map(|v| Event {
                level: v["level"].as_str().unwrap_or_default().to_owned(),
                event: v["event"].as_str().unwrap_or_default().to_owned(),
            })
            .collect()
    }

    /// When the agent logged `event`.
    fn wait_for_event(&mut self, event: &str, within: Duration) -> Result<Instant> {
        let deadline = Instant::now() + within;
        loop {
            let seen = self.lines.lock().ok().and_then(|lines| {
                lines.iter().find_map(|(at, line)| {
                    let value = serde_json::from_str::<serde_json::Value>(line).ok()?;
                    (value["event"] == event).then_some(*at)
                })
            });
            if let Some(at) = seen {
                return Ok(at);
            }
            self.check_running()?;
            if Instant::now() > deadline {
                bail!("no {event} event from immutable-agent in {within:?}:\n{}", self.lines().join("\n"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn check_running(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            std::thread::sleep(Duration::from_millis(50));
            bail!("immutable-agent exited ({status}):\n{}", self.lines().join("\n"));
        }
        Ok(())
    }

    /// SIGTERM, then an exit 0 (with its `stopped` line) within 15 s.
    fn terminate(&mut self) -> Result<()> {
        let pid = self.child.id().to_string();
        crate::run({
            let mut kill = Command::new("kill");
            kill.args(["-TERM", &pid]);
            kill
        })?;
        let deadline = Instant::now() + Duration::from_secs(15);
        let status = loop {
            if let Some(status) = self.child.try_wait()? {
                break status;
            }
            if Instant::now() > deadline {
                bail!("immutable-agent still running 15 s after SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        if !status.success() {
            bail!("immutable-agent exited with {status} on SIGTERM:\n{}", self.lines().join("\n"));
        }
        if !self.events().iter().any(|e| e.event == "stopped") {
            bail!("immutable-agent exited 0 without its stopped line:\n{}", self.lines().join("\n"));
        }
        Ok(())
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A stand-in for the instance metadata service on 127.0.0.1: IMDSv2 (a token from
/// `PUT /latest/api/token`, required on every `GET`) for a Spot instance with no
/// notice. One connection at a time, on one thread, `Connection: close`.
struct StandIn {
    port: u16,
    requests: Arc<Mutex<BTreeMap<String, u64>>>,
    /// Requests answered otherwise than a well-behaved client should get.
    refused: Arc<Mutex<Vec<String>>>,
    closing: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl StandIn {
    fn start() -> Result<StandIn> {
        let listener = TcpListener::bind("127.0.0.1:0").context("binding the stand-in IMDS")?;
        let port = listener.local_addr()?.port();
        let requests = Arc::new(Mutex::new(BTreeMap::new()));
        let refused = Arc::new(Mutex::new(Vec::new()));
        let closing = Arc::new(AtomicBool::new(false));
        let answers = Answers::new(SystemTime::now());
        let (seen, wrong, flag) = (Arc::clone(&requests), Arc::clone(&refused), Arc::clone(&closing));
        let thread = std::thread::spawn(move || {
            let mut token = 0_u64;
            for stream in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                serve(stream, &answers, &mut token, |request, status| {
                    if let Ok(mut seen) = seen.lock() {
                        *seen.entry(request.to_owned()).or_default() += 1;
                    }
                    let expected = status == 200 || (status == 404 && answers.absent(request));
                    if !expected && let Ok(mut wrong) = wrong.lock() {
                        wrong.push(format!("{request}: {status}"));
                    }
                });
            }
        });
        Ok(StandIn { port, requests, refused, closing, thread: Some(thread) })
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// How many times `GET path` was answered.
    fn count(&self, path: &str) -> usize {
        let key = format!("GET {path}");
        self.requests.lock().map(|r| r.get(&key).copied().unwrap_or(0) as usize).unwrap_or(0)
    }

    /// Stops serving; every request seen, or an error if one was not what the agent
    /// should ask.
    fn finish(mut self) -> Result<BTreeMap<String, u64>> {
        self.stop();
        let refused = self.refused.lock().map(|r| r.clone()).unwrap_or_default();
        if !refused.is_empty() {
            bail!("the stand-in IMDS answered unexpected requests: {}", refused.join(", "));
        }
        Ok(self.requests.lock().map(|r| r.clone()).unwrap_or_default())
    }

    fn stop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.closing.store(true, Ordering::SeqCst);
            let _ = TcpStream::connect(("127.0.0.1", self.port));
            let _ = thread.join();
        }
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What the stand-in serves below `/latest/`.
struct Answers {
    items: BTreeMap<&'static str, String>,
}

impl Answers {
    fn new(now: SystemTime) -> Answers {
        let credentials = serde_json::json!({
            "Code": "Success",
            "LastUpdated": rfc3339(now),
            "Type": "AWS-HMAC",
            "AccessKeyId": "ASIAEXAMPLEBENCH0001",
            "SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "Token": "IQoJb3JpZ2luX2VjEXAMPLE-session-token-of-the-stand-in",
            "Expiration": rfc3339(now + Duration::from_secs(6 * 3600)),
        });
        let items = BTreeMap::from([
            ("meta-data/instance-life-cycle", "spot".to_owned()),
            ("meta-data/instance-id", INSTANCE.to_owned()),
            ("meta-data/placement/region", REGION.to_owned()),
            ("meta-data/tags/instance", "immutable:target-group:0\nimmutable:drain-seconds".to_owned()),
            ("meta-data/tags/instance/immutable:target-group:0", TARGET_GROUP.to_owned()),
            ("meta-data/tags/instance/immutable:drain-seconds", "120".to_owned()),
            ("meta-data/iam/security-credentials/", ROLE.to_owned()),
            ("meta-data/iam/security-credentials/web-instance", credentials.to_string()),
        ]);
        Answers { items }
    }

    /// The items a Spot instance without a notice does not have (404 is their answer).
    fn absent(&self, request: &str) -> bool {
        matches!(
            request.strip_prefix("GET /latest/"),
            Some("meta-data/spot/instance-action" | "meta-data/events/recommendations/rebalance")
        )
    }
}

/// Answers one connection, recording the request (`METHOD path`) and the status given
/// before the client has the answer.
fn serve(
    stream: TcpStream,
    answers: &Answers,
    token: &mut u64,
    record: impl FnOnce(&str, u16),
) -> Option<()> {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).ok()? == 0 {
            return None;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let header = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
    let current = format!("bench-token-{token}");
    let (status, extra, body) = match (method.as_str(), path.strip_prefix("/latest/")) {
        ("PUT", Some("api/token")) => match header("x-aws-ec2-metadata-token-ttl-seconds") {
            Some(ttl) if ttl.parse::<u32>().is_ok_and(|t| (1..=21_600).contains(&t)) => {
                *token += 1;
                let issued = format!("bench-token-{token}");
                (200, format!("X-aws-ec2-metadata-token-ttl-seconds: {ttl}\r\n"), issued)
            }
            _ => (400, String::new(), String::new()),
        },
        ("GET", Some(item)) if *token > 0 && header("x-aws-ec2-metadata-token") == Some(current.as_str()) => {
            match answers.items.get(item) {
                Some(body) => (200, String::new(), body.clone()),
                None => (404, String::new(), String::new()),
            }
        }
        ("GET", Some(_)) => (401, String::new(), String::new()),
        _ => (405, String::new(), String::new()),
    };
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        _ => "Method Not Allowed",
    };
    record(&format!("{method} {path}"), status);
    let stream = reader.get_mut();
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(body.as_bytes()));
    let _ = stream.flush();
    Some(())
}

/// `2026-05-01T17:00:00Z`.
fn rfc3339(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
    let (days, rest) = ((secs / 86_400) as i64, secs % 86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rest / 3_600, rest % 3_600 / 60, rest % 60)
}

/// `5244688` as `5,244,688`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// A folder removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<TempDir> {
        let path = std::env::temp_dir().join(format!("immutable-agent-bench-{}", std::process::id()));
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(TempDir(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn rfc3339_times() {
        let at = |secs: u64| rfc3339(UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(at(4_102_444_799), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(5_244_688), "5,244,688");
    }

    /// The stand-in answers IMDSv2 only, as the agent reads it.
    #[test]
    fn the_stand_in_speaks_imdsv2() -> Result<()> {
        let imds = StandIn::start()?;
        let ask = |request: &str| -> Result<String> {
            let mut stream = TcpStream::connect(("127.0.0.1", imds.port))?;
            stream.write_all(request.as_bytes())?;
            let mut answer = String::new();
            std::io::Read::read_to_string(&mut stream, &mut answer)?;
            Ok(answer)
        };
        let without = ask("GET /latest/meta-data/instance-id HTTP/1.1\r\nHost: x\r\n\r\n")?;
        assert!(without.starts_with("HTTP/1.1 401"), "{without}");
        let token =
            ask("PUT /latest/api/token HTTP/1.1\r\nX-aws-ec2-metadata-token-ttl-seconds: 21600\r\n\r\n")?;
        assert!(token.starts_with("HTTP/1.1 200") && token.ends_with("bench-token-1"), "{token}");
        let id = ask(
            "GET /latest/meta-data/instance-id HTTP/1.1\r\nX-aws-ec2-metadata-token: bench-token-1\r\n\r\n",
        )?;
        assert!(id.ends_with(INSTANCE), "{id}");
        let credentials = ask("GET /latest/meta-data/iam/security-credentials/web-instance HTTP/1.1\r\n\
             X-aws-ec2-metadata-token: bench-token-1\r\n\r\n")?;
        let document = credentials.split("\r\n\r\n").nth(1).unwrap_or_default();
        let value: serde_json::Value = serde_json::from_str(document)?;
        assert_eq!(value["Code"], "Success");
        let notice = ask(
            "GET /latest/meta-data/spot/instance-action HTTP/1.1\r\nX-aws-ec2-metadata-token: bench-token-1\r\n\r\n",
        )?;
        assert!(notice.starts_with("HTTP/1.1 404"), "{notice}");
        assert_eq!(imds.count(INSTANCE_ACTION), 1);
        let refused = imds.finish();
        assert!(refused.is_err_and(|e| e.to_string().contains("GET /latest/meta-data/instance-id: 401")));
        Ok(())
    }
}
