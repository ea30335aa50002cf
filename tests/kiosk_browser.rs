//! The kiosk page in a real browser: Debian's headless Chromium loads `/` (with a token, which the
//! page must pass on to `/status`, `/events` and `/stream.mjpg`) while the daemon runs the replay,
//! and the emotion the page shows must go from neutral to happy as the replay's face smiles. The
//! test drives Chromium through the DevTools protocol on `--remote-debugging-pipe` (file
//! descriptors 3 and 4), reads the shown emotion from the DOM and the page's console lines, and
//! writes a screenshot (`kiosk.png` under cargo's target tmp folder; `board/kiosk/screenshot.png`
//! is one).
//!
//! Without Chromium (`apt install chromium-headless-shell`, or `chromium`) the test says so on
//! stderr and does not run, unless `EMOTIOND_REQUIRE_BROWSER=1` (CI), where that is a failure.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::{daemon, http_get, replay_y4m, scaled, HttpDaemon};

/// Debian's headless Chromium, if installed.
fn chromium() -> Option<PathBuf> {
    let dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    let found = ["chromium-headless-shell", "chromium", "chromium-browser"]
        .iter()
        .flat_map(|name| dirs.iter().map(move |d| d.join(name)))
        .find(|p| p.is_file());
    if found.is_none() {
        let why =
            "no Chromium (apt install chromium-headless-shell): the kiosk page's browser test";
        if std::env::var("EMOTIOND_REQUIRE_BROWSER").as_deref() == Ok("1") {
            panic!("{why} cannot run and EMOTIOND_REQUIRE_BROWSER=1");
        }
        eprintln!("{why} not run");
    }
    found
}

/// A browser driven over the DevTools protocol: JSON messages ending in NUL, written to its fd 3
/// and read from its fd 4 (the shell maps them onto our pipes).
struct Browser {
    child: Child,
    to: ChildStdin,
    from: Receiver<Value>,
    next_id: u64,
    session: Option<String>,
    /// Every `Runtime.consoleAPICalled` text, in order.
    console: Vec<String>,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start(exe: &PathBuf) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(r#"exec "$0" "$@" 3<&0 4>&1 </dev/null >/dev/null"#)
            .arg(exe)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--hide-scrollbars",
                "--mute-audio",
                "--window-size=1280,800",
                "--remote-debugging-pipe",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chromium");
        let out = child.stdout.take().unwrap();
        let (tx, from) = mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(out);
            loop {
                let mut msg = Vec::new();
                match r.read_until(0, &mut msg) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        msg.pop();
                        if let Ok(v) = serde_json::from_slice(&msg) {
                            if tx.send(v).is_err() {
                                break;
                            }
                        }
                    }
                }
            }
        });
        // Its log (GPU warnings and the like) is only shown when something goes wrong.
        let mut err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = err.read_to_end(&mut sink);
        });
        let to = child.stdin.take().unwrap();
        Browser {
            child,
            to,
            from,
            next_id: 0,
            session: None,
            console: Vec::new(),
            _profile: profile,
        }
    }

    /// Sends `method` (to the attached page, once there is one) and waits for its result.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = &self.session {
            msg["sessionId"] = json!(s);
        }
        let mut bytes = msg.to_string().into_bytes();
        bytes.push(0);
        self.to.write_all(&bytes).expect("write to chromium");
        let deadline = Instant::now() + scaled(Duration::from_secs(30));
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let v = self
                .from
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("chromium did not answer {method}"));
            if v["id"] == id {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
            self.note(&v);
        }
    }

    /// Keeps the console lines of an event.
    fn note(&mut self, v: &Value) {
        if v["method"] == "Runtime.consoleAPICalled" {
            let text: Vec<String> = v["params"]["args"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| a["value"].as_str().unwrap_or_default().to_string())
                .collect();
            self.console.push(text.join(" "));
        }
    }

    /// Opens `url` in a new page and attaches to it, with its console followed.
    fn open(&mut self, url: &str) {
        let target = self.call("Target.createTarget", json!({"url": "about:blank"}));
        let attached = self.call(
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
        );
        self.session = Some(attached["sessionId"].as_str().unwrap().to_string());
        self.call("Runtime.enable", json!({}));
        self.call("Page.enable", json!({}));
        self.call("Page.navigate", json!({"url": url}));
    }

    /// `expression` evaluated in the page, as a string.
    fn eval(&mut self, expression: &str) -> String {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true}),
        );
        r["result"]["value"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    fn screenshot(&mut self) -> Vec<u8> {
        let r = self.call("Page.captureScreenshot", json!({"format": "png"}));
        base64(r["data"].as_str().unwrap())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Standard base64 (with padding), as the DevTools protocol sends binary data.
fn base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let digits: Vec<u8> = text.bytes().filter(|&c| c != b'=').map(value).collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &d)| n | u32::from(d) << (18 - 6 * i));
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

/// Whether the page shows the camera: its picture is visible and has a frame.
const PICTURE_SHOWN: &str =
    "String(!document.getElementById('preview').hidden && document.getElementById('preview').naturalWidth > 0)";

#[test]
fn base64_decodes() {
    assert_eq!(base64("aGFwcHk="), b"happy");
    assert_eq!(base64("bmV1dHJhbA=="), b"neutral");
    assert_eq!(base64("ZmVhcg"), b"fear");
}

#[test]
fn the_kiosk_page_shows_neutral_then_happy_as_the_replay_smiles() {
    let Some(exe) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let token = "kiosk-test-token";
    std::fs::write(dir.path().join("token"), format!("{token}\n")).unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "[serial]\nstatus_interval = 1\n[http]\npreview = true\ntoken_file = {:?}\n",
            dir.path().join("token").to_str().unwrap()
        ),
    )
    .unwrap();
    let mut cmd = daemon(&["--config", cfg.to_str().unwrap(), "--source", "y4m:-"]);
    cmd.args(["--serial", "-", "--once", "--fps", "0", "--leds", "none"])
        .args(["--http", "127.0.0.1:0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null());
    let mut d = HttpDaemon::spawn(cmd);
    let mut feed = d.child.stdin.take().unwrap();
    let auth = format!("Authorization: Bearer {token}\r\n");

    let mut browser = Browser::start(&exe);
    browser.open(&format!(
        "http://127.0.0.1:{}/?token={token}",
        d.addr.port()
    ));
    // The page is in once its events stream and its picture stream are connected.
    let t = Instant::now();
    while http_get(d.addr, "/status", &auth).json()["sse_clients"] != 1 {
        assert!(
            t.elapsed() < scaled(Duration::from_secs(30)),
            "the page never connected to /events; console: {:?}\n{}",
            browser.console,
            d.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        browser.eval("document.getElementById('shown').textContent"),
        "none"
    );

    // The replay at 4 frames a second, fed by a thread while the page is watched.
    let pace = scaled(Duration::from_millis(250));
    let feeder = std::thread::spawn(move || {
        let (header, frames) = replay_y4m();
        feed.write_all(&header).unwrap();
        for f in &frames {
            if feed.write_all(f).is_err() {
                break;
            }
            std::thread::sleep(pace);
        }
        feed
    });
    let mut shown: Vec<String> = Vec::new();
    let mut picture = None;
    let mut happy_since = None;
    let mut preview_shown = String::new();
    while !feeder.is_finished() {
        let now = browser.eval("document.getElementById('shown').textContent");
        if shown.last() != Some(&now) {
            shown.push(now.clone());
        }
        if now == "happy" && picture.is_none() {
            // A moment for the picture and the bars to catch up, then the screenshot.
            let since = *happy_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= scaled(Duration::from_millis(900)) {
                picture = Some(browser.screenshot());
                preview_shown = browser.eval(PICTURE_SHOWN);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let feed = feeder.join().unwrap();
    // The console lines that arrived while nothing was asked.
    while let Ok(v) = browser.from.try_recv() {
        browser.note(&v);
    }
    let console = browser.console.clone();
    drop(browser);
    drop(feed);
    let out = d.child.wait().unwrap();
    assert!(out.success(), "{}", d.log());

    let first = |list: &[String], e: &str| list.iter().position(|s| s == e);
    assert!(
        matches!((first(&shown, "neutral"), first(&shown, "happy")), (Some(n), Some(h)) if n < h),
        "the page showed {shown:?}"
    );
    let lines: Vec<String> = console
        .iter()
        .filter(|l| l.starts_with("emotiond: shown "))
        .cloned()
        .collect();
    assert!(
        matches!(
            (first(&lines, "emotiond: shown neutral"), first(&lines, "emotiond: shown happy")),
            (Some(n), Some(h)) if n < h
        ),
        "console: {console:?}"
    );
    assert_eq!(
        preview_shown, "true",
        "the preview picture loaded (with the page's token)"
    );
    let png = picture.expect("a screenshot while the face was happy");
    let img = image::load_from_memory(&png).unwrap();
    assert_eq!((img.width(), img.height()), (1280, 800));
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("kiosk.png");
    std::fs::write(&path, &png).unwrap();
    eprintln!("the page showed {shown:?}; screenshot: {}", path.display());
}
