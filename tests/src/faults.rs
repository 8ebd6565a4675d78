//! A fault-injecting HTTP proxy in front of the local AWS emulator.
//!
//! [`FaultProxy`] listens on 127.0.0.1 and forwards every request to the emulator,
//! except that, with the probability of its [`FaultPlan`], a request gets one of the
//! faults AWS clients meet in production ([`FaultKind`]): an HTTP 500 or a throttling
//! answer with the body the real service sends, a connection dropped before the
//! request is forwarded, a connection dropped after the emulator carried the request
//! out (the answer is lost), or added latency.
//!
//! Decisions are seeded: the n-th request of each action (`ec2:RunInstances`) gets the
//! same fault for the same seed, whatever other requests run concurrently, so a
//! failing run replays with [`FAULT_SEED_ENV`] set to its seed (up to the timing of
//! polls, which decides how many polls there are). The proxy counts what it
//! injected, by kind and by action, so a test can check that faults happened.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, TRANSFER_ENCODING};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;

use crate::local_aws::Account;

/// Environment variable with the seed of a run to replay (decimal, or hex with `0x`).
pub const FAULT_SEED_ENV: &str = "IMMUTABLE_FAULT_SEED";

/// The seed for this run: [`FAULT_SEED_ENV`] when set, else a fresh one. Print it,
/// so that a failing run can be replayed.
///
/// # Panics
/// When [`FAULT_SEED_ENV`] is set but is not a number.
pub fn fault_seed() -> u64 {
    match std::env::var(FAULT_SEED_ENV) {
        Ok(text) if !text.trim().is_empty() => match parse_seed(&text) {
            Some(seed) => seed,
            None => panic!("{FAULT_SEED_ENV}={text:?} is not a number"),
        },
        _ => {
            static FRESH: AtomicU64 = AtomicU64::new(0);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0);
            let salt = FRESH.fetch_add(1, Ordering::Relaxed);
            mix(nanos ^ (u64::from(std::process::id()) << 32) ^ mix(salt))
        }
    }
}

fn parse_seed(text: &str) -> Option<u64> {
    let text = text.trim();
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// What can happen to one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// HTTP 500 with the service's internal-error body (EC2 `InternalError`, ELBv2
    /// `InternalFailure`, IAM `ServiceFailure`).
    ServerError,
    /// The service's throttling answer: EC2 `RequestLimitExceeded` (HTTP 503), ELBv2
    /// and IAM `Throttling` (HTTP 400, as AWS sends it).
    Throttling,
    /// The connection closes before the request reaches the emulator.
    DropBeforeForward,
    /// The emulator carries the request out, then the connection closes before the
    /// answer: the client cannot know that it happened.
    DropAfterForward,
    /// The answer comes, late.
    Latency,
}

impl FaultKind {
    pub const ALL: [FaultKind; 5] = [
        FaultKind::ServerError,
        FaultKind::Throttling,
        FaultKind::DropBeforeForward,
        FaultKind::DropAfterForward,
        FaultKind::Latency,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::ServerError => "server-error",
            FaultKind::Throttling => "throttling",
            FaultKind::DropBeforeForward => "drop-before",
            FaultKind::DropAfterForward => "drop-after",
            FaultKind::Latency => "latency",
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which faults a [`FaultProxy`] injects.
#[derive(Clone, Debug)]
pub struct FaultPlan {
    pub seed: u64,
    /// Probability that a request gets a fault (0 to 1); the kind is then drawn
    /// uniformly from [`FaultKind::ALL`].
    pub rate: f64,
    /// Faults that happen for sure, by action (`ec2:RequestSpotFleet`): the k-th
    /// entry of an action applies to that action's k-th request.
    pub scripted: Vec<(String, FaultKind)>,
}

impl FaultPlan {
    pub fn new(seed: u64, rate: f64) -> FaultPlan {
        FaultPlan { seed, rate: rate.clamp(0.0, 1.0), scripted: Vec::new() }
    }

    /// Adds a fault for the next request of `action` (`service:Action`, with the
    /// service as in the SigV4 credential scope and `elbv2` for ELBv2) that has no
    /// scripted fault yet.
    pub fn script(mut self, action: &str, kind: FaultKind) -> FaultPlan {
        self.scripted.push((action.to_owned(), kind));
        self
    }

    /// The fault, if any, of the `nth` request (0-based) of `action`.
    fn decide(&self, action: &str, nth: u64) -> Option<Fault> {
        let mut rng = SplitMix64::new(self.seed ^ fnv1a(action.as_bytes()) ^ mix(nth));
        let request_id = rng.request_id();
        let latency = Duration::from_millis(20 + rng.below(280));
        let scripted = self
            .scripted
            .iter()
            .filter(|(a, _)| a == action)
            .nth(usize::try_from(nth).unwrap_or(usize::MAX))
            .map(|(_, kind)| *kind);
        let kind = match scripted {
            Some(kind) => kind,
            None if rng.unit() < self.rate => FaultKind::ALL[rng.below(FaultKind::ALL.len() as u64) as usize],
            None => return None,
        };
        Some(Fault { kind, latency, request_id })
    }
}

#[derive(Clone, Debug)]
struct Fault {
    kind: FaultKind,
    latency: Duration,
    request_id: String,
}

/// Faults a proxy injected so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// Requests the proxy received.
    pub requests: u64,
    pub by_kind: BTreeMap<FaultKind, u64>,
    /// By action (`ec2:RunInstances`), then kind.
    pub by_action: BTreeMap<String, BTreeMap<FaultKind, u64>>,
}

impl FaultCounts {
    /// Faults of every kind.
    pub fn total(&self) -> u64 {
        self.by_kind.values().sum()
    }

    pub fn of(&self, kind: FaultKind) -> u64 {
        self.by_kind.get(&kind).copied().unwrap_or(0)
    }

    pub fn of_action(&self, action: &str, kind: FaultKind) -> u64 {
        self.by_action.get(action).and_then(|k| k.get(&kind)).copied().unwrap_or(0)
    }

    /// Faults other than added latency: those that fail an attempt.
    pub fn failures(&self) -> u64 {
        self.total() - self.of(FaultKind::Latency)
    }
}

impl fmt::Display for FaultCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} faults in {} requests (", self.total(), self.requests)?;
        for (i, kind) in FaultKind::ALL.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}{kind} {}", self.of(*kind))?;
        }
        f.write_str(")")?;
        for (action, kinds) in &self.by_action {
            let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
            write!(f, "\n  {action}: {}", kinds.join(", "))?;
        }
        Ok(())
    }
}

struct Shared {
    upstream: SocketAddr,
    plan: FaultPlan,
    seen: Mutex<HashMap<String, u64>>,
    counts: Mutex<FaultCounts>,
}

impl Shared {
    fn next_index(&self, action: &str) -> u64 {
        let mut seen = lock(&self.seen);
        let n = seen.entry(action.to_owned()).or_insert(0);
        let index = *n;
        *n += 1;
        index
    }

    fn count(&self, action: &str, fault: Option<FaultKind>) {
        let mut counts = lock(&self.counts);
        counts.requests += 1;
        if let Some(kind) = fault {
            *counts.by_kind.entry(kind).or_insert(0) += 1;
            *counts.by_action.entry(action.to_owned()).or_default().entry(kind).or_insert(0) += 1;
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The proxy, serving on a thread of its own until dropped.
pub struct FaultProxy {
    url: String,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultProxy").field("url", &self.url).field("plan", &self.shared.plan).finish()
    }
}

impl FaultProxy {
    /// Starts a proxy on 127.0.0.1 (a free port) in front of `upstream`
    /// (`http://127.0.0.1:PORT`, the emulator).
    pub fn start(upstream: &str, plan: FaultPlan) -> anyhow::Result<FaultProxy> {
        let authority = upstream.strip_prefix("http://").unwrap_or(upstream).trim_end_matches('/');
        let upstream: SocketAddr =
            authority.parse().with_context(|| format!("upstream {upstream:?} is not http://IP:PORT"))?;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding the fault proxy")?;
        listener.set_nonblocking(true).context("fault proxy listener")?;
        let url = format!("http://{}", listener.local_addr().context("fault proxy address")?);
        let shared = Arc::new(Shared {
            upstream,
            plan,
            seen: Mutex::new(HashMap::new()),
            counts: Mutex::new(FaultCounts::default()),
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("fault proxy runtime")?;
        let (shutdown, stopped) = oneshot::channel();
        let serving = shared.clone();
        let thread = std::thread::Builder::new()
            .name("fault-proxy".into())
            .spawn(move || runtime.block_on(serve(listener, serving, stopped)))
            .context("spawning the fault proxy")?;
        Ok(FaultProxy { url, shared, shutdown: Some(shutdown), thread: Some(thread) })
    }

    /// Base URL of the proxy, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn plan(&self) -> &FaultPlan {
        &self.shared.plan
    }

    /// `account`, reached through this proxy (for the provider under test; checks
    /// should use `account` itself, without faults).
    pub fn account(&self, account: &Account) -> Account {
        Account { endpoint: self.url.clone(), ..account.clone() }
    }

    /// What the proxy injected so far.
    pub fn counts(&self) -> FaultCounts {
        lock(&self.shared.counts).clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(listener: std::net::TcpListener, shared: Arc<Shared>, mut stopped: oneshot::Receiver<()>) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("fault proxy: cannot listen: {err}");
            return;
        }
    };
    loop {
        let stream = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    eprintln!("fault proxy: accept: {err}");
                    continue;
                }
            },
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| handle(shared.clone(), request));
            // A dropped connection ends here with the error `handle` returned.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Why the proxy closed a connection instead of answering.
#[derive(Debug)]
struct Dropped(&'static str);

impl fmt::Display for Dropped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fault proxy dropped the connection {}", self.0)
    }
}

impl std::error::Error for Dropped {}

async fn handle(shared: Arc<Shared>, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Dropped> {
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Err(Dropped("(the request body was cut short)")),
    };
    let service = service_of(&parts.headers);
    let action = format!("{service}:{}", action_of(parts.uri.query(), &parts.headers, &body));
    let fault = if parts.uri.path().starts_with("/_immutable") {
        None
    } else {
        let nth = shared.next_index(&action);
        shared.plan.decide(&action, nth)
    };
    shared.count(&action, fault.as_ref().map(|f| f.kind));
    let request = Request::from_parts(parts, Full::new(body));
    match fault {
        None => Ok(forward(shared.upstream, request).await),
        Some(fault) => match fault.kind {
            FaultKind::ServerError | FaultKind::Throttling => {
                Ok(error_response(&service, fault.kind, &fault.request_id))
            }
            FaultKind::DropBeforeForward => Err(Dropped("before forwarding the request")),
            FaultKind::DropAfterForward => {
                let _ = forward(shared.upstream, request).await;
                Err(Dropped("after the emulator answered"))
            }
            FaultKind::Latency => {
                tokio::time::sleep(fault.latency).await;
                Ok(forward(shared.upstream, request).await)
            }
        },
    }
}

/// Sends `request` to the emulator and reads its whole answer. An emulator that
/// cannot be reached gets a 502, as a load balancer would answer.
async fn forward(upstream: SocketAddr, request: Request<Full<Bytes>>) -> Response<Full<Bytes>> {
    match try_forward(upstream, request).await {
        Ok(response) => response,
        Err(err) => {
            let mut response = Response::new(Full::new(Bytes::from(format!("fault proxy: {err:#}"))));
            *response.status_mut() = StatusCode::BAD_GATEWAY;
            response
        }
    }
}

async fn try_forward(
    upstream: SocketAddr,
    request: Request<Full<Bytes>>,
) -> anyhow::Result<Response<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(upstream).await.context("connecting to the emulator")?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.context("HTTP handshake")?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let response = sender.send_request(request).await.context("forwarding the request")?;
    let (mut parts, body) = response.into_parts();
    let body = body.collect().await.context("reading the emulator's answer")?.to_bytes();
    // The proxy keeps its own connections alive; the body is sent whole.
    parts.headers.remove(CONNECTION);
    parts.headers.remove(TRANSFER_ENCODING);
    parts.headers.remove(CONTENT_LENGTH);
    Ok(Response::from_parts(parts, Full::new(body)))
}

/// The signing name from the SigV4 credential scope (`.../eu-west-1/ec2/aws4_request`),
/// `elbv2` for Elastic Load Balancing.
fn service_of(headers: &hyper::HeaderMap) -> String {
    let scope_service = headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|auth| auth.split("Credential=").nth(1))
        .and_then(|credential| credential.split([',', ' ']).next())
        .and_then(|scope| scope.split('/').nth(3))
        .map(str::to_owned);
    match scope_service.as_deref() {
        Some("elasticloadbalancing") => "elbv2".to_owned(),
        Some(service) => service.to_owned(),
        None => "unknown".to_owned(),
    }
}

/// The query protocol's `Action` parameter, from the query string or the
/// form-encoded body.
fn action_of(query: Option<&str>, headers: &hyper::HeaderMap, body: &[u8]) -> String {
    let from =
        |text: &str| text.split('&').find_map(|pair| pair.strip_prefix("Action=")).map(|a| a.to_owned());
    let form = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    query
        .and_then(from)
        .or_else(|| form.then(|| std::str::from_utf8(body).ok().and_then(from)).flatten())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The answer AWS gives for `kind` (a server error or throttling) in `service`.
fn error_response(service: &str, kind: FaultKind, request_id: &str) -> Response<Full<Bytes>> {
    let (status, body) = error_body(service, kind, request_id);
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/xml;charset=UTF-8"));
    if let Ok(id) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("x-amzn-requestid", id);
    }
    response
}

fn error_body(service: &str, kind: FaultKind, request_id: &str) -> (StatusCode, String) {
    let throttled = kind == FaultKind::Throttling;
    if service == "ec2" {
        let (status, code, message) = if throttled {
            (StatusCode::SERVICE_UNAVAILABLE, "RequestLimitExceeded", "Request limit exceeded.")
        } else {
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "An internal error has occurred. Retry your request, but if the problem persists, \
                 contact us with details by posting a message on the AWS forums.",
            )
        };
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{code}</Code>\
             <Message>{message}</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>"
        );
        return (status, body);
    }
    let namespace = match service {
        "elbv2" => "https://elasticloadbalancing.amazonaws.com/doc/2015-12-01/",
        "iam" => "https://iam.amazonaws.com/doc/2010-05-08/",
        "sts" => "https://sts.amazonaws.com/doc/2011-06-15/",
        _ => "https://amazonaws.com/",
    };
    let (status, kind_of_fault, code, message) = if throttled {
        (StatusCode::BAD_REQUEST, "Sender", "Throttling", "Rate exceeded")
    } else if service == "iam" {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "Receiver",
            "ServiceFailure",
            "The request processing has failed because of an unknown error, exception or failure.",
        )
    } else {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "Receiver",
            "InternalFailure",
            "The request processing has failed because of an unknown error, exception or failure.",
        )
    };
    let body = format!(
        "<ErrorResponse xmlns=\"{namespace}\">\n  <Error>\n    <Type>{kind_of_fault}</Type>\n    \
         <Code>{code}</Code>\n    <Message>{message}</Message>\n  </Error>\n  \
         <RequestId>{request_id}</RequestId>\n</ErrorResponse>\n"
    );
    (status, body)
}

/// SplitMix64: a tiny, well-mixed generator, enough to draw faults reproducibly.
struct SplitMix64(u64);

const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(GOLDEN_GAMMA);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl SplitMix64 {
    fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN_GAMMA);
        mix(self.0)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [0, n) (n > 0; the bias is negligible for small n).
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// A request id shaped like AWS's (a UUID).
    fn request_id(&mut self) -> String {
        let (a, b) = (self.next_u64(), self.next_u64());
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xffff,
            b >> 48,
            b & 0xffff_ffff_ffff
        )
    }
}

/// FNV-1a, to fold an action name into the seed.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_faults_and_another_seed_others() {
        let draw = |seed| {
            let plan = FaultPlan::new(seed, 0.2);
            (0..500)
                .map(|n| plan.decide("ec2:DescribeInstances", n).map(|f| (f.kind, f.latency, f.request_id)))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
        let faults = draw(7).iter().filter(|f| f.is_some()).count();
        assert!((60..=140).contains(&faults), "about 20% of 500 requests, got {faults}");
        for kind in FaultKind::ALL {
            assert!(draw(7).iter().flatten().any(|f| f.0 == kind), "{kind} never drawn");
        }
    }

    #[test]
    fn scripted_faults_hit_the_first_requests_of_their_action() {
        let plan = FaultPlan::new(1, 0.0)
            .script("ec2:RunInstances", FaultKind::DropAfterForward)
            .script("ec2:RunInstances", FaultKind::Throttling);
        assert_eq!(plan.decide("ec2:RunInstances", 0).map(|f| f.kind), Some(FaultKind::DropAfterForward));
        assert_eq!(plan.decide("ec2:RunInstances", 1).map(|f| f.kind), Some(FaultKind::Throttling));
        assert!(plan.decide("ec2:RunInstances", 2).is_none());
        assert!(plan.decide("ec2:CreateImage", 0).is_none());
    }

    #[test]
    fn seeds_parse_in_decimal_and_hex() {
        assert_eq!(parse_seed("42"), Some(42));
        assert_eq!(parse_seed(" 0x2a\n"), Some(42));
        assert_eq!(parse_seed("forty-two"), None);
    }

    #[test]
    fn service_and_action_come_from_the_request() {
        let mut headers = hyper::HeaderMap::new();
        headers.insert(
            hyper::header::AUTHORIZATION,
            HeaderValue::from_static(
                "AWS4-HMAC-SHA256 Credential=AKIAMOTO100000000001/20250101/eu-west-1/elasticloadbalancing/aws4_request, SignedHeaders=host, Signature=0",
            ),
        );
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded"));
        assert_eq!(service_of(&headers), "elbv2");
        assert_eq!(
            action_of(None, &headers, b"Version=2015-12-01&Action=RegisterTargets"),
            "RegisterTargets"
        );
        assert_eq!(action_of(Some("Action=DescribeVpcs&Version=2016-11-15"), &headers, b""), "DescribeVpcs");
        assert_eq!(service_of(&hyper::HeaderMap::new()), "unknown");
    }

    #[test]
    fn error_bodies_have_the_shape_of_each_service() {
        let (status, body) = error_body("ec2", FaultKind::Throttling, "id-1");
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("<Response><Errors><Error><Code>RequestLimitExceeded</Code>"), "{body}");
        assert!(body.contains("<RequestID>id-1</RequestID>"), "{body}");
        let (status, body) = error_body("ec2", FaultKind::ServerError, "id-2");
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(body.contains("<Code>InternalError</Code>"), "{body}");
        let (status, body) = error_body("elbv2", FaultKind::ServerError, "id-3");
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(
            body.contains("<Type>Receiver</Type>") && body.contains("<Code>InternalFailure</Code>"),
            "{body}"
        );
        assert!(body.contains("<RequestId>id-3</RequestId>"), "{body}");
        let (status, body) = error_body("iam", FaultKind::Throttling, "id-4");
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body.contains("<Type>Sender</Type>") && body.contains("<Code>Throttling</Code>"), "{body}");
    }
}
