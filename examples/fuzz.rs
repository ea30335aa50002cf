//! Fuzzing on stable Rust: every parser and decoder that takes outside bytes, fed mutations of real
//! seed files (the shipped cascades, the board configuration, the eval CSV, the model, the test
//! photographs) and of small hand-made seeds. Not coverage-guided (no stable tool gives that without
//! an external compiler plugin); the mutations are structured instead: bit flips, interesting bytes,
//! cut, repeated and spliced ranges, and numbers in text swapped for extreme ones.
//!
//! A target fails when the code under test panics: the input is saved to
//! `target/fuzz/crashes/TARGET-N` and the run exits 1. Each input is also written to
//! `target/fuzz/current-TARGET` before it runs, so an abort or a hang (one input running longer than
//! 20 s stops the run) leaves the input behind.
//!
//! `scripts/fuzz` runs it: with no argument a bounded pass over every target (CI's), or
//! `scripts/fuzz TARGET SECONDS` for one target longer.
//!
//! Usage: `fuzz --list`, `fuzz TARGET --runs N` or `fuzz TARGET --seconds S` (add `--seed N`).

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use emotiond::classify::{CropBuilder, CropRule, EmotionModel, Offsets};
use emotiond::detect::{Cascade, DetectParams, Detector};
use emotiond::eval::fer_csv::{FerCsv, Usage};
use emotiond::eval::{LabeledFace, LabeledFaces, Next};
use emotiond::frame::{GrayFrame, Rect};
use emotiond::signal::http::{loopback_host, Access, Request, Status};
use emotiond::signal::protocol::{parse_text, Encoder, Event, Value};
use emotiond::signal::serial::SerialFormat;
use emotiond::source::luma::{luma_into, PixelFormat};
use emotiond::source::{still, FrameSource, Y4mSource};

/// One input longer than this is a hang.
const HANG: Duration = Duration::from_secs(20);
/// The largest input a mutation makes.
const MAX_INPUT: usize = 2 << 20;

/// A small, fast generator (xorshift64*), seeded per run so a run can be repeated.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

const BYTES: &[u8] = b"\x00\xff\x7f\x80\x01-9 <>\"'=\n,.:eE\xc3\xe2";
const NUMBERS: &[&str] = &[
    "-1",
    "0",
    "1",
    "2147483647",
    "-2147483648",
    "4294967296",
    "9223372036854775807",
    "99999999999999999999",
    "1e308",
    "-1e308",
    "1e-20",
    "nan",
    "inf",
    "0.0",
    "65536",
    "13000",
];

/// Changes `data` by one to four structured mutations.
fn mutate(rng: &mut Rng, data: &mut Vec<u8>, seeds: &[Vec<u8>]) {
    for _ in 0..1 + rng.below(4) {
        let len = data.len();
        match rng.below(9) {
            0 if len > 0 => {
                let i = rng.below(len);
                data[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                data[i] = BYTES[rng.below(BYTES.len())];
            }
            2 if len > 0 => {
                let a = rng.below(len);
                let b = (a + 1 + rng.below(64.min(len - a))).min(len);
                data.drain(a..b);
            }
            3 if len > 0 => {
                let a = rng.below(len);
                let b = (a + 1 + rng.below(256.min(len - a))).min(len);
                let copy = data[a..b].to_vec();
                let at = rng.below(len + 1);
                data.splice(at..at, copy);
            }
            4 => {
                let at = rng.below(len + 1);
                let n = 1 + rng.below(16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                data.splice(at..at, bytes);
            }
            5 if !seeds.is_empty() => {
                let other = &seeds[rng.below(seeds.len())];
                if !other.is_empty() {
                    let a = rng.below(other.len());
                    let b = (a + 1 + rng.below(512)).min(other.len());
                    let at = rng.below(len + 1);
                    data.splice(at..at, other[a..b].iter().copied());
                }
            }
            6 => swap_number(rng, data),
            7 if len > 1 => data.truncate(rng.below(len)),
            _ => swap_number(rng, data),
        }
    }
    data.truncate(MAX_INPUT);
}

/// Replaces a run of ASCII digits (with its sign and decimals) by an extreme number.
fn swap_number(rng: &mut Rng, data: &mut Vec<u8>) {
    let starts: Vec<usize> = (0..data.len().min(1 << 16))
        .filter(|&i| data[i].is_ascii_digit() && (i == 0 || !data[i - 1].is_ascii_digit()))
        .collect();
    if starts.is_empty() {
        return;
    }
    let a = starts[rng.below(starts.len())];
    let mut b = a;
    while b < data.len() && (data[b].is_ascii_digit() || data[b] == b'.') {
        b += 1;
    }
    let with = NUMBERS[rng.below(NUMBERS.len())].as_bytes();
    data.splice(a..b, with.iter().copied());
}

/// A fuzz target: its name, its seed inputs, and the function that must not panic.
struct Target {
    name: &'static str,
    seeds: fn() -> Vec<Vec<u8>>,
    run: fn(&[u8], &Scratch),
}

/// Files a target needs on disk (the CSV reader and the image decoder take paths).
struct Scratch {
    dir: PathBuf,
}

fn read(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("seed {path}: {e} (run from the source tree)"))
}

fn y4m_seed(w: usize, h: usize, tag: &str, frames: usize) -> Vec<u8> {
    let mut s = format!("YUV4MPEG2 W{w} H{h} F25:1 Ip A1:1 {tag}\n").into_bytes();
    for f in 0..frames {
        s.extend_from_slice(b"FRAME\n");
        s.extend((0..w * h * 3 / 2).map(|i| (i + f) as u8));
    }
    s
}

const STUMP: &str = r#"<?xml version="1.0"?>
<opencv_storage><cascade type_id="opencv-cascade-classifier"><stageType>BOOST</stageType>
<featureType>HAAR</featureType><height>4</height><width>4</width>
<featureParams><maxCatCount>0</maxCatCount></featureParams>
<stages><_><stageThreshold>-1.</stageThreshold><weakClassifiers>
<_><internalNodes>0 -1 0 5.e-01</internalNodes><leafValues>1. -1.</leafValues></_>
</weakClassifiers></_></stages>
<features><_><rects><_>0 0 2 4 -1.</_><_>2 0 2 4 1.</_></rects><tilted>1</tilted></_></features>
</cascade></opencv_storage>"#;

/// A 48x40 frame with some structure, for the targets that evaluate what they parsed.
fn test_frame() -> GrayFrame {
    let px = (0..48 * 40).map(|i| ((i * 37) % 251) as u8).collect();
    GrayFrame::from_vec(48, 40, px).expect("48*40 bytes")
}

fn cascade_xml(data: &[u8], _: &Scratch) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(cascade) = Cascade::from_xml(text, "fuzz.xml") {
        // What loads must also evaluate: a small frame at the smallest window.
        let mut detector = Detector::new(cascade);
        let params = DetectParams {
            scale_factor: 1.3,
            min_neighbors: 1,
            min_size: 0,
            max_size: 0,
        };
        let _ = detector.detect(&test_frame(), &params);
    }
}

fn y4m(data: &[u8], _: &Scratch) {
    let reader = Box::new(Cursor::new(data.to_vec()));
    if let Ok(mut src) = Y4mSource::from_reader("y4m:fuzz", reader) {
        let mut frame = GrayFrame::default();
        for _ in 0..8 {
            match src.next_frame(&mut frame) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) if e.is_recoverable() => {}
                Err(_) => break,
            }
        }
    }
}

fn config(data: &[u8], _: &Scratch) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = emotiond::config::check(text);
    }
}

fn fer_csv(data: &[u8], scratch: &Scratch) {
    let path = scratch.dir.join("faces.csv");
    std::fs::write(&path, data).expect("scratch file");
    for usage in [Usage::All, Usage::PrivateTest] {
        if let Ok(mut csv) = FerCsv::open(&path, usage) {
            let mut face = LabeledFace::default();
            for _ in 0..64 {
                match csv.next_face(&mut face) {
                    Ok(Next::Face | Next::Bad(_)) => {}
                    Ok(Next::End) | Err(_) => break,
                }
            }
        }
    }
}

fn tflite(data: &[u8], _: &Scratch) {
    if let Ok(mut model) = EmotionModel::from_bytes(Path::new("fuzz.tflite"), data) {
        let mut probs = [0.0; 7];
        let _ = model.run(&mut probs);
    }
}

fn image(data: &[u8], scratch: &Scratch) {
    let path = scratch.dir.join("image");
    std::fs::write(&path, data).expect("scratch file");
    let _ = still::load_gray(&path);
}

fn luma(data: &[u8], _: &Scratch) {
    if data.len() < 6 {
        return;
    }
    let formats = [
        PixelFormat::Grey,
        PixelFormat::Nv12,
        PixelFormat::Yu12,
        PixelFormat::Yuyv,
        PixelFormat::Mjpeg,
    ];
    let format = formats[usize::from(data[0]) % formats.len()];
    let w = usize::from(u16::from_le_bytes([data[1], data[2]]) % 2048);
    let h = usize::from(u16::from_le_bytes([data[3], data[4]]) % 2048);
    let stride = usize::from(data[5]) * 16;
    let mut frame = GrayFrame::default();
    let _ = luma_into(format, &data[6..], w, h, stride, &mut frame);
}

fn crop_box(data: &[u8], _: &Scratch) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (boxes, offsets) = text.split_once(';').unwrap_or((text, "10,10"));
    let Ok(face) = Rect::parse(boxes) else {
        return;
    };
    // Pixels when both are whole numbers, else fractions; the crop's rules check the values.
    let Some((a, b)) = offsets.split_once(',') else {
        return;
    };
    let offsets = match (a.trim().parse(), b.trim().parse()) {
        (Ok(x), Ok(y)) => Offsets::Pixels { x, y },
        _ => match (a.trim().parse(), b.trim().parse()) {
            (Ok(x), Ok(y)) => Offsets::Proportional { x, y },
            _ => return,
        },
    };
    let frame = test_frame();
    if let Ok(mut builder) = CropBuilder::new(CropRule { offsets }) {
        let mut out = [0u8; emotiond::classify::crop::INPUT_LEN];
        if let Ok(region) = builder.crop_u8(&frame, 128, face, &mut out) {
            assert!(region.width() > 0 && region.height() > 0, "{region:?}");
        }
    }
}

/// A request head as the web API reads it: parsed, its query decoded, both access rules applied.
fn http_request(data: &[u8], _: &Scratch) {
    let req = match Request::parse(data) {
        Ok(Some(req)) => req,
        Ok(None) => return,
        Err(refusal) => {
            let (code, _) = refusal.status.line();
            assert!((400..500).contains(&code), "{refusal:?}");
            return;
        }
    };
    assert!(
        req.path.starts_with('/') && !req.path.contains('?'),
        "{req:?}"
    );
    for key in ["token", "", "every"] {
        let _ = req.query_value(key);
    }
    if let Some(host) = &req.host {
        let _ = loopback_host(host);
    }
    for access in [Access::Loopback, Access::Token("s3cret t0ken".into())] {
        if let Err(refusal) = access.check(&req) {
            assert!(
                matches!(refusal.status, Status::Unauthorized | Status::Forbidden),
                "{refusal:?}"
            );
        }
    }
}

/// Builds an event from the bytes, encodes it both ways, and reads both back.
fn protocol(data: &[u8], _: &Scratch) {
    const KEYS: [&str; 6] = ["state", "reason", "id", "conf", "box", "source"];
    let text = String::from_utf8_lossy(data);
    let words: Vec<&str> = text.split('\u{1}').collect();
    let mut event = Event::new("fuzz");
    for (i, word) in words.iter().enumerate().take(12) {
        let key = KEYS[i % KEYS.len()];
        let n = word.len() as i64 * 7919 - 40000;
        let value = match word.bytes().next().unwrap_or(0) % 4 {
            0 => Value::Str(word),
            1 => Value::Int(n.wrapping_mul(1 << 40)),
            2 => Value::Num(n as f64 / 7.0, usize::from(word.len() as u8 % 4)),
            _ => Value::Box(Rect::new(n as i32, -(n as i32), 3, 4)),
        };
        event = event.with(key, value);
    }
    let mut enc = Encoder::new(SerialFormat::Text);
    let line = enc.encode(&event).to_string();
    assert_eq!(line.matches('\n').count(), 1, "{line:?}");
    let back = parse_text(&line).unwrap_or_else(|| panic!("unreadable: {line:?}"));
    assert_eq!(back.kind, "fuzz");
    assert_eq!(back.fields.len(), event.fields.len(), "{line:?}");
    for ((key, value), (k, v)) in event.fields.iter().zip(&back.fields) {
        assert_eq!(key, k, "{line:?}");
        match value {
            Value::Int(i) => assert_eq!(v.parse::<i64>().ok(), Some(*i), "{line:?}"),
            Value::Str(s) => assert_eq!(v.chars().count(), s.chars().count(), "{line:?}"),
            _ => {}
        }
    }
    let mut enc = Encoder::new(SerialFormat::Json);
    let json: serde_json::Value = serde_json::from_str(enc.encode(&event))
        .unwrap_or_else(|e| panic!("JSON line does not parse: {e}"));
    for (key, value) in &event.fields {
        if let Value::Str(s) = value {
            // A key repeats when there are more words than keys; the last one wins in JSON.
            let last = event.fields.iter().rev().find(|(k, _)| k == key);
            if last.is_some_and(|(_, v)| v == value) {
                assert_eq!(json[*key].as_str(), Some(*s));
            }
        }
    }
}

fn targets() -> Vec<Target> {
    vec![
        Target {
            name: "cascade_xml",
            seeds: || {
                vec![
                    STUMP.as_bytes().to_vec(),
                    STUMP.replace("HAAR", "LBP").into_bytes(),
                    // Whole files (a cut one is no longer XML): LBP, Haar trees, tilted Haar
                    // trees, and the old format.
                    read("models/lbpcascade_frontalface_improved.xml"),
                    read("models/haarcascade_frontalface_alt2.xml"),
                    read("tests/data/cascades/haarcascade_eye_tree_eyeglasses.xml"),
                    read("tests/data/cascades/haarcascade_frontalface_default.fer-bundled.xml"),
                ]
            },
            run: cascade_xml,
        },
        Target {
            name: "y4m",
            seeds: || {
                vec![
                    y4m_seed(8, 6, "C420jpeg", 2),
                    y4m_seed(16, 4, "Cmono", 1),
                    y4m_seed(6, 6, "C444", 1),
                    y4m_seed(7, 5, "C422 XYSCSS=422", 2),
                ]
            },
            run: y4m,
        },
        Target {
            name: "config",
            seeds: || {
                vec![
                    read("board/config.toml"),
                    b"[detect]\nmin_size = 40\n[source]\nfps = 15\ninput = \"y4m:-\"\n".to_vec(),
                ]
            },
            run: config,
        },
        Target {
            name: "fer_csv",
            seeds: || {
                let csv = read("tests/data/eval/faces.csv");
                let lines: Vec<&[u8]> = csv.split(|&b| b == b'\n').take(4).collect();
                vec![lines.join(&b'\n'), b"emotion,pixels\n3,1 2 3\n".to_vec()]
            },
            run: fer_csv,
        },
        Target {
            name: "tflite",
            seeds: || {
                vec![
                    read("models/emotion_mini_xception_f32.tflite"),
                    read("models/emotion_mini_xception_int8.tflite"),
                ]
            },
            run: tflite,
        },
        Target {
            name: "image",
            seeds: || {
                let small = |w, h, jpeg: bool| {
                    let img = image::RgbImage::from_fn(w, h, |x, y| {
                        image::Rgb([(x * 9) as u8, (y * 5) as u8, (x ^ y) as u8])
                    });
                    let mut out = Cursor::new(Vec::new());
                    let format = if jpeg {
                        image::ImageFormat::Jpeg
                    } else {
                        image::ImageFormat::Png
                    };
                    img.write_to(&mut out, format).expect("encode a seed");
                    out.into_inner()
                };
                vec![
                    small(24, 16, false),
                    small(24, 16, true),
                    small(9, 33, false),
                ]
            },
            run: image,
        },
        Target {
            name: "luma",
            seeds: || {
                let mut v = Vec::new();
                for (f, w, h) in [(0u8, 8u16, 4u16), (1, 8, 4), (2, 8, 4), (3, 8, 4)] {
                    let mut s = vec![f];
                    s.extend_from_slice(&w.to_le_bytes());
                    s.extend_from_slice(&h.to_le_bytes());
                    s.push(0);
                    s.extend((0..96).map(|i| i as u8));
                    v.push(s);
                }
                let jpeg = {
                    let img = image::GrayImage::from_fn(16, 8, |x, y| image::Luma([(x * y) as u8]));
                    let mut out = Cursor::new(Vec::new());
                    img.write_to(&mut out, image::ImageFormat::Jpeg)
                        .expect("encode a seed");
                    out.into_inner()
                };
                let mut s = vec![4u8, 16, 0, 8, 0, 0];
                s.extend(jpeg);
                v.push(s);
                v
            },
            run: luma,
        },
        Target {
            name: "crop_box",
            seeds: || {
                vec![
                    b"10,8,20,20;10,10".to_vec(),
                    b"-5,-5,30,12;0.5,0.25".to_vec(),
                    b"0,0,2147483647,2147483647;2,2".to_vec(),
                ]
            },
            run: crop_box,
        },
        Target {
            name: "protocol",
            seeds: || {
                vec![
                    b"lost\x01device gone\x01\x03\x01x\x01aa".to_vec(),
                    "\u{e9}t\u{e9}\u{1}\"q\"\u{1}\n\r\u{1}".as_bytes().to_vec(),
                ]
            },
            run: protocol,
        },
        Target {
            name: "http_request",
            seeds: || {
                vec![
                    b"GET /status HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n".to_vec(),
                    b"GET /snapshot.jpg?token=s3cret%20t0ken&x=a+b HTTP/1.1\r\nHost: [::1]:80\r\n\
                      Authorization: Bearer s3cret t0ken\r\n\r\n"
                        .to_vec(),
                    b"HEAD /events HTTP/1.0\r\nhost: LOCALHOST\r\nAccept: */*\r\n\r\n".to_vec(),
                ]
            },
            run: http_request,
        },
    ]
}

struct Options {
    target: String,
    runs: Option<u64>,
    seconds: Option<f64>,
    seed: u64,
}

fn options() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let mut o = Options {
        target: String::new(),
        runs: None,
        seconds: None,
        seed: 1,
    };
    while let Some(a) = args.next() {
        let mut value = |what: &str| args.next().ok_or(format!("{a} needs {what}"));
        match a.as_str() {
            "--list" => {
                for t in targets() {
                    println!("{}", t.name);
                }
                std::process::exit(0);
            }
            "--runs" => {
                o.runs = Some(
                    value("a count")?
                        .parse()
                        .map_err(|e| format!("--runs: {e}"))?,
                )
            }
            "--seconds" => {
                let s: f64 = value("seconds")?
                    .parse()
                    .map_err(|e| format!("--seconds: {e}"))?;
                if !(s.is_finite() && s > 0.0) {
                    return Err("--seconds must be above 0".into());
                }
                o.seconds = Some(s);
            }
            "--seed" => {
                o.seed = value("a number")?
                    .parse()
                    .map_err(|e| format!("--seed: {e}"))?
            }
            t if !t.starts_with('-') && o.target.is_empty() => o.target = t.to_string(),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if o.target.is_empty() || (o.runs.is_none() && o.seconds.is_none()) {
        return Err(
            "usage: fuzz TARGET (--runs N | --seconds S) [--seed N], or fuzz --list".into(),
        );
    }
    Ok(o)
}

fn main() {
    let o = options().unwrap_or_else(|e| {
        eprintln!("fuzz: {e}");
        std::process::exit(2);
    });
    let all = targets();
    let Some(target) = all.iter().find(|t| t.name == o.target) else {
        let names: Vec<&str> = all.iter().map(|t| t.name).collect();
        eprintln!(
            "fuzz: no target {:?}; targets: {}",
            o.target,
            names.join(", ")
        );
        std::process::exit(2);
    };
    let out = PathBuf::from("target/fuzz");
    std::fs::create_dir_all(out.join("crashes")).expect("target/fuzz/crashes");
    let scratch = Scratch {
        dir: out.join(format!("scratch-{}", target.name)),
    };
    std::fs::create_dir_all(&scratch.dir).expect("scratch folder");
    let current = out.join(format!("current-{}", target.name));
    // Quiet panics: each one is reported once, with the saved input.
    std::panic::set_hook(Box::new(|_| {}));
    let seeds = (target.seeds)();
    let mut rng = Rng(o.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let started = Instant::now();
    let began = Arc::new(AtomicU64::new(u64::MAX));
    {
        // The hang watchdog: one input running past HANG stops the run (the input is in `current`).
        let (began, name) = (began.clone(), target.name);
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_millis(500));
            let at = began.load(Ordering::Relaxed);
            if at != u64::MAX && started.elapsed().as_millis() as u64 > at + HANG.as_millis() as u64
            {
                eprintln!("fuzz {name}: HANG: one input ran past {HANG:?}; it is in target/fuzz/current-{name}");
                std::process::exit(1);
            }
        });
    }
    let (mut execs, mut crashes, mut input) = (0u64, 0u64, Vec::new());
    loop {
        let done = match (o.runs, o.seconds) {
            (Some(n), _) => execs >= n,
            (None, Some(s)) => started.elapsed().as_secs_f64() >= s,
            (None, None) => true,
        };
        if done {
            break;
        }
        // Every seed once as it is, then mutations of a random seed.
        input.clear();
        input.extend_from_slice(&seeds[execs as usize % seeds.len()]);
        if execs >= seeds.len() as u64 {
            mutate(&mut rng, &mut input, &seeds);
        }
        std::fs::write(&current, &input).expect("target/fuzz/current");
        began.store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
        let result = std::panic::catch_unwind(|| (target.run)(&input, &scratch));
        began.store(u64::MAX, Ordering::Relaxed);
        execs += 1;
        if let Err(panic) = result {
            crashes += 1;
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            let file = out.join("crashes").join(format!("{}-{execs}", target.name));
            std::fs::write(&file, &input).expect("crash file");
            eprintln!(
                "fuzz {}: PANIC on input {execs} ({} bytes), saved to {}: {message}",
                target.name,
                input.len(),
                file.display()
            );
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "fuzz {:<12} {execs:>8} executions in {secs:6.1} s ({:.0}/s), {} seeds, {crashes} panics",
        target.name,
        execs as f64 / secs,
        seeds.len()
    );
    let _ = std::fs::remove_file(&current);
    std::process::exit(i32::from(crashes > 0));
}
