//! The value types of the configuration and the checks each value gets as it is read. Each check
//! fails with a message that says what would be right; the TOML reader adds the line.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::de::{Deserializer, Error as _};
use serde::Deserialize;

use crate::classify::Emotion;

/// Where frames come from, as `kind:path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    /// A V4L2 camera device.
    V4l2(PathBuf),
    /// The Pi camera module through `rpicam-vid`.
    Rpicam,
    /// A Y4M file, or standard input for `-`.
    Y4m(PathBuf),
    /// A folder of images in name order.
    Images(PathBuf),
}

impl SourceSpec {
    /// A camera (retried when missing or lost) rather than a file or a pipe.
    pub fn is_live(&self) -> bool {
        matches!(self, SourceSpec::V4l2(_) | SourceSpec::Rpicam)
    }
}

impl FromStr for SourceSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "source {s:?}: expected v4l2:/dev/videoN, rpicam, y4m:PATH, y4m:- or images:DIR"
            )
        };
        if s == "rpicam" {
            return Ok(SourceSpec::Rpicam);
        }
        let (kind, path) = s.split_once(':').ok_or_else(bad)?;
        if path.is_empty() {
            return Err(bad());
        }
        let path = PathBuf::from(path);
        match kind {
            "v4l2" => Ok(SourceSpec::V4l2(path)),
            "y4m" => Ok(SourceSpec::Y4m(path)),
            "images" => Ok(SourceSpec::Images(path)),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for SourceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceSpec::V4l2(p) => write!(f, "v4l2:{}", p.display()),
            SourceSpec::Rpicam => f.write_str("rpicam"),
            SourceSpec::Y4m(p) => write!(f, "y4m:{}", p.display()),
            SourceSpec::Images(p) => write!(f, "images:{}", p.display()),
        }
    }
}

impl<'de> Deserialize<'de> for SourceSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(D::Error::custom)
    }
}

/// The V4L2 pixel format to ask a camera for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PixelFormatChoice {
    /// The best the camera offers: GREY, NV12, YU12, YUYV, then MJPEG.
    #[default]
    Auto,
    /// 8-bit gray.
    Grey,
    /// Packed 4:2:2.
    Yuyv,
    /// Y plane then interleaved CbCr.
    Nv12,
    /// Y, U and V planes (I420).
    Yu12,
    /// Motion JPEG.
    Mjpeg,
}

/// Where the LEDs are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedBackendSpec {
    /// No LEDs at all.
    None,
    /// No hardware: LED changes go to the log.
    Log,
    /// Raspberry Pi GPIO through rppal.
    Rppal,
    /// A Linux GPIO character device.
    Gpiocdev(PathBuf),
}

impl FromStr for LedBackendSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(LedBackendSpec::None),
            "log" => Ok(LedBackendSpec::Log),
            "rppal" => Ok(LedBackendSpec::Rppal),
            _ => match s.strip_prefix("gpiocdev:") {
                Some(p) if !p.is_empty() => Ok(LedBackendSpec::Gpiocdev(PathBuf::from(p))),
                _ => Err(format!(
                    "LED backend {s:?}: expected log, rppal, gpiocdev:/dev/gpiochipN or none"
                )),
            },
        }
    }
}

impl fmt::Display for LedBackendSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LedBackendSpec::None => f.write_str("none"),
            LedBackendSpec::Log => f.write_str("log"),
            LedBackendSpec::Rppal => f.write_str("rppal"),
            LedBackendSpec::Gpiocdev(p) => write!(f, "gpiocdev:{}", p.display()),
        }
    }
}

impl<'de> Deserialize<'de> for LedBackendSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(D::Error::custom)
    }
}

/// A number from 0 to 1.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Fraction(pub f32);

impl<'de> Deserialize<'de> for Fraction {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = f64::deserialize(d)?;
        let ok = v.is_finite() && (0.0..=1.0).contains(&v);
        in_range(v, ok, "expected a number from 0 to 1").map(|v| Fraction(v as f32))
    }
}

/// An RGB colour, `"#rrggbb"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Color(pub [u8; 3]);

impl Color {
    /// True when every channel is fully off or fully on, so the colour needs no PWM.
    pub fn is_on_off(self) -> bool {
        self.0.iter().all(|&c| c == 0 || c == 255)
    }
}

impl FromStr for Color {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let hex = s.strip_prefix('#').filter(|h| h.len() == 6);
        let parse = |h: &str| -> Option<[u8; 3]> {
            let mut out = [0u8; 3];
            for (i, o) in out.iter_mut().enumerate() {
                *o = u8::from_str_radix(h.get(2 * i..2 * i + 2)?, 16).ok()?;
            }
            Some(out)
        };
        hex.and_then(parse)
            .map(Color)
            .ok_or_else(|| format!("colour {s:?}: expected \"#rrggbb\", e.g. \"#ff8000\""))
    }
}

impl fmt::Display for Color {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{:02x}{:02x}{:02x}", self.0[0], self.0[1], self.0[2])
    }
}

impl<'de> Deserialize<'de> for Color {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(D::Error::custom)
    }
}

/// The highest line number accepted (a gpiochip has at most a few hundred lines).
pub const MAX_PIN: u32 = 1023;

/// One GPIO line per emotion; an emotion without one has no LED.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmotionPins {
    /// Line for angry.
    pub angry: Option<u32>,
    /// Line for disgust.
    pub disgust: Option<u32>,
    /// Line for fear.
    pub fear: Option<u32>,
    /// Line for happy.
    pub happy: Option<u32>,
    /// Line for sad.
    pub sad: Option<u32>,
    /// Line for surprise.
    pub surprise: Option<u32>,
    /// Line for neutral.
    pub neutral: Option<u32>,
}

impl Default for EmotionPins {
    /// BCM 17, 27, 22, 5, 6, 13, 19: header pins 11, 13, 15, 29, 31, 33, 35, clear of the UART,
    /// I2C and SPI pins.
    fn default() -> Self {
        EmotionPins {
            angry: Some(17),
            disgust: Some(27),
            fear: Some(22),
            happy: Some(5),
            sad: Some(6),
            surprise: Some(13),
            neutral: Some(19),
        }
    }
}

impl EmotionPins {
    /// The line for `e`, if it has one.
    pub fn get(&self, e: Emotion) -> Option<u32> {
        match e {
            Emotion::Angry => self.angry,
            Emotion::Disgust => self.disgust,
            Emotion::Fear => self.fear,
            Emotion::Happy => self.happy,
            Emotion::Sad => self.sad,
            Emotion::Surprise => self.surprise,
            Emotion::Neutral => self.neutral,
        }
    }
}

/// The three lines of an RGB LED.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RgbPins {
    /// Red line.
    pub red: u32,
    /// Green line.
    pub green: u32,
    /// Blue line.
    pub blue: u32,
}

/// The RGB LED's colour for each emotion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmotionColors {
    /// Default red.
    pub angry: Color,
    /// Default green.
    pub disgust: Color,
    /// Default magenta.
    pub fear: Color,
    /// Default yellow.
    pub happy: Color,
    /// Default blue.
    pub sad: Color,
    /// Default cyan.
    pub surprise: Color,
    /// Default white.
    pub neutral: Color,
}

impl Default for EmotionColors {
    /// The seven colours an RGB LED shows without PWM.
    fn default() -> Self {
        EmotionColors {
            angry: Color([255, 0, 0]),
            disgust: Color([0, 255, 0]),
            fear: Color([255, 0, 255]),
            happy: Color([255, 255, 0]),
            sad: Color([0, 0, 255]),
            surprise: Color([0, 255, 255]),
            neutral: Color([255, 255, 255]),
        }
    }
}

impl EmotionColors {
    /// The colour for `e`.
    pub fn get(&self, e: Emotion) -> Color {
        match e {
            Emotion::Angry => self.angry,
            Emotion::Disgust => self.disgust,
            Emotion::Fear => self.fear,
            Emotion::Happy => self.happy,
            Emotion::Sad => self.sad,
            Emotion::Surprise => self.surprise,
            Emotion::Neutral => self.neutral,
        }
    }
}

fn check_pins<E: serde::de::Error>(pins: &[(&str, u32)]) -> Result<(), E> {
    for (i, &(name, pin)) in pins.iter().enumerate() {
        if pin > MAX_PIN {
            return Err(E::custom(format!(
                "{name} = {pin}: line numbers go up to {MAX_PIN}"
            )));
        }
        if let Some(&(other, _)) = pins[..i].iter().find(|&&(_, p)| p == pin) {
            return Err(E::custom(format!(
                "line {pin} is given to both {other} and {name}; each LED needs its own line"
            )));
        }
    }
    Ok(())
}

pub(super) fn emotion_pins<'de, D: Deserializer<'de>>(d: D) -> Result<EmotionPins, D::Error> {
    let pins = EmotionPins::deserialize(d)?;
    let listed: Vec<(&str, u32)> = Emotion::ALL
        .iter()
        .filter_map(|&e| pins.get(e).map(|p| (e.name(), p)))
        .collect();
    if listed.is_empty() {
        return Err(D::Error::custom(
            "no emotion has a line; give at least one, e.g. happy = 5, or set backend = \"none\"",
        ));
    }
    check_pins(&listed)?;
    Ok(pins)
}

pub(super) fn rgb_pins_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<RgbPins>, D::Error> {
    let rgb = RgbPins::deserialize(d)?;
    check_pins(&[("red", rgb.red), ("green", rgb.green), ("blue", rgb.blue)])?;
    Ok(Some(rgb))
}

/// `v` when `ok`, else an out-of-range error saying what was `expected`.
fn in_range<T: fmt::Display, E: serde::de::Error>(v: T, ok: bool, expected: &str) -> Result<T, E> {
    if ok {
        Ok(v)
    } else {
        Err(E::custom(format!("{v} is out of range: {expected}")))
    }
}

/// A whole number from `lo` to `hi`.
fn count<'de, D: Deserializer<'de>>(
    d: D,
    lo: i64,
    hi: i64,
    expected: &str,
) -> Result<u32, D::Error> {
    let v = i64::deserialize(d)?;
    in_range(v, (lo..=hi).contains(&v), expected).map(|v| v as u32)
}

pub(super) fn scale_factor<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let v = f64::deserialize(d)?;
    let ok = v.is_finite() && v > 1.0 && v <= 4.0;
    in_range(
        v,
        ok,
        "the pyramid step must be above 1 and at most 4 (1.1 is usual)",
    )
}

pub(super) fn small_count<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    count(d, 0, 100, "expected 0 to 100")
}

pub(super) fn threads<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    count(
        d,
        0,
        crate::detect::MAX_THREADS as i64,
        "expected 0 (one per core) to 256 threads",
    )
}

pub(super) fn positive<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    count(d, 1, 10_000, "expected 1 to 10000")
}

pub(super) fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let v = f64::deserialize(d)?;
    let ok = v.is_finite() && (0.0..=86_400.0).contains(&v);
    in_range(v, ok, "expected seconds from 0 to 86400")
}

/// The one check of a frame rate (`source.fps` and `run --fps`): 0 (files: as fast as the
/// pipeline goes) or 0.1 to 1000 frames per second.
pub fn check_fps(v: f64) -> Result<f64, String> {
    if v == 0.0 || (v.is_finite() && (0.1..=1000.0).contains(&v)) {
        Ok(v)
    } else {
        Err(format!(
            "{v} is out of range: expected 0 (as fast as the pipeline goes) or 0.1 to 1000 frames per second"
        ))
    }
}

pub(super) fn fps<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    check_fps(f64::deserialize(d)?).map_err(D::Error::custom)
}

/// A camera frame side: 16 to the shared frame bound.
pub(super) fn frame_side<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let hi = crate::frame::MAX_SIDE as i64;
    count(d, 16, hi, &format!("expected 16 to {hi} pixels"))
}

/// A face side limit in pixels: 0 (no limit) to the shared frame bound.
pub(super) fn face_side<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let hi = crate::frame::MAX_SIDE as i64;
    count(d, 0, hi, &format!("expected 0 (no limit) to {hi} pixels"))
}

pub(super) fn pwm_hz<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let v = f64::deserialize(d)?;
    let ok = v.is_finite() && (10.0..=10_000.0).contains(&v);
    in_range(v, ok, "expected 10 to 10000 Hz (200 is flicker-free)")
}

/// The rates a UART or USB adapter commonly supports.
pub const BAUD_RATES: [u32; 12] = [
    1200, 2400, 4800, 9600, 19_200, 38_400, 57_600, 115_200, 230_400, 460_800, 921_600, 1_000_000,
];

pub(super) fn baud<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let v = i64::deserialize(d)?;
    u32::try_from(v)
        .ok()
        .filter(|v| BAUD_RATES.contains(v))
        .ok_or_else(|| {
            D::Error::custom(format!(
                "{v} is not a supported baud rate; use one of {BAUD_RATES:?}"
            ))
        })
}

pub(super) fn pixel_offsets_opt<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<[i32; 2]>, D::Error> {
    let v = <[i64; 2]>::deserialize(d)?;
    if v.iter().all(|x| (0..=1000).contains(x)) {
        Ok(Some([v[0] as i32, v[1] as i32]))
    } else {
        Err(D::Error::custom(format!(
            "{v:?}: expected two pixel counts from 0 to 1000, e.g. [10, 10]"
        )))
    }
}

pub(super) fn relative_offsets_opt<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<[f32; 2]>, D::Error> {
    let v = <[f64; 2]>::deserialize(d)?;
    if v.iter().all(|x| x.is_finite() && (0.0..=2.0).contains(x)) {
        Ok(Some([v[0] as f32, v[1] as f32]))
    } else {
        Err(D::Error::custom(format!(
            "{v:?}: expected two fractions from 0 to 2, e.g. [0.1, 0.1]"
        )))
    }
}
