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
