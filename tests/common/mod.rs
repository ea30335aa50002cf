//! Helpers shared by the integration tests: paths, the committed reference files, and running the
//! binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use sha2::{Digest, Sha256};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn emotiond(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_emotiond"))
        .args(args)
        .current_dir(cwd)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run emotiond")
}

/// `emotiond run ARGS` from the source tree, logging at info without colours.
pub fn daemon(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_emotiond"));
    c.arg("run")
        .args(args)
        .current_dir(root())
        .env("RUST_LOG", "info")
        .env("RUST_LOG_STYLE", "never")
        .env("RUST_BACKTRACE", "0");
    c
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts a clean failure: exit code 2, a one-line error mentioning every `needle`, no panic.
pub fn assert_fails(o: &Output, needles: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "exit code; stderr: {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
    for n in needles {
        assert!(err.contains(n), "stderr lacks {n:?}: {err}");
    }
}

/// A reference file from `tests/data/reference/`, parsed.
pub fn reference(name: &str) -> Value {
    let path = root().join("tests/data/reference").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Lower-case hex SHA-256 of `bytes`, as the reference files record digests.
pub fn hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A JSON array of integers.
pub fn ints(v: &Value) -> Vec<i64> {
    v.as_array()
        .expect("a JSON array")
        .iter()
        .map(|x| x.as_i64().expect("an integer"))
        .collect()
}

/// A JSON array of numbers.
pub fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("a JSON array")
        .iter()
        .map(|x| x.as_f64().expect("a number"))
        .collect()
}

/// A JSON `[x, y, w, h]` as a box.
pub fn rect(v: &Value) -> emotiond::frame::Rect {
    match ints(v)[..] {
        [x, y, w, h] => emotiond::frame::Rect::new(x as i32, y as i32, w as i32, h as i32),
        _ => panic!("not a box: {v}"),
    }
}

/// The daemon's pipeline at fer's settings with the shipped default cascade and model: detection on
/// `threads` threads, the full detector on every `every`th frame.
pub fn fer_pipeline(threads: usize, every: u32) -> emotiond::pipeline::Pipeline {
    use emotiond::classify::{Classifier, CropRule};
    use emotiond::detect::{Cascade, DetectParams, Detector};
    let cascade = Cascade::from_file(root().join("models/haarcascade_frontalface_default.xml"))
        .expect("cascade");
    let classifier = Classifier::load(
        root().join("models/emotion_mini_xception_f32.tflite"),
        CropRule::fer(),
    )
    .expect("model");
    emotiond::pipeline::Pipeline::new(
        Detector::with_threads(cascade, threads).expect("pool"),
        DetectParams::fer(),
        every,
        classifier,
        emotiond::track::TrackParams::default(),
    )
    .expect("pipeline")
}

/// The `mosquitto` broker's path (on PATH or in /usr/sbin), for the MQTT tests. Without it, a test
/// prints why it did not run and returns (`cargo test` passes on a machine with nothing but Rust),
/// unless `EMOTIOND_REQUIRE_BROKER=1` (CI), where its absence fails the test.
pub fn mosquitto(test: &str) -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    let found = on_path
        .into_iter()
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|d| d.join("mosquitto"))
        .find(|p| p.is_file());
    if found.is_none() {
        if std::env::var("EMOTIOND_REQUIRE_BROKER").as_deref() == Ok("1") {
            panic!("mosquitto not installed (apt install mosquitto) and EMOTIOND_REQUIRE_BROKER=1: {test} cannot run");
        }
        eprintln!("mosquitto not installed (apt install mosquitto): {test} not run");
    }
    found
}

/// `d` times `EMOTIOND_TEST_TIME_SCALE` (qemu runs set it; at least 1).
pub fn scaled(d: std::time::Duration) -> std::time::Duration {
    let scale = std::env::var("EMOTIOND_TEST_TIME_SCALE")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 1.0)
        .unwrap_or(1.0);
    d.mul_f64(scale)
}

/// The replay's frames in name order, each centred on a mid-gray canvas as large as the largest
/// (a Y4M stream's frames share one size).
pub fn replay_frames() -> Vec<emotiond::frame::GrayFrame> {
    use emotiond::frame::GrayFrame;
    let mut names: Vec<_> = std::fs::read_dir(root().join("tests/data/replay"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "png"))
        .collect();
    names.sort();
    let frames: Vec<_> = names
        .iter()
        .map(|p| emotiond::source::still::load_gray(p).unwrap())
        .collect();
    let w = frames.iter().map(|f| f.width()).max().unwrap();
    let h = frames.iter().map(|f| f.height()).max().unwrap();
    frames
        .iter()
        .map(|f| {
            let mut canvas = GrayFrame::filled(w, h, 128);
            let (x0, y0) = ((w - f.width()) / 2, (h - f.height()) / 2);
            for y in 0..f.height() {
                let at = (y0 + y) * w + x0;
                canvas.pixels_mut()[at..at + f.width()].copy_from_slice(f.row(y));
            }
            canvas
        })
        .collect()
}

/// The replay as one Y4M stream: its header, then each frame with its `FRAME` line.
pub fn replay_y4m() -> (Vec<u8>, Vec<Vec<u8>>) {
    let frames = replay_frames();
    let (w, h) = (frames[0].width(), frames[0].height());
    let header = format!("YUV4MPEG2 W{w} H{h} F10:1 Ip A1:1 Cmono\n").into_bytes();
    let bodies = frames
        .iter()
        .map(|f| {
            let mut b = b"FRAME\n".to_vec();
            b.extend_from_slice(f.pixels());
            b
        })
        .collect();
    (header, bodies)
}

/// A running daemon with `--http`: its process, the address its log named, and its log so far.
pub struct HttpDaemon {
    pub child: std::process::Child,
    pub addr: std::net::SocketAddr,
    pub log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl HttpDaemon {
    /// Starts `cmd` (stdout and stdin as the caller set them) and waits for its `http on ADDR`.
    pub fn spawn(mut cmd: Command) -> HttpDaemon {
        use std::io::BufRead;
        let mut child = cmd
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start emotiond");
        let err = child.stderr.take().unwrap();
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let kept = log.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.split("http on ").nth(1) {
                    let addr = addr.split_whitespace().next().unwrap_or_default();
                    let _ = tx.send(addr.parse::<std::net::SocketAddr>().ok());
                }
                let mut log = kept.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let addr = rx
            .recv_timeout(scaled(std::time::Duration::from_secs(60)))
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("no `http on ADDR` in the log:\n{}", log.lock().unwrap()));
        // 0.0.0.0 and [::] are reached through loopback.
        let addr = match addr.ip() {
            std::net::IpAddr::V4(a) if a.is_unspecified() => {
                std::net::SocketAddr::from(([127, 0, 0, 1], addr.port()))
            }
            std::net::IpAddr::V6(a) if a.is_unspecified() => {
                std::net::SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, addr.port()))
            }
            _ => addr,
        };
        HttpDaemon { child, addr, log }
    }

    /// The log so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

/// An HTTP answer, read to the end of the connection.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Response {
    /// A header's value (names compared without case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {} {}", self.head, self.text()))
    }
}

/// Sends `raw` (a whole request) to `addr` and reads the answer to the end.
pub fn http_raw(addr: std::net::SocketAddr, raw: &[u8]) -> std::io::Result<Response> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(scaled(std::time::Duration::from_secs(20))))?;
    s.write_all(raw)?;
    let mut all = Vec::new();
    s.read_to_end(&mut all)?;
    let end = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no head in {} bytes", all.len())))?;
    let head = String::from_utf8_lossy(&all[..end]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status in {head:?}")))?;
    Ok(Response {
        status,
        head,
        body: all[end + 4..].to_vec(),
    })
}

/// `GET path` from `addr` with `Host: localhost` and the `extra` header lines (each ending in
/// `\r\n`).
pub fn http_get(addr: std::net::SocketAddr, path: &str, extra: &str) -> Response {
    let raw = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost:{}\r\n{extra}\r\n",
        addr.port()
    );
    http_raw(addr, raw.as_bytes()).unwrap_or_else(|e| panic!("GET {path}: {e}"))
}
