//! Throughput of an egress proxy tunnel on loopback, against the same transfer without the
//! proxy, and how many tunnels a second it sets up. Measured, not asserted:
//! `cargo bench -p sandbox --bench proxy_tunnel`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sandbox::{EgressPolicy, EgressProxy, NetworkMode, ProxyLimits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Bytes sent one way (the sink only reads).
const TOTAL: usize = 2 << 30;
const CHUNK: usize = 256 * 1024;

/// Reads everything sent to it and answers with the byte count when the sender is done.
async fn sink() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; CHUNK];
                let mut total = 0u64;
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => total += n as u64,
                    }
                }
                let _ = stream.write_all(&total.to_be_bytes()).await;
            });
        }
    });
    addr
}

async fn connect_tunnel(proxy: SocketAddr, target: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(proxy).await.unwrap();
    stream
        .write_all(format!("CONNECT {target} HTTP/1.1\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 200"));
    stream
}

/// Sends TOTAL bytes and waits for the sink's count; returns the time taken.
async fn push(mut stream: TcpStream) -> Duration {
    let chunk = vec![7u8; CHUNK];
    let started = Instant::now();
    let mut sent = 0;
    while sent < TOTAL {
        stream.write_all(&chunk).await.unwrap();
        sent += CHUNK;
    }
    stream.shutdown().await.unwrap();
    let mut count = [0u8; 8];
    stream.read_exact(&mut count).await.unwrap();
    assert_eq!(u64::from_be_bytes(count), TOTAL as u64);
    started.elapsed()
}

fn rate(d: Duration) -> String {
    format!(
        "{:.0} MiB/s ({} MiB in {:.2} s)",
        TOTAL as f64 / (1 << 20) as f64 / d.as_secs_f64(),
        TOTAL >> 20,
        d.as_secs_f64()
    )
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let target = sink().await;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let policy = EgressPolicy::new(NetworkMode::Registries, &[target.to_string()]).unwrap();
        let proxy = EgressProxy::start(listener, policy, ProxyLimits::default(), |_| {}).unwrap();

        let direct = push(TcpStream::connect(target).await.unwrap()).await;
        println!("direct loopback:        {}", rate(direct));
        let tunnelled = push(connect_tunnel(proxy.local_addr(), target).await).await;
        println!("through a CONNECT tunnel: {}", rate(tunnelled));

        let setups = 2000;
        let started = Instant::now();
        for _ in 0..setups {
            let mut stream = connect_tunnel(proxy.local_addr(), target).await;
            stream.shutdown().await.unwrap();
            let mut count = [0u8; 8];
            stream.read_exact(&mut count).await.unwrap();
        }
        let d = started.elapsed();
        println!(
            "tunnel setup + close:   {:.0} per second ({setups} sequential, {:.0} µs each)",
            setups as f64 / d.as_secs_f64(),
            d.as_micros() as f64 / setups as f64
        );
    });
}
