//! `emotiond run`: the daemon. `emotiond check-config`: a configuration file's problems, each with its
//! line.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;

use emotiond::classify::{Classifier, DEFAULT_MODEL};
use emotiond::config::{self, Config};
use emotiond::detect::{Cascade, Detector};
use emotiond::pipeline::daemon::{self, Outputs, RunOptions};
use emotiond::pipeline::Pipeline;
use emotiond::signal::http::{self, HttpSink};
use emotiond::signal::leds::LedBackendSpec;
use emotiond::signal::mqtt::{MqttSink, MqttUrl};
use emotiond::signal::{open_retrying_leds, Fanout, RetryingSerial, SerialSink, SocketSink};
use emotiond::source::SourceSpec;

use super::detect::DEFAULT_CASCADE;

/// The settings every daemon-like command shares: the file and the flags that override it.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Configuration file. Default: /etc/emotiond/config.toml when it exists, else built-in defaults.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// LED backend: log, rppal, gpiocdev:/dev/gpiochipN or none (overrides leds.backend).
    #[arg(long, value_name = "BACKEND", value_parser = |s: &str| s.parse::<LedBackendSpec>())]
    pub leds: Option<LedBackendSpec>,
}

impl ConfigArgs {
    /// The configuration file (or defaults) with the flags applied.
    pub fn load(&self) -> Result<Config> {
        let mut cfg = match &self.config {
            Some(path) => Config::load(path)?,
            None if Path::new(config::DEFAULT_PATH).is_file() => {
                Config::load(config::DEFAULT_PATH)?
            }
            None => {
                log::info!(
                    "no {} and no --config: using the built-in defaults",
                    config::DEFAULT_PATH
                );
                Config::default()
            }
        };
        if let Some(b) = &self.leds {
            cfg.leds.backend = b.clone();
        }
        Ok(cfg)
    }
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Frames from: v4l2:/dev/videoN, rpicam, y4m:PATH, y4m:- (stdin) or images:DIR (overrides
    /// source.input).
    #[arg(long, value_name = "SOURCE", value_parser = |s: &str| s.parse::<SourceSpec>())]
    source: Option<SourceSpec>,
    /// Serial event line: a tty (/dev/serial0, /dev/ttyUSB0, a pty) or - for standard output
    /// (overrides serial.path).
    #[arg(long, value_name = "PATH")]
    serial: Option<String>,
    /// Replay rate for images and Y4M files in frames per second, 0 for as fast as possible; the
    /// requested rate for cameras (overrides source.fps).
    #[arg(long, value_name = "FPS", value_parser = parse_fps)]
    fps: Option<f64>,
    /// Stop at the end of a finite source (images, a Y4M file) with the normal stop sequence.
    #[arg(long)]
    once: bool,
    /// Skip the start-up lamp test (overrides leds.lamp_test).
    #[arg(long)]
    no_lamp_test: bool,
    /// Detector threads, 0 for one per core (overrides detect.threads).
    #[arg(long, value_name = "N", value_parser = super::parse_threads)]
    threads: Option<u32>,
    /// The local event socket's path, "" for none (overrides socket.path).
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// MQTT broker, mqtt://HOST[:PORT] or mqtts://HOST[:PORT] (overrides mqtt.url).
    #[arg(long, value_name = "URL", value_parser = |s: &str| s.parse::<MqttUrl>())]
    mqtt: Option<MqttUrl>,
    /// The kiosk web API's address, e.g. 127.0.0.1:8088 (overrides http.listen; port 0 takes a
    /// free one).
    #[arg(long, value_name = "ADDR", value_parser = |s: &str| http::parse_listen(s))]
    http: Option<std::net::SocketAddr>,
}

/// Builds the detector, classifier and tracker the configuration describes.
pub fn build_pipeline(cfg: &Config) -> Result<Pipeline> {
    let cascade_path = super::find_model(
        cfg.detect.cascade.as_deref(),
        DEFAULT_CASCADE,
        "detect.cascade",
    )?;
    let cascade = Cascade::from_file(&cascade_path)?;
    let model_path = super::find_model(
        cfg.classify.model.as_deref(),
        DEFAULT_MODEL,
        "classify.model",
    )?;
    let classifier = Classifier::load(&model_path, cfg.classify.rule())?;
    log::info!(
        "cascade {}, model {}",
        cascade_path.display(),
        model_path.display()
    );
    let detector = Detector::with_threads(cascade, cfg.detect.threads as usize)
        .context("detect.threads (--threads)")?;
    log::info!("detection on {} thread(s)", detector.threads());
    Ok(Pipeline::new(
        detector,
        cfg.detect.params(),
        cfg.detect.every,
        classifier,
        cfg.track.params(),
    )?)
}

/// `--fps`, checked by the source's rule for `source.fps`.
fn parse_fps(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    emotiond::source::settings::check_fps(v)
}

pub fn run(args: RunArgs) -> Result<()> {
    let mut cfg = args.config.load()?;
    if let Some(s) = args.source {
        cfg.source.input = s;
    }
    if let Some(s) = args.serial {
        cfg.serial.path = Some(s);
    }
    if let Some(t) = args.threads {
        cfg.detect.threads = t;
    }
    if let Some(p) = args.socket {
        cfg.socket.path = p;
    }
    if let Some(url) = args.mqtt {
        cfg.mqtt.url = Some(url);
    }
    if let Some(addr) = args.http {
        cfg.http.listen = Some(addr);
    }
    if let Some(fps) = args.fps {
        cfg.source.fps = fps;
    }
    // Everything that can refuse to start does so before any device is touched.
    let pipeline = build_pipeline(&cfg)?;
    let leds = open_retrying_leds(&cfg.leds)?;
    let mut sinks = Fanout::new();
    if let Some(p) = cfg.serial.path.as_deref() {
        emotiond::signal::serial::check_path(p)?;
        let serial = RetryingSerial::for_path(
            p,
            cfg.serial.baud,
            Duration::from_secs_f64(cfg.serial.retry_interval),
        );
        sinks.add(Box::new(SerialSink::new(serial, cfg.serial.format)));
    }
    if let Some(socket) = SocketSink::start(&cfg.socket)? {
        sinks.add(Box::new(socket));
    }
    if let Some(mqtt) = MqttSink::start(&cfg.mqtt)? {
        sinks.add(Box::new(mqtt));
    }
    if let Some(http) = HttpSink::start(&cfg.http)? {
        sinks.add(Box::new(http));
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        // The first signal asks for the normal stop; a second one, while that runs, exits at once
        // (status 130).
        signal_hook::flag::register_conditional_shutdown(sig, 130, stop.clone())
            .context("installing the signal handlers")?;
        signal_hook::flag::register(sig, stop.clone()).context("installing the signal handlers")?;
    }
    let outputs = Outputs { leds, sinks };
    let opts = RunOptions {
        once: args.once,
        stop,
        lamp_test: cfg.leds.lamp_test && !args.no_lamp_test,
    };
    daemon::run(&cfg, pipeline, outputs, opts)?;
    Ok(())
}

#[derive(Debug, Args)]
pub struct CheckConfigArgs {
    /// The file to check.
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

/// Prints every problem with its line; fails when there is one.
pub fn check_config(args: CheckConfigArgs) -> Result<()> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    match Config::parse(&text, &args.file) {
        Ok(_) => {
            println!("{}: ok", args.file.display());
            Ok(())
        }
        Err(e) => {
            // The error's text is the report: one `file:line: message` per problem.
            println!("{e}");
            let count = match &e {
                config::ConfigError::Invalid { issues, .. } => issues.len(),
                config::ConfigError::Read { .. } => 1,
            };
            anyhow::bail!("{}: {count} problem(s)", args.file.display())
        }
    }
}
