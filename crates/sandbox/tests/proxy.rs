//! The egress proxy against a stand-in registry on loopback: forwarding, tunnelling, refusals
//! with a reason, the host's own addresses, hostile clients, limits, and real clients (curl,
//! Python) configured only by `proxy_env`. Nothing here leaves 127.0.0.0/8.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use sandbox::{
    proxy_env, EgressPolicy, EgressProxy, NetworkMode, ProxyEvent, ProxyLimits, Sandbox,
    SandboxConfig,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Generous bound for anything to happen; only a hang would reach it.
const PATIENCE: Duration = Duration::from_secs(20);

struct Proxy {
    proxy: EgressProxy,
    events: mpsc::UnboundedReceiver<ProxyEvent>,
}

impl Proxy {
    fn start(mode: NetworkMode, allow: &[String], limits: ProxyLimits) -> Proxy {
        Proxy::start_on("127.0.0.1", mode, allow, limits)
    }

    fn start_on(host: &str, mode: NetworkMode, allow: &[String], limits: ProxyLimits) -> Proxy {
        let listener = std::net::TcpListener::bind((host, 0)).unwrap();
        let policy = EgressPolicy::new(mode, allow).unwrap();
        let (tx, events) = mpsc::unbounded_channel();
        let proxy = EgressProxy::start(listener, policy, limits, move |event| {
            let _ = tx.send(event);
        })
        .unwrap();
        Proxy { proxy, events }
    }

    fn addr(&self) -> SocketAddr {
        self.proxy.local_addr()
    }

    async fn event(&mut self) -> ProxyEvent {
        tokio::time::timeout(PATIENCE, self.events.recv())
            .await
            .expect("no proxy event in time")
            .expect("event channel closed")
    }

    /// The next event about `host` (skipping others, such as clients that sent nothing).
    async fn event_for(&mut self, host: &str) -> ProxyEvent {
        loop {
            let event = self.event().await;
            if event.host == host {
                return event;
            }
        }
    }
}

/// A stand-in registry: answers every HTTP request with 200 and a body that repeats the request
/// head it received, then closes.
async fn stand_in_registry(host: &str) -> SocketAddr {
    let listener = TcpListener::bind((host, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match stream.read(&mut byte).await {
                        Ok(1) => head.push(byte[0]),
                        _ => return,
                    }
                }
                let body = format!("registry saw:\n{}", String::from_utf8_lossy(&head));
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    addr
}

/// A TCP echo server (what a tunnel carries does not matter to the proxy).
async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let (mut r, mut w) = stream.into_split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    addr
}

/// Sends `request` to the proxy and reads the whole answer (until the proxy closes).
async fn exchange(proxy: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(proxy).await.unwrap();
    // The proxy may answer (and stop reading) before an oversized request is all written.
    let _ = stream.write_all(request).await;
    read_to_close(&mut stream).await
}

async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut out))
        .await
        .expect("the proxy did not close the connection")
        .ok();
    String::from_utf8_lossy(&out).into_owned()
}

/// Opens a CONNECT tunnel and reads the proxy's `200`.
async fn tunnel(proxy: SocketAddr, target: &str) -> TcpStream {
    let mut stream = TcpStream::connect(proxy).await.unwrap();
    stream
        .write_all(format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        tokio::time::timeout(PATIENCE, stream.read_exact(&mut byte))
            .await
            .expect("no CONNECT answer")
            .unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    stream
}

fn allow(entries: &[String]) -> Vec<String> {
    entries.to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_to_an_allowed_stand_in_is_forwarded_in_origin_form_without_proxy_headers() {
    let registry = stand_in_registry("127.0.0.1").await;
    let mut proxy = Proxy::start(
        NetworkMode::Registries,
        &allow(&[format!("127.0.0.1:{}", registry.port())]),
        ProxyLimits::default(),
    );
    let request = format!(
        "GET http://127.0.0.1:{port}/simple/pkg/?x=1 HTTP/1.1\r\nHost: wrong.example\r\nProxy-Authorization: Basic c2VjcmV0\r\nProxy-Connection: keep-alive\r\nUser-Agent: test\r\n\r\n",
        port = registry.port()
    );
    let answer = exchange(proxy.addr(), request.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    let seen = answer.split("registry saw:\n").nth(1).unwrap();
    assert!(
        seen.starts_with("GET /simple/pkg/?x=1 HTTP/1.1\r\n"),
        "{seen}"
    );
    assert!(
        seen.contains(&format!("Host: 127.0.0.1:{}\r\n", registry.port())),
        "{seen}"
    );
    assert!(seen.contains("User-Agent: test\r\n"), "{seen}");
    assert!(seen.contains("Connection: close\r\n"), "{seen}");
    assert!(!seen.to_ascii_lowercase().contains("proxy-"), "{seen}");
    assert!(!seen.contains("c2VjcmV0"), "{seen}");
    assert!(!seen.contains("wrong.example"), "{seen}");

    let event = proxy.event_for("127.0.0.1").await;
    assert!(event.allowed, "{event:?}");
    assert_eq!(event.port, registry.port());
    assert!(event.reason.contains("allow_domains"), "{event:?}");
    assert_eq!(event.bytes_up as usize, seen.len(), "{event:?}");
    assert_eq!(event.bytes_down as usize, answer.len(), "{event:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_tunnels_bytes_both_ways_and_counts_them() {
    let echo = echo_server().await;
    let mut proxy = Proxy::start(
        NetworkMode::Registries,
        &allow(&[format!("127.0.0.1:{}", echo.port())]),
        ProxyLimits::default(),
    );
    let mut stream = tunnel(proxy.addr(), &format!("127.0.0.1:{}", echo.port())).await;
    let payload: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let (mut r, mut w) = stream.split();
    let send = async {
        w.write_all(&payload).await.unwrap();
        w.shutdown().await.unwrap();
    };
    let mut back = Vec::new();
    let receive = tokio::time::timeout(PATIENCE, r.read_to_end(&mut back));
    let (_, received) = tokio::join!(send, receive);
    received.unwrap().unwrap();
    assert_eq!(back, payload);

    let event = proxy.event_for("127.0.0.1").await;
    assert!(event.allowed);
    assert_eq!(event.bytes_up, payload.len() as u64);
    assert_eq!(event.bytes_down, payload.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_domain_gets_a_403_saying_why_and_how_to_allow_it() {
    let mut proxy = Proxy::start(NetworkMode::Registries, &[], ProxyLimits::default());
    // `.invalid` never resolves: a 403 (not a 502 "could not resolve") shows that the policy
    // refused it before any lookup.
    let answer = exchange(
        proxy.addr(),
        b"CONNECT evil.invalid:443 HTTP/1.1\r\nHost: evil.invalid:443\r\n\r\n",
    )
    .await;
    assert!(
        answer
            .starts_with("HTTP/1.1 403 Forbidden by loopwright: evil.invalid:443 not allowed\r\n"),
        "{answer}"
    );
    assert!(
        answer.contains("evil.invalid is not on the allowlist"),
        "{answer}"
    );
    assert!(answer.contains("pypi.org"), "{answer}");
    assert!(
        answer.contains("allow_domains = [\"evil.invalid\"]"),
        "{answer}"
    );
    assert!(answer.contains("--allow-domain evil.invalid"), "{answer}");
    let event = proxy.event_for("evil.invalid").await;
    assert!(!event.allowed);
    assert_eq!(event.port, 443);
    assert!(event.reason.contains("not on the allowlist"), "{event:?}");
    assert_eq!((event.bytes_up, event.bytes_down), (0, 0));

    // Plain HTTP is refused the same way; a subdomain of a registry is not a registry.
    let answer = exchange(
        proxy.addr(),
        b"GET http://evil.pypi.org/simple/ HTTP/1.1\r\nHost: evil.pypi.org\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 403 "), "{answer}");
    assert!(!proxy.event_for("evil.pypi.org").await.allowed);

    // A registry on a port other than 80/443.
    let answer = exchange(proxy.addr(), b"CONNECT pypi.org:22 HTTP/1.1\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 403 "), "{answer}");
    assert!(
        answer.contains("port 22 of pypi.org is not allowed"),
        "{answer}"
    );
    assert!(answer.contains("--allow-domain pypi.org:22"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hosts_own_addresses_are_refused_unless_named_exactly() {
    let echo = echo_server().await;
    let port = echo.port();
    // `open` lets anything public through, but not the host's loopback, by IP or by a name
    // that resolves to it (localhost comes from /etc/hosts: no DNS server is asked).
    let mut proxy = Proxy::start(NetworkMode::Open, &[], ProxyLimits::default());
    for target in [
        format!("127.0.0.1:{port}"),
        format!("[::ffff:127.0.0.1]:{port}"),
        format!("localhost:{port}"),
        "169.254.169.254:80".to_string(),
        "[::1]:443".to_string(),
    ] {
        let answer = exchange(
            proxy.addr(),
            format!("CONNECT {target} HTTP/1.1\r\n\r\n").as_bytes(),
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 403 "), "{target}: {answer}");
        let event = proxy.event().await;
        assert!(!event.allowed, "{target}: {event:?}");
        assert!(
            event.reason.contains("loopback") || event.reason.contains("link-local"),
            "{target}: {event:?}"
        );
    }
    // An exact entry does (a `.suffix` pattern would not: see the egress unit tests).
    let proxy = Proxy::start(
        NetworkMode::Open,
        &allow(&[format!("127.0.0.1:{port}")]),
        ProxyLimits::default(),
    );
    let mut stream = tunnel(proxy.addr(), &format!("127.0.0.1:{port}")).await;
    stream.write_all(b"ping").await.unwrap();
    let mut back = [0u8; 4];
    stream.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, b"ping");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_refuses_everything_even_allowed_entries() {
    let registry = stand_in_registry("127.0.0.1").await;
    let target = format!("127.0.0.1:{}", registry.port());
    let mut proxy = Proxy::start(
        NetworkMode::Off,
        &allow(std::slice::from_ref(&target)),
        ProxyLimits::default(),
    );
    let answer = exchange(
        proxy.addr(),
        format!("GET http://{target}/ HTTP/1.1\r\n\r\n").as_bytes(),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 403 "), "{answer}");
    assert!(answer.contains("network = \"off\""), "{answer}");
    assert!(answer.contains("--network"), "{answer}");
    let answer = exchange(proxy.addr(), b"CONNECT pypi.org:443 HTTP/1.1\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 403 "), "{answer}");
    assert!(!proxy.event_for("127.0.0.1").await.allowed);
    assert!(!proxy.event_for("pypi.org").await.allowed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_requests_are_answered_and_the_proxy_keeps_serving() {
    let registry = stand_in_registry("127.0.0.1").await;
    let target = format!("127.0.0.1:{}", registry.port());
    let mut proxy = Proxy::start(
        NetworkMode::Registries,
        &allow(std::slice::from_ref(&target)),
        ProxyLimits::default(),
    );
    for (request, status) in [
        (
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n".to_vec(),
            "400",
        ),
        (
            b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            "400",
        ),
        (b"GET https://pypi.org/ HTTP/1.1\r\n\r\n".to_vec(), "400"),
        (b"CONNECT pypi.org HTTP/1.1\r\n\r\n".to_vec(), "400"),
        (
            b"GET http://b\xc3\xbccher.de/ HTTP/1.1\r\n\r\n".to_vec(),
            "400",
        ),
        (
            format!(
                "GET http://{target}/ HTTP/1.1\r\nX-Big: {}\r\n\r\n",
                "a".repeat(70_000)
            )
            .into_bytes(),
            "431",
        ),
        (
            format!(
                "GET http://{target}/ HTTP/1.1\r\n{}\r\n",
                "X-A: 1\r\n".repeat(200)
            )
            .into_bytes(),
            "431",
        ),
    ] {
        let answer = exchange(proxy.addr(), &request).await;
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status} ")),
            "{:?}: {answer}",
            String::from_utf8_lossy(&request[..40.min(request.len())])
        );
        let event = proxy.event().await;
        assert!(!event.allowed, "{event:?}");
        assert!(!event.reason.is_empty());
    }
    let answer = exchange(
        proxy.addr(),
        format!("GET http://{target}/ok HTTP/1.1\r\n\r\n").as_bytes(),
    )
    .await;
    assert!(answer.contains("GET /ok HTTP/1.1"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_slow_clients_time_out_while_others_are_served() {
    let registry = stand_in_registry("127.0.0.1").await;
    let target = format!("127.0.0.1:{}", registry.port());
    let limits = ProxyLimits {
        header_timeout: Duration::from_secs(2),
        ..ProxyLimits::default()
    };
    let mut proxy = Proxy::start(
        NetworkMode::Registries,
        &allow(std::slice::from_ref(&target)),
        limits,
    );
    let addr = proxy.addr();
    // One client says nothing; one drips a byte at a time and never finishes (slow-loris); one
    // connects and leaves.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let loris = tokio::spawn(async move {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (mut reader, mut writer) = stream.into_split();
        let drip = async move {
            for byte in b"GET http://example.com/ HTTP/1.1\r\nX-Slow: "
                .iter()
                .cycle()
            {
                if writer.write_all(&[*byte]).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        let read = async move {
            let mut out = Vec::new();
            let _ = reader.read_to_end(&mut out).await;
            String::from_utf8_lossy(&out).into_owned()
        };
        tokio::select! {
            answer = read => answer,
            _ = drip => String::from("the proxy stopped reading without answering"),
        }
    });
    drop(TcpStream::connect(addr).await.unwrap());
    // Meanwhile the proxy serves others.
    let answer = exchange(
        addr,
        format!("GET http://{target}/x HTTP/1.1\r\n\r\n").as_bytes(),
    )
    .await;
    assert!(answer.contains("GET /x HTTP/1.1"), "{answer}");

    let answer = read_to_close(&mut silent).await;
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    let answer = tokio::time::timeout(PATIENCE, loris)
        .await
        .unwrap()
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    let mut reasons = Vec::new();
    for _ in 0..4 {
        reasons.push(proxy.event().await.reason);
    }
    assert!(
        reasons.iter().any(|r| r.contains("closed before sending")),
        "{reasons:?}"
    );
    assert_eq!(
        reasons
            .iter()
            .filter(|r| r.contains("did not arrive within"))
            .count(),
        2,
        "{reasons:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_tunnels_are_closed_and_reported() {
    let echo = echo_server().await;
    let limits = ProxyLimits {
        idle_timeout: Duration::from_secs(1),
        ..ProxyLimits::default()
    };
    let mut proxy = Proxy::start(
        NetworkMode::Registries,
        &allow(&[format!("127.0.0.1:{}", echo.port())]),
        limits,
    );
    let mut stream = tunnel(proxy.addr(), &format!("127.0.0.1:{}", echo.port())).await;
    stream.write_all(b"hi").await.unwrap();
    let rest = read_to_close(&mut stream).await;
    assert_eq!(rest, "hi");
    let event = proxy.event_for("127.0.0.1").await;
    assert!(event.reason.contains("without traffic"), "{event:?}");
    assert_eq!((event.bytes_up, event.bytes_down), (2, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_tunnels_are_served_past_the_connection_cap() {
    let echo = echo_server().await;
    let limits = ProxyLimits {
        max_connections: 4,
        ..ProxyLimits::default()
    };
    let mut proxy = Proxy::start(
        NetworkMode::Registries,
        &allow(&[format!("127.0.0.1:{}", echo.port())]),
        limits,
    );
    let addr = proxy.addr();
    let target = format!("127.0.0.1:{}", echo.port());
    let mut clients = Vec::new();
    for i in 0..24u32 {
        let target = target.clone();
        clients.push(tokio::spawn(async move {
            let mut stream = tunnel(addr, &target).await;
            let message = format!("client {i} ").repeat(1000);
            stream.write_all(message.as_bytes()).await.unwrap();
            stream.shutdown().await.unwrap();
            assert_eq!(read_to_close(&mut stream).await, message);
        }));
    }
    for client in clients {
        tokio::time::timeout(PATIENCE, client)
            .await
            .unwrap()
            .unwrap();
    }
    for _ in 0..24 {
        let event = proxy.event().await;
        assert!(
            event.allowed && event.bytes_up > 0 && event.bytes_up == event.bytes_down,
            "{event:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_proxy_cuts_open_tunnels_and_reports_them() {
    let echo = echo_server().await;
    let proxy = Proxy::start(
        NetworkMode::Registries,
        &allow(&[format!("127.0.0.1:{}", echo.port())]),
        ProxyLimits::default(),
    );
    let mut stream = tunnel(proxy.addr(), &format!("127.0.0.1:{}", echo.port())).await;
    stream.write_all(b"abc").await.unwrap();
    let mut back = [0u8; 3];
    stream.read_exact(&mut back).await.unwrap();
    let Proxy {
        proxy: running,
        mut events,
    } = proxy;
    drop(running);
    let event = tokio::time::timeout(PATIENCE, events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (event.host.as_str(), event.bytes_up, event.bytes_down),
        ("127.0.0.1", 3, 3)
    );
    assert_eq!(read_to_close(&mut stream).await, "");
}

fn have(program: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `export K='V'; ...` for every variable of `proxy_env`.
fn exports(port: u16) -> String {
    proxy_env(port)
        .into_iter()
        .map(|(k, v)| format!("export {k}='{v}'; "))
        .collect()
}

/// Real clients in a confined command (network allowed, fallback mode), configured only by the
/// variables of `proxy_env`, reach the stand-in registry through the proxy and get the proxy's
/// refusal for anything else. The stand-in listens on 127.0.0.2 because `NO_PROXY` sends
/// 127.0.0.1 around the proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_and_python_use_the_proxy_through_proxy_env_alone() {
    let registry = stand_in_registry("127.0.0.2").await;
    let target = format!("127.0.0.2:{}", registry.port());
    let mut proxy = Proxy::start(
        NetworkMode::Registries,
        &allow(std::slice::from_ref(&target)),
        ProxyLimits::default(),
    );
    let project = tempfile::tempdir().unwrap();
    let mut config = SandboxConfig::new(project.path());
    config.allow_network = true;
    let sandbox = Sandbox::new(config).unwrap();
    let env = exports(proxy.addr().port());
    let run = |command: String| {
        let sandbox = &sandbox;
        async move {
            let out = sandbox.run(&command, PATIENCE).await.unwrap();
            format!("exit {:?}\n{}{}", out.exit_code, out.stdout, out.stderr)
        }
    };

    if have("curl") {
        let out = run(format!("{env}curl -sS http://{target}/simple/curl/")).await;
        assert!(out.contains("GET /simple/curl/ HTTP/1.1"), "{out}");
        let event = proxy.event_for("127.0.0.2").await;
        assert!(event.allowed && event.bytes_down > 0, "{event:?}");

        // --proxytunnel: the same request through CONNECT.
        let out = run(format!("{env}curl -sS -p http://{target}/simple/tunnel/")).await;
        assert!(out.contains("GET /simple/tunnel/ HTTP/1.1"), "{out}");
        proxy.event_for("127.0.0.2").await;

        let out = run(format!("{env}curl -sS http://evil.invalid/")).await;
        assert!(
            out.contains("refused a request to evil.invalid:80"),
            "{out}"
        );
        assert!(out.contains("--allow-domain evil.invalid"), "{out}");
        assert!(!proxy.event_for("evil.invalid").await.allowed);

        let out = run(format!("{env}curl -sS https://evil.invalid/")).await;
        assert!(out.contains("403"), "{out}");
        assert!(!out.starts_with("exit Some(0)"), "{out}");
        assert!(!proxy.event_for("evil.invalid").await.allowed);
    } else {
        eprintln!("curl is not installed; skipping its half of this test");
    }

    if have("python3") {
        let script = format!(
            "import urllib.request\nprint(urllib.request.urlopen('http://{target}/simple/python/').read().decode())\ntry:\n    urllib.request.urlopen('https://evil.invalid/')\nexcept Exception as e:\n    print('refused:', e)\n"
        );
        std::fs::write(project.path().join("fetch.py"), script).unwrap();
        let out = run(format!("{env}python3 fetch.py")).await;
        assert!(out.contains("GET /simple/python/ HTTP/1.1"), "{out}");
        assert!(
            out.contains("Forbidden by loopwright: evil.invalid:443 not allowed"),
            "{out}"
        );
        assert!(proxy.event_for("127.0.0.2").await.allowed);
        assert!(!proxy.event_for("evil.invalid").await.allowed);
    } else {
        eprintln!("python3 is not installed; skipping its half of this test");
    }
}
