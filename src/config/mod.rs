//! The daemon's settings: a TOML file (default `/etc/emotiond/config.toml`), then command-line flags.
//!
//! Every key has a default, so an empty file is a valid configuration; `board/config.toml` lists and
//! explains every key. Unknown keys are errors, not warnings: a misspelt `min_neigbors` silently
//! ignored would leave the user wondering why nothing changed. Values are checked while they are
//! read, so each error carries the line it came from, and [`check`] reports every bad line of a file
//! at once (`emotiond check-config`).

pub mod values;

use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

use crate::classify::{CropRule, Emotion, Offsets};
use crate::detect::DetectParams;
use crate::track::TrackParams;

pub use values::{Color, Fraction, SourceSpec};

/// Where the daemon looks for its configuration when `--config` is not given.
pub const DEFAULT_PATH: &str = "/etc/emotiond/config.toml";

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Frames in.
    pub source: SourceConfig,
    /// The face detector.
    pub detect: DetectConfig,
    /// The emotion classifier.
    pub classify: ClassifyConfig,
    /// Faces over time.
    pub track: TrackConfig,
    /// The LEDs.
    pub leds: LedConfig,
    /// The serial event line.
    pub serial: SerialConfig,
    /// The local event socket.
    pub socket: crate::signal::socket::SocketConfig,
    /// MQTT to a broker (off while `url` is unset).
    pub mqtt: crate::signal::mqtt::MqttConfig,
    /// The kiosk web API (off while `listen` is unset).
    pub http: crate::signal::http::HttpConfig,
}

/// `[source]`: where frames come from.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourceConfig {
    /// `v4l2:/dev/videoN`, `rpicam`, `y4m:PATH`, `y4m:-` or `images:DIR`.
    pub input: SourceSpec,
    /// Requested frame width for cameras (the driver may pick the nearest it has).
    #[serde(deserialize_with = "values::frame_side")]
    pub width: u32,
    /// Requested frame height for cameras.
    #[serde(deserialize_with = "values::frame_side")]
    pub height: u32,
    /// Requested frame rate for cameras; for `images` and `y4m` files, the replay rate (0 = as fast as
    /// the pipeline goes).
    #[serde(deserialize_with = "values::fps")]
    pub fps: f64,
    /// V4L2 pixel format: `auto` picks the best the camera offers (GREY, NV12, YU12, YUYV, MJPEG).
    pub format: values::PixelFormatChoice,
    /// The program that reads the Pi camera module (`rpicam` source).
    pub rpicam_command: PathBuf,
}

impl Default for SourceConfig {
    fn default() -> Self {
        SourceConfig {
            input: SourceSpec::V4l2(PathBuf::from("/dev/video0")),
            width: 640,
            height: 480,
            fps: 15.0,
            format: values::PixelFormatChoice::Auto,
            rpicam_command: PathBuf::from("rpicam-vid"),
        }
    }
}

/// `[detect]`: the cascade and `detectMultiScale`'s parameters.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectConfig {
    /// Cascade XML; unset means `haarcascade_frontalface_default.xml` from the models directory.
    pub cascade: Option<PathBuf>,
    /// Pyramid step, above 1.
    #[serde(deserialize_with = "values::scale_factor")]
    pub scale_factor: f64,
    /// Candidates a face needs (OpenCV's `minNeighbors`).
    #[serde(deserialize_with = "values::small_count")]
    pub min_neighbors: u32,
    /// Smallest face side in pixels (0 = no limit).
    #[serde(deserialize_with = "values::face_side")]
    pub min_size: u32,
    /// Largest face side in pixels (0 = no limit).
    #[serde(deserialize_with = "values::face_side")]
    pub max_size: u32,
    /// Run the full-frame detector on every Kth frame and only a local search around known faces in
    /// between; 1 (the default) detects on every frame, exactly as the reference does.
    #[serde(deserialize_with = "values::positive")]
    pub every: u32,
    /// Detector threads; 0 (the default) means one per core. The boxes are the same at any count.
    #[serde(deserialize_with = "values::threads")]
    pub threads: u32,
}

impl Default for DetectConfig {
    fn default() -> Self {
        let p = DetectParams::fer();
        DetectConfig {
            cascade: None,
            scale_factor: p.scale_factor,
            min_neighbors: p.min_neighbors as u32,
            min_size: p.min_size as u32,
            max_size: p.max_size as u32,
            every: 1,
            threads: 0,
        }
    }
}

impl DetectConfig {
    /// The detector parameters these settings give.
    pub fn params(&self) -> DetectParams {
        DetectParams {
            scale_factor: self.scale_factor,
            min_neighbors: self.min_neighbors as i32,
            min_size: self.min_size as usize,
            max_size: self.max_size as usize,
        }
    }
}

/// `[classify]`: the model and the face crop.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClassifyConfig {
    /// The `.tflite` model; unset means `emotion_mini_xception_f32.tflite` from the models directory.
    pub model: Option<PathBuf>,
    /// Margin around the squared face in pixels, `[x, y]` (fer's `[10, 10]` when neither this nor
    /// `relative_offsets` is set).
    #[serde(deserialize_with = "values::pixel_offsets_opt")]
    pub offsets: Option<[i32; 2]>,
    /// Margin as a fraction of the face side, `[fx, fy]`, instead of pixels.
    #[serde(deserialize_with = "values::relative_offsets_opt")]
    pub relative_offsets: Option<[f32; 2]>,
}

impl ClassifyConfig {
    /// The crop rule these settings give.
    pub fn rule(&self) -> CropRule {
        match (self.relative_offsets, self.offsets) {
            (Some([x, y]), _) => CropRule {
                offsets: Offsets::Proportional { x, y },
            },
            (None, Some([x, y])) => CropRule {
                offsets: Offsets::Pixels { x, y },
            },
            (None, None) => CropRule::fer(),
        }
    }
}

/// Which face drives the LEDs when several are in view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Drive {
    /// The largest box: usually the nearest person.
    #[default]
    Largest,
    /// The face whose reported emotion has the highest smoothed probability.
    MostConfident,
    /// The face seen first (the oldest track).
    First,
}

/// `[track]`: identity over time, smoothing and hysteresis.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrackConfig {
    /// Least box overlap (IoU) for a face to continue a track.
    pub min_iou: Fraction,
    /// Consecutive frames a face must be seen before it is reported.
    #[serde(deserialize_with = "values::positive")]
    pub confirm_frames: u32,
    /// Consecutive frames without the face before its track ends.
    #[serde(deserialize_with = "values::positive")]
    pub drop_frames: u32,
    /// Weight of the newest frame in the moving average of probabilities (1 = no smoothing).
    pub smoothing: Fraction,
    /// Margin another emotion must lead by before the reported emotion changes.
    pub hysteresis: Fraction,
    /// Which face drives the LEDs: `largest`, `most-confident` or `first`.
    pub drive: Drive,
}

impl Default for TrackConfig {
    fn default() -> Self {
        let p = TrackParams::default();
        TrackConfig {
            min_iou: Fraction(p.min_iou),
            confirm_frames: p.confirm_hits,
            drop_frames: p.drop_misses,
            smoothing: Fraction(p.alpha),
            hysteresis: Fraction(p.hysteresis),
            drive: Drive::Largest,
        }
    }
}

impl TrackConfig {
    /// The tracker parameters these settings give.
    pub fn params(&self) -> TrackParams {
        TrackParams {
            min_iou: self.min_iou.0,
            confirm_hits: self.confirm_frames,
            drop_misses: self.drop_frames,
            alpha: self.smoothing.0.max(f32::MIN_POSITIVE),
            hysteresis: self.hysteresis.0,
        }
    }
}

/// How LED brightness follows the classifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Brightness {
    /// Fully on or off.
    #[default]
    On,
    /// Duty cycle = the smoothed probability of the shown emotion (PWM; `rppal` backend only).
    Confidence,
}

/// What the LEDs do while no face is in view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Idle {
    /// All off.
    #[default]
    Off,
    /// The neutral LED (or the RGB LED in its neutral colour) blinks briefly every two seconds, to
    /// show the daemon is alive.
    Heartbeat,
}

/// `[leds]`: which lines, which backend, how they light.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LedConfig {
    /// `log` (no hardware; prints LED changes), `rppal` (Raspberry Pi GPIO) or
    /// `gpiocdev:/dev/gpiochipN` (the Linux GPIO character device, any board), or `none`.
    pub backend: values::LedBackendSpec,
    /// Lines are driven low to light the LED (LED between 3V3 and the pin).
    pub active_low: bool,
    /// `on` or `confidence` (PWM, `rppal` only).
    pub brightness: Brightness,
    /// PWM frequency in Hz for `brightness = "confidence"` and RGB colours.
    #[serde(deserialize_with = "values::pwm_hz")]
    pub pwm_hz: f64,
    /// `off` or `heartbeat`.
    pub idle: Idle,
    /// Light every LED in turn at start-up.
    pub lamp_test: bool,
    /// One line per emotion (BCM numbers on a Pi, line offsets on a gpiochip). Emotions left out
    /// have no LED. Ignored when `rgb` is set.
    #[serde(deserialize_with = "values::emotion_pins")]
    pub pins: values::EmotionPins,
    /// An RGB LED instead: `{ red = R, green = G, blue = B }`.
    #[serde(deserialize_with = "values::rgb_pins_opt")]
    pub rgb: Option<values::RgbPins>,
    /// The RGB LED's colour per emotion, as `"#rrggbb"`.
    pub colors: values::EmotionColors,
}

impl Default for LedConfig {
    fn default() -> Self {
        LedConfig {
            backend: values::LedBackendSpec::Log,
            active_low: false,
            brightness: Brightness::On,
            pwm_hz: 200.0,
            idle: Idle::Off,
            lamp_test: true,
            pins: values::EmotionPins::default(),
            rgb: None,
            colors: values::EmotionColors::default(),
        }
    }
}

/// The serial protocol's two encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum SerialFormat {
    /// `emotiond/1 face id=1 ... *5C`: words and `key=value` pairs with an XOR checksum.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `[serial]`: the event line.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SerialConfig {
    /// The tty (`/dev/serial0`, `/dev/ttyUSB0`, a pty), `-` for standard output, or unset for none.
    pub path: Option<String>,
    /// Baud rate.
    #[serde(deserialize_with = "values::baud")]
    pub baud: u32,
    /// `text` or `json`.
    pub format: SerialFormat,
    /// Seconds between status lines (0 = none).
    #[serde(deserialize_with = "values::seconds")]
    pub status_interval: f64,
    /// Seconds between attempts to reopen a serial port that failed.
    #[serde(deserialize_with = "values::seconds")]
    pub retry_interval: f64,
}

impl Default for SerialConfig {
    fn default() -> Self {
        SerialConfig {
            path: None,
            baud: 115_200,
            format: SerialFormat::Text,
            status_interval: 10.0,
            retry_interval: 5.0,
        }
    }
}

/// One problem in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// 1-based line, when the problem has one.
    pub line: Option<usize>,
    /// What is wrong and what would be right.
    pub message: String,
}

/// Why a configuration could not be used.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file has bad keys or values; every one found is listed.
    #[error("{}", format_issues(path, issues))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Each problem, in file order.
        issues: Vec<ConfigIssue>,
    },
}

fn format_issues(path: &Path, issues: &[ConfigIssue]) -> String {
    let lines: Vec<String> = issues
        .iter()
        .map(|i| match i.line {
            Some(l) => format!("{}:{l}: {}", path.display(), i.message),
            None => format!("{}: {}", path.display(), i.message),
        })
        .collect();
    lines.join("\n")
}

impl Config {
    /// Reads and checks a file.
    pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Checks `text`; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let (config, issues) = check(text);
        match config {
            Some(c) if issues.is_empty() => Ok(c),
            _ => Err(ConfigError::Invalid {
                path: path.to_path_buf(),
                issues,
            }),
        }
    }
}

/// Checks a whole file and reports every problem found, each with its line.
///
/// TOML's reader stops at the first error, so this reads the file, notes the error and its line,
/// blanks that line and reads again, until the file reads cleanly or a syntax error makes the rest
/// unreadable. Returns the configuration only when there were no problems.
pub fn check(text: &str) -> (Option<Config>, Vec<ConfigIssue>) {
    let mut lines: Vec<&str> = text.lines().collect();
    let mut issues = Vec::new();
    // Each round blanks one line, so this ends.
    for _ in 0..=lines.len() {
        let current = lines.join("\n");
        match toml::from_str::<Config>(&current) {
            Ok(config) => {
                let cross = cross_checks(&config, &current);
                issues.extend(cross);
                issues.sort_by_key(|i: &ConfigIssue| i.line);
                return (issues.is_empty().then_some(config), issues);
            }
            Err(err) => {
                let line = err.span().map(|s| line_of(&current, s.start));
                issues.push(ConfigIssue {
                    line,
                    message: err.message().trim().to_string(),
                });
                let syntax = toml::from_str::<toml::Table>(&current).is_err();
                match line {
                    Some(l)
                        if !syntax && l >= 1 && l <= lines.len() && !lines[l - 1].is_empty() =>
                    {
                        blank(&mut lines, l - 1);
                    }
                    _ => break,
                }
            }
        }
    }
    issues.sort_by_key(|i| i.line);
    (None, issues)
}

/// Blanks line `i`; a table header takes its whole table with it, so its keys do not fall into the
/// table above.
fn blank(lines: &mut [&str], i: usize) {
    let is_header = |l: &str| l.trim_start().starts_with('[');
    let end = if is_header(lines[i]) {
        (i + 1..lines.len())
            .find(|&j| is_header(lines[j]))
            .unwrap_or(lines.len())
    } else {
        i + 1
    };
    for l in &mut lines[i..end] {
        *l = "";
    }
}

fn line_of(text: &str, byte: usize) -> usize {
    text[..byte.min(text.len())].matches('\n').count() + 1
}

/// The first line whose text starts with `key` followed by `=`, for checks that span several keys.
fn line_of_key(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            l.trim_start()
                .strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map(|i| i + 1)
}

/// Checks between keys, which a single value's reader cannot see.
fn cross_checks(c: &Config, text: &str) -> Vec<ConfigIssue> {
    let mut issues = Vec::new();
    let src = &c.source;
    if let Err(e) = crate::frame::check_size(u64::from(src.width), u64::from(src.height)) {
        issues.push(ConfigIssue {
            line: line_of_key(text, "height").or_else(|| line_of_key(text, "width")),
            message: format!("source.width x source.height: {e}"),
        });
    }
    let d = &c.detect;
    if d.max_size != 0 && d.max_size < d.min_size {
        issues.push(ConfigIssue {
            line: line_of_key(text, "max_size"),
            message: format!(
                "detect.max_size {} is below detect.min_size {}; raise it or use 0 for no limit",
                d.max_size, d.min_size
            ),
        });
    }
    if c.classify.offsets.is_some() && c.classify.relative_offsets.is_some() {
        issues.push(ConfigIssue {
            line: line_of_key(text, "relative_offsets"),
            message: "classify: set offsets or relative_offsets, not both".into(),
        });
    }
    if let Some(message) = c.http.problem() {
        issues.push(ConfigIssue {
            line: line_of_key(text, "listen"),
            message,
        });
    }
    let leds = &c.leds;
    if leds.brightness == Brightness::Confidence
        && !matches!(leds.backend, values::LedBackendSpec::Rppal)
    {
        issues.push(ConfigIssue {
            line: line_of_key(text, "brightness"),
            message: format!(
                "leds.brightness = \"confidence\" needs PWM, which only the rppal backend has (backend is {}); use brightness = \"on\"",
                leds.backend
            ),
        });
    }
    if leds.rgb.is_some() {
        if !matches!(leds.backend, values::LedBackendSpec::Rppal) {
            // Without PWM an RGB LED still shows the seven colours that are on/off mixes.
            for e in Emotion::ALL {
                let c = leds.colors.get(e);
                if !c.is_on_off() {
                    issues.push(ConfigIssue {
                        line: line_of_key(text, e.name()),
                        message: format!(
                            "leds.colors.{e} = \"{c}\" needs PWM (rppal backend); without it each channel must be 00 or ff"
                        ),
                    });
                }
            }
        }
        let explicit_pins =
            text.lines().any(|l| l.trim() == "[leds.pins]") || line_of_key(text, "pins").is_some();
        if explicit_pins {
            issues.push(ConfigIssue {
                line: line_of_key(text, "rgb"),
                message: "leds: set pins (one LED per emotion) or rgb (one RGB LED), not both"
                    .into(),
            });
        }
    }
    issues
}

#[cfg(test)]
mod tests;
