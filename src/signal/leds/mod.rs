//! What the LEDs show, independent of how they are wired. The LEDs' settings and their rules are
//! in [`settings`].

pub mod settings;

use std::time::Duration;

use thiserror::Error;

use crate::classify::Emotion;
use crate::Cause;
pub use settings::{
    Brightness, Color, EmotionColors, EmotionPins, Idle, LedBackendSpec, LedConfig, RgbPins,
    MAX_PIN,
};

/// Why an LED backend failed. Each variant names the device or pin, and keeps the GPIO library's
/// error (gpiocdev's, rppal's) as its `source()`.
#[derive(Debug, Error)]
pub enum LedError {
    /// The GPIO device could not be opened or the lines requested.
    #[error("cannot use {device}: {reason}")]
    Open {
        /// The device or backend.
        device: String,
        /// What went wrong (quoting the cause), and what to do.
        reason: String,
        /// The GPIO library's error; none for a pin the device does not have.
        #[source]
        cause: Option<Cause>,
    },
    /// A line could not be set.
    #[error("cannot set {line} on {device}: {reason}")]
    Write {
        /// The device or backend.
        device: String,
        /// The line, as `name (pin N)`.
        line: String,
        /// What went wrong: the cause's text.
        reason: String,
        /// The GPIO library's error.
        #[source]
        cause: Cause,
    },
}

/// One LED line: what it means and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedLine {
    /// `happy`, or `red`/`green`/`blue` for an RGB LED.
    pub name: &'static str,
    /// BCM number on a Pi, line offset on a gpiochip.
    pub pin: u32,
}

/// The hardware edge: something that can set a list of lines to levels.
pub trait LedDriver {
    /// The backend and device, for logs and errors (`gpiocdev:/dev/gpiochip0`).
    fn describe(&self) -> String;

    /// Sets every line at once; `levels[i]` (0 = off, 1 = fully on) is for the i-th line the
    /// driver was opened with. Levels are logical: active-low wiring is the driver's business.
    fn write(&mut self, levels: &[f32]) -> Result<(), LedError>;

    /// Fails if the hardware has gone away (a gpiochip removed or unbound). Called about once a
    /// second, so it must be cheap; the default is for backends that cannot lose their hardware.
    fn check(&mut self) -> Result<(), LedError> {
        Ok(())
    }
}

/// What the LEDs should show.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LedState {
    /// Everything off (shutting down).
    Off,
    /// No face in view: the idle pattern.
    Idle,
    /// A face's emotion, with the smoothed probability of it.
    Emotion(Emotion, f32),
}

/// How long the heartbeat's flash lasts and how often it comes.
const HEARTBEAT_ON: Duration = Duration::from_millis(100);
const HEARTBEAT_PERIOD: Duration = Duration::from_secs(2);

/// Turns [`LedState`]s into line levels and writes them through a driver, only when they change.
pub struct LedController {
    driver: Box<dyn LedDriver + Send>,
    lines: Vec<LedLine>,
    /// Per emotion, the level of each line.
    patterns: [Vec<f32>; 7],
    brightness: Brightness,
    idle: Idle,
    levels: Vec<f32>,
    /// What the driver was last told; NaN at first, so the first flush always writes.
    written: Vec<f32>,
}

impl std::fmt::Debug for LedController {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LedController")
            .field("driver", &self.driver.describe())
            .field("lines", &self.lines)
            .finish()
    }
}

/// The lines a configuration asks for, in the order drivers are opened with.
pub fn lines_of(cfg: &LedConfig) -> Vec<LedLine> {
    match cfg.rgb {
        Some(rgb) => vec![
            LedLine {
                name: "red",
                pin: rgb.red,
            },
            LedLine {
                name: "green",
                pin: rgb.green,
            },
            LedLine {
                name: "blue",
                pin: rgb.blue,
            },
        ],
        None => Emotion::ALL
            .iter()
            .filter_map(|&e| {
                cfg.pins.get(e).map(|pin| LedLine {
                    name: e.name(),
                    pin,
                })
            })
            .collect(),
    }
}

impl LedController {
    /// A controller for the lines `cfg` describes, writing through `driver` (opened with
    /// [`lines_of`]`(cfg)`). All lines start off.
    pub fn new(cfg: &LedConfig, driver: Box<dyn LedDriver + Send>) -> Result<Self, LedError> {
        let lines = lines_of(cfg);
        let patterns = Emotion::ALL.map(|e| match cfg.rgb {
            Some(_) => cfg
                .colors
                .get(e)
                .0
                .iter()
                .map(|&c| f32::from(c) / 255.0)
                .collect(),
            None => lines
                .iter()
                .map(|l| if l.name == e.name() { 1.0 } else { 0.0 })
                .collect(),
        });
        let mut c = LedController {
            driver,
            levels: vec![0.0; lines.len()],
            written: vec![f32::NAN; lines.len()],
            lines,
            patterns,
            brightness: cfg.brightness,
            idle: cfg.idle,
        };
        c.flush()?;
        Ok(c)
    }

    /// The lines, in driver order.
    pub fn lines(&self) -> &[LedLine] {
        &self.lines
    }

    /// The backend, for logs.
    pub fn describe(&self) -> String {
        self.driver.describe()
    }

    /// Shows `state`; `now` is the time since start, for the idle pattern. Writes only on change.
    pub fn show(&mut self, state: LedState, now: Duration) -> Result<(), LedError> {
        self.levels.iter_mut().for_each(|l| *l = 0.0);
        match state {
            LedState::Off => {}
            LedState::Emotion(e, p) => {
                let scale = match self.brightness {
                    Brightness::On => 1.0,
                    Brightness::Confidence => p.clamp(0.0, 1.0),
                };
                for (l, v) in self.levels.iter_mut().zip(&self.patterns[e.index()]) {
                    *l = v * scale;
                }
            }
            LedState::Idle => {
                let phase =
                    Duration::from_nanos((now.as_nanos() % HEARTBEAT_PERIOD.as_nanos()) as u64);
                if self.idle == Idle::Heartbeat && phase < HEARTBEAT_ON {
                    let pattern = &self.patterns[Emotion::Neutral.index()];
                    self.levels.copy_from_slice(pattern);
                }
            }
        }
        self.flush()
    }

    /// Lights line `i` (in [`LedController::lines`] order) fully and nothing else.
    pub fn light_only(&mut self, i: usize) -> Result<(), LedError> {
        self.levels.iter_mut().for_each(|l| *l = 0.0);
        if let Some(l) = self.levels.get_mut(i) {
            *l = 1.0;
        }
        self.flush()
    }

    /// Lights each line alone for `step`, in order, then turns all off: a wiring check.
    pub fn lamp_test(&mut self, step: Duration) -> Result<(), LedError> {
        for i in 0..self.lines.len() {
            self.light_only(i)?;
            std::thread::sleep(step);
        }
        self.show(LedState::Off, Duration::ZERO)
    }

    /// Asks the driver whether its hardware is still there ([`LedDriver::check`]), so a chip that
    /// went away is noticed even while the LEDs show the same thing for hours.
    pub fn check(&mut self) -> Result<(), LedError> {
        self.driver.check()
    }

    fn flush(&mut self) -> Result<(), LedError> {
        if self.written == self.levels {
            return Ok(());
        }
        self.driver.write(&self.levels)?;
        self.written.copy_from_slice(&self.levels);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A driver that records what it was told, for checking the controller's logic.
    struct Recorder(Arc<Mutex<Vec<Vec<f32>>>>);

    impl LedDriver for Recorder {
        fn describe(&self) -> String {
            "recorder".into()
        }
        fn write(&mut self, levels: &[f32]) -> Result<(), LedError> {
            self.0.lock().unwrap().push(levels.to_vec());
            Ok(())
        }
    }

    fn controller(cfg: &LedConfig) -> (LedController, Arc<Mutex<Vec<Vec<f32>>>>) {
        let log = Arc::new(Mutex::new(Vec::new()));
        let c = LedController::new(cfg, Box::new(Recorder(log.clone()))).unwrap();
        (c, log)
    }

    #[test]
    fn one_line_per_emotion_lights_alone_and_only_changes_are_written() {
        let (mut c, log) = controller(&LedConfig::default());
        assert_eq!(c.lines().len(), 7);
        c.show(LedState::Emotion(Emotion::Happy, 0.4), Duration::ZERO)
            .unwrap();
        c.show(LedState::Emotion(Emotion::Happy, 0.9), Duration::ZERO)
            .unwrap();
        c.show(LedState::Idle, Duration::ZERO).unwrap();
        let log = log.lock().unwrap();
        assert_eq!(
            *log,
            [
                vec![0.0; 7],
                vec![0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0],
                vec![0.0; 7]
            ]
        );
    }

    #[test]
    fn confidence_brightness_scales_the_level() {
        let cfg = LedConfig {
            brightness: Brightness::Confidence,
            ..LedConfig::default()
        };
        let (mut c, log) = controller(&cfg);
        c.show(LedState::Emotion(Emotion::Sad, 0.25), Duration::ZERO)
            .unwrap();
        assert_eq!(log.lock().unwrap()[1][4], 0.25);
    }

    #[test]
    fn an_rgb_led_shows_the_emotion_colour() {
        let cfg = LedConfig {
            rgb: Some(RgbPins {
                red: 1,
                green: 2,
                blue: 3,
            }),
            ..LedConfig::default()
        };
        let (mut c, log) = controller(&cfg);
        let names: Vec<&str> = c.lines().iter().map(|l| l.name).collect();
        assert_eq!(names, ["red", "green", "blue"]);
        c.show(LedState::Emotion(Emotion::Happy, 1.0), Duration::ZERO)
            .unwrap();
        c.show(LedState::Emotion(Emotion::Surprise, 1.0), Duration::ZERO)
            .unwrap();
        let log = log.lock().unwrap();
        assert_eq!(log[1], [1.0, 1.0, 0.0]);
        assert_eq!(log[2], [0.0, 1.0, 1.0]);
    }

    #[test]
    fn the_heartbeat_flashes_neutral_briefly_every_two_seconds() {
        let cfg = LedConfig {
            idle: Idle::Heartbeat,
            ..LedConfig::default()
        };
        let (mut c, log) = controller(&cfg);
        for ms in [0, 50, 150, 1999, 2000, 2150] {
            c.show(LedState::Idle, Duration::from_millis(ms)).unwrap();
        }
        let log = log.lock().unwrap();
        let neutral: Vec<f32> = log.iter().map(|l| l[6]).collect();
        // Initial off, on at 0 ms, off at 150 ms, on at 2000 ms, off at 2150 ms.
        assert_eq!(neutral, [0.0, 1.0, 0.0, 1.0, 0.0]);
    }

    #[test]
    fn the_lamp_test_lights_each_line_in_turn() {
        let cfg = LedConfig {
            pins: EmotionPins {
                angry: None,
                disgust: None,
                fear: None,
                happy: Some(5),
                sad: Some(6),
                surprise: None,
                neutral: None,
            },
            ..LedConfig::default()
        };
        let (mut c, log) = controller(&cfg);
        c.lamp_test(Duration::ZERO).unwrap();
        assert_eq!(
            *log.lock().unwrap(),
            [
                vec![0.0, 0.0],
                vec![1.0, 0.0],
                vec![0.0, 1.0],
                vec![0.0, 0.0]
            ]
        );
    }
}
