//! The kiosk web API: a small HTTP/1.1 server on threads of its own (`[http] listen`, `--http`),
//! fed by the fan-out like every other sink.
//!
//! | path | answer |
//! |---|---|
//! | `GET /` | the kiosk page (HTML, CSS and plain JavaScript, bundled; no CDN) |
//! | `GET /events` | Server-Sent Events: a snapshot of the faces, then every protocol event (JSON) |
//! | `GET /status` | JSON: version, source and its state, frames/s, latencies, faces, LEDs, uptime |
//! | `GET /snapshot.jpg`, `/snapshot.png` | the next frame with each face's box and label (`preview`) |
//! | `GET /stream.mjpg` | the same as an MJPEG stream, at most [`STREAM_FPS`] frames/s (`preview`) |
//!
//! # Why not tiny_http
//! tiny_http 0.12 starts a thread for every connection without a limit and reads header lines
//! without a length limit, so many idle connections or one huge header would cost the Pi memory
//! without end. This server parses requests with `httparse` (the parser under hyper) and keeps its
//! own limits: at most [`MAX_CONNECTIONS`] connections (one more is answered 503), each on a small
//! thread of its own with [`IO_TIMEOUT`] to send its head and to take each write; a head of at most
//! [`MAX_HEAD`] bytes (431 beyond); GET and HEAD only (405); one request per connection
//! (`Connection: close`). No async runtime is needed for a handful of kiosk clients.
//!
//! # Privacy and access
//! - Frames never leave the process unless `preview = true`: without it the pictures answer 403.
//!   A frame is copied from the pipeline only while a request waits for one; nothing is written
//!   to disk.
//! - With `token_file`, every request must carry its token, as `Authorization: Bearer TOKEN` or
//!   `?token=TOKEN` (an `EventSource` or an `<img>` cannot send headers); 401 otherwise. A
//!   `listen` address other than loopback needs one.
//! - Without a token (loopback only), a request whose `Host` is not `localhost`, `127.x.x.x` or
//!   `[::1]` is answered 403: a web page that re-binds its own name to 127.0.0.1 (DNS rebinding)
//!   cannot read the events.
//!
//! # Slow clients
//! Each `/events` client has a queue of [`SSE_QUEUE`] messages that the sink fills without
//! waiting; a client whose queue is full (it stopped reading) is dropped and logged. The pipeline
//! never waits for a client.
//!
//! # Troubleshooting
//! - *Address already in use*: another program (an emotiond already running?) has the port; pick
//!   another with `http.listen` or `--http`.
//! - *401*: add `?token=` with the contents of `token_file` to the page's URL.
//! - *403 on `/`*: open the page as `http://localhost:PORT/`, not through another name, or set a
//!   token.
//! - *403 on the pictures*: `preview = true` in `[http]`.

mod config;
mod page;
mod preview;
mod request;
mod server;

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::json;
use thiserror::Error;

use super::fanout::{DrivingState, EventSink, FaceBox, Lines};
use super::protocol::{Event, Value};
use super::snapshot::FaceSnapshot;
use crate::frame::GrayFrame;

pub use config::{parse_listen, HttpConfig};
pub use preview::{BOX_COLOR, BOX_THICKNESS};
pub use request::{loopback_host, Access, Refusal, Request, Status, MAX_HEAD, MAX_HEADERS};

/// Connections at once, of every kind; one more is answered 503 and closed.
pub const MAX_CONNECTIONS: usize = 32;
/// `/events` clients at once (of [`MAX_CONNECTIONS`]).
pub const MAX_SSE: usize = 16;
/// `/stream.mjpg` clients at once: each costs an encoding per frame it gets.
pub const MAX_STREAMS: usize = 4;
/// Messages that may wait for one `/events` client; a client with a full queue is dropped.
pub const SSE_QUEUE: usize = 256;
/// How long a client may take to send its request head, and each write may wait.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// A comment goes to each idle `/events` client this often, so proxies and browsers keep it.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// The most frames per second `/stream.mjpg` sends.
pub const STREAM_FPS: f64 = 5.0;
/// How long a snapshot waits for a frame before it is answered 503.
pub const SNAPSHOT_WAIT: Duration = Duration::from_secs(2);
/// How often the faces' probabilities go to `/events` clients at most (`event: faces`, sent when
/// they change and when the driving emotion does).
pub const FACES_EVERY: Duration = Duration::from_millis(200);
/// Each connection's thread stack.
const STACK: usize = 256 * 1024;

/// Why the web API could not start.
#[derive(Debug, Error)]
pub enum HttpError {
    /// The address cannot be listened on.
    #[error("http.listen {addr}: cannot listen (is another program using the port? pick another with http.listen or --http)")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A non-loopback address without a token.
    #[error("{0}")]
    NeedsToken(String),
    /// The token file cannot be read.
    #[error("http.token_file {}: cannot read it", path.display())]
    TokenFile {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The token file is empty.
    #[error("http.token_file {}: the file is empty; put a secret on its first line (e.g. from `openssl rand -hex 16`)", path.display())]
    EmptyToken {
        /// The file.
        path: PathBuf,
    },
    /// The accepting thread could not be started.
    #[error("http: cannot start its thread")]
    Thread(#[source] io::Error),
}

/// One `/events` client, as the sink sees it.
struct Client {
    no: u64,
    tx: SyncSender<Arc<str>>,
}

/// What the sink keeps for the HTTP threads.
#[derive(Default)]
struct State {
    snapshot: FaceSnapshot,
    clients: Vec<Client>,
    accepted: u64,
    source: Option<String>,
    source_state: Option<String>,
    /// The latest `status` event's JSON line.
    status: Option<String>,
    driving: DrivingState,
    faces: Vec<FaceBox>,
    /// When `faces` last went to the clients, and whether it changed since.
    faces_sent: Option<Instant>,
    faces_unsent: bool,
}

/// What the accepting thread, the connections and the sink share.
struct Shared {
    access: request::Access,
    preview_on: bool,
    page: String,
    started: Instant,
    /// Set at the daemon's stop: new `/events` and stream clients are refused, streams end.
    closing: AtomicBool,
    /// Set when the sink is dropped: the accepting thread ends.
    stopped: AtomicBool,
    connections: AtomicUsize,
    sse: AtomicUsize,
    streams: AtomicUsize,
    state: Mutex<State>,
    preview: preview::Preview,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves plain data behind: keep using it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A place counted in one of the limits, given back when dropped.
struct Slot<'a>(&'a AtomicUsize);

impl<'a> Slot<'a> {
    /// A place under `max`, if there is one.
    fn take(count: &'a AtomicUsize, max: usize) -> Option<Slot<'a>> {
        if count.fetch_add(1, Ordering::AcqRel) >= max {
            count.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Slot(count))
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The web API as a sink of the fan-out. Dropping it stops the accepting thread.
pub struct HttpSink {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for HttpSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSink")
            .field("addr", &self.addr)
            .finish()
    }
}

/// The token in `path`: its contents, trimmed.
fn read_token(path: &Path) -> Result<String, HttpError> {
    let text = std::fs::read_to_string(path).map_err(|source| HttpError::TokenFile {
        path: path.into(),
        source,
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(HttpError::EmptyToken { path: path.into() });
    }
    Ok(token.to_string())
}

impl HttpSink {
    /// The server `cfg` asks for, listening; `None` while `cfg.listen` is unset.
    pub fn start(cfg: &HttpConfig) -> Result<Option<HttpSink>, HttpError> {
        let Some(listen) = cfg.listen else {
            return Ok(None);
        };
        if let Some(why) = cfg.problem() {
            return Err(HttpError::NeedsToken(why));
        }
        let access = match &cfg.token_file {
            Some(path) => request::Access::Token(read_token(path)?),
            None => request::Access::Loopback,
        };
        let listener = TcpListener::bind(listen).map_err(|source| HttpError::Bind {
            addr: listen,
            source,
        })?;
        let addr = listener.local_addr().map_err(|source| HttpError::Bind {
            addr: listen,
            source,
        })?;
        let token = matches!(access, request::Access::Token(_));
        let shared = Arc::new(Shared {
            access,
            preview_on: cfg.preview,
            page: page::document(),
            started: Instant::now(),
            closing: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            connections: AtomicUsize::new(0),
            sse: AtomicUsize::new(0),
            streams: AtomicUsize::new(0),
            state: Mutex::new(State::default()),
            preview: preview::Preview::default(),
        });
        let acceptor = {
            let shared = shared.clone();
            thread::Builder::new()
                .name("http".into())
                .spawn(move || server::accept(&listener, &shared))
                .map_err(HttpError::Thread)?
        };
        log::info!(
            "http on {addr} (preview {}, {})",
            if cfg.preview { "on" } else { "off" },
            if token {
                "token required"
            } else {
                "loopback Host only"
            }
        );
        Ok(Some(HttpSink {
            addr,
            shared,
            acceptor: Some(acceptor),
        }))
    }

    /// The address it listens on (with the real port when 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `/events` clients connected now.
    pub fn sse_clients(&self) -> usize {
        self.shared.sse.load(Ordering::Acquire)
    }
}

/// One SSE message: `event: NAME` when named, then the data (one line).
fn sse(name: Option<&str>, data: &str) -> Arc<str> {
    let data = data.trim_end();
    match name {
        Some(n) => format!("event: {n}\ndata: {data}\n\n").into(),
        None => format!("data: {data}\n\n").into(),
    }
}

/// Queues `msg` for every client without waiting; a client whose queue is full is dropped.
fn broadcast(state: &mut State, msg: &Arc<str>) {
    state.clients.retain(|c| match c.tx.try_send(msg.clone()) {
        Ok(()) => true,
        Err(TrySendError::Full(_)) => {
            log::warn!("http: events client {} dropped: {SSE_QUEUE} messages wait for it (it stopped reading)", c.no);
            false
        }
        Err(TrySendError::Disconnected(_)) => false,
    });
}

/// Rounds to `places` decimals, for JSON.
fn round(v: f32, places: i32) -> f64 {
    let m = 10f64.powi(places);
    (f64::from(v) * m).round() / m
}

fn driving_json(d: DrivingState) -> serde_json::Value {
    match d {
        Some((e, conf)) => json!({"state": "emotion", "emotion": e.name(), "conf": round(conf, 2)}),
        None => json!({"state": "idle", "emotion": null, "conf": null}),
    }
}

fn faces_json(faces: &[FaceBox]) -> serde_json::Value {
    faces
        .iter()
        .map(|f| {
            let probs: serde_json::Map<String, serde_json::Value> = crate::classify::Emotion::ALL
                .iter()
                .map(|&e| (e.name().to_string(), json!(round(f.probs.get(e), 3))))
                .collect();
            json!({
                "id": f.id,
                "emotion": f.label.name(),
                "conf": round(f.confidence, 2),
                "box": f.rect.to_array(),
                "probs": probs,
            })
        })
        .collect()
}

/// The `event: faces` message: the driving face and every face's probabilities.
fn faces_message(state: &State) -> Arc<str> {
    let body = json!({
        "v": 1,
        "type": "faces",
        "driving": driving_json(state.driving),
        "faces": faces_json(&state.faces),
    });
    sse(Some("faces"), &body.to_string())
}

fn send_faces(state: &mut State) {
    if state.clients.is_empty() {
        return;
    }
    let msg = faces_message(state);
    broadcast(state, &msg);
    state.faces_sent = Some(Instant::now());
    state.faces_unsent = false;
}

fn text_field<'a>(event: &'a Event<'_>, key: &str) -> Option<&'a str> {
    event.fields.iter().find_map(|(k, v)| match v {
        Value::Str(s) if *k == key => Some(*s),
        _ => None,
    })
}

impl EventSink for HttpSink {
    fn name(&self) -> String {
        format!("http {}", self.addr)
    }

    fn event(&mut self, lines: &Lines<'_>) {
        let mut s = self.shared.lock();
        s.snapshot.update(lines);
        match lines.event.kind {
            "start" => {
                s.source = text_field(lines.event, "source").map(str::to_string);
                s.source_state = Some("ok".into());
            }
            "source" => s.source_state = text_field(lines.event, "state").map(str::to_string),
            "status" => s.status = Some(lines.json.trim_end().to_string()),
            _ => {}
        }
        if !s.clients.is_empty() {
            broadcast(&mut s, &sse(None, lines.json));
        }
    }

    fn state(&mut self, state: DrivingState) {
        let mut s = self.shared.lock();
        let changed = s.driving.map(|d| d.0) != state.map(|d| d.0);
        s.driving = state;
        if changed {
            send_faces(&mut s);
        }
    }

    fn wants_faces(&self) -> bool {
        true
    }

    fn faces(&mut self, faces: &[FaceBox]) {
        let mut s = self.shared.lock();
        if s.faces != faces {
            s.faces.clear();
            s.faces.extend_from_slice(faces);
            s.faces_unsent = true;
        }
        if s.faces_unsent && s.faces_sent.is_none_or(|t| t.elapsed() >= FACES_EVERY) {
            send_faces(&mut s);
        }
    }

    fn wants_frame(&self) -> bool {
        self.shared.preview.wanted()
    }

    fn frame(&mut self, frame: &GrayFrame, faces: &[FaceBox]) {
        self.shared.preview.offer(frame, faces);
    }

    fn finish(&mut self) {
        // The last events (the stop line) get a moment to reach the clients, never more.
        self.shared.closing.store(true, Ordering::Release);
        self.shared.lock().clients.clear();
        let deadline = Instant::now() + Duration::from_millis(300);
        while self.shared.sse.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for HttpSink {
    fn drop(&mut self) {
        self.shared.closing.store(true, Ordering::Release);
        self.shared.stopped.store(true, Ordering::Release);
        // Wakes the accepting thread, which sees `stopped` and ends.
        let ip = match self.addr.ip() {
            IpAddr::V4(a) if a.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(a) if a.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        let woken = TcpStream::connect_timeout(
            &SocketAddr::new(ip, self.addr.port()),
            Duration::from_secs(1),
        );
        if let (Ok(_), Some(t)) = (woken, self.acceptor.take()) {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read, Write};

    use super::*;
    use crate::signal::fanout::with_lines;

    /// Hands `event` to `sink` as the fan-out does.
    fn emit(sink: &mut HttpSink, event: &Event<'_>) {
        with_lines(event, |lines| sink.event(lines));
    }

    fn loopback() -> HttpConfig {
        HttpConfig {
            listen: Some("127.0.0.1:0".parse().unwrap()),
            ..HttpConfig::default()
        }
    }

    /// An `/events` client past its response head.
    fn events_client(addr: SocketAddr) -> BufReader<TcpStream> {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(s, "GET /events HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
        let mut r = BufReader::new(s);
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        assert_eq!(line, "HTTP/1.1 200 OK\r\n");
        while line != "\r\n" {
            line.clear();
            r.read_line(&mut line).unwrap();
        }
        r
    }

    /// The next unnamed SSE message's data, skipping named ones and comments.
    fn next_data(r: &mut BufReader<TcpStream>) -> serde_json::Value {
        let mut named = false;
        loop {
            let mut line = String::new();
            assert!(r.read_line(&mut line).unwrap() > 0, "the stream ended");
            if line.starts_with("event:") {
                named = true;
            } else if line == "\n" {
                named = false;
            } else if let Some(data) = line.strip_prefix("data: ") {
                if !named {
                    return serde_json::from_str(data).unwrap();
                }
            }
        }
    }

    fn wait_for(what: &str, ok: impl Fn() -> bool) {
        let until = Instant::now() + Duration::from_secs(10);
        while !ok() {
            assert!(Instant::now() < until, "{what}: not in 10 s");
            thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn events_clients_get_the_snapshot_then_every_event_and_a_stuck_one_is_dropped() {
        let mut sink = HttpSink::start(&loopback()).unwrap().unwrap();
        let addr = sink.addr();
        assert_ne!(addr.port(), 0);
        let face = |id, what| {
            Event::new("face")
                .with("id", Value::Int(id))
                .with("event", Value::Str(what))
        };
        emit(&mut sink, &face(1, "appeared"));
        emit(&mut sink, &face(2, "appeared"));
        emit(&mut sink, &face(1, "lost"));

        // Never reads past its request.
        let mut stuck = TcpStream::connect(addr).unwrap();
        write!(stuck, "GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
        let mut a = events_client(addr);
        wait_for("two clients", || sink.sse_clients() == 2);
        assert_eq!(next_data(&mut a)["faces"], 1, "the snapshot's head");
        let snap = next_data(&mut a);
        assert_eq!(
            (snap["id"].as_i64(), snap["event"].as_str()),
            (Some(2), Some("appeared"))
        );

        // 30 MB: far more than the socket buffers and the queue, so the stuck client must go, a reads on,
        // and no emit waits.
        let note = "x".repeat(10_000);
        let big = Event::new("status").with("note", Value::Str(&note));
        let started = Instant::now();
        for _ in 0..3000 {
            emit(&mut sink, &big);
            assert_eq!(next_data(&mut a)["type"], "status");
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{:?}",
            started.elapsed()
        );
        wait_for("the stuck client dropped", || sink.sse_clients() == 1);
        emit(&mut sink, &Event::new("stop"));
        sink.finish();
        assert_eq!(next_data(&mut a)["type"], "stop");
        let mut rest = String::new();
        a.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "\n", "the stream ends after the stop line");
        drop(stuck);
    }

    #[test]
    fn start_refuses_what_cannot_work_naming_it() {
        assert!(HttpSink::start(&HttpConfig::default()).unwrap().is_none());
        let open = HttpConfig {
            listen: Some("0.0.0.0:0".parse().unwrap()),
            ..HttpConfig::default()
        };
        let e = HttpSink::start(&open).unwrap_err();
        assert!(e.to_string().contains("http.token_file"), "{e}");

        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing-token");
        let e = HttpSink::start(&HttpConfig {
            token_file: Some(missing.clone()),
            ..open.clone()
        })
        .unwrap_err();
        assert!(matches!(e, HttpError::TokenFile { .. }), "{e}");
        assert!(e.to_string().contains("missing-token"), "{e}");
        assert!(
            std::error::Error::source(&e).is_some(),
            "the OS error is kept"
        );
        let empty = dir.path().join("empty-token");
        std::fs::write(&empty, " \n").unwrap();
        let e = HttpSink::start(&HttpConfig {
            token_file: Some(empty),
            ..open.clone()
        })
        .unwrap_err();
        assert!(e.to_string().contains("empty"), "{e}");

        let first = HttpSink::start(&loopback()).unwrap().unwrap();
        let taken = HttpConfig {
            listen: Some(first.addr()),
            ..HttpConfig::default()
        };
        let e = HttpSink::start(&taken).unwrap_err();
        assert!(matches!(e, HttpError::Bind { .. }), "{e}");
        assert!(e.to_string().contains(&first.addr().to_string()), "{e}");
        assert!(
            !e.to_string().contains("os error"),
            "the source is not repeated: {e}"
        );
    }

    #[test]
    fn the_token_is_read_once_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "  s3cret\n").unwrap();
        assert_eq!(read_token(&path).unwrap(), "s3cret");
    }
}
