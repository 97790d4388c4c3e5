//! The server: accept loop, routing, script turns, fault injection.

use crate::catalog::{catalog_body, default_catalog, CatalogModel};
use crate::error::TestkitError;
use crate::http::{self, ReadError};
use crate::log::{LoggedRequest, Route};
use crate::script::{Fault, Quirks, Reply, Script, ScriptSource, Turn};
use crate::wire::{self, Frame, Resolved, Wire};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// A running fake model server on `127.0.0.1`. Stops when dropped or on [`FakeServer::shutdown`].
pub struct FakeServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    token: CancellationToken,
    runner: Runner,
}

enum Runner {
    Task(Option<tokio::task::JoinHandle<()>>),
    Thread(Option<std::thread::JoinHandle<()>>),
}

struct Shared {
    script: Mutex<ScriptState>,
    quirks: Quirks,
    catalog: Vec<CatalogModel>,
    /// Every request received, model calls or not.
    log: Mutex<Vec<LoggedRequest>>,
    /// Numbers for message, request and tool-call ids.
    ids: AtomicU64,
}

struct ScriptState {
    source: ScriptSource,
    served: usize,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking handler must not take the log down with it.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    fn new(script: Script) -> Shared {
        Shared {
            script: Mutex::new(ScriptState {
                source: script.source,
                served: 0,
            }),
            quirks: script.quirks,
            catalog: script.catalog.unwrap_or_else(default_catalog),
            log: Mutex::new(Vec::new()),
            ids: AtomicU64::new(1),
        }
    }

    fn next_id(&self) -> u64 {
        self.ids.fetch_add(1, Ordering::Relaxed)
    }

    /// The turn for `request`, or `None` (with the number already served) when the script ran
    /// out.
    fn next_turn(&self, request: &LoggedRequest) -> Result<Turn, usize> {
        let handler = {
            let mut guard = lock(&self.script);
            let state = &mut *guard;
            state.served += 1;
            match &mut state.source {
                ScriptSource::Turns(turns) => {
                    return match turns.pop_front() {
                        Some(turn) => Ok(turn),
                        None => {
                            state.served -= 1;
                            Err(state.served)
                        }
                    };
                }
                ScriptSource::Handler(handler) => handler.clone(),
            }
        };
        Ok(handler(request))
    }
}

impl FakeServer {
    /// Starts a server on `127.0.0.1` with a free port, on the current tokio runtime.
    ///
    /// # Panics
    /// When no loopback port can be bound (a broken test machine); use
    /// [`FakeServer::start_on`] to handle that as an error.
    pub async fn start(script: Script) -> FakeServer {
        match FakeServer::start_on(script, 0).await {
            Ok(server) => server,
            Err(e) => panic!("{e}"),
        }
    }

    /// Starts a server on `127.0.0.1:port` (0: any free port), on the current tokio runtime.
    pub async fn start_on(script: Script, port: u16) -> Result<FakeServer, TestkitError> {
        let (listener, addr) = bind(port).await?;
        let shared = Arc::new(Shared::new(script));
        let token = CancellationToken::new();
        let task = tokio::spawn(accept_loop(listener, shared.clone(), token.clone()));
        Ok(FakeServer {
            addr,
            shared,
            token,
            runner: Runner::Task(Some(task)),
        })
    }

    /// Starts a server on its own thread and runtime, for synchronous tests (e.g. running a
    /// binary with `assert_cmd` while the server answers).
    ///
    /// # Panics
    /// When no loopback port can be bound or the thread cannot start.
    pub fn start_blocking(script: Script) -> FakeServer {
        match FakeServer::start_blocking_on(script, 0) {
            Ok(server) => server,
            Err(e) => panic!("{e}"),
        }
    }

    /// [`FakeServer::start_blocking`] on a chosen port (0: any free port).
    pub fn start_blocking_on(script: Script, port: u16) -> Result<FakeServer, TestkitError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| TestkitError::Runtime(e.to_string()))?;
        let (listener, addr) = runtime.block_on(bind(port))?;
        let shared = Arc::new(Shared::new(script));
        let token = CancellationToken::new();
        let thread = {
            let shared = shared.clone();
            let token = token.clone();
            std::thread::Builder::new()
                .name("testkit-server".into())
                .spawn(move || runtime.block_on(accept_loop(listener, shared, token)))
                .map_err(|e| TestkitError::Runtime(e.to_string()))?
        };
        Ok(FakeServer {
            addr,
            shared,
            token,
            runner: Runner::Thread(Some(thread)),
        })
    }

    /// Stops accepting, ends every open connection, and waits for the server to finish.
    pub async fn shutdown(mut self) {
        self.token.cancel();
        if let Runner::Task(task) = &mut self.runner {
            if let Some(task) = task.take() {
                let _ = task.await;
            }
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The Anthropic base URL (the client appends `/v1/messages`): same as [`Self::base_url`].
    pub fn anthropic_base_url(&self) -> String {
        self.base_url()
    }

    /// `http://127.0.0.1:PORT/v1` (the client appends `/chat/completions`).
    pub fn openai_base_url(&self) -> String {
        format!("{}/v1", self.base_url())
    }

    /// `http://127.0.0.1:PORT/api/v1`, like `https://openrouter.ai/api/v1`.
    pub fn openrouter_base_url(&self) -> String {
        format!("{}/api/v1", self.base_url())
    }

    /// Every model request received so far (`POST …/v1/messages`, `POST …/chat/completions`),
    /// in order, whatever it was answered (reply, fault, or script exhausted). Catalog fetches
    /// and unknown routes are in [`Self::all_requests`] only.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        lock(&self.shared.log)
            .iter()
            .filter(|r| r.route.is_model_call())
            .cloned()
            .collect()
    }

    /// How many model requests were received (see [`Self::requests`]).
    pub fn request_count(&self) -> usize {
        lock(&self.shared.log)
            .iter()
            .filter(|r| r.route.is_model_call())
            .count()
    }

    /// Every request received, including `GET …/models` and unknown routes.
    pub fn all_requests(&self) -> Vec<LoggedRequest> {
        lock(&self.shared.log).clone()
    }

    /// Script turns not yet served (0 for a handler script).
    pub fn turns_left(&self) -> usize {
        match &lock(&self.shared.script).source {
            ScriptSource::Turns(turns) => turns.len(),
            ScriptSource::Handler(_) => 0,
        }
    }
}

/// `http://127.0.0.1:PORT` where nothing listens (a port bound and closed again): connecting
/// is refused, so a client provably sends nothing.
pub fn refused_base_url() -> String {
    let port = std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(9); // the discard port: nothing listens there on a test machine either
    format!("http://127.0.0.1:{port}")
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.token.cancel();
        match &mut self.runner {
            Runner::Task(task) => {
                if let Some(task) = task.take() {
                    task.abort();
                }
            }
            Runner::Thread(thread) => {
                if let Some(thread) = thread.take() {
                    let _ = thread.join();
                }
            }
        }
    }
}

impl std::fmt::Debug for FakeServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

async fn bind(port: u16) -> Result<(TcpListener, SocketAddr), TestkitError> {
    let wanted = SocketAddr::from(([127, 0, 0, 1], port));
    let bind_error = |source| TestkitError::Bind {
        addr: wanted.to_string(),
        source,
    };
    let listener = TcpListener::bind(wanted).await.map_err(bind_error)?;
    let addr = listener.local_addr().map_err(bind_error)?;
    Ok((listener, addr))
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, token: CancellationToken) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = token.cancelled() => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let shared = shared.clone();
                let token = token.clone();
                connections.spawn(async move {
                    tokio::select! {
                        _ = token.cancelled() => {}
                        _ = serve_connection(stream, shared) => {}
                    }
                });
            }
            // Reap finished connections so the set does not grow without bound.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.shutdown().await;
}

async fn serve_connection(mut stream: TcpStream, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let raw = match http::read_request(&mut stream).await {
        Ok(raw) => raw,
        Err(ReadError::Closed) => return,
        Err(ReadError::Bad(status, message)) => {
            let body = serde_json::json!({"error": {"message": message}}).to_string();
            let _ = http::write_full(&mut stream, status, &json_headers(), body.as_bytes()).await;
            return;
        }
    };
    let route = route_of(&raw.method, &raw.path);
    let body: serde_json::Value =
        serde_json::from_slice(&raw.body).unwrap_or(serde_json::Value::Null);
    let request = {
        let mut log = lock(&shared.log);
        let request = LoggedRequest {
            seq: log.len(),
            method: raw.method,
            path: raw.path,
            route,
            headers: raw.headers,
            model: body
                .get("model")
                .and_then(|m| m.as_str())
                .map(str::to_string),
            body,
            body_len: raw.body.len(),
        };
        log.push(request.clone());
        request
    };
    let _ = respond(&mut stream, &shared, &request).await;
}

fn route_of(method: &str, path: &str) -> Route {
    let path = path.trim_end_matches('/');
    match method {
        "POST" if path.ends_with("/v1/messages") => Route::AnthropicMessages,
        "POST" if path.ends_with("/chat/completions") => Route::ChatCompletions,
        "GET" if path.ends_with("/models") => Route::Models,
        _ => Route::Unknown,
    }
}

fn json_headers() -> Vec<(&'static str, String)> {
    vec![("content-type", "application/json".to_string())]
}

async fn respond(
    stream: &mut TcpStream,
    shared: &Shared,
    request: &LoggedRequest,
) -> std::io::Result<()> {
    let wire = match request.route {
        Route::AnthropicMessages => Wire::Anthropic,
        Route::ChatCompletions => Wire::Openai,
        Route::Models => {
            let body = catalog_body(&shared.catalog).to_string();
            return http::write_full(stream, 200, &json_headers(), body.as_bytes()).await;
        }
        Route::Unknown => {
            let message = format!(
                "testkit has no route for {} {}; it serves POST …/v1/messages, POST …/chat/completions and GET …/models",
                request.method, request.path
            );
            let body = serde_json::json!({"error": {"code": 404, "message": message}}).to_string();
            return http::write_full(stream, 404, &json_headers(), body.as_bytes()).await;
        }
    };
    let serial = shared.next_id();
    let mut headers = json_headers();
    let request_id = format!("req_testkit_{serial}");
    match wire {
        Wire::Anthropic => headers.push(("request-id", request_id.clone())),
        Wire::Openai => {
            headers.push(("x-request-id", request_id.clone()));
            headers.push(("x-generation-id", format!("gen-testkit-{serial}")));
        }
    }
    let turn = match shared.next_turn(request) {
        Ok(turn) => turn,
        Err(served) => {
            let message = format!(
                "testkit script exhausted: it had {served} turn(s) and this is model request {}; \
                 add turns to the script (this error is deliberately not retryable)",
                served + 1
            );
            let body = wire::error_body(wire, 400, "invalid_request_error", &message, &request_id);
            return http::write_full(stream, 400, &headers, body.to_string().as_bytes()).await;
        }
    };
    let stream_requested = request.is_stream();
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let resolve = |reply: &Reply| {
        Resolved::new(
            wire,
            request,
            reply,
            shared.quirks,
            serial,
            &mut || shared.next_id(),
            created,
        )
    };
    let default_reply = || Reply::text("Partial answer from the testkit server.");
    match turn {
        Turn::Reply(reply) => {
            let resolved = resolve(&reply);
            if stream_requested {
                let frames = resolved.frames();
                start_stream(stream, &mut headers).await?;
                send_frames(stream, &frames).await?;
                http::finish_chunked(stream).await
            } else {
                let body = resolved.body().to_string();
                http::write_full(stream, 200, &headers, body.as_bytes()).await
            }
        }
        Turn::Fault(Fault::Http(fault)) => {
            if let Some(retry_after) = &fault.retry_after {
                headers.push(("retry-after", retry_after.clone()));
            }
            let error_type = fault
                .error_type
                .clone()
                .unwrap_or_else(|| wire::default_error_type(fault.status).to_string());
            let message = fault
                .message
                .clone()
                .unwrap_or_else(|| wire::default_error_message(fault.status));
            let body = wire::error_body(wire, fault.status, &error_type, &message, &request_id);
            http::write_full(stream, fault.status, &headers, body.to_string().as_bytes()).await
        }
        Turn::Fault(Fault::Cut(fault)) => {
            let resolved = resolve(&fault.reply.unwrap_or_else(default_reply));
            if stream_requested {
                let frames = resolved.frames();
                start_stream(stream, &mut headers).await?;
                send_frames(stream, first_events(&frames, fault.after_events)).await?;
            } else {
                let body = resolved.body().to_string();
                http::write_head_fixed(stream, 200, &headers, body.len()).await?;
                write_raw(stream, &body.as_bytes()[..body.len() / 2]).await?;
            }
            // Dropping the connection without the terminal chunk is the fault.
            Ok(())
        }
        Turn::Fault(Fault::MalformedSse(fault)) => {
            let resolved = resolve(&fault.reply.unwrap_or_else(default_reply));
            if stream_requested {
                let frames = resolved.frames();
                start_stream(stream, &mut headers).await?;
                send_frames(stream, first_events(&frames, fault.after_events)).await?;
                http::write_chunk(stream, GARBAGE_SSE.as_bytes()).await?;
                http::finish_chunked(stream).await
            } else {
                http::write_full(stream, 200, &headers, GARBAGE_JSON.as_bytes()).await
            }
        }
        Turn::Fault(Fault::StreamError(fault)) => {
            let resolved = resolve(&fault.reply.unwrap_or_else(default_reply));
            let error_type = fault.error_type.as_deref().unwrap_or("overloaded_error");
            let message = fault.message.as_deref().unwrap_or("Overloaded");
            if stream_requested {
                let frames = resolved.frames();
                start_stream(stream, &mut headers).await?;
                send_frames(stream, first_events(&frames, fault.after_events)).await?;
                let error = wire::error_frame(wire, error_type, message);
                http::write_chunk(stream, error.encode().as_bytes()).await?;
                http::finish_chunked(stream).await
            } else {
                let body = wire::error_body(wire, 529, error_type, message, &request_id);
                http::write_full(stream, 200, &headers, body.to_string().as_bytes()).await
            }
        }
        Turn::Fault(Fault::Stall(fault)) => {
            let resolved = resolve(&fault.reply.unwrap_or_else(default_reply));
            let pause = Duration::from_millis(fault.ms);
            if stream_requested {
                let frames = resolved.frames();
                start_stream(stream, &mut headers).await?;
                let before = first_events(&frames, fault.after_events);
                send_frames(stream, before).await?;
                tokio::time::sleep(pause).await;
                send_frames(stream, &frames[before.len()..]).await?;
                http::finish_chunked(stream).await
            } else {
                let body = resolved.body().to_string();
                http::write_head_fixed(stream, 200, &headers, body.len()).await?;
                tokio::time::sleep(pause).await;
                write_raw(stream, body.as_bytes()).await
            }
        }
        Turn::Fault(Fault::Drip(fault)) => {
            let resolved = resolve(&default_reply());
            let interval = Duration::from_millis(fault.interval_ms.max(1));
            if stream_requested {
                let frames = resolved.frames();
                start_stream(stream, &mut headers).await?;
                send_frames(stream, first_events(&frames, fault.after_events)).await?;
                loop {
                    tokio::time::sleep(interval).await;
                    http::write_chunk(stream, b": keep-alive\n\n").await?;
                }
            } else {
                let body = resolved.body().to_string();
                http::write_head_fixed(stream, 200, &headers, body.len()).await?;
                loop {
                    tokio::time::sleep(interval).await;
                }
            }
        }
        Turn::Fault(Fault::Delay(fault)) => {
            tokio::time::sleep(Duration::from_millis(fault.ms)).await;
            let resolved = resolve(&fault.reply.unwrap_or_else(default_reply));
            if stream_requested {
                let frames = resolved.frames();
                start_stream(stream, &mut headers).await?;
                send_frames(stream, &frames).await?;
                http::finish_chunked(stream).await
            } else {
                let body = resolved.body().to_string();
                http::write_full(stream, 200, &headers, body.as_bytes()).await
            }
        }
    }
}

/// An SSE event whose data is not JSON.
const GARBAGE_SSE: &str = "data: {\"type\": \"content_block_delta\", \"delta\": {garbage]]\n\n";
/// A 200 body that is not JSON.
const GARBAGE_JSON: &str = "{\"id\": \"msg_testkit\", \"content\": [tru";

async fn start_stream(
    stream: &mut TcpStream,
    headers: &mut Vec<(&'static str, String)>,
) -> std::io::Result<()> {
    headers.retain(|(name, _)| *name != "content-type");
    headers.push(("content-type", "text/event-stream".to_string()));
    headers.push(("cache-control", "no-cache".to_string()));
    http::write_head_chunked(stream, 200, headers).await
}

/// The frames up to and including the `n`th event (comments before it included).
fn first_events(frames: &[Frame], n: usize) -> &[Frame] {
    let mut events = 0;
    for (i, frame) in frames.iter().enumerate() {
        if frame.is_event() {
            if events == n {
                return &frames[..i];
            }
            events += 1;
        }
    }
    frames
}

async fn send_frames(stream: &mut TcpStream, frames: &[Frame]) -> std::io::Result<()> {
    for frame in frames {
        http::write_chunk(stream, frame.encode().as_bytes()).await?;
    }
    Ok(())
}

async fn write_raw(stream: &mut TcpStream, bytes: &[u8]) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    stream.write_all(bytes).await?;
    stream.flush().await
}
