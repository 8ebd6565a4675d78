//! A minimal blocking HTTP/1.1 client, enough for IMDS and the ELB query API: one
//! request per connection (`Connection: close`), one deadline over the whole
//! exchange (connect, send, every read), TLS through rustls for `https://`.
//! Bodies are read by `Content-Length`, chunked, or to the end of the connection.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};

const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 1024 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

/// An endpoint: scheme, host, port and a base path (no trailing `/`) that request
/// paths are appended to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    pub scheme: Scheme,
    pub host: String,
    pub port: u16,
    pub path: String,
}

impl Url {
    pub fn parse(text: &str) -> Result<Url, String> {
        let (scheme, rest) = if let Some(rest) = text.strip_prefix("http://") {
            (Scheme::Http, rest)
        } else if let Some(rest) = text.strip_prefix("https://") {
            (Scheme::Https, rest)
        } else {
            return Err(format!("{text:?} is not an http:// or https:// URL"));
        };
        let (authority, path) = rest.find(['/', '?', '#']).map_or((rest, ""), |i| rest.split_at(i));
        if path.contains(['?', '#']) {
            return Err(format!("{text:?}: a query or fragment is not allowed"));
        }
        if authority.contains('@') {
            return Err(format!("{text:?}: user information is not allowed"));
        }
        let default_port = if scheme == Scheme::Http { 80 } else { 443 };
        let port_of =
            |port: &str| port.parse::<u16>().map_err(|_| format!("{text:?}: invalid port {port:?}"));
        let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
            let (host, after) =
                bracketed.split_once(']').ok_or_else(|| format!("{text:?}: unclosed IPv6 address"))?;
            match after {
                "" => (host, default_port),
                _ => match after.strip_prefix(':') {
                    Some(port) => (host, port_of(port)?),
                    None => return Err(format!("{text:?}: unexpected {after:?} after the address")),
                },
            }
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, port_of(port)?),
                None => (authority, default_port),
            }
        };
        if host.is_empty() {
            return Err(format!("{text:?} has no host"));
        }
        Ok(Url { scheme, host: host.to_owned(), port, path: path.trim_end_matches('/').to_owned() })
    }

    /// The `Host` header: the host, and the port unless it is the scheme's default.
    pub fn authority(&self) -> String {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        let default_port = if self.scheme == Scheme::Http { 80 } else { 443 };
        if self.port == default_port { host } else { format!("{host}:{}", self.port) }
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.scheme == Scheme::Http { "http" } else { "https" };
        write!(f, "{scheme}://{}{}", self.authority(), self.path)
    }
}

pub struct Request<'a> {
    pub method: &'a str,
    /// The full request path, base path included.
    pub path: String,
    /// Besides `Host`, `Content-Length`, `Connection` and `User-Agent`, which are added.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot resolve {0}")]
    Resolve(String),
    #[error("connecting to {addr}: {source}")]
    Connect { addr: String, source: io::Error },
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("connection closed before a complete answer")]
    Closed,
    #[error("{0}")]
    Io(io::Error),
    #[error("malformed answer: {0}")]
    Malformed(String),
    #[error("TLS: {0}")]
    Tls(String),
}

/// Sends `request` to `url`'s host and reads the whole answer within `timeout`.
pub fn send(
    url: &Url,
    request: &Request<'_>,
    timeout: Duration,
    tls: Option<&Arc<ClientConfig>>,
) -> Result<Response, HttpError> {
    let deadline = Deadline { at: Instant::now() + timeout, timeout };
    let tcp = connect(url, &deadline)?;
    let _ = tcp.set_nodelay(true);
    let conn = match url.scheme {
        Scheme::Http => Conn::Plain(tcp),
        Scheme::Https => {
            let config = tls.ok_or_else(|| HttpError::Tls("no TLS configuration".into()))?;
            let name = ServerName::try_from(url.host.clone()).map_err(|e| HttpError::Tls(e.to_string()))?;
            let session =
                ClientConnection::new(Arc::clone(config), name).map_err(|e| HttpError::Tls(e.to_string()))?;
            Conn::Tls(Box::new(StreamOwned::new(session, tcp)))
        }
    };
    let mut reader = Reader { conn, buf: Vec::new(), deadline };
    reader.send(&head(url, request), &request.body)?;
    reader.response(request.method)
}

fn head(url: &Url, request: &Request<'_>) -> Vec<u8> {
    let mut head = format!("{} {} HTTP/1.1\r\nHost: {}\r\n", request.method, request.path, url.authority());
    for (name, value) in &request.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !request.body.is_empty() || !matches!(request.method, "GET" | "HEAD") {
        head.push_str(&format!("Content-Length: {}\r\n", request.body.len()));
    }
    head.push_str(concat!(
        "Connection: close\r\nUser-Agent: immutable-agent/",
        env!("CARGO_PKG_VERSION"),
        "\r\n\r\n"
    ));
    head.into_bytes()
}

struct Deadline {
    at: Instant,
    timeout: Duration,
}

impl Deadline {
    fn left(&self) -> Result<Duration, HttpError> {
        let left = self.at.saturating_duration_since(Instant::now());
        if left.is_zero() { Err(HttpError::Timeout(self.timeout)) } else { Ok(left) }
    }
}

fn connect(url: &Url, deadline: &Deadline) -> Result<TcpStream, HttpError> {
    let addrs =
        (url.host.as_str(), url.port).to_socket_addrs().map_err(|_| HttpError::Resolve(url.authority()))?;
    let mut last = HttpError::Resolve(url.authority());
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, deadline.left()?) {
            Ok(tcp) => return Ok(tcp),
            Err(e) if is_timeout(&e) => last = HttpError::Timeout(deadline.timeout),
            Err(source) => last = HttpError::Connect { addr: addr.to_string(), source },
        }
    }
    Err(last)
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock)
}

enum Conn {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Conn {
    fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Plain(tcp) => tcp,
            Conn::Tls(tls) => &tls.sock,
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(tcp) => tcp.read(buf),
            Conn::Tls(tls) => tls.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(tcp) => tcp.write(buf),
            Conn::Tls(tls) => tls.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(tcp) => tcp.flush(),
            Conn::Tls(tls) => tls.flush(),
        }
    }
}

struct Reader {
    conn: Conn,
    /// Received and not yet consumed.
    buf: Vec<u8>,
    deadline: Deadline,
}

impl Reader {
    fn io_error(&self, e: io::Error) -> HttpError {
        if is_timeout(&e) { HttpError::Timeout(self.deadline.timeout) } else { HttpError::Io(e) }
    }

    fn arm(&self) -> Result<(), HttpError> {
        let left = self.deadline.left()?;
        let tcp = self.conn.tcp();
        tcp.set_read_timeout(Some(left))
            .and_then(|()| tcp.set_write_timeout(Some(left)))
            .map_err(HttpError::Io)
    }

    fn send(&mut self, head: &[u8], body: &[u8]) -> Result<(), HttpError> {
        self.arm()?;
        let sent = self
            .conn
            .write_all(head)
            .and_then(|()| self.conn.write_all(body))
            .and_then(|()| self.conn.flush());
        sent.map_err(|e| self.io_error(e))
    }

    /// Reads more; 0 at the end of the connection.
    fn fill(&mut self) -> Result<usize, HttpError> {
        self.arm()?;
        let mut chunk = [0u8; 8192];
        loop {
            match self.conn.read(&mut chunk) {
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // A TLS peer closing without close_notify: the end, judged by framing.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(self.io_error(e)),
            }
        }
    }

    fn line(&mut self) -> Result<Vec<u8>, HttpError> {
        loop {
            if let Some(end) = find(&self.buf, b"\r\n") {
                let line = self.buf.drain(..end + 2).take(end).collect();
                return Ok(line);
            }
            if self.buf.len() > MAX_HEAD {
                return Err(HttpError::Malformed("a line longer than 64 KiB".into()));
            }
            if self.fill()? == 0 {
                return Err(HttpError::Closed);
            }
        }
    }

    fn take(&mut self, n: usize) -> Result<Vec<u8>, HttpError> {
        while self.buf.len() < n {
            if self.fill()? == 0 {
                return Err(HttpError::Closed);
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    fn response(mut self, method: &str) -> Result<Response, HttpError> {
        let status_line = self.line()?;
        let status_line = String::from_utf8_lossy(&status_line).into_owned();
        let mut parts = status_line.splitn(3, ' ');
        let (version, code) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let status = match code.parse::<u16>() {
            Ok(status) if version.starts_with("HTTP/1.") && (100..1000).contains(&status) => status,
            _ => return Err(HttpError::Malformed(format!("status line {status_line:?}"))),
        };
        let mut headers = Vec::new();
        let mut head_size = status_line.len();
        loop {
            let line = self.line()?;
            if line.is_empty() {
                break;
            }
            head_size += line.len();
            if head_size > MAX_HEAD {
                return Err(HttpError::Malformed("headers longer than 64 KiB".into()));
            }
            let line = String::from_utf8_lossy(&line).into_owned();
            let (name, value) =
                line.split_once(':').ok_or_else(|| HttpError::Malformed(format!("header line {line:?}")))?;
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
        let mut response = Response { status, headers, body: Vec::new() };
        if method == "HEAD" || (100..200).contains(&status) || status == 204 || status == 304 {
            return Ok(response);
        }
        let chunked = response
            .header("transfer-encoding")
            .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
        response.body = if chunked {
            self.chunked()?
        } else if let Some(length) = response.header("content-length") {
            let length: usize =
                length.parse().map_err(|_| HttpError::Malformed(format!("Content-Length {length:?}")))?;
            if length > MAX_BODY {
                return Err(HttpError::Malformed(format!("a body of {length} bytes")));
            }
            self.take(length)?
        } else {
            while self.fill()? > 0 {
                if self.buf.len() > MAX_BODY {
                    return Err(HttpError::Malformed("a body over 1 MiB".into()));
                }
            }
            std::mem::take(&mut self.buf)
        };
        Ok(response)
    }

    fn chunked(&mut self) -> Result<Vec<u8>, HttpError> {
        let mut body = Vec::new();
        loop {
            let line = self.line()?;
            let line = String::from_utf8_lossy(&line).into_owned();
            let size = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size, 16)
                .map_err(|_| HttpError::Malformed(format!("chunk size {line:?}")))?;
            if size == 0 {
                // Trailers, up to the empty line.
                while !self.line()?.is_empty() {}
                return Ok(body);
            }
            if body.len() + size > MAX_BODY {
                return Err(HttpError::Malformed("a body over 1 MiB".into()));
            }
            body.extend(self.take(size)?);
            if !self.line()?.is_empty() {
                return Err(HttpError::Malformed("chunk not followed by CRLF".into()));
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_endpoints() {
        let url = Url::parse("http://127.0.0.1:8080/_immutable/imds/i-1/").expect("a valid URL");
        assert_eq!(url.scheme, Scheme::Http);
        assert_eq!(
            (url.host.as_str(), url.port, url.path.as_str()),
            ("127.0.0.1", 8080, "/_immutable/imds/i-1")
        );
        assert_eq!(url.authority(), "127.0.0.1:8080");
        let url = Url::parse("https://elasticloadbalancing.eu-west-1.amazonaws.com").expect("a valid URL");
        assert_eq!((url.port, url.path.as_str()), (443, ""));
        assert_eq!(url.authority(), "elasticloadbalancing.eu-west-1.amazonaws.com");
        let url = Url::parse("http://[fd00:ec2::254]").expect("a valid URL");
        assert_eq!((url.host.as_str(), url.port), ("fd00:ec2::254", 80));
        assert_eq!(url.to_string(), "http://[fd00:ec2::254]");
        for bad in ["169.254.169.254", "ftp://x", "http://", "http://x:port", "http://x/?q", "http://u@x"] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
    }
}
