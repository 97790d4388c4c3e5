//! The egress proxy: the one way the agent's commands reach anything beyond their run's own
//! loopback. A small HTTP/1.1 forward proxy on the harness's tokio runtime that
//! - tunnels `CONNECT host:port` (HTTPS, and anything else a client tunnels), copying bytes both
//!   ways without looking into them;
//! - forwards absolute-form plain-HTTP requests (`GET http://host/path`) in origin form, one
//!   request per upstream connection (`Connection: close`), with the `Proxy-*` and
//!   connection-scoped headers removed and `Host` set from the URL. It adds nothing else: no
//!   credentials, no `Via`, no `X-Forwarded-For`;
//! - asks the [`EgressPolicy`] first (the mode, the registries, `allow_domains`), so a denied name
//!   is never even resolved, then resolves allowed names on the host and refuses addresses that
//!   are the host's own (loopback, private, link-local such as cloud metadata at
//!   169.254.169.254) unless an exact `allow_domains` entry names the destination. It connects to
//!   the address it checked, so a name cannot be re-resolved elsewhere between check and use;
//! - answers a refusal with `403` and a short plain-text body saying what was refused, why, and
//!   how the user can allow it (`allow_domains` in loopwright.toml, `--allow-domain`); the reason
//!   is also in the status line, which is what clients show for a failed `CONNECT`;
//! - reports every connection once through a callback ([`ProxyEvent`]: host, port, allowed,
//!   reason, bytes each way, duration), when it ends; a refusal is reported before the `403` is
//!   written.
//!
//! Threat model: the client is the agent's code (hostile). It may send garbage, oversized or
//! endless headers, nothing at all (slow-loris), open many connections, name private addresses,
//! or names that resolve to them. None of that may stop the proxy from serving other
//! connections or reach anything the policy refuses: a request head has a size cap and a time
//! limit, connecting has a time limit, a tunnel dies after an idle time, and at most
//! `max_connections` are served at once (further clients wait in the listen backlog).
//! The listening socket is handed in by the harness: inside the run's network namespace (only
//! the run's commands can reach it), or on the host's loopback in tests.
//!
//! Known residuals: what flows inside an allowed tunnel is not inspected (TLS). A CDN that
//! routes on the inner `Host` header (domain fronting) could carry a request to another site it
//! serves; the registries themselves accept uploads (npm publish, with a token the agent does
//! not have) and log the URLs they are asked for, so data can leave through an allowed host in
//! principle. The proxy dials out directly: a host that reaches the internet only through a
//! corporate proxy is not supported yet.
//!
//! Hand-written on tokio rather than built on hyper: a forward proxy needs only the request head
//! (parsed by `httparse`, the parser hyper itself uses) and then copies bytes; hyper's server,
//! client and upgrade machinery would be more code to configure than this module.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};

use crate::egress::{Decision, EgressPolicy, Host, NetworkMode, DEFAULT_PORTS};

/// The environment variables a command gets when the egress proxy listens on
/// `127.0.0.1:port` in its network namespace:
/// - `http_proxy`, `https_proxy` (curl reads only the lower-case `http_proxy`; Python's urllib,
///   pip, git and libcurl, so cargo, read the lower-case ones) and `HTTP_PROXY`, `HTTPS_PROXY`
///   (Go, npm, Node libraries, Deno, Bun);
/// - `no_proxy`, `NO_PROXY` = `localhost,127.0.0.1,::1`: the run's own servers on loopback are
///   reached directly (through the proxy they would be the *host's* loopback, and refused);
/// - `npm_config_proxy`, `npm_config_https_proxy`: npm reads the variables above too, but
///   install scripts (node-gyp, node-sass, puppeteer) read only npm's own settings;
/// - `YARN_HTTP_PROXY`, `YARN_HTTPS_PROXY`: Yarn 2+ ignores the standard variables (not
///   `YARN_NO_PROXY`: Yarn 2+ refuses to start on a setting it does not know);
/// - `NODE_USE_ENV_PROXY=1`: Node 24+ (and 22.21+) then route `fetch` and `http` through the
///   proxy variables; older Node ignores it.
///
/// Not set: `ALL_PROXY` (curl and others would send every protocol, not only HTTP, to an HTTP
/// proxy), `PIP_PROXY` and `CARGO_HTTP_PROXY` (pip and cargo read the standard variables).
pub fn proxy_env(port: u16) -> Vec<(String, String)> {
    let url = format!("http://127.0.0.1:{port}");
    let local = "localhost,127.0.0.1,::1";
    [
        ("http_proxy", url.as_str()),
        ("https_proxy", &url),
        ("HTTP_PROXY", &url),
        ("HTTPS_PROXY", &url),
        ("no_proxy", local),
        ("NO_PROXY", local),
        ("npm_config_proxy", &url),
        ("npm_config_https_proxy", &url),
        ("YARN_HTTP_PROXY", &url),
        ("YARN_HTTPS_PROXY", &url),
        ("NODE_USE_ENV_PROXY", "1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The proxy's limits; see [`ProxyLimits::default`] for the values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyLimits {
    /// Largest request head (request line and headers) read.
    pub max_header_bytes: usize,
    /// Time a client has to send its whole request head.
    pub header_timeout: Duration,
    /// Time to resolve and connect to the destination.
    pub connect_timeout: Duration,
    /// A tunnel or forwarded request with no bytes moving either way for this long is closed.
    pub idle_timeout: Duration,
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
}

impl Default for ProxyLimits {
    /// 64 KiB heads within 30 s, 30 s to connect, 5 min idle, 256 connections.
    fn default() -> ProxyLimits {
        ProxyLimits {
            max_header_bytes: 64 * 1024,
            header_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(300),
            max_connections: 256,
        }
    }
}

/// The port the egress proxy listens on inside a world (127.0.0.1 of the commands' own
/// network namespace, so it cannot collide with anything on the host).
pub const PROXY_PORT: u16 = 3128;

/// One connection to the proxy, reported when it ends (refusals: before the `403` is sent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyEvent {
    /// The destination as the client named it (lower case; IPv6 in brackets); empty when no
    /// request could be read.
    pub host: String,
    /// The destination port (0 when no request could be read).
    pub port: u16,
    /// Whether the policy allowed the destination (a connection that then failed is allowed).
    pub allowed: bool,
    /// Which rule allowed it, or why it was refused or failed.
    pub reason: String,
    /// Bytes sent to the destination (the forwarded request head included).
    pub bytes_up: u64,
    /// Bytes received from the destination.
    pub bytes_down: u64,
    pub duration: Duration,
}

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("the egress proxy must be started from inside the tokio runtime")]
    NoRuntime,
    #[error("cannot use the egress proxy's listening socket: {0}")]
    Listener(std::io::Error),
}

/// A running egress proxy. Dropping it stops accepting and cuts every open connection (each
/// still reports its event).
#[derive(Debug)]
pub struct EgressProxy {
    addr: SocketAddr,
    accept: JoinHandle<()>,
}

impl EgressProxy {
    /// Serves `listener` on the current tokio runtime under `policy`, reporting each connection
    /// to `events` (called from the runtime's threads; keep it quick).
    pub fn start(
        listener: std::net::TcpListener,
        policy: EgressPolicy,
        limits: ProxyLimits,
        events: impl Fn(ProxyEvent) + Send + Sync + 'static,
    ) -> Result<EgressProxy, ProxyError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| ProxyError::NoRuntime)?;
        listener
            .set_nonblocking(true)
            .map_err(ProxyError::Listener)?;
        let addr = listener.local_addr().map_err(ProxyError::Listener)?;
        let listener = {
            let _entered = runtime.enter();
            TcpListener::from_std(listener).map_err(ProxyError::Listener)?
        };
        let shared = Arc::new(Shared {
            policy,
            limits,
            events: Box::new(events),
        });
        let accept = runtime.spawn(accept_loop(listener, shared));
        Ok(EgressProxy { addr, accept })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for EgressProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

struct Shared {
    policy: EgressPolicy,
    limits: ProxyLimits,
    events: Box<dyn Fn(ProxyEvent) + Send + Sync>,
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let slots = Arc::new(Semaphore::new(shared.limits.max_connections.max(1)));
    // Dropping the set (when this task is aborted) aborts every connection.
    let mut connections = JoinSet::new();
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        while connections.try_join_next().is_some() {}
        match listener.accept().await {
            Ok((stream, _)) => {
                let shared = shared.clone();
                connections.spawn(async move {
                    serve(stream, &shared).await;
                    drop(slot);
                });
            }
            Err(e) if is_transient(&e) => {
                // Out of descriptors or memory, or a client that gave up: wait for connections
                // to end rather than spin.
                drop(slot);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(_) => return,
        }
    }
}

fn is_transient(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::EMFILE
                | libc::ENFILE
                | libc::ENOBUFS
                | libc::ENOMEM
                | libc::ECONNABORTED
                | libc::EPROTO
                | libc::EPERM
                | libc::EINTR
        )
    ) || e.kind() == std::io::ErrorKind::ConnectionAborted
}

/// One connection's event, emitted once: explicitly, or when dropped (connection done, or cut
/// by the proxy stopping).
struct Record<'a> {
    sink: &'a (dyn Fn(ProxyEvent) + Send + Sync),
    started: Instant,
    host: String,
    port: u16,
    allowed: bool,
    reason: String,
    up: AtomicU64,
    down: AtomicU64,
    emitted: bool,
}

impl<'a> Record<'a> {
    fn new(sink: &'a (dyn Fn(ProxyEvent) + Send + Sync)) -> Record<'a> {
        Record {
            sink,
            started: Instant::now(),
            host: String::new(),
            port: 0,
            allowed: false,
            reason: String::new(),
            up: AtomicU64::new(0),
            down: AtomicU64::new(0),
            emitted: false,
        }
    }

    /// Adds to the reason (after the rule that allowed the connection, if any).
    fn note(&mut self, why: &str) {
        if self.reason.is_empty() {
            self.reason = why.to_string();
        } else {
            self.reason = format!("{}; {why}", self.reason);
        }
    }

    fn emit(&mut self) {
        if !std::mem::replace(&mut self.emitted, true) {
            (self.sink)(ProxyEvent {
                host: std::mem::take(&mut self.host),
                port: self.port,
                allowed: self.allowed,
                reason: std::mem::take(&mut self.reason),
                bytes_up: self.up.load(Ordering::Relaxed),
                bytes_down: self.down.load(Ordering::Relaxed),
                duration: self.started.elapsed(),
            });
        }
    }
}

impl Drop for Record<'_> {
    fn drop(&mut self) {
        self.emit();
    }
}

/// What the client asked for.
#[derive(Debug)]
struct Request {
    host: Host,
    port: u16,
    /// `CONNECT`: `None`. Plain HTTP: the head to send upstream.
    forward_head: Option<Vec<u8>>,
    /// Bytes the client sent after its head (a request body, a TLS hello).
    leftover: Vec<u8>,
}

/// Why no usable request was read.
#[derive(Debug)]
enum HeadError {
    /// The client closed (or failed) before sending anything.
    Nothing,
    Timeout,
    TooLarge,
    Malformed(String),
}

impl HeadError {
    /// The status line and reason to answer with (not for [`HeadError::Nothing`]).
    fn answer(self, limits: &ProxyLimits) -> (&'static str, String) {
        match self {
            HeadError::Nothing | HeadError::Timeout => (
                "408 Request Timeout",
                format!(
                    "the request head did not arrive within {} s",
                    limits.header_timeout.as_secs()
                ),
            ),
            HeadError::TooLarge => (
                "431 Request Header Fields Too Large",
                format!(
                    "the request head is larger than {} bytes or has more than {MAX_HEADERS} headers",
                    limits.max_header_bytes
                ),
            ),
            HeadError::Malformed(why) => ("400 Bad Request", format!("bad request: {why}")),
        }
    }
}

/// Most headers a request may have.
const MAX_HEADERS: usize = 128;

async fn serve(mut client: TcpStream, shared: &Shared) {
    let mut record = Record::new(shared.events.as_ref());
    let _ = client.set_nodelay(true);
    let limits = &shared.limits;
    let request = match read_request(&mut client, limits).await {
        Ok(request) => request,
        Err(HeadError::Nothing) => {
            record.reason = "the client closed before sending a request".into();
            return;
        }
        Err(error) => {
            let (status, why) = error.answer(limits);
            fail(&mut client, &mut record, status, why).await;
            return;
        }
    };
    record.host = request.host.to_string();
    record.port = request.port;
    let mode = shared.policy.mode();
    let explicit = match shared.policy.decide(&request.host, request.port) {
        Decision::Allowed { explicit, why } => {
            record.allowed = true;
            record.reason = why;
            explicit
        }
        Decision::Denied { why } => {
            refuse(&mut client, &mut record, &request, why, mode).await;
            return;
        }
    };
    let dialled = tokio::time::timeout(
        limits.connect_timeout,
        dial(&request.host, request.port, explicit),
    )
    .await;
    let mut upstream = match dialled {
        Ok(Ok(stream)) => stream,
        Ok(Err(DialError::Refused(why))) => {
            refuse(&mut client, &mut record, &request, why, mode).await;
            return;
        }
        Ok(Err(DialError::Failed(why))) => {
            fail(&mut client, &mut record, "502 Bad Gateway", why).await;
            return;
        }
        Err(_) => {
            let why = format!(
                "could not connect to {}:{} within {} s",
                request.host,
                request.port,
                limits.connect_timeout.as_secs()
            );
            fail(&mut client, &mut record, "504 Gateway Timeout", why).await;
            return;
        }
    };
    let _ = upstream.set_nodelay(true);
    let tunnel = request.forward_head.is_none();
    let mut first = request.forward_head.unwrap_or_default();
    if tunnel
        && client
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .await
            .is_err()
    {
        return;
    }
    first.extend_from_slice(&request.leftover);
    if !first.is_empty() {
        if upstream.write_all(&first).await.is_err() {
            return;
        }
        record.up.fetch_add(first.len() as u64, Ordering::Relaxed);
    }
    let idle = relay(
        &mut client,
        &mut upstream,
        limits.idle_timeout,
        !tunnel,
        (&record.up, &record.down),
    )
    .await;
    if idle {
        record.note(&format!(
            "closed after {} s without traffic",
            limits.idle_timeout.as_secs()
        ));
    }
}

/// Reads the request head within the time and size limits and parses it.
async fn read_request(client: &mut TcpStream, limits: &ProxyLimits) -> Result<Request, HeadError> {
    let deadline = tokio::time::Instant::now() + limits.header_timeout;
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = vec![0u8; 8192];
    loop {
        let n = match tokio::time::timeout_at(deadline, client.read(&mut chunk)).await {
            Err(_) => return Err(HeadError::Timeout),
            Ok(Err(_)) | Ok(Ok(0)) if buf.is_empty() => return Err(HeadError::Nothing),
            Ok(Err(e)) => return Err(HeadError::Malformed(format!("reading it failed: {e}"))),
            Ok(Ok(0)) => {
                return Err(HeadError::Malformed(
                    "the client closed in the middle of the request head".into(),
                ))
            }
            Ok(Ok(n)) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Request::new(&mut headers);
        match parsed.parse(&buf) {
            Ok(httparse::Status::Complete(len)) if len <= limits.max_header_bytes => {
                return parse_request(&parsed, buf[len..].to_vec());
            }
            Ok(httparse::Status::Complete(_)) | Err(httparse::Error::TooManyHeaders) => {
                return Err(HeadError::TooLarge)
            }
            Ok(httparse::Status::Partial) if buf.len() > limits.max_header_bytes => {
                return Err(HeadError::TooLarge)
            }
            Ok(httparse::Status::Partial) => {}
            Err(e) => return Err(HeadError::Malformed(format!("it is not HTTP/1.x ({e})"))),
        }
    }
}

fn parse_request(
    parsed: &httparse::Request<'_, '_>,
    leftover: Vec<u8>,
) -> Result<Request, HeadError> {
    let bad = |why: String| Err(HeadError::Malformed(why));
    let (Some(method), Some(target), Some(version)) = (parsed.method, parsed.path, parsed.version)
    else {
        return bad("the request line is incomplete".into());
    };
    if method.eq_ignore_ascii_case("CONNECT") {
        return match Host::parse_with_port(target) {
            Ok((host, port)) => Ok(Request {
                host,
                port,
                forward_head: None,
                leftover,
            }),
            Err(e) => bad(format!("CONNECT needs host:port: {e}")),
        };
    }
    let Some(rest) = strip_prefix_ignore_case(target, "http://") else {
        return bad(if strip_prefix_ignore_case(target, "https://").is_some() {
            "an https:// URL must be requested through CONNECT (set https_proxy to this proxy)"
                .into()
        } else {
            format!(
                "this is a forward proxy: the request must name an absolute http:// URL, not {:?}",
                target.chars().take(100).collect::<String>()
            )
        });
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if authority.contains('@') {
        return bad("credentials in the URL are not forwarded; remove user:password@".into());
    }
    let (host, port) = match Host::parse_authority(authority) {
        Ok((host, port)) => (host, port.unwrap_or(80)),
        Err(e) => return bad(format!("the URL's host: {e}")),
    };
    let path = path.split('#').next().unwrap_or("");
    let origin = match path.chars().next() {
        None => "/".to_string(),
        Some('?') => format!("/{path}"),
        Some(_) => path.to_string(),
    };
    // Headers the client meant for the proxy, or for this one connection, do not travel on.
    let connection_scoped: Vec<String> = parsed
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("connection"))
        .flat_map(|h| {
            String::from_utf8_lossy(h.value)
                .split(',')
                .map(|t| t.trim().to_ascii_lowercase())
                .collect::<Vec<_>>()
        })
        .collect();
    let mut head =
        format!("{method} {origin} HTTP/1.{version}\r\nHost: {authority}\r\n").into_bytes();
    for header in parsed.headers.iter() {
        let name = header.name.to_ascii_lowercase();
        if name == "host"
            || name == "connection"
            || name == "keep-alive"
            || name.starts_with("proxy-")
            || connection_scoped.contains(&name)
        {
            continue;
        }
        head.extend_from_slice(header.name.as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(header.value);
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"Connection: close\r\n\r\n");
    Ok(Request {
        host,
        port,
        forward_head: Some(head),
        leftover,
    })
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

enum DialError {
    /// Every address the name resolved to is one of the host's own.
    Refused(String),
    /// Resolving or connecting failed.
    Failed(String),
}

/// Resolves `host` on the host and connects to the first address the policy allows.
async fn dial(host: &Host, port: u16, explicit: bool) -> Result<TcpStream, DialError> {
    let addrs: Vec<SocketAddr> = match host {
        Host::Ip(ip) => vec![SocketAddr::new(*ip, port)],
        Host::Name(name) => match tokio::net::lookup_host((name.as_str(), port)).await {
            Ok(addrs) => addrs.collect(),
            Err(e) => return Err(DialError::Failed(format!("could not resolve {host}: {e}"))),
        },
    };
    let mut refused = None;
    let allowed: Vec<SocketAddr> = addrs
        .into_iter()
        .filter(|a| match EgressPolicy::address_allowed(a.ip(), explicit) {
            Ok(()) => true,
            Err(why) => {
                refused.get_or_insert(why);
                false
            }
        })
        .collect();
    if allowed.is_empty() {
        return Err(match refused {
            Some(why) => DialError::Refused(format!(
                "{host} leads to {why}, one of the host's own (only an exact allow_domains entry may reach those)"
            )),
            None => DialError::Failed(format!("{host} has no addresses")),
        });
    }
    let mut last = None;
    for addr in allowed {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    Err(DialError::Failed(match last {
        Some(e) => format!("could not connect to {host}:{port}: {e}"),
        None => format!("could not connect to {host}:{port}"),
    }))
}

/// Reports a failure after the policy allowed the destination (or before there was one), then
/// answers it.
async fn fail(client: &mut TcpStream, record: &mut Record<'_>, status: &str, why: String) {
    record.note(&why);
    record.emit();
    respond(
        client,
        status,
        &format!("loopwright's network proxy: {why}.\n"),
    )
    .await;
}

/// Reports the refusal, then tells the client what was refused, why, and how to allow it.
async fn refuse(
    client: &mut TcpStream,
    record: &mut Record<'_>,
    request: &Request,
    why: String,
    mode: NetworkMode,
) {
    record.allowed = false;
    record.reason = why.clone();
    record.emit();
    let target = format!("{}:{}", request.host, request.port);
    let what = match request.forward_head {
        None => format!("CONNECT {target}"),
        Some(_) => format!("a request to {target}"),
    };
    let entry = if DEFAULT_PORTS.contains(&request.port) {
        request.host.to_string()
    } else {
        target.clone()
    };
    let hint = if mode == NetworkMode::Off {
        "The user can give the agent's commands network access with network = \"registries\" (package registries) or \"open\" in loopwright.toml, or --network.".to_string()
    } else {
        format!("If the project really needs it, the user can allow it with allow_domains = [\"{entry}\"] in loopwright.toml or --allow-domain {entry}.")
    };
    let body = format!(
        "loopwright's network proxy refused {what}: {why}.\nNothing was sent there, and retrying will not help. {hint}\n"
    );
    respond(
        client,
        &format!("403 Forbidden by loopwright: {target} not allowed"),
        &body,
    )
    .await;
}

/// Writes a plain-text response and closes. What the client still sends is read and dropped
/// for a moment (as web servers do on an error), so the close does not turn into a reset that
/// destroys the answer before the client has read it.
async fn respond(client: &mut TcpStream, status: &str, body: &str) {
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let finish = async {
        client.write_all(response.as_bytes()).await?;
        client.shutdown().await?;
        let mut sink = vec![0u8; 8192];
        let mut drained = 0usize;
        while drained < 1 << 20 {
            match client.read(&mut sink).await? {
                0 => break,
                n => drained += n,
            }
        }
        Ok::<(), std::io::Error>(())
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), finish).await;
}

/// Copies bytes both ways until both sides are done (a tunnel), or until the destination is
/// done (`until_response`: a forwarded request), or until nothing moved for `idle`. Returns
/// whether it ended for being idle.
async fn relay(
    client: &mut TcpStream,
    upstream: &mut TcpStream,
    idle: Duration,
    until_response: bool,
    (up, down): (&AtomicU64, &AtomicU64),
) -> bool {
    let start = Instant::now();
    let last = AtomicU64::new(0);
    let (mut client_read, mut client_write) = client.split();
    let (mut upstream_read, mut upstream_write) = upstream.split();
    let upward = pump(&mut client_read, &mut upstream_write, up, &last, start);
    let downward = pump(&mut upstream_read, &mut client_write, down, &last, start);
    let copying = async {
        if until_response {
            tokio::select! {
                _ = downward => {}
                _ = async { let _ = upward.await; std::future::pending::<()>().await } => {}
            }
        } else {
            let _ = tokio::try_join!(upward, downward);
        }
    };
    let watchdog = async {
        loop {
            let quiet_since = start + Duration::from_millis(last.load(Ordering::Relaxed));
            let deadline = quiet_since + idle;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline.into()).await;
        }
    };
    tokio::select! {
        _ = copying => false,
        _ = watchdog => true,
    }
}

/// Copies `from` to `to` until end of stream (then half-closes `to`) or an error.
async fn pump<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    from: &mut R,
    to: &mut W,
    count: &AtomicU64,
    last: &AtomicU64,
    start: Instant,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            let _ = to.shutdown().await;
            return Ok(());
        }
        to.write_all(&buf[..n]).await?;
        count.fetch_add(n as u64, Ordering::Relaxed);
        last.store(start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

#[cfg(test)]
#[expect(
    clippy::unwrap_used,
    reason = "a test fails loudly on a broken expectation"
)]
mod tests {
    use super::*;

    fn parse(head: &str) -> Result<Request, HeadError> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        let len = match req.parse(head.as_bytes()).unwrap() {
            httparse::Status::Complete(len) => len,
            httparse::Status::Partial => panic!("partial"),
        };
        parse_request(&req, head.as_bytes()[len..].to_vec())
    }

    #[test]
    fn forwarded_requests_lose_proxy_and_connection_headers_and_gain_nothing() {
        let req = parse(
            "GET http://Example.com:8080/a/b?q=1#frag HTTP/1.1\r\nHost: evil.test\r\nProxy-Authorization: Basic eA==\r\nProxy-Connection: keep-alive\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\nKeep-Alive: 5\r\nAccept: */*\r\n\r\nBODY",
        )
        .unwrap();
        assert_eq!(req.host, Host::Name("example.com".into()));
        assert_eq!(req.port, 8080);
        assert_eq!(req.leftover, b"BODY");
        let head = String::from_utf8(req.forward_head.unwrap()).unwrap();
        assert_eq!(
            head,
            "GET /a/b?q=1 HTTP/1.1\r\nHost: Example.com:8080\r\nAccept: */*\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn origin_form_is_derived_from_the_url() {
        let head = |uri: &str| {
            let req = parse(&format!("GET {uri} HTTP/1.0\r\n\r\n")).unwrap();
            String::from_utf8(req.forward_head.unwrap()).unwrap()
        };
        assert!(head("http://a.test").starts_with("GET / HTTP/1.0\r\nHost: a.test\r\n"));
        assert!(head("HTTP://a.test?x=1").starts_with("GET /?x=1 HTTP/1.0\r\n"));
    }

    #[test]
    fn bad_targets_are_refused_with_a_reason() {
        for (head, needle) in [
            ("GET /index.html HTTP/1.1\r\n\r\n", "absolute http:// URL"),
            ("GET https://a.test/ HTTP/1.1\r\n\r\n", "through CONNECT"),
            ("GET http://user:pw@a.test/ HTTP/1.1\r\n\r\n", "credentials"),
            ("GET http://a b/ HTTP/1.1\r\n\r\n", "not HTTP"),
            ("CONNECT a.test HTTP/1.1\r\n\r\n", "host:port"),
            ("CONNECT a.test:0 HTTP/1.1\r\n\r\n", "host:port"),
            ("GET http://bücher.de/ HTTP/1.1\r\n\r\n", "xn--"),
        ] {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut req = httparse::Request::new(&mut headers);
            let why = match req.parse(head.as_bytes()) {
                Ok(httparse::Status::Complete(_)) => match parse_request(&req, Vec::new()) {
                    Err(HeadError::Malformed(why)) => why,
                    other => panic!("{head:?}: {other:?}"),
                },
                Err(e) => format!("it is not HTTP/1.x ({e})"),
                Ok(httparse::Status::Partial) => panic!("partial"),
            };
            assert!(why.contains(needle), "{head:?}: {why}");
        }
    }

    #[test]
    fn connect_targets_keep_the_client_bytes() {
        let req = parse("CONNECT [::1]:443 HTTP/1.1\r\nHost: x\r\n\r\n\x16\x03").unwrap();
        assert_eq!(req.host, Host::Ip("::1".parse().unwrap()));
        assert_eq!(req.port, 443);
        assert!(req.forward_head.is_none());
        assert_eq!(req.leftover, b"\x16\x03");
    }

    #[test]
    fn proxy_env_points_every_client_at_the_proxy_and_loopback_around_it() {
        let env = proxy_env(4321);
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        for k in [
            "http_proxy",
            "https_proxy",
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "npm_config_proxy",
            "npm_config_https_proxy",
        ] {
            assert_eq!(get(k), Some("http://127.0.0.1:4321"), "{k}");
        }
        assert_eq!(get("NO_PROXY"), Some("localhost,127.0.0.1,::1"));
        assert_eq!(get("ALL_PROXY"), None);
        assert_eq!(get("YARN_NO_PROXY"), None);
    }
}
