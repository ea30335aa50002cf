//! The running daemon: a reader thread that owns the source, and the main loop that processes
//! frames, drives the LEDs, writes the serial protocol, reports status, and stops cleanly.
//!
//! Frames travel between the two threads in a pool of three reused buffers, so nothing is allocated
//! per frame. From a file or a pipe, a slow pipeline makes the reader wait; from a camera the reader
//! keeps reading, and a frame that arrives while the previous one still waits replaces it
//! ([`mailbox`](super::mailbox)): the oldest is dropped and counted, so the LEDs never lag behind the
//! camera by more than a frame. A live
//! source (a camera) that fails is reopened with backoff (0.5 s doubling to 10 s) while the main loop
//! keeps the LEDs, the serial line and the watchdog going. A stop request (SIGTERM, SIGINT) is seen
//! within 100 ms: LEDs off, a `stop` line, exit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use thiserror::Error;

use super::mailbox::{Mailbox, Msg};
use super::{stats, Pipeline, PipelineError};
use crate::config::Config;
use crate::frame::GrayFrame;
use crate::signal::fanout::Fanout;
use crate::signal::led_retry::{LedHealth, RetryingLeds};
use crate::signal::leds::LedState;
use crate::signal::protocol::{Event, Value};
use crate::source::{self, FrameSource, SourceConfig, SourceError};
use crate::track::TrackEvent;

/// Frames in flight between the reader and the pipeline.
const POOL: usize = 3;
/// How often the main loop wakes without frames (stop requests, idle LEDs, status).
const TICK: Duration = Duration::from_millis(100);
/// How often the source thread looks for a stop request while it waits (pacing a replay, backing off).
const STOP_POLL: Duration = Duration::from_millis(20);
/// First wait before reopening a lost camera.
const BACKOFF_FIRST: Duration = Duration::from_millis(500);
/// Longest wait between attempts to reopen a lost camera; the systemd watchdog must allow more.
pub const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// Why the daemon stopped with an error.
#[derive(Debug, Error)]
pub enum DaemonError {
    /// The source could not be opened at start (files and pipes are not retried).
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A finite source broke mid-stream.
    #[error("{reason}")]
    SourceFailed {
        /// What happened, naming the source.
        reason: String,
        /// The source's error (none when its thread stopped without one).
        #[source]
        cause: Option<SourceError>,
    },
    /// A stage failed on a frame.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
}

/// How the daemon ended without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// A stop request (SIGTERM, SIGINT).
    Signal,
    /// The end of a finite source, with `--once`.
    End,
}

impl StopReason {
    fn word(self) -> &'static str {
        match self {
            StopReason::Signal => "signal",
            StopReason::End => "end",
        }
    }
}

/// Options that are not in the configuration file.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Stop at the end of a finite source.
    pub once: bool,
    /// Set by a signal handler to stop.
    pub stop: Arc<AtomicBool>,
    /// Light every LED in turn first.
    pub lamp_test: bool,
}

/// The outputs the main loop drives.
pub struct Outputs {
    /// The LEDs, if any: let go and reopened when their hardware fails mid-run.
    pub leds: Option<RetryingLeds>,
    /// Where protocol events go: the serial line, MQTT, the local socket, the web API.
    pub sinks: Fanout,
}

impl std::fmt::Debug for Outputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outputs")
            .field("leds", &self.leds)
            .field("sinks", &self.sinks)
            .finish()
    }
}

impl Outputs {
    fn emit(&mut self, event: &Event<'_>) {
        self.sinks.emit(event);
    }

    /// Shows `state`; reports LEDs that fail (the daemon goes on without them) and come back.
    fn show(&mut self, state: LedState, now: Duration) {
        let Some(leds) = &mut self.leds else {
            return;
        };
        match leds.show(state, now) {
            None => {}
            Some(LedHealth::Lost(e)) => {
                let reason = e.to_string();
                log::error!(
                    "{reason}; going on without LEDs, opening them again every {:?}",
                    leds.retry()
                );
                self.emit(
                    &Event::new("leds")
                        .with("state", Value::Str("lost"))
                        .with("reason", Value::Str(&reason)),
                );
            }
            Some(LedHealth::Back(name)) => {
                log::info!("LEDs {name}: open again");
                self.emit(&Event::new("leds").with("state", Value::Str("ok")));
            }
        }
    }
}

/// The reader thread: owns the source, refills free frames, reopens a lost camera.
fn reader(
    cfg: SourceConfig,
    mut src: Option<Box<dyn FrameSource + Send>>,
    first_error: Option<String>,
    tx: &Mailbox,
    free: Receiver<GrayFrame>,
    stop: Arc<AtomicBool>,
) {
    let live = cfg.input.is_live();
    let pace = (!live && cfg.fps > 0.0).then(|| Duration::from_secs_f64(1.0 / cfg.fps));
    let mut due = Instant::now();
    let mut backoff = BACKOFF_FIRST;
    let mut spare: Option<GrayFrame> = None;
    if let Some(e) = first_error {
        let _ = tx.post(Msg::Lost(e));
    }
    while !stop.load(Ordering::Relaxed) {
        let Some(s) = &mut src else {
            // Wait out the backoff in short steps so a stop request is seen.
            let until = Instant::now() + backoff;
            while Instant::now() < until && !stop.load(Ordering::Relaxed) {
                thread::sleep(STOP_POLL);
            }
            // A stop during the wait must not start a camera (or an rpicam-vid) again.
            if stop.load(Ordering::Relaxed) {
                return;
            }
            match source::open(&cfg) {
                Ok(s) => {
                    src = Some(s);
                    backoff = BACKOFF_FIRST;
                    if tx.post(Msg::Back).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    if tx.post(Msg::Waiting(e.to_string())).is_err() {
                        return;
                    }
                }
            }
            continue;
        };
        let mut frame = match spare.take() {
            Some(f) => f,
            None => match free.recv() {
                Ok(f) => f,
                Err(_) => return,
            },
        };
        let msg = match s.next_frame(&mut frame) {
            Ok(true) if live => match tx.post_latest(frame, Instant::now()) {
                Ok(old) => {
                    spare = old;
                    continue;
                }
                Err(_) => return,
            },
            Ok(true) => {
                if let Some(step) = pace {
                    due += step;
                    let now = Instant::now();
                    if due > now {
                        // In short steps, so a stop request is seen within one.
                        while Instant::now() < due && !stop.load(Ordering::Relaxed) {
                            thread::sleep((due - Instant::now()).min(STOP_POLL));
                        }
                    } else {
                        due = now;
                    }
                }
                Msg::Frame(frame, Instant::now())
            }
            Ok(false) => {
                let _ = tx.post(Msg::End);
                return;
            }
            Err(e) => {
                spare = Some(frame);
                match e {
                    SourceError::BadFrame { .. } => Msg::BadFrame(e.to_string()),
                    _ if live => {
                        src = None;
                        Msg::Lost(e.to_string())
                    }
                    _ => {
                        let _ = tx.post(Msg::Failed(e));
                        return;
                    }
                }
            }
        };
        if tx.post(msg).is_err() {
            return;
        }
    }
}

/// Runs the daemon until a stop request, or the end of a finite source with `--once`.
pub fn run(
    cfg: &Config,
    mut pipeline: Pipeline,
    mut out: Outputs,
    opts: RunOptions,
) -> Result<StopReason, DaemonError> {
    let start = Instant::now();
    let live = cfg.source.input.is_live();
    // Files and pipes must open now; a camera that is missing is waited for.
    let (src, first_error) = match source::open(&cfg.source) {
        Ok(s) => (Some(s), None),
        Err(e) if live => {
            log::warn!("{e}; retrying until it appears");
            (None, Some(e.to_string()))
        }
        Err(e) => return Err(e.into()),
    };

    let version = env!("CARGO_PKG_VERSION");
    let source_name = cfg.source.input.to_string();
    let leds_name = out
        .leds
        .as_ref()
        .map_or("none".into(), |l| l.describe().to_string());
    out.emit(
        &Event::new("start")
            .with("version", Value::Str(version))
            .with("source", Value::Str(&source_name))
            .with("leds", Value::Str(&leds_name))
            .with("detect_every", Value::Int(i64::from(cfg.detect.every))),
    );
    log::info!("emotiond {version} started: source {source_name}, LEDs {leds_name}");
    if opts.lamp_test {
        if let Some(leds) = out.leds.as_mut().and_then(|l| l.controller()) {
            if let Err(e) = leds.lamp_test(Duration::from_millis(150)) {
                log::warn!("lamp test: {e}");
            }
        }
    }

    let mailbox = Arc::new(Mailbox::with_capacity(POOL + 8));
    let (free_tx, free_rx) = mpsc::channel::<GrayFrame>();
    for _ in 0..POOL {
        let _ = free_tx.send(GrayFrame::default());
    }
    let reader_stop = Arc::new(AtomicBool::new(false));
    let reader_thread = {
        let cfg = cfg.source.clone();
        let stop = reader_stop.clone();
        let tx = mailbox.clone();
        thread::Builder::new()
            .name("source".into())
            .spawn(move || {
                reader(cfg, src, first_error, &tx, free_rx, stop);
                tx.close_sender();
            })
            .expect("spawning the source thread")
    };

    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    let watchdog = sd_notify::watchdog_enabled();
    let mut last_ping = Instant::now();
    let mut last_progress = Instant::now();
    let mut ended = false;
    let status_every = (cfg.serial.status_interval > 0.0)
        .then(|| Duration::from_secs_f64(cfg.serial.status_interval));
    let mut last_status = Instant::now();
    let mut frames_at_status = 0u64;
    let mut bad_frames = 0u64;
    // From the source handing a frame over to its events written out.
    let mut latency = stats::Latencies::default();

    // The frame just processed, until the sinks have seen it.
    let mut processed: Option<GrayFrame> = None;

    let result = loop {
        if opts.stop.load(Ordering::Relaxed) {
            break Ok(StopReason::Signal);
        }
        let msg = match mailbox.recv_timeout(TICK) {
            Ok(Some(m)) => {
                last_progress = Instant::now();
                Some(m)
            }
            Ok(None) => None,
            Err(_) => {
                if !ended {
                    break Err(DaemonError::SourceFailed {
                        reason: format!("{source_name}: the source thread stopped"),
                        cause: None,
                    });
                }
                thread::sleep(TICK);
                None
            }
        };
        match msg {
            Some(Msg::Frame(frame, captured)) => {
                let frame_no = pipeline.frames();
                if let Err(e) = pipeline.process(&frame) {
                    break Err(e.into());
                }
                report(&mut out, &pipeline, frame_no);
                latency.push(captured.elapsed());
                processed = Some(frame);
            }
            Some(Msg::End) => {
                ended = true;
                let frames = pipeline.frames() as i64;
                out.emit(
                    &Event::new("source")
                        .with("state", Value::Str("end"))
                        .with("frames", Value::Int(frames)),
                );
                log::info!("{source_name}: end after {frames} frames");
                if opts.once {
                    break Ok(StopReason::End);
                }
                // Nothing more will be seen: the faces are gone, and so is what the LEDs showed.
                let frame_no = pipeline.frames();
                pipeline.reset();
                report(&mut out, &pipeline, frame_no);
                log::info!(
                    "waiting for SIGTERM (pass --once to stop at the end of a finite source)"
                );
            }
            Some(Msg::BadFrame(e)) => {
                bad_frames += 1;
                log::warn!("{e} (frame skipped)");
            }
            Some(Msg::Lost(e)) => {
                log::warn!("{e}; reopening with backoff");
                out.emit(
                    &Event::new("source")
                        .with("state", Value::Str("lost"))
                        .with("reason", Value::Str(&e)),
                );
                let frame_no = pipeline.frames();
                pipeline.reset();
                report(&mut out, &pipeline, frame_no);
            }
            Some(Msg::Waiting(e)) => log::info!("still waiting: {e}"),
            Some(Msg::Back) => {
                log::info!("{source_name}: open again");
                out.emit(&Event::new("source").with("state", Value::Str("ok")));
            }
            Some(Msg::Failed(e)) => {
                break Err(DaemonError::SourceFailed {
                    reason: e.to_string(),
                    cause: Some(e),
                })
            }
            None => {}
        }
        // Idle pattern and heartbeat even without frames.
        let driving = pipeline
            .driving(cfg.track.drive)
            .map(|t| (t.label, t.smoothed.get(t.label)));
        out.sinks.state(driving);
        if let Some(frame) = processed.take() {
            // After the state, so a sink sees the faces and the driving state of the same frame;
            // before the buffer goes back, so a sink that waits for a picture can copy it.
            out.sinks.frame(&frame, pipeline.tracker());
            let _ = free_tx.send(frame);
        }
        let state = match driving {
            Some((label, conf)) => LedState::Emotion(label, conf),
            None if ended => LedState::Off,
            None => LedState::Idle,
        };
        out.show(state, start.elapsed());
        if let Some(every) = status_every {
            if last_status.elapsed() >= every {
                let secs = last_status.elapsed().as_secs_f64();
                let frames = pipeline.frames();
                let figures = Figures {
                    fps: (frames - frames_at_status) as f64 / secs,
                    bad_frames,
                    dropped: mailbox.dropped(),
                };
                status(&mut out, &mut pipeline, &mut latency, start, &figures);
                frames_at_status = frames;
                last_status = Instant::now();
            }
        }
        if let Some(wd) = watchdog {
            let healthy = ended || last_progress.elapsed() < wd;
            if healthy && last_ping.elapsed() >= wd / 2 {
                let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
                last_ping = Instant::now();
            }
        }
    };

    // The stop sequence: the reader is told to stop, LEDs go off, the last lines go out.
    let reason = match &result {
        Ok(r) => r.word(),
        Err(_) => "error",
    };
    log::info!("stopping ({reason})");
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    reader_stop.store(true, Ordering::Relaxed);
    mailbox.close_receiver();
    // A reader waiting for a free buffer wakes to a closed channel and ends.
    drop(free_tx);
    out.show(LedState::Off, start.elapsed());
    out.emit(
        &Event::new("stop")
            .with("reason", Value::Str(reason))
            .with("frames", Value::Int(pipeline.frames() as i64)),
    );
    out.sinks.finish();
    // The reader may be blocked in a read; give it a moment to drop its source (an rpicam-vid child
    // is killed when it does), but never hold the exit up.
    let deadline = Instant::now() + Duration::from_millis(300);
    while !reader_thread.is_finished() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    log::info!("stopped ({reason}) after {} frames", pipeline.frames());
    result
}

/// Writes the last frame's track events (`pipeline.events()`) to the serial line and the log.
fn report(out: &mut Outputs, pipeline: &Pipeline, frame_no: u64) {
    for &ev in pipeline.events() {
        let event = Event::track(frame_no, ev, pipeline.tracker());
        let conf = pipeline
            .tracker()
            .get(ev.id())
            .map_or(0.0, |t| t.smoothed.get(t.label));
        match ev {
            TrackEvent::Changed { id, from, to } => {
                log::info!("face {id} changed: {from} -> {to} {conf:.2}")
            }
            TrackEvent::Appeared { id, label } => {
                log::info!("face {id} appeared: {label} {conf:.2}")
            }
            TrackEvent::Lost { id } => log::info!("face {id} lost"),
        }
        out.emit(&event);
    }
}

/// The daemon loop's own counts for a status line.
struct Figures {
    fps: f64,
    bad_frames: u64,
    dropped: u64,
}

fn status(
    out: &mut Outputs,
    p: &mut Pipeline,
    latency: &mut stats::Latencies,
    start: Instant,
    f: &Figures,
) {
    let fps = f.fps;
    let faces = p.tracker().confirmed().count() as i64;
    let ms = |v: Option<f32>| Value::Num(f64::from(v.unwrap_or(0.0)), 1);
    let mut e = Event::new("status")
        .with("uptime", Value::Num(start.elapsed().as_secs_f64(), 0))
        .with("frames", Value::Int(p.frames() as i64))
        .with("fps", Value::Num(fps, 1))
        .with("faces", Value::Int(faces))
        .with("detect_p50_ms", ms(p.detect_times.quantile_ms(0.5)))
        .with("detect_p95_ms", ms(p.detect_times.quantile_ms(0.95)))
        .with("classify_p50_ms", ms(p.classify_times.quantile_ms(0.5)))
        .with("classify_p95_ms", ms(p.classify_times.quantile_ms(0.95)))
        .with("latency_p50_ms", ms(latency.quantile_ms(0.5)))
        .with("latency_p95_ms", ms(latency.quantile_ms(0.95)))
        .with("dropped", Value::Int(f.dropped as i64))
        .with("bad_frames", Value::Int(f.bad_frames as i64))
        .with("skipped_faces", Value::Int(p.skipped_faces() as i64));
    if let Some(t) = stats::cpu_temperature() {
        e = e.with("temp_c", Value::Num(f64::from(t), 1));
    }
    if let Some(m) = stats::resident_mib() {
        e = e.with("rss_mib", Value::Num(f64::from(m), 1));
    }
    log::debug!("status: {} frames, {fps:.1} fps", p.frames());
    out.emit(&e);
}
