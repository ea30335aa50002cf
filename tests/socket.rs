//! The local event socket end to end: the real daemon fed the bundled replay through a Y4M pipe the
//! test paces, three readers on `--socket` (one from the start, one joining after the first face
//! changed, one that never reads), checked against the JSON lines the same run writes on stdout.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{daemon, replay_y4m};

fn read_json(r: &mut BufReader<UnixStream>) -> Option<serde_json::Value> {
    let mut line = String::new();
    match r.read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"))),
    }
}

/// A reader on `stream`, past its snapshot line, which must announce `faces` faces.
fn joined(stream: UnixStream, faces: i64) -> BufReader<UnixStream> {
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut r = BufReader::new(stream);
    let head = read_json(&mut r).expect("a snapshot line");
    assert_eq!(
        (head["type"].as_str(), head["faces"].as_i64()),
        (Some("snapshot"), Some(faces))
    );
    r
}

#[test]
fn socket_readers_get_a_snapshot_and_every_event_and_a_stuck_one_holds_nothing_up() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("events.sock");
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "[serial]\nformat = \"json\"\nstatus_interval = 0\n").unwrap();
    let mut child = daemon(&["--config", cfg.to_str().unwrap(), "--source", "y4m:-"])
        .args(["--serial", "-", "--once", "--fps", "0", "--leds", "none"])
        .arg("--socket")
        .arg(&sock)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut feed = child.stdin.take().unwrap();
    let (header, frames) = replay_y4m();

    let t = Instant::now();
    let first = loop {
        if let Ok(s) = UnixStream::connect(&sock) {
            break s;
        }
        assert!(t.elapsed() < Duration::from_secs(60), "no socket");
        std::thread::sleep(Duration::from_millis(20));
    };
    let stuck = UnixStream::connect(&sock).unwrap();
    // Reader a is in once its (empty) snapshot arrives; then the source's header lets the daemon
    // start, so a sees the start line too.
    let mut a = joined(first, 0);
    feed.write_all(&header).unwrap();
    // Up to frame 12: face 1 appears (frame 2) and turns happy (frame 8).
    for f in &frames[..12] {
        feed.write_all(f).unwrap();
    }
    let mut from_a = Vec::new();
    while let Some(e) = read_json(&mut a) {
        let changed = e["event"] == "changed";
        from_a.push(e);
        if changed {
            break;
        }
    }
    let mut b = joined(UnixStream::connect(&sock).unwrap(), 1);
    let snapshot = read_json(&mut b).expect("face 1's line");
    for f in &frames[12..] {
        if feed.write_all(f).is_err() {
            break; // the daemon is gone: its stderr below says why
        }
    }
    drop(feed);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    while let Some(e) = read_json(&mut a) {
        from_a.push(e);
    }
    let mut from_b = Vec::new();
    while let Some(e) = read_json(&mut b) {
        from_b.push(e);
    }
    drop(stuck);

    let stdout: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(stdout[0]["type"], "start");
    assert_eq!(from_a, stdout, "reader a: every event");
    let changed = stdout.iter().position(|e| e["event"] == "changed").unwrap();
    assert_eq!(
        snapshot, stdout[changed],
        "reader b's snapshot: face 1's latest line"
    );
    assert_eq!(from_b, stdout[changed + 1..], "reader b: the rest");
    let kinds: Vec<&str> = stdout.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["start", "face", "face", "face", "face", "source", "stop"]
    );
    assert!(!sock.exists(), "the socket file is removed at exit");
}
