//! The local event socket, for a robot's own program on the same machine: a Unix stream socket
//! (`[socket] path`, default `/run/emotiond/events.sock`) that streams every protocol event as a
//! JSON line to any number of readers. A reader first gets a snapshot: the latest `face` line of
//! every face being followed. Writes never wait: a reader that falls [`BACKLOG`] bytes behind (one
//! that stopped reading) is dropped and logged, and the pipeline goes on.

use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde::Deserialize;
use thiserror::Error;

use super::fanout::{EventSink, Lines};
use super::snapshot::FaceSnapshot;

/// Where the packaged service puts the socket: its `RuntimeDirectory=`.
pub const DEFAULT_SOCKET: &str = "/run/emotiond/events.sock";
/// How far (bytes) a reader may fall behind before it is dropped.
pub const BACKLOG: usize = 64 * 1024;
/// Readers at once; more are turned away (each is told why in one line).
pub const MAX_READERS: usize = 32;
/// The socket file's mode: the service's user and group (`emotiond`) read and write.
const MODE: u32 = 0o660;

/// `[socket]`: the local event socket.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SocketConfig {
    /// The socket's path; `""` for no socket. With the default, a missing `/run/emotiond` (the
    /// daemon run by hand, not by the service) means no socket; any other path must work.
    pub path: PathBuf,
}

impl Default for SocketConfig {
    fn default() -> Self {
        SocketConfig {
            path: PathBuf::from(DEFAULT_SOCKET),
        }
    }
}

/// Why the socket could not be made.
#[derive(Debug, Error)]
pub enum SocketError {
    /// Another program (an emotiond already running) answers on the path.
    #[error("socket {path}: another program is listening there (is emotiond already running?); stop it or set socket.path")]
    InUse {
        /// The path.
        path: PathBuf,
    },
    /// Something that is not a socket is in the way.
    #[error(
        "socket {path}: a file that is not a socket is in the way; remove it or set socket.path"
    )]
    NotASocket {
        /// The path.
        path: PathBuf,
    },
    /// Binding or setting its mode failed.
    #[error("socket {path}: cannot listen: {source} (is its folder there and writable? set socket.path, or \"\" for none)")]
    Bind {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

/// One connected reader and what it has not taken yet.
struct Reader {
    no: u64,
    stream: UnixStream,
    pending: Vec<u8>,
}

impl Reader {
    /// Queues `line` and writes what it can; false when the reader is gone or too far behind.
    fn offer(&mut self, line: &[u8]) -> bool {
        if self.pending.len() + line.len() > BACKLOG {
            log::warn!(
                "socket reader {}: dropped, {} KiB behind (it stopped reading)",
                self.no,
                self.pending.len() / 1024
            );
            return false;
        }
        self.pending.extend_from_slice(line);
        self.flush()
    }

    /// Writes what is pending without waiting; false when the reader is gone.
    fn flush(&mut self) -> bool {
        while !self.pending.is_empty() {
            match self.stream.write(&self.pending) {
                Ok(0) => return false,
                Ok(n) => {
                    self.pending.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    log::info!("socket reader {}: gone ({e})", self.no);
                    return false;
                }
            }
        }
        true
    }
}

/// What the accepting thread and the sink share.
#[derive(Default)]
struct Shared {
    readers: Vec<Reader>,
    /// The latest `face` JSON line of each face still followed: the snapshot.
    faces: FaceSnapshot,
    accepted: u64,
}

/// The socket as a sink of the fan-out. Dropping it closes the socket and removes its file.
pub struct SocketSink {
    path: PathBuf,
    shared: Arc<Mutex<Shared>>,
    closing: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for SocketSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketSink")
            .field("path", &self.path)
            .finish()
    }
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // A panic elsewhere while holding the lock leaves plain data behind: keep using it.
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

impl SocketSink {
    /// The socket `cfg` asks for: `None` for `path = ""`, and for the default path when its folder
    /// is missing or unusable (logged); an error for any other path that cannot be used.
    pub fn start(cfg: &SocketConfig) -> Result<Option<SocketSink>, SocketError> {
        if cfg.path.as_os_str().is_empty() {
            return Ok(None);
        }
        let default = cfg.path == Path::new(DEFAULT_SOCKET);
        if default && !cfg.path.parent().is_some_and(Path::is_dir) {
            log::info!(
                "no {}: no event socket (the packaged service makes it; set socket.path to choose one)",
                cfg.path.parent().map_or("".into(), |p| p.display().to_string())
            );
            return Ok(None);
        }
        match SocketSink::listen(&cfg.path) {
            Ok(s) => Ok(Some(s)),
            Err(e) if default => {
                log::warn!("{e}; going on without the event socket");
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Listens on `path` (a stale socket file left by a crash is replaced) with mode 0660.
    pub fn listen(path: &Path) -> Result<SocketSink, SocketError> {
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            if !meta.file_type().is_socket() {
                return Err(SocketError::NotASocket { path: path.into() });
            }
            if UnixStream::connect(path).is_ok() {
                return Err(SocketError::InUse { path: path.into() });
            }
            let _ = std::fs::remove_file(path);
        }
        let bind_err = |source| SocketError::Bind {
            path: path.into(),
            source,
        };
        let listener = UnixListener::bind(path).map_err(bind_err)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(MODE)).map_err(bind_err)?;
        let shared = Arc::new(Mutex::new(Shared::default()));
        let closing = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let (shared, closing) = (shared.clone(), closing.clone());
            thread::Builder::new()
                .name("socket".into())
                .spawn(move || accept(listener, &shared, &closing))
                .map_err(bind_err)?
        };
        log::info!("event socket on {}", path.display());
        Ok(SocketSink {
            path: path.into(),
            shared,
            closing,
            acceptor: Some(acceptor),
        })
    }

    /// Readers connected now.
    pub fn readers(&self) -> usize {
        lock(&self.shared).readers.len()
    }
}

/// The accepting thread: each new reader gets the snapshot, then joins the stream.
fn accept(listener: UnixListener, shared: &Mutex<Shared>, closing: &AtomicBool) {
    for conn in listener.incoming() {
        if closing.load(Ordering::Relaxed) {
            return;
        }
        let mut stream = match conn {
            Ok(s) => s,
            Err(e) => {
                log::warn!("event socket: accept failed: {e}");
                thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let mut s = lock(shared);
        if s.readers.len() >= MAX_READERS {
            let _ = stream.set_nonblocking(true);
            let _ = stream.write_all(
                format!(
                    "{{\"v\":1,\"type\":\"error\",\"reason\":\"{MAX_READERS} readers already\"}}\n"
                )
                .as_bytes(),
            );
            log::warn!("event socket: a reader was turned away ({MAX_READERS} already)");
            continue;
        }
        if stream.set_nonblocking(true).is_err() {
            continue;
        }
        s.accepted += 1;
        let mut reader = Reader {
            no: s.accepted,
            stream,
            pending: Vec::with_capacity(4096),
        };
        // Under the lock, so no event falls between the snapshot and the stream.
        let snapshot_sent = reader.offer(s.faces.head().as_bytes())
            && s.faces.lines().all(|line| reader.offer(line.as_bytes()));
        if snapshot_sent {
            log::info!("socket reader {} connected", reader.no);
            s.readers.push(reader);
        }
    }
}

impl EventSink for SocketSink {
    fn name(&self) -> String {
        format!("socket {}", self.path.display())
    }

    fn event(&mut self, lines: &Lines<'_>) {
        let mut s = lock(&self.shared);
        s.faces.update(lines);
        let json = lines.json.as_bytes();
        s.readers.retain_mut(|r| r.offer(json));
    }

    fn finish(&mut self) {
        // The last lines (the stop line) get a moment to leave, never more.
        let deadline = Instant::now() + Duration::from_millis(200);
        loop {
            let mut s = lock(&self.shared);
            s.readers.retain_mut(Reader::flush);
            if s.readers.iter().all(|r| r.pending.is_empty()) || Instant::now() >= deadline {
                return;
            }
            drop(s);
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for SocketSink {
    fn drop(&mut self) {
        self.closing.store(true, Ordering::Relaxed);
        // Wakes the accepting thread, which sees `closing` and ends.
        let _ = UnixStream::connect(&self.path);
        if let Some(t) = self.acceptor.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader};

    use super::*;
    use crate::signal::fanout::with_lines;
    use crate::signal::protocol::{Event, Value};

    /// Hands `event` to `sink` as the fan-out does.
    fn emit(sink: &mut SocketSink, event: &Event<'_>) {
        with_lines(event, |lines| sink.event(lines));
    }

    fn face(id: i64, what: &'static str) -> Event<'static> {
        Event::new("face")
            .with("frame", Value::Int(1))
            .with("id", Value::Int(id))
            .with("event", Value::Str(what))
    }

    fn read_line(r: &mut BufReader<UnixStream>) -> serde_json::Value {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
    }

    fn wait_for_readers(sink: &SocketSink, n: usize) {
        let until = Instant::now() + Duration::from_secs(10);
        while sink.readers() < n {
            assert!(Instant::now() < until, "{n} readers never connected");
            thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn readers_get_the_snapshot_then_every_event_and_a_stuck_one_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.sock");
        let mut sink = SocketSink::listen(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o660);
        // Faces 1 and 2 appear and 1 is lost before anyone connects.
        emit(&mut sink, &face(1, "appeared"));
        emit(&mut sink, &face(2, "appeared"));
        emit(&mut sink, &face(2, "changed"));
        emit(&mut sink, &face(1, "lost"));

        let stuck = UnixStream::connect(&path).unwrap(); // never reads
        let mut a = BufReader::new(UnixStream::connect(&path).unwrap());
        let mut b = BufReader::new(UnixStream::connect(&path).unwrap());
        wait_for_readers(&sink, 3);
        for r in [&mut a, &mut b] {
            let head = read_line(r);
            assert_eq!(
                (head["type"].as_str(), head["faces"].as_i64()),
                (Some("snapshot"), Some(1))
            );
            let snap = read_line(r);
            assert_eq!(
                (snap["id"].as_i64(), snap["event"].as_str()),
                (Some(2), Some("changed")),
                "the snapshot is face 2's latest line, and only that"
            );
        }
        // Far more than a socket buffer and the backlog: the stuck reader must go, the others
        // keep up, and no write waits.
        let note = "x".repeat(1000);
        let big = Event::new("status").with("note", Value::Str(&note));
        let started = Instant::now();
        for _ in 0..2000 {
            emit(&mut sink, &big);
            for r in [&mut a, &mut b] {
                assert_eq!(read_line(r)["type"], "status");
            }
        }
        assert_eq!(sink.readers(), 2, "the stuck reader is dropped");
        emit(&mut sink, &Event::new("stop"));
        sink.finish();
        for r in [&mut a, &mut b] {
            assert_eq!(read_line(r)["type"], "stop");
        }
        eprintln!(
            "2000 events of 1 KB to 3 readers in {:?}",
            started.elapsed()
        );
        drop(stuck);
        drop(sink);
        assert!(!path.exists(), "the socket file is removed");
    }

    #[test]
    fn a_live_socket_is_not_taken_over_and_a_stale_one_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let first = SocketSink::listen(&path).unwrap();
        let e = SocketSink::listen(&path).unwrap_err();
        assert!(matches!(e, SocketError::InUse { .. }), "{e}");
        drop(first);
        // A stale socket file: its listener gone without cleaning up.
        drop(UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        drop(SocketSink::listen(&path).unwrap());
        std::fs::write(&path, "not a socket").unwrap();
        let e = SocketSink::listen(&path).unwrap_err();
        assert!(e.to_string().contains("not a socket"), "{e}");
        let cfg = SocketConfig {
            path: dir.path().join("missing/dir/s.sock"),
        };
        let e = SocketSink::start(&cfg).unwrap_err();
        assert!(e.to_string().contains("missing/dir/s.sock"), "{e}");
        let off = SocketConfig { path: "".into() };
        assert!(SocketSink::start(&off).unwrap().is_none());
    }
}
