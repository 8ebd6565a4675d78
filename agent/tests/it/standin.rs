//! Stand-ins for IMDS and ELB: small HTTP/1.1 servers on 127.0.0.1 (a thread per
//! connection) that record every request, and a way to run the agent's loop on a
//! thread with its log captured.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

use agent::{Command, Config, Fatal, Log, Outcome, Stop};
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use serde_json::Value;

pub const INSTANCE: &str = "i-0123456789abcdef0";
pub const REGION: &str = "eu-west-1";
pub const TG_WEB: &str =
    "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/web/0123456789abcdef";
pub const TG_API: &str =
    "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/api/fedcba9876543210";
pub const ACCESS_KEY: &str = "AKIDEXAMPLE";
pub const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
pub const SESSION_TOKEN: &str = "session-token-example";

#[derive(Clone, Debug)]
pub struct Req {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub at: Instant,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub enum Reply {
    Answer(u16, String),
    /// Close the connection without an answer.
    Drop,
    /// Say nothing for this long, then close.
    Hang(Duration),
}

type Handler = Arc<dyn Fn(&Req) -> Reply + Send + Sync>;

/// A listener that can be closed (connections refused) and opened again on its port.
pub struct Server {
    port: u16,
    handler: Handler,
    /// HTTPS with this configuration.
    pub tls: Option<Arc<ServerConfig>>,
    running: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
}

impl Server {
    pub fn start(handler: Handler) -> Server {
        Server::start_with(handler, None)
    }

    pub fn start_with(handler: Handler, tls: Option<Arc<ServerConfig>>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        let mut server = Server { port, handler, tls, running: None };
        server.serve(listener);
        server
    }

    fn serve(&mut self, listener: TcpListener) {
        let closing = Arc::new(AtomicBool::new(false));
        let (flag, handler, tls) = (Arc::clone(&closing), Arc::clone(&self.handler), self.tls.clone());
        let accepting = thread::spawn(move || {
            for stream in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut tcp) = stream else { continue };
                let (handler, tls) = (Arc::clone(&handler), tls.clone());
                thread::spawn(move || {
                    let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
                    match tls {
                        None => answer(&mut tcp, &handler),
                        Some(config) => {
                            let Ok(session) = ServerConnection::new(config) else { return };
                            let mut stream = StreamOwned::new(session, tcp.try_clone().expect("clone"));
                            answer(&mut stream, &handler);
                            stream.conn.send_close_notify();
                            let _ = stream.flush();
                        }
                    }
                    let _ = tcp.shutdown(Shutdown::Both);
                });
            }
        });
        self.running = Some((closing, accepting));
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Closes the listener: connecting is refused until `reopen`.
    pub fn close(&mut self) {
        if let Some((closing, accepting)) = self.running.take() {
            closing.store(true, Ordering::SeqCst);
            let _ = TcpStream::connect(("127.0.0.1", self.port));
            let _ = accepting.join();
        }
    }

    pub fn reopen(&mut self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).expect("bind the same port again");
        self.serve(listener);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.close();
    }
}

fn answer(stream: &mut (impl Read + Write), handler: &Handler) {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or("").to_owned(), parts.next().unwrap_or("").to_owned());
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 {
            return;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    let length = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let request = Req { method, path, headers, body, at: Instant::now() };
    let stream = reader.get_mut();
    match handler(&request) {
        Reply::Answer(status, text) => {
            let head = format!(
                "HTTP/1.1 {status} {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                reason(status),
                text.len()
            );
            let _ = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(text.as_bytes()));
        }
        Reply::Drop => {}
        Reply::Hang(duration) => thread::sleep(duration),
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Other",
    }
}

/// How the stand-in IMDS behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Normal,
    /// 503 to everything.
    Unavailable,
    /// Connections closed without an answer.
    Drop,
    /// No answer for 10 s.
    Hang,
    /// IMDSv1 only: the token PUT answered with this status, GETs without a token.
    V1Only(u16),
}

/// One request IMDS saw: its path below the instance's prefix (`latest/...`), the
/// token it carried and the status it got.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub token: Option<String>,
    pub status: u16,
    pub at: Instant,
}

pub struct ImdsState {
    pub life_cycle: String,
    pub tags: Option<Vec<(String, String)>>,
    pub instance_action: Option<String>,
    pub rebalance: Option<String>,
    /// The instance profile: role name and its credentials document.
    pub role: Option<(String, String)>,
    pub mode: Mode,
    /// Valid tokens and when they expire.
    pub tokens: HashMap<String, Instant>,
    pub seen: Vec<Seen>,
}

pub struct FakeImds {
    pub server: Server,
    state: Arc<Mutex<ImdsState>>,
}

static TOKENS: AtomicU64 = AtomicU64::new(1);

impl FakeImds {
    /// A Spot instance tagged with two target groups and a drain time.
    pub fn spot(drain_seconds: &str) -> FakeImds {
        FakeImds::start(Some(vec![
            ("Name".into(), "web".into()),
            ("immutable:target-group:0".into(), TG_WEB.into()),
            ("immutable:target-group:1".into(), TG_API.into()),
            ("immutable:drain-seconds".into(), drain_seconds.into()),
        ]))
    }

    pub fn start(tags: Option<Vec<(String, String)>>) -> FakeImds {
        let state = Arc::new(Mutex::new(ImdsState {
            life_cycle: "spot".into(),
            tags,
            instance_action: None,
            rebalance: None,
            role: None,
            mode: Mode::Normal,
            tokens: HashMap::new(),
            seen: Vec::new(),
        }));
        let shared = Arc::clone(&state);
        let server = Server::start(Arc::new(move |request: &Req| imds_answer(&shared, request)));
        FakeImds { server, state }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/_immutable/imds/{INSTANCE}", self.server.port())
    }

    pub fn state(&self) -> MutexGuard<'_, ImdsState> {
        self.state.lock().expect("IMDS state")
    }

    pub fn set_mode(&self, mode: Mode) {
        self.state().mode = mode;
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state().seen.clone()
    }

    /// GETs of `path` (below `latest/meta-data/`) so far.
    pub fn gets_of(&self, path: &str) -> usize {
        let path = format!("latest/meta-data/{path}");
        self.state().seen.iter().filter(|s| s.method == "GET" && s.path == path).count()
    }

    /// Posts an instance-action notice for `left` from now; the time it names.
    pub fn post_notice(&self, action: &str, left: Duration) -> String {
        let time = agent::clock::rfc3339_seconds(SystemTime::now() + left);
        self.state().instance_action = Some(format!(r#"{{"action": "{action}", "time": "{time}"}}"#));
        time
    }
}

fn imds_answer(state: &Mutex<ImdsState>, request: &Req) -> Reply {
    let Ok(mut state) = state.lock() else { return Reply::Drop };
    let prefix = format!("/_immutable/imds/{INSTANCE}/");
    let path = request.path.strip_prefix(&prefix).unwrap_or("").to_owned();
    let token = request.header("X-aws-ec2-metadata-token").map(str::to_owned);
    let (status, body) = match state.mode {
        Mode::Unavailable => (503, "503 - Service Unavailable".to_owned()),
        Mode::Drop => {
            record(&mut state, request, path, token, 0);
            return Reply::Drop;
        }
        Mode::Hang => {
            record(&mut state, request, path, token, 0);
            return Reply::Hang(Duration::from_secs(10));
        }
        Mode::V1Only(refusal) if path == "latest/api/token" => (refusal, String::new()),
        Mode::V1Only(_) => item(&state, &path).map_or((404, String::new()), |body| (200, body)),
        Mode::Normal if path == "latest/api/token" => {
            let ttl =
                request.header("X-aws-ec2-metadata-token-ttl-seconds").and_then(|t| t.parse::<u64>().ok());
            match (request.method.as_str(), ttl) {
                ("PUT", Some(ttl @ 1..=21600)) => {
                    let token = format!("token-{}", TOKENS.fetch_add(1, Ordering::SeqCst));
                    state.tokens.insert(token.clone(), Instant::now() + Duration::from_secs(ttl));
                    (200, token)
                }
                ("PUT", _) => (400, String::new()),
                _ => (405, String::new()),
            }
        }
        Mode::Normal => {
            let valid =
                token.as_ref().and_then(|t| state.tokens.get(t)).is_some_and(|until| Instant::now() < *until);
            if request.method != "GET" {
                (405, String::new())
            } else if !valid {
                (401, String::new())
            } else {
                item(&state, &path).map_or((404, String::new()), |body| (200, body))
            }
        }
    };
    record(&mut state, request, path, token, status);
    Reply::Answer(status, body)
}

fn record(state: &mut ImdsState, request: &Req, path: String, token: Option<String>, status: u16) {
    state.seen.push(Seen { method: request.method.clone(), path, token, status, at: request.at });
}

fn item(state: &ImdsState, path: &str) -> Option<String> {
    let item = path.strip_prefix("latest/meta-data/")?;
    let tag = |key: &str| state.tags.as_ref()?.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    match item {
        "instance-life-cycle" => Some(state.life_cycle.clone()),
        "instance-id" => Some(INSTANCE.into()),
        "placement/region" => Some(REGION.into()),
        "spot/instance-action" => state.instance_action.clone(),
        "events/recommendations/rebalance" => state.rebalance.clone(),
        "tags/instance" | "tags/instance/" => {
            Some(state.tags.as_ref()?.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>().join("\n"))
        }
        "iam/security-credentials/" => state.role.as_ref().map(|(role, _)| role.clone()),
        _ => {
            if let Some(key) = item.strip_prefix("tags/instance/") {
                return tag(key);
            }
            let role = item.strip_prefix("iam/security-credentials/")?;
            state.role.as_ref().filter(|(r, _)| r == role).map(|(_, document)| document.clone())
        }
    }
}

/// A scripted ELB answer.
#[derive(Clone, Copy, Debug)]
pub enum ElbFailure {
    /// An error response with this status and AWS error code.
    Error(u16, &'static str),
    Drop,
}

#[derive(Default)]
pub struct ElbState {
    pub requests: Vec<Req>,
    /// Failures to answer, per target group ARN, before succeeding.
    pub failures: HashMap<String, VecDeque<ElbFailure>>,
}

pub struct FakeElb {
    pub server: Server,
    state: Arc<Mutex<ElbState>>,
}

impl FakeElb {
    pub fn start() -> FakeElb {
        FakeElb::start_with(None)
    }

    /// Over HTTPS, as `localhost`, with this configuration.
    pub fn start_with(tls: Option<Arc<ServerConfig>>) -> FakeElb {
        let state = Arc::new(Mutex::new(ElbState::default()));
        let shared = Arc::clone(&state);
        let server = Server::start_with(Arc::new(move |request: &Req| elb_answer(&shared, request)), tls);
        FakeElb { server, state }
    }

    pub fn url(&self) -> String {
        match self.server.tls {
            Some(_) => format!("https://localhost:{}", self.server.port()),
            None => format!("http://127.0.0.1:{}", self.server.port()),
        }
    }

    pub fn requests(&self) -> Vec<Req> {
        self.state.lock().expect("ELB state").requests.clone()
    }

    pub fn fail(&self, target_group: &str, failures: &[ElbFailure]) {
        self.state
            .lock()
            .expect("ELB state")
            .failures
            .insert(target_group.to_owned(), failures.iter().copied().collect());
    }
}

fn elb_answer(state: &Mutex<ElbState>, request: &Req) -> Reply {
    let Ok(mut state) = state.lock() else { return Reply::Drop };
    state.requests.push(request.clone());
    let group = form_value(&request.body_text(), "TargetGroupArn").unwrap_or_default();
    match state.failures.get_mut(&group).and_then(VecDeque::pop_front) {
        Some(ElbFailure::Drop) => Reply::Drop,
        Some(ElbFailure::Error(status, code)) => Reply::Answer(
            status,
            format!(
                "<ErrorResponse xmlns=\"http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/\">\
                 <Error><Type>Sender</Type><Code>{code}</Code><Message>{code} from the stand-in</Message></Error>\
                 <RequestId>failed-{}</RequestId></ErrorResponse>",
                state.requests.len()
            ),
        ),
        None => Reply::Answer(
            200,
            format!(
                "<DeregisterTargetsResponse xmlns=\"http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/\">\
                 <DeregisterTargetsResult/><ResponseMetadata><RequestId>request-{}</RequestId></ResponseMetadata>\
                 </DeregisterTargetsResponse>",
                state.requests.len()
            ),
        ),
    }
}

/// A form field's value, percent-decoded.
pub fn form_value(body: &str, name: &str) -> Option<String> {
    let value = body.split('&').find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))?;
    let bytes = value.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(byte) = value.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// A writer whose lines tests read back.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    pub fn lines(&self) -> Vec<Value> {
        let text = String::from_utf8_lossy(&self.0.lock().expect("log buffer")).into_owned();
        text.lines().map(|line| serde_json::from_str(line).expect("every log line is JSON")).collect()
    }

    pub fn events(&self) -> Vec<String> {
        self.lines().iter().map(|l| l["event"].as_str().unwrap_or("").to_owned()).collect()
    }

    pub fn count(&self, event: &str) -> usize {
        self.events().iter().filter(|e| *e == event).count()
    }

    /// The first line of `event`.
    pub fn line(&self, event: &str) -> Option<Value> {
        self.lines().into_iter().find(|l| l["event"] == event)
    }
}

/// Options for the stand-ins: a fast poll, the ELB stand-in, test credentials.
pub fn config(imds: &FakeImds, elb: &FakeElb, extra: &[&str]) -> Config {
    config_with_env(
        imds,
        elb,
        extra,
        &[
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
            ("AWS_SESSION_TOKEN", SESSION_TOKEN),
        ],
    )
}

pub fn config_with_env(imds: &FakeImds, elb: &FakeElb, extra: &[&str], env: &[(&str, &str)]) -> Config {
    let mut args = vec!["--imds-endpoint".to_owned(), imds.url(), "--elb-endpoint".into(), elb.url()];
    args.extend(["--poll-interval".into(), "20ms".into(), "--imds-timeout".into(), "500ms".into()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let lookup = move |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    match Config::from_args(args, &lookup) {
        Ok(Command::Run(config)) => *config,
        other => panic!("test options: {other:?}"),
    }
}

/// The agent's loop on a thread.
pub struct Running {
    pub stop: Stop,
    pub log: Captured,
    handle: Option<JoinHandle<Result<Outcome, Fatal>>>,
}

impl Running {
    pub fn start(config: Config) -> Running {
        let (stop, log) = (Stop::new(), Captured::default());
        let (thread_stop, thread_log) = (stop.clone(), Log::new(log.clone()));
        let handle = thread::spawn(move || agent::run(&config, &thread_stop, &thread_log));
        Running { stop, log, handle: Some(handle) }
    }

    /// Waits up to `within` for `event` to be logged.
    pub fn expect(&self, event: &str, within: Duration) {
        let seen = wait_until(within, || self.log.count(event) > 0);
        assert!(seen, "no {event:?} within {within:?}; the log: {:#?}", self.log.lines());
    }

    pub fn finished(&self) -> bool {
        self.handle.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// The run's result, waiting up to `within` for it to end.
    pub fn join(&mut self, within: Duration) -> Result<Outcome, Fatal> {
        assert!(
            wait_until(within, || self.finished()),
            "still running after {within:?}: {:#?}",
            self.log.lines()
        );
        let handle = self.handle.take().expect("joined once");
        handle.join().expect("the loop does not panic")
    }

    /// Triggers the stop flag; the run must end within `within`.
    pub fn stop(&mut self, within: Duration) -> Result<Outcome, Fatal> {
        self.stop.trigger();
        self.join(within)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.trigger();
    }
}

pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(5));
    }
}
