//! A minimal go-plugin client: starts a provider binary the way Terraform does
//! (magic cookie, protocol negotiation, automatic mutual TLS) and calls a few RPCs.
//! For end-to-end tests and benchmarks, not for driving resources.

use crate::plugin::{MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE};
use crate::proto::health::HealthCheckRequest;
use crate::proto::health::health_client::HealthClient;
use crate::proto::plugin::Empty;
use crate::proto::plugin::grpc_controller_client::GrpcControllerClient;
use crate::proto::tfplugin6 as pb;
use crate::proto::tfplugin6::provider_client::ProviderClient;
use base64::Engine as _;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tonic::transport::{Channel, Endpoint};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// The handshake line a plugin prints: `1|6|tcp|127.0.0.1:PORT|grpc|CERT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    pub core_version: u32,
    pub protocol_version: u32,
    pub network: String,
    pub address: String,
    pub protocol: String,
    /// The server certificate (DER), when the plugin uses automatic TLS.
    pub server_cert: Option<Vec<u8>>,
}

impl Handshake {
    pub fn parse(line: &str) -> Result<Self, Error> {
        let parts: Vec<&str> = line.trim_end().split('|').collect();
        if parts.len() < 5 {
            return Err(format!("malformed handshake line {line:?}").into());
        }
        let server_cert = match parts.get(5) {
            Some(cert) if !cert.is_empty() => {
                Some(base64::engine::general_purpose::STANDARD_NO_PAD.decode(cert)?)
            }
            _ => None,
        };
        Ok(Self {
            core_version: parts[0].parse()?,
            protocol_version: parts[1].parse()?,
            network: parts[2].to_owned(),
            address: parts[3].to_owned(),
            protocol: parts[4].to_owned(),
            server_cert,
        })
    }
}

/// A client identity: certificate and key, DER.
pub struct Identity {
    pub cert: CertificateDer<'static>,
    pub key: PrivatePkcs8KeyDer<'static>,
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Self { cert: self.cert.clone(), key: self.key.clone_key() }
    }
}

impl Identity {
    /// A fresh self-signed identity, on the curve Terraform's own uses (P-521).
    pub fn generate() -> Result<Self, Error> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512)?;
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()])?;
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key)?;
        Ok(Self { cert: cert.der().clone(), key: PrivatePkcs8KeyDer::from(key.serialize_der()) })
    }

    pub fn pem(&self) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(self.cert.as_ref());
        let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(chunk));
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
        pem
    }
}

/// A running plugin process with a connected gRPC channel.
pub struct PluginProcess {
    child: Child,
    pub handshake: Handshake,
    /// From spawning the process to reading its handshake line.
    pub time_to_handshake: Duration,
    channel: Channel,
}

impl PluginProcess {
    /// Starts `binary` as Terraform would, with `env` added, and connects with mTLS.
    pub async fn start(binary: &Path, env: &[(String, String)]) -> Result<Self, Error> {
        Self::start_as(binary, env, Identity::generate()?).await
    }

    /// As [`PluginProcess::start`], announcing and presenting `identity`.
    pub async fn start_as(
        binary: &Path,
        env: &[(String, String)],
        identity: Identity,
    ) -> Result<Self, Error> {
        let mut command = Command::new(binary);
        command
            .env(MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE)
            .env("PLUGIN_PROTOCOL_VERSIONS", "6")
            .env("PLUGIN_CLIENT_CERT", identity.pem())
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let started = Instant::now();
        let mut child = command.spawn()?;
        let stdout = child.stdout.take().ok_or("plugin stdout not captured")?;
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .map_err(|_| "no handshake line within 30s")??
            .ok_or("plugin exited before its handshake")?;
        let time_to_handshake = started.elapsed();
        let handshake = Handshake::parse(&line)?;
        // Keep draining stdout so the plugin never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let server_cert = handshake.server_cert.clone().ok_or("plugin did not offer TLS")?;
        let channel = connect(&handshake.address, server_cert, Some(identity)).await?;
        Ok(Self { child, handshake, time_to_handshake, channel })
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Calls GetProviderSchema; returns the resource and data source type names.
    pub async fn schema_type_names(&self) -> Result<(Vec<String>, Vec<String>), Error> {
        let response = ProviderClient::new(self.channel.clone())
            .max_decoding_message_size(256 << 20)
            .get_provider_schema(pb::get_provider_schema::Request {})
            .await?
            .into_inner();
        let mut resources: Vec<String> = response.resource_schemas.into_keys().collect();
        let mut data_sources: Vec<String> = response.data_source_schemas.into_keys().collect();
        resources.sort();
        data_sources.sort();
        Ok((resources, data_sources))
    }

    pub async fn health(&self) -> Result<bool, Error> {
        health(&self.channel).await
    }

    /// Asks the plugin to exit, as Terraform does when done, and waits for it.
    pub async fn shutdown(mut self) -> Result<std::process::ExitStatus, Error> {
        let _ = GrpcControllerClient::new(self.channel.clone()).shutdown(Empty {}).await;
        Ok(tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await??)
    }
}

/// Health check of the `plugin` service over `channel`.
pub async fn health(channel: &Channel) -> Result<bool, Error> {
    let response =
        HealthClient::new(channel.clone()).check(HealthCheckRequest { service: "plugin".to_owned() }).await?;
    Ok(response.into_inner().status
        == crate::proto::health::health_check_response::ServingStatus::Serving as i32)
}

/// Opens a TLS gRPC channel to `address` that trusts exactly `server_cert` and
/// presents `identity` (or no client certificate at all).
pub async fn connect(
    address: &str,
    server_cert: Vec<u8>,
    identity: Option<Identity>,
) -> Result<Channel, Error> {
    let crypto = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = Arc::new(crate::pinned::PinnedCert::new(server_cert, crypto.clone()));
    let builder = rustls::ClientConfig::builder_with_provider(crypto)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match identity {
        Some(identity) => {
            builder.with_client_auth_cert(vec![identity.cert], PrivateKeyDer::Pkcs8(identity.key))?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let address = address.to_owned();
    let endpoint =
        Endpoint::from_shared(format!("http://{address}"))?.connect_timeout(Duration::from_secs(10));
    let channel = endpoint
        .connect_with_connector(tower::service_fn(move |_| {
            let connector = connector.clone();
            let address = address.clone();
            async move {
                let tcp = tokio::net::TcpStream::connect(&address).await?;
                tcp.set_nodelay(true)?;
                let name = ServerName::try_from("localhost").map_err(std::io::Error::other)?;
                let tls = connector.connect(name, tcp).await?;
                Ok::<_, std::io::Error>(TokioIo::new(tls))
            }
        }))
        .await?;
    Ok(channel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_handshake_lines() {
        let h = Handshake::parse("1|6|tcp|127.0.0.1:1234|grpc|AQID\n").expect("valid line");
        assert_eq!((h.core_version, h.protocol_version), (1, 6));
        assert_eq!(h.address, "127.0.0.1:1234");
        assert_eq!(h.server_cert, Some(vec![1, 2, 3]));
        let plain = Handshake::parse("1|6|tcp|127.0.0.1:1|grpc|").expect("valid line");
        assert_eq!(plain.server_cert, None);
        assert!(Handshake::parse("garbage").is_err());
    }
}
