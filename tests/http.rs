//! The kiosk web API end to end: the real daemon with `--http 127.0.0.1:0`, fed the bundled replay
//! through a Y4M pipe the test paces, against the JSON lines the same run writes on stdout. Bad
//! clients (malformed, huge, idle, never reading) are answered or dropped and the run goes on.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{ChildStdin, Output, Stdio};
use std::time::{Duration, Instant};

use emotiond::frame::Rect;
use emotiond::signal::http::{BOX_COLOR, MAX_CONNECTIONS};
use serde_json::Value;

use common::{daemon, http_get, http_raw, replay_frames, replay_y4m, scaled, HttpDaemon};

/// A config file in `dir` with JSON on the serial line and `extra` appended.
fn config(dir: &tempfile::TempDir, extra: &str) -> String {
    let path = dir.path().join("c.toml");
    std::fs::write(&path, format!("[serial]\nformat = \"json\"\n{extra}")).unwrap();
    path.to_str().unwrap().to_string()
}

/// The daemon on a Y4M pipe with `--http ADDR` (unless `addr` is empty: the config's listen).
fn start(config: &str, addr: &str) -> (HttpDaemon, ChildStdin) {
    let mut cmd = daemon(&["--config", config, "--source", "y4m:-", "--serial", "-"]);
    cmd.args(["--once", "--fps", "0", "--leds", "none"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    if !addr.is_empty() {
        cmd.args(["--http", addr]);
    }
    let mut d = HttpDaemon::spawn(cmd);
    let feed = d.child.stdin.take().unwrap();
    (d, feed)
}

/// Writes frames `range` of the replay (the header first when `range` starts at 0), `pace` apart.
fn feed(to: &mut ChildStdin, range: std::ops::Range<usize>, pace: Duration) {
    let (header, frames) = replay_y4m();
    if range.start == 0 {
        to.write_all(&header).unwrap();
    }
    for f in &frames[range] {
        to.write_all(f).unwrap();
        std::thread::sleep(pace);
    }
}

/// Ends the run (closes its source) and returns its output, which must be a clean exit.
fn finish(d: HttpDaemon, feed: ChildStdin) -> (Output, String) {
    drop(feed);
    let out = d.child.wait_with_output().unwrap();
    let log = d.log.lock().unwrap().clone();
    assert!(out.status.success(), "{log}");
    assert!(!log.contains("panicked"), "{log}");
    (out, log)
}

fn stdout_json(out: &Output) -> Vec<Value> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// An `/events` client: its messages as (event name, data), read by a thread until the stream
/// ends.
fn events(addr: SocketAddr, path: &str) -> std::thread::JoinHandle<Vec<(String, Value)>> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(scaled(Duration::from_secs(60))))
        .unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\r\n",
        addr.port()
    )
    .unwrap();
    std::thread::spawn(move || {
        let mut r = BufReader::new(s);
        let mut head = String::new();
        while !head.ends_with("\r\n\r\n") {
            assert!(r.read_line(&mut head).unwrap() > 0, "{head}");
        }
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(head.contains("Content-Type: text/event-stream"), "{head}");
        let mut got = Vec::new();
        let mut name = String::from("message");
        for line in r.lines() {
            let Ok(line) = line else { break };
            if let Some(n) = line.strip_prefix("event: ") {
                name = n.to_string();
            } else if let Some(data) = line.strip_prefix("data: ") {
                let v = serde_json::from_str(data).unwrap_or_else(|e| panic!("{data}: {e}"));
                got.push((std::mem::replace(&mut name, "message".into()), v));
            }
        }
        got
    })
}

/// Waits until `/status` says `sse_clients` is `n`.
fn wait_for_clients(addr: SocketAddr, n: u64) {
    let t = Instant::now();
    while http_get(addr, "/status", "").json()["sse_clients"] != n {
        assert!(
            t.elapsed() < scaled(Duration::from_secs(20)),
            "{n} events clients"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn events_arrive_in_order_equal_to_the_serial_lines_and_status_has_its_keys() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&dir, "status_interval = 1\n");
    let (d, mut to) = start(&cfg, "127.0.0.1:0");
    assert!(d.addr.ip().is_loopback());
    let reader = events(d.addr, "/events");
    wait_for_clients(d.addr, 1);

    let before = http_get(d.addr, "/status", "");
    assert_eq!(before.status, 200);
    assert_eq!(before.header("content-type"), Some("application/json"));
    let st = before.json();
    for key in [
        "version",
        "source",
        "source_state",
        "uptime_s",
        "frames",
        "fps",
        "detect_p50_ms",
        "detect_p95_ms",
        "classify_p50_ms",
        "classify_p95_ms",
        "latency_p50_ms",
        "latency_p95_ms",
        "dropped",
        "bad_frames",
        "skipped_faces",
        "rss_mib",
        "temp_c",
        "faces",
        "tracks",
        "leds",
        "preview",
        "sse_clients",
    ] {
        assert!(st.get(key).is_some(), "/status lacks {key}: {st}");
    }
    assert_eq!(st["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(st["fps"], Value::Null, "no status event yet: {st}");
    assert_eq!(st["leds"]["state"], "idle");
    assert_eq!(st["preview"], false);

    // 14 frames, 0.1 s apart: face 1 appears and smiles, and a status event passes.
    feed(&mut to, 0..14, Duration::from_millis(100));
    let t = Instant::now();
    let st = loop {
        let st = http_get(d.addr, "/status", "").json();
        if st["fps"].is_number() {
            break st;
        }
        assert!(
            t.elapsed() < scaled(Duration::from_secs(30)),
            "no status figures: {st}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(st["source"], "y4m:-");
    assert_eq!(st["source_state"], "ok");
    assert_eq!(st["faces"], 1, "{st}");
    assert_eq!(st["tracks"][0]["id"], 1, "{st}");
    let probs = st["tracks"][0]["probs"].as_object().unwrap();
    assert_eq!(probs.len(), 7, "{st}");
    assert_eq!(st["leds"]["emotion"], "happy", "{st}");
    assert!(st["frames"].as_i64().unwrap() >= 1, "{st}");
    assert!(st["latency_p50_ms"].is_number(), "{st}");
    assert!(st["uptime_s"].as_f64().unwrap() > 0.0, "{st}");

    // The pictures stay inside without preview = true.
    for path in ["/snapshot.jpg", "/snapshot.png", "/stream.mjpg"] {
        let r = http_get(d.addr, path, "");
        assert_eq!(r.status, 403, "{path}: {}", r.text());
        assert!(r.text().contains("preview = true"), "{path}: {}", r.text());
    }

    feed(&mut to, 14..28, Duration::from_millis(100));
    let (out, _) = finish(d, to);
    let got = reader.join().unwrap();
    let serial = stdout_json(&out);
    assert_eq!(serial[0]["type"], "start");
    let messages: Vec<Value> = got
        .iter()
        .filter(|(name, _)| name == "message")
        .map(|(_, v)| v.clone())
        .collect();
    assert_eq!(
        messages[0],
        serde_json::json!({"v": 1, "type": "snapshot", "faces": 0})
    );
    assert_eq!(
        messages[1..],
        serial[..],
        "every event, in order, as on the serial line"
    );
    let kinds: Vec<&str> = serial.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"status"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"stop"));

    // The page's own messages: the driving face and every face's probabilities.
    let shown: Vec<&str> = got
        .iter()
        .filter(|(name, _)| name == "faces")
        .map(|(_, v)| v["driving"]["emotion"].as_str().unwrap_or("none"))
        .collect();
    let first = |e: &str| shown.iter().position(|s| *s == e);
    assert!(
        first("neutral").unwrap() < first("happy").unwrap(),
        "{shown:?}"
    );
}

/// The pixel at (`x`, `y`) is the box colour (JPEG moves it a little).
fn boxed(img: &image::RgbImage, x: i32, y: i32) -> bool {
    let [r, g, b] = img.get_pixel(x as u32, y as u32).0;
    let [br, bg, bb] = BOX_COLOR.map(i32::from);
    (i32::from(r) - br).abs() < 70
        && (i32::from(g) - bg).abs() < 70
        && (i32::from(b) - bb).abs() < 70
}

/// Each edge's middle, one pixel inside the box, has the box colour; the middle of the face has
/// not.
fn assert_outlined(img: &image::RgbImage, r: Rect, what: &str) {
    let (cx, cy) = (r.x + r.w / 2, r.y + r.h / 2);
    for (x, y, edge) in [
        (r.x + 1, cy, "left"),
        (r.x + r.w - 2, cy, "right"),
        (cx, r.y + 1, "top"),
        (cx, r.y + r.h - 2, "bottom"),
    ] {
        assert!(
            boxed(img, x, y),
            "{what}: no box colour on the {edge} edge of {r:?}: {:?}",
            img.get_pixel(x as u32, y as u32)
        );
    }
    assert!(
        !boxed(img, cx, cy),
        "{what}: the face itself is not painted over"
    );
}

#[test]
fn the_preview_shows_a_box_on_each_face_the_daemon_follows() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&dir, "status_interval = 0\n[http]\npreview = true\n");
    let (d, mut to) = start(&cfg, "127.0.0.1:0");
    // Up to frame 12, then frame 12 again and again: the face stays where it is.
    feed(&mut to, 0..13, Duration::from_millis(50));
    let addr = d.addr;
    let (_, frames) = replay_y4m();
    let repeat = frames[12].clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let feeder = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if to.write_all(&repeat).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            to
        })
    };
    // Where the daemon's pipeline sees the face in frame 12: the same pipeline on the same frames.
    let mut pipeline = common::fer_pipeline(1, 1);
    let replay = replay_frames();
    for f in replay[..13].iter().chain([&replay[12]]) {
        pipeline.process(f).unwrap();
    }
    let faces: Vec<Rect> = pipeline.tracker().confirmed().map(|t| t.rect).collect();
    assert_eq!(
        faces.len(),
        1,
        "the replay's frame 12 has one face followed"
    );

    for path in ["/snapshot.jpg", "/snapshot.png"] {
        let r = http_get(addr, path, "");
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        let mime = if path.ends_with("jpg") {
            "image/jpeg"
        } else {
            "image/png"
        };
        assert_eq!(r.header("content-type"), Some(mime));
        let img = image::load_from_memory(&r.body).unwrap().to_rgb8();
        assert_eq!(
            img.dimensions(),
            (replay[0].width() as u32, replay[0].height() as u32)
        );
        for &rect in &faces {
            assert_outlined(&img, rect, path);
        }
    }
    let head = http_raw(
        addr,
        b"HEAD /snapshot.png HTTP/1.1\r\nHost: localhost\r\n\r\n",
    )
    .unwrap();
    assert_eq!((head.status, head.body.len()), (200, 0));

    // The stream: four parts, each a JPEG with the box, at most 5 a second.
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(scaled(Duration::from_secs(20))))
        .unwrap();
    let asked = Instant::now();
    write!(s, "GET /stream.mjpg HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut r = BufReader::new(s);
    let mut head = String::new();
    while !head.ends_with("\r\n\r\n") {
        r.read_line(&mut head).unwrap();
    }
    assert!(
        head.contains("multipart/x-mixed-replace; boundary=frame"),
        "{head}"
    );
    for _ in 0..4 {
        let mut part = String::new();
        while !part.ends_with("\r\n\r\n") {
            assert!(r.read_line(&mut part).unwrap() > 0);
        }
        assert!(
            part.contains("--frame\r\nContent-Type: image/jpeg"),
            "{part}"
        );
        let len: usize = part
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .unwrap()
            .parse()
            .unwrap();
        let mut jpeg = vec![0; len + 2];
        r.read_exact(&mut jpeg).unwrap();
        let img = image::load_from_memory(&jpeg[..len]).unwrap().to_rgb8();
        assert_outlined(&img, faces[0], "stream");
    }
    // The first part left after the request; the fourth at least 3 x 0.2 s later.
    assert!(
        asked.elapsed() >= Duration::from_millis(600),
        "4 parts in {:?}: the rate is capped at 5/s",
        asked.elapsed()
    );
    drop(r);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let to = feeder.join().unwrap();
    finish(d, to);
}

#[test]
fn off_loopback_every_request_carries_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "k1osk-s3cret\n").unwrap();
    let cfg = config(
        &dir,
        &format!(
            "status_interval = 0\n[http]\nlisten = \"0.0.0.0:0\"\ntoken_file = {:?}\n",
            token.to_str().unwrap()
        ),
    );
    let (d, mut to) = start(&cfg, "");
    let get = |path: &str, extra: &str| http_get(d.addr, path, extra);
    let no = get("/status", "");
    assert_eq!(no.status, 401, "{}", no.text());
    assert_eq!(
        no.header("www-authenticate"),
        Some("Bearer realm=\"emotiond\"")
    );
    assert_eq!(get("/events", "").status, 401);
    assert_eq!(get("/", "").status, 401);
    assert_eq!(
        get("/status", "Authorization: Bearer wrong\r\n").status,
        401
    );
    assert_eq!(get("/status?token=k1osk-s3cre", "").status, 401);
    let ok = get("/status", "Authorization: Bearer k1osk-s3cret\r\n");
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(ok.json()["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(get("/status?token=k1osk-s3cret", "").status, 200);
    let page = get("/?token=k1osk-s3cret", "");
    assert_eq!(page.status, 200);
    assert!(page.text().contains("id=\"shown\""));
    // With the token, the Host does not matter (the token is what a rebinding page lacks).
    let raw = b"GET /status?token=k1osk-s3cret HTTP/1.1\r\nHost: kiosk.example:8088\r\n\r\n";
    assert_eq!(http_raw(d.addr, raw).unwrap().status, 200);
    feed(&mut to, 0..28, Duration::ZERO);
    let (out, _) = finish(d, to);
    assert_eq!(stdout_json(&out).len(), 7);
}

#[test]
fn bad_clients_are_answered_or_dropped_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&dir, "status_interval = 0\n");
    let (d, mut to) = start(&cfg, "127.0.0.1:0");
    let addr = d.addr;
    // An events client that never reads a byte.
    let mut stuck = TcpStream::connect(addr).unwrap();
    write!(stuck, "GET /events HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    wait_for_clients(addr, 1);

    let status = |raw: &[u8]| http_raw(addr, raw).map(|r| r.status);
    assert_eq!(status(b"NONSENSE\r\n\r\n").unwrap(), 400);
    assert_eq!(
        status(b"GET / HTTP/1.1\r\nno colon here\r\n\r\n").unwrap(),
        400
    );
    assert_eq!(
        status(b"GET nope HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap(),
        400
    );
    assert_eq!(
        status(b"POST /status HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap(),
        405
    );
    let r = http_get(addr, "/admin", "");
    assert_eq!(r.status, 404, "{}", r.text());
    // Another site's page reaching 127.0.0.1 through its own name (DNS rebinding).
    let rebound = b"GET /events HTTP/1.1\r\nHost: attacker.example:8088\r\n\r\n";
    assert_eq!(status(rebound).unwrap(), 403);
    assert_eq!(
        status(b"GET /status HTTP/1.0\r\n\r\n").unwrap(),
        403,
        "no Host"
    );
    // A 64 KiB header: 431, or the connection closed on it.
    let huge = format!(
        "GET /status HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    match http_raw(addr, huge.as_bytes()) {
        Ok(r) => assert_eq!(r.status, 431, "{}", r.text()),
        Err(e) => eprintln!("the 64 KiB header: connection closed ({e})"),
    }

    // More idle connections than the limit: the extras are answered 503 at once.
    let idle: Vec<TcpStream> = (0..MAX_CONNECTIONS + 5)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    // The refusals are written at once; the others wait (5 s) for a request that never comes.
    std::thread::sleep(scaled(Duration::from_millis(300)));
    let mut refused = 0;
    for mut c in &idle {
        c.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 512];
        if let Ok(n @ 1..) = c.read(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]);
            assert!(text.starts_with("HTTP/1.1 503"), "{text}");
            refused += 1;
        }
    }
    assert!(
        refused >= 5,
        "{refused} of {} idle connections refused",
        idle.len()
    );
    drop(idle);
    let t = Instant::now();
    loop {
        match http_raw(addr, b"GET /status HTTP/1.1\r\nHost: localhost\r\n\r\n") {
            Ok(r) if r.status == 200 => break,
            other => assert!(
                t.elapsed() < scaled(Duration::from_secs(10)),
                "/status after the idle connections closed: {other:?}"
            ),
        }
        std::thread::sleep(Duration::from_millis(50));
    }

    // The run is unaffected: every event on the serial line, a clean stop.
    feed(&mut to, 0..28, Duration::ZERO);
    let (out, log) = finish(d, to);
    let kinds: Vec<String> = stdout_json(&out)
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        kinds,
        ["start", "face", "face", "face", "face", "source", "stop"]
    );
    assert!(log.contains("turned away"), "{log}");
    drop(stuck);
}

#[test]
fn a_port_in_use_or_a_bad_address_stops_the_start_naming_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = daemon(&["--source", "images:tests/data/replay", "--serial", "-"])
        .args(["--once", "--leds", "none", "--http", &addr])
        .output()
        .unwrap();
    common::assert_fails(
        &out,
        &[&format!("http.listen {addr}: cannot listen"), "in use"],
    );
    let out = daemon(&["--http", "localhost:8088"]).output().unwrap();
    common::assert_fails(
        &out,
        &["http.listen \"localhost:8088\"", "e.g. \"127.0.0.1:8088\""],
    );
    let out = daemon(&[
        "--source",
        "images:tests/data/replay",
        "--http",
        "0.0.0.0:0",
    ])
    .output()
    .unwrap();
    common::assert_fails(&out, &["http.listen 0.0.0.0:0", "set http.token_file"]);
}
