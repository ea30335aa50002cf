//! `[leds]`: which lines, which backend, how they light, and the LED stage's rules for them (line
//! numbers, the PWM frequency, and what needs PWM), which the configuration applies.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::de::{Deserializer, Error as _};
use serde::Deserialize;

use crate::classify::Emotion;
use crate::config::values;

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
    pub backend: LedBackendSpec,
    /// Lines are driven low to light the LED (LED between 3V3 and the pin).
    pub active_low: bool,
    /// `on` or `confidence` (PWM, `rppal` only).
    pub brightness: Brightness,
    /// PWM frequency in Hz for `brightness = "confidence"` and RGB colours ([`pwm_hz`]).
    #[serde(deserialize_with = "read_pwm_hz")]
    pub pwm_hz: f64,
    /// `off` or `heartbeat`.
    pub idle: Idle,
    /// Light every LED in turn at start-up.
    pub lamp_test: bool,
    /// One line per emotion (BCM numbers on a Pi, line offsets on a gpiochip). Emotions left out
    /// have no LED. Ignored when `rgb` is set.
    #[serde(deserialize_with = "read_emotion_pins")]
    pub pins: EmotionPins,
    /// An RGB LED instead: `{ red = R, green = G, blue = B }`.
    #[serde(deserialize_with = "read_rgb_pins")]
    pub rgb: Option<RgbPins>,
    /// The RGB LED's colour per emotion, as `"#rrggbb"`.
    pub colors: EmotionColors,
}

impl Default for LedConfig {
    fn default() -> Self {
        LedConfig {
            backend: LedBackendSpec::Log,
            active_low: false,
            brightness: Brightness::On,
            pwm_hz: 200.0,
            idle: Idle::Off,
            lamp_test: true,
            pins: EmotionPins::default(),
            rgb: None,
            colors: EmotionColors::default(),
        }
    }
}

impl LedConfig {
    /// What cannot work together, each with the key (`brightness`, or an emotion's name in
    /// `[leds.colors]`) the configuration points at: brightness by confidence, and RGB colours
    /// other than on/off mixes, both need PWM, which only the rppal backend has.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let pwm = matches!(self.backend, LedBackendSpec::Rppal);
        if self.brightness == Brightness::Confidence && !pwm {
            out.push((
                "brightness",
                format!(
                    "leds.brightness = \"confidence\" needs PWM, which only the rppal backend has (backend is {}); use brightness = \"on\"",
                    self.backend
                ),
            ));
        }
        if self.rgb.is_some() && !pwm {
            // Without PWM an RGB LED still shows the seven colours that are on/off mixes.
            for e in Emotion::ALL {
                let c = self.colors.get(e);
                if !c.is_on_off() {
                    out.push((
                        e.name(),
                        format!(
                            "leds.colors.{e} = \"{c}\" needs PWM (rppal backend); without it each channel must be 00 or ff"
                        ),
                    ));
                }
            }
        }
        out
    }
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

/// The rule for a set of lines, each named: every line at most [`MAX_PIN`], and no line twice.
pub fn check_pins(pins: &[(&str, u32)]) -> Result<(), String> {
    for (i, &(name, pin)) in pins.iter().enumerate() {
        if pin > MAX_PIN {
            return Err(format!("{name} = {pin}: line numbers go up to {MAX_PIN}"));
        }
        if let Some(&(other, _)) = pins[..i].iter().find(|&&(_, p)| p == pin) {
            return Err(format!(
                "line {pin} is given to both {other} and {name}; each LED needs its own line"
            ));
        }
    }
    Ok(())
}

/// The rule for `[leds.pins]`: at least one emotion has a line, and [`check_pins`] holds.
pub fn emotion_pins(pins: EmotionPins) -> Result<EmotionPins, String> {
    let listed: Vec<(&str, u32)> = Emotion::ALL
        .iter()
        .filter_map(|&e| pins.get(e).map(|p| (e.name(), p)))
        .collect();
    if listed.is_empty() {
        return Err(
            "no emotion has a line; give at least one, e.g. happy = 5, or set backend = \"none\""
                .into(),
        );
    }
    check_pins(&listed).map(|()| pins)
}

/// The rule for `rgb`: [`check_pins`] over the three lines.
pub fn rgb_pins(rgb: RgbPins) -> Result<RgbPins, String> {
    check_pins(&[("red", rgb.red), ("green", rgb.green), ("blue", rgb.blue)]).map(|()| rgb)
}

/// The PWM frequency: 10 to 10000 Hz.
pub fn pwm_hz(v: f64) -> Result<f64, String> {
    let ok = v.is_finite() && (10.0..=10_000.0).contains(&v);
    values::in_range(v, ok, "expected 10 to 10000 Hz (200 is flicker-free)")
}

fn read_pwm_hz<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    values::read(d, pwm_hz)
}

fn read_emotion_pins<'de, D: Deserializer<'de>>(d: D) -> Result<EmotionPins, D::Error> {
    values::read(d, emotion_pins)
}

fn read_rgb_pins<'de, D: Deserializer<'de>>(d: D) -> Result<Option<RgbPins>, D::Error> {
    values::read(d, rgb_pins).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_needs_pwm_is_named_by_its_key() {
        assert!(LedConfig::default().problems().is_empty());
        let cfg = LedConfig {
            brightness: Brightness::Confidence,
            rgb: Some(RgbPins {
                red: 1,
                green: 2,
                blue: 3,
            }),
            colors: EmotionColors {
                happy: Color([255, 128, 0]),
                ..EmotionColors::default()
            },
            ..LedConfig::default()
        };
        let keys: Vec<&str> = cfg.problems().iter().map(|p| p.0).collect();
        assert_eq!(keys, ["brightness", "happy"]);
        let rppal = LedConfig {
            backend: LedBackendSpec::Rppal,
            ..cfg
        };
        assert!(rppal.problems().is_empty());
        assert!(pwm_hz(5.0).unwrap_err().contains("10 to 10000"));
    }
}
