//! Serving a provider the way Terraform starts it: HashiCorp's go-plugin handshake
//! over gRPC with automatic mutual TLS, plus the side services go-plugin expects.

use crate::pinned::PinnedCert;
use crate::proto::health::health_server::{Health, HealthServer};
use crate::proto::health::{HealthCheckRequest, HealthCheckResponse, health_check_response::ServingStatus};
use crate::proto::plugin::grpc_broker_server::{GrpcBroker, GrpcBrokerServer};
use crate::proto::plugin::grpc_controller_server::{GrpcController, GrpcControllerServer};
use crate::proto::plugin::grpc_stdio_server::{GrpcStdio, GrpcStdioServer};
use crate::proto::plugin::{ConnInfo, Empty, StdioData};
use crate::proto::tfplugin6::provider_server::ProviderServer;
use crate::provider::Provider;
use crate::server::ProviderService;
use base64::Engine as _;
use futures::Stream;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::io::{self, Write};
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tonic::transport::server::Connected;
use tonic::{Request, Response, Status, Streaming};

/// The value Terraform puts in `TF_PLUGIN_MAGIC_COOKIE` for provider plugins.
pub const MAGIC_COOKIE_KEY: &str = "TF_PLUGIN_MAGIC_COOKIE";
pub const MAGIC_COOKIE_VALUE: &str = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";
/// go-plugin's core protocol version, the first field of the handshake line.
const CORE_PROTOCOL_VERSION: u32 = 1;
/// The plugin protocol this crate speaks.
pub const PROTOCOL_VERSION: u32 = 6;

/// How the binary presents itself.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// The executable's name, for messages: `terraform-provider-immutable`.
    pub binary: &'static str,
    /// The provider's source address, for `TF_REATTACH_PROVIDERS`:
    /// `terraform.local/immutable/immutable`.
    pub address: &'static str,
    pub version: &'static str,
}

/// Runs the provider until Terraform shuts it down. Call from `main`.
pub fn serve(provider: impl Provider, options: ServeOptions) -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{}", usage(&options));
        return ExitCode::SUCCESS;
    }
    if args.iter().any(|a| a == "--version" || a == "-v") {
        println!("{} {}", options.binary, options.version);
        return ExitCode::SUCCESS;
    }
    let debug = args.iter().any(|a| a == "--debug");
    if let Some(unknown) = args.iter().find(|a| !matches!(a.as_str(), "--debug")) {
        eprintln!("{}: unknown argument {unknown:?}\n\n{}", options.binary, usage(&options));
        return ExitCode::from(2);
    }
    if !debug && std::env::var(MAGIC_COOKIE_KEY).as_deref() != Ok(MAGIC_COOKIE_VALUE) {
        eprintln!("{}", not_by_hand(&options));
        return ExitCode::from(1);
    }
    crate::log::init("provider");
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("{}: cannot start the async runtime: {e}", options.binary);
            return ExitCode::from(1);
        }
    };
    let provider: Arc<dyn Provider> = Arc::new(provider);
    let result = runtime.block_on(async move {
        if debug { serve_debug(provider, &options).await } else { serve_plugin(provider).await }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("plugin server failed: {e}");
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

fn usage(options: &ServeOptions) -> String {
    format!(
        "{binary} {version}: a Terraform provider plugin.\n\n\
         Usage:\n  {binary}            (started by Terraform, not by hand)\n  \
         {binary} --debug    serve without Terraform starting it; prints the\n                      \
         TF_REATTACH_PROVIDERS value to export before running terraform\n  \
         {binary} --version\n",
        binary = options.binary,
        version = options.version
    )
}

fn not_by_hand(options: &ServeOptions) -> String {
    let local_name = options.address.rsplit('/').next().unwrap_or("immutable");
    format!(
        "{binary} is a Terraform provider plugin: Terraform starts it; it is not meant to be run by hand.\n\n\
         To use it, install it where Terraform finds providers (see the README), declare it in your\n\
         configuration and run terraform init:\n\n  \
         terraform {{\n    required_providers {{\n      {local_name} = {{ source = \"{address}\" }}\n    }}\n  }}\n\n\
         To debug it, run `{binary} --debug` and export the TF_REATTACH_PROVIDERS value it prints.",
        binary = options.binary,
        address = options.address,
    )
}

/// Picks protocol 6 from what Terraform offers in `PLUGIN_PROTOCOL_VERSIONS`.
fn negotiate_version() -> io::Result<u32> {
    let offered = std::env::var("PLUGIN_PROTOCOL_VERSIONS").unwrap_or_default();
    if offered.is_empty() || offered.split(',').any(|v| v.trim() == PROTOCOL_VERSION.to_string()) {
        Ok(PROTOCOL_VERSION)
    } else {
        Err(io::Error::other(format!(
            "this provider speaks plugin protocol {PROTOCOL_VERSION} (Terraform 1.0 and later), \
             but the client offered only {offered:?}"
        )))
    }
}

async fn bind() -> io::Result<TcpListener> {
    let range = |key: &str| std::env::var(key).ok().and_then(|v| v.parse::<u16>().ok());
    match (range("PLUGIN_MIN_PORT"), range("PLUGIN_MAX_PORT")) {
        (Some(min), Some(max)) if min <= max && min > 0 => {
            for port in min..=max {
                if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)).await {
                    return Ok(listener);
                }
            }
            Err(io::Error::other(format!("no free port between {min} and {max} on 127.0.0.1")))
        }
        _ => TcpListener::bind(("127.0.0.1", 0)).await,
    }
}

async fn serve_plugin(provider: Arc<dyn Provider>) -> io::Result<()> {
    let version = negotiate_version()?;
    let listener = bind().await?;
    let addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();

    let (incoming, cert_field) = match std::env::var("PLUGIN_CLIENT_CERT") {
        Ok(pem) if !pem.trim().is_empty() => {
            let tls = AutoTls::new(pem.as_bytes())?;
            let cert = base64::engine::general_purpose::STANDARD_NO_PAD.encode(tls.server_cert.as_ref());
            (tls_incoming(listener, tls.acceptor()?), cert)
        }
        // go-plugin without AutoMTLS: plain gRPC on loopback.
        _ => (plain_incoming(listener), String::new()),
    };

    let handshake = format!("{CORE_PROTOCOL_VERSION}|{version}|tcp|{addr}|grpc|{cert_field}\n");
    let mut stdout = io::stdout().lock();
    stdout.write_all(handshake.as_bytes())?;
    stdout.flush()?;
    drop(stdout);
    tracing::debug!(address = %addr, "plugin server listening");

    ignore_interrupts();
    run_server(provider, incoming, shutdown, false).await
}

async fn serve_debug(provider: Arc<dyn Provider>, options: &ServeOptions) -> io::Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let reattach = serde_json::json!({
        options.address: {
            "Protocol": "grpc",
            "ProtocolVersion": PROTOCOL_VERSION,
            "Pid": std::process::id(),
            "Test": true,
            "Addr": { "Network": "tcp", "String": addr.to_string() },
        }
    });
    println!(
        "{} is serving in debug mode on {addr}.\n\nTo use it, run Terraform in a shell with:\n\n\texport TF_REATTACH_PROVIDERS='{reattach}'\n\nPress Ctrl-C to stop.",
        options.binary
    );
    let _ = io::stdout().flush();
    let shutdown = CancellationToken::new();
    let on_interrupt = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        on_interrupt.cancel();
    });
    run_server(provider, plain_incoming(listener), shutdown, true).await
}

/// Terraform handles Ctrl-C itself and tells the provider through StopProvider; the
/// signal also reaches this process (same process group), so it must not kill it.
fn ignore_interrupts() {
    tokio::spawn(async {
        while tokio::signal::ctrl_c().await.is_ok() {
            tracing::debug!("interrupt received; waiting for Terraform's StopProvider");
        }
    });
}

/// How often the provider checks that Terraform is still there.
const PARENT_POLL: Duration = Duration::from_millis(500);
/// How long operations in progress may take to stop once Terraform is gone (a
/// rollout rolling back, a build terminating its instance, Packer cleaning up).
const ORPHAN_GRACE: Duration = Duration::from_secs(300);
/// Operations dropped with their connection spawn their cleanup (a builder
/// instance's termination, Packer cleaning up after an interrupt; see
/// [`crate::cleanup`]); this is the most they get before the exit.
const CLEANUP_GRACE: Duration = Duration::from_secs(180);

/// Terraform that dies without shutting the plugin down (kill -9, an OOM kill, a
/// CI runner killed) leaves this process running with nobody to record what it
/// does: a rollout that went on would switch fleets behind a state that still
/// names the old one. Go providers die of SIGPIPE at their next log line; this one
/// watches its parent instead. When Terraform is gone, operations in progress are
/// stopped as on Ctrl-C (a rollout rolls back, a build cleans up), then the
/// process exits.
fn exit_when_terraform_is_gone(stop: CancellationToken, applying: Arc<AtomicUsize>) {
    let terraform = std::os::unix::process::parent_id();
    tokio::spawn(async move {
        while std::os::unix::process::parent_id() == terraform {
            tokio::time::sleep(PARENT_POLL).await;
        }
        tracing::warn!(terraform, "Terraform is gone: stopping the operations in progress, then exiting");
        stop.cancel();
        let deadline = tokio::time::Instant::now() + ORPHAN_GRACE;
        while applying.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Dropped operations spawn their cleanup as they go: give it a moment to start.
        tokio::time::sleep(Duration::from_millis(200)).await;
        if !crate::cleanup::wait(CLEANUP_GRACE).await {
            tracing::error!("cleanup still running after {CLEANUP_GRACE:?}; exiting anyway");
        }
        std::process::exit(1);
    });
}

type Incoming = tokio_stream::wrappers::ReceiverStream<io::Result<Conn>>;

async fn run_server(
    provider: Arc<dyn Provider>,
    incoming: Incoming,
    shutdown: CancellationToken,
    debug: bool,
) -> io::Result<()> {
    let stop = CancellationToken::new();
    let service = ProviderService::new(provider, stop.clone());
    if !debug {
        exit_when_terraform_is_gone(stop, service.applying());
    }
    let side = SideServices { shutdown: shutdown.clone(), debug };
    let until = shutdown.clone();
    let result = tonic::transport::Server::builder()
        .add_service(ProviderServer::new(service).max_decoding_message_size(256 << 20))
        .add_service(GrpcControllerServer::new(side.clone()))
        .add_service(GrpcStdioServer::new(side.clone()))
        .add_service(GrpcBrokerServer::new(side.clone()))
        .add_service(HealthServer::new(side))
        .serve_with_incoming_shutdown(incoming, async move { until.cancelled().await })
        .await;
    result.map_err(io::Error::other)
}

fn plain_incoming(listener: TcpListener) -> Incoming {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        loop {
            let accepted = listener.accept().await.map(|(tcp, _)| {
                no_delay(&tcp);
                Conn::Plain(tcp)
            });
            if tx.send(accepted).await.is_err() {
                break;
            }
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// gRPC sends small frames and waits for the answer: without this, Nagle's algorithm
/// and delayed ACKs add ~40 ms to every call.
fn no_delay(tcp: &TcpStream) {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!("cannot disable Nagle's algorithm: {e}");
    }
}

fn tls_incoming(listener: TcpListener, acceptor: tokio_rustls::TlsAcceptor) -> Incoming {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        loop {
            let tcp = match listener.accept().await {
                Ok((tcp, _)) => {
                    no_delay(&tcp);
                    tcp
                }
                Err(e) => {
                    tracing::warn!("accepting a connection failed: {e}");
                    continue;
                }
            };
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            // Handshakes run concurrently so one slow or hostile peer blocks nobody.
            tokio::spawn(async move {
                match acceptor.accept(tcp).await {
                    Ok(tls) => {
                        let _ = tx.send(Ok(Conn::Tls(Box::new(tls)))).await;
                    }
                    Err(e) => {
                        tracing::warn!("refused a connection without Terraform's client certificate: {e}")
                    }
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// The per-run TLS identity: our fresh self-signed certificate (sent to Terraform in
/// the handshake) and the one certificate we accept from the client.
struct AutoTls {
    server_cert: CertificateDer<'static>,
    server_key: PrivatePkcs8KeyDer<'static>,
    client_cert: CertificateDer<'static>,
}

impl AutoTls {
    fn new(client_pem: &[u8]) -> io::Result<Self> {
        let client_cert = CertificateDer::from_pem_slice(client_pem)
            .map_err(|e| io::Error::other(format!("PLUGIN_CLIENT_CERT is not a PEM certificate: {e}")))?;
        let (server_cert, server_key) = generate_certificate().map_err(io::Error::other)?;
        Ok(Self { server_cert, server_key, client_cert })
    }

    fn acceptor(&self) -> io::Result<tokio_rustls::TlsAcceptor> {
        let crypto = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        // Only the certificate Terraform announced in `PLUGIN_CLIENT_CERT`, and only
        // from a peer that proves it holds its key (the TLS handshake signature).
        let verifier = Arc::new(PinnedCert::new(self.client_cert.to_vec(), crypto.clone()));
        let mut config = rustls::ServerConfig::builder_with_provider(crypto)
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                vec![self.server_cert.clone()],
                PrivateKeyDer::Pkcs8(self.server_key.clone_key()),
            )
            .map_err(io::Error::other)?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
    }
}

/// A self-signed certificate for `localhost`, valid as its own CA, which is how
/// go-plugin's client trusts it (as the only root for this connection).
pub(crate) fn generate_certificate()
-> Result<(CertificateDer<'static>, PrivatePkcs8KeyDer<'static>), rcgen::Error> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose,
    };
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::new(vec!["localhost".to_owned()])?;
    params.distinguished_name.push(DnType::CommonName, "localhost");
    params.distinguished_name.push(DnType::OrganizationName, "terraform-provider");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::KeyAgreement,
        KeyUsagePurpose::KeyCertSign,
    ];
    params.extended_key_usages =
        vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.self_signed(&key)?;
    Ok((cert.der().clone(), PrivatePkcs8KeyDer::from(key.serialize_der())))
}

/// One accepted connection, plain or TLS.
enum Conn {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl Connected for Conn {
    type ConnectInfo = ();
    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(self: Pin<&mut Self>, cx: &mut TaskContext<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// go-plugin's controller, stdio, broker and health services.
#[derive(Clone)]
struct SideServices {
    shutdown: CancellationToken,
    debug: bool,
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// A stream that yields nothing and ends when the server shuts down (so graceful
/// shutdown is never held up by it).
fn until_shutdown<T: Send + 'static>(shutdown: CancellationToken) -> BoxStream<T> {
    use futures::StreamExt as _;
    let ended = futures::stream::once(async move { shutdown.cancelled_owned().await });
    Box::pin(ended.filter_map(|()| async { None }))
}

#[tonic::async_trait]
impl GrpcController for SideServices {
    async fn shutdown(&self, _: Request<Empty>) -> Result<Response<Empty>, Status> {
        if self.debug {
            tracing::debug!("ignoring shutdown request in debug mode");
        } else {
            tracing::debug!("shutdown requested by Terraform");
            self.shutdown.cancel();
            // Terraform does not wait long for a plugin to exit; make sure we do.
            tokio::spawn(async {
                tokio::time::sleep(Duration::from_secs(2)).await;
                std::process::exit(0);
            });
        }
        Ok(Response::new(Empty {}))
    }
}

#[tonic::async_trait]
impl GrpcStdio for SideServices {
    type StreamStdioStream = BoxStream<StdioData>;

    async fn stream_stdio(&self, _: Request<()>) -> Result<Response<Self::StreamStdioStream>, Status> {
        // Logs go to stderr as hclog JSON, which go-plugin reads directly.
        Ok(Response::new(until_shutdown(self.shutdown.clone())))
    }
}

#[tonic::async_trait]
impl GrpcBroker for SideServices {
    type StartStreamStream = BoxStream<ConnInfo>;

    async fn start_stream(
        &self,
        request: Request<Streaming<ConnInfo>>,
    ) -> Result<Response<Self::StartStreamStream>, Status> {
        let mut inbound = request.into_inner();
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    message = inbound.message() => match message {
                        Ok(Some(info)) => tracing::debug!(service_id = info.service_id, "ignoring broker connection offer"),
                        _ => break,
                    },
                }
            }
        });
        Ok(Response::new(until_shutdown(self.shutdown.clone())))
    }
}

#[tonic::async_trait]
impl Health for SideServices {
    type WatchStream = BoxStream<HealthCheckResponse>;

    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        let service = request.into_inner().service;
        if service.is_empty() || service == "plugin" {
            Ok(Response::new(HealthCheckResponse { status: ServingStatus::Serving as i32 }))
        } else {
            Err(Status::not_found(format!("unknown service {service:?}")))
        }
    }

    async fn watch(&self, _: Request<HealthCheckRequest>) -> Result<Response<Self::WatchStream>, Status> {
        let serving = futures::stream::once(async {
            Ok(HealthCheckResponse { status: ServingStatus::Serving as i32 })
        });
        use futures::StreamExt as _;
        Ok(Response::new(Box::pin(serving.chain(until_shutdown(self.shutdown.clone())))))
    }
}
