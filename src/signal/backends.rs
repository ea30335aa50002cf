//! LED backends: the log (no hardware), the Linux GPIO character device, and a Raspberry Pi's GPIO
//! through rppal.

use std::path::{Path, PathBuf};

use gpiocdev::line::{Value, Values};

use super::led_retry::{RetryingLeds, LED_RETRY};
use super::leds::{
    lines_of, LedBackendSpec, LedConfig, LedController, LedDriver, LedError, LedLine,
};

/// Opens the backend `cfg` names and returns a controller with every LED off, or `None` for
/// `backend = "none"`.
pub fn open_leds(cfg: &LedConfig) -> Result<Option<LedController>, LedError> {
    let lines = lines_of(cfg);
    let driver: Box<dyn LedDriver + Send> = match &cfg.backend {
        LedBackendSpec::None => return Ok(None),
        LedBackendSpec::Log => Box::new(LogLeds::new(lines)),
        LedBackendSpec::Gpiocdev(path) => {
            Box::new(GpiocdevLeds::open(path, &lines, cfg.active_low)?)
        }
        LedBackendSpec::Rppal => Box::new(RppalLeds::open(&lines, cfg.active_low, cfg.pwm_hz)?),
    };
    LedController::new(cfg, driver).map(Some)
}

/// Opens the LEDs as [`open_leds`] does (a failure now is an error: a wrong pin or path must stop
/// the start), wrapped so that a failure later lets them go and reopens them every
/// [`LED_RETRY`] with the same settings.
pub fn open_retrying_leds(cfg: &LedConfig) -> Result<Option<RetryingLeds>, LedError> {
    let Some(leds) = open_leds(cfg)? else {
        return Ok(None);
    };
    let cfg = cfg.clone();
    let open = Box::new(move || open_leds(&cfg));
    Ok(Some(RetryingLeds::new(leds, open, LED_RETRY)))
}

/// No hardware: every change is one `info` line in the log (`LEDs: happy` or `LEDs: off`), for
/// demos and tests.
#[derive(Debug)]
pub struct LogLeds {
    lines: Vec<LedLine>,
    text: String,
}

impl LogLeds {
    /// A log backend for `lines`.
    pub fn new(lines: Vec<LedLine>) -> Self {
        LogLeds {
            lines,
            text: String::new(),
        }
    }

    /// The text logged for `levels`: the lit lines by name (with a percentage when dimmed), or `off`.
    pub fn describe_levels(&mut self, levels: &[f32]) -> &str {
        use std::fmt::Write;
        self.text.clear();
        for (line, &level) in self.lines.iter().zip(levels) {
            if level <= 0.0 {
                continue;
            }
            if !self.text.is_empty() {
                self.text.push(' ');
            }
            self.text.push_str(line.name);
            if level < 1.0 {
                let _ = write!(self.text, "={:.0}%", level * 100.0);
            }
        }
        if self.text.is_empty() {
            self.text.push_str("off");
        }
        &self.text
    }
}

impl LedDriver for LogLeds {
    fn describe(&self) -> String {
        "log".into()
    }

    fn write(&mut self, levels: &[f32]) -> Result<(), LedError> {
        log::info!(target: "emotiond::leds", "LEDs: {}", self.describe_levels(levels));
        Ok(())
    }
}

/// Lines of a Linux GPIO character device (uAPI v2), held for the daemon's life. Levels above 0 are
/// on: the character device has no PWM.
#[derive(Debug)]
pub struct GpiocdevLeds {
    path: PathBuf,
    request: gpiocdev::Request,
    offsets: Vec<u32>,
    values: Values,
}

impl GpiocdevLeds {
    /// Requests `lines` on the chip at `path` as outputs, all off.
    pub fn open(path: &Path, lines: &[LedLine], active_low: bool) -> Result<Self, LedError> {
        let device = format!("gpiocdev:{}", path.display());
        let open_err = |reason: String, cause: Option<gpiocdev::Error>| LedError::Open {
            device: device.clone(),
            reason,
            cause: cause.map(Into::into),
        };
        let chip = gpiocdev::Chip::from_path(path).map_err(|e| {
            open_err(format!(
                "{e}; check the path (`ls /dev/gpiochip*`, `gpiodetect`) and that the user is in the gpio group"
            ), Some(e))
        })?;
        let info = chip
            .info()
            .map_err(|e| open_err(format!("cannot read the chip: {e}"), Some(e)))?;
        for l in lines {
            if l.pin >= info.num_lines {
                return Err(open_err(
                    format!(
                        "{} = {}: {} ({}) has lines 0 to {}",
                        l.name,
                        l.pin,
                        info.name,
                        info.label,
                        info.num_lines.saturating_sub(1)
                    ),
                    None,
                ));
            }
        }
        let offsets: Vec<u32> = lines.iter().map(|l| l.pin).collect();
        let mut builder = gpiocdev::Request::builder();
        builder
            .on_chip(path)
            .with_consumer("emotiond")
            .with_lines(&offsets)
            .as_output(Value::Inactive);
        if active_low {
            builder.as_active_low();
        }
        let request = builder.request().map_err(|e| {
            open_err(format!(
                "cannot request lines {offsets:?}: {e} (is another program holding them? `gpioinfo` shows the consumer)"
            ), Some(e))
        })?;
        Ok(GpiocdevLeds {
            path: path.to_path_buf(),
            request,
            offsets,
            values: Values::default(),
        })
    }
}

impl LedDriver for GpiocdevLeds {
    fn describe(&self) -> String {
        format!("gpiocdev:{}", self.path.display())
    }

    fn write(&mut self, levels: &[f32]) -> Result<(), LedError> {
        for (&offset, &level) in self.offsets.iter().zip(levels) {
            let v = if level > 0.0 {
                Value::Active
            } else {
                Value::Inactive
            };
            self.values.set(offset, v);
        }
        self.check()
    }

    /// Sets the lines to the levels last written (the controller writes once when it opens): a
    /// removed or unbound chip fails with ENODEV.
    fn check(&mut self) -> Result<(), LedError> {
        self.request
            .set_values(&self.values)
            .map_err(|e| LedError::Write {
                device: self.describe(),
                line: format!("lines {:?}", self.offsets),
                reason: e.to_string(),
                cause: e.into(),
            })
    }
}

/// A Raspberry Pi's GPIO through rppal (`/dev/gpiomem`), with software PWM for dimmed levels.
pub struct RppalLeds {
    pins: Vec<(LedLine, rppal::gpio::OutputPin)>,
    active_low: bool,
    pwm_hz: f64,
}

impl std::fmt::Debug for RppalLeds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RppalLeds")
            .field("active_low", &self.active_low)
            .finish()
    }
}

impl RppalLeds {
    /// Takes `lines` (BCM numbers) as outputs, all off. Fails on a board rppal does not know.
    pub fn open(lines: &[LedLine], active_low: bool, pwm_hz: f64) -> Result<Self, LedError> {
        let open_err = |reason: String, cause: Option<rppal::gpio::Error>| LedError::Open {
            device: "rppal".into(),
            reason,
            cause: cause.map(Into::into),
        };
        let gpio = rppal::gpio::Gpio::new().map_err(|e| {
            open_err(format!(
                "{e}; rppal works on a Raspberry Pi only (use backend = \"gpiocdev:/dev/gpiochip0\" elsewhere), and needs /dev/gpiomem access (the gpio group)"
            ), Some(e))
        })?;
        let mut pins = Vec::with_capacity(lines.len());
        for l in lines {
            let bcm = u8::try_from(l.pin)
                .ok()
                .filter(|&p| p <= 27)
                .ok_or_else(|| {
                    open_err(
                        format!("{} = {}: BCM GPIO numbers go from 0 to 27", l.name, l.pin),
                        None,
                    )
                })?;
            let pin = gpio
                .get(bcm)
                .map_err(|e| open_err(format!("{} = GPIO{bcm}: {e}", l.name), Some(e)))?;
            let mut out = pin.into_output();
            out.set_reset_on_drop(true);
            pins.push((l.clone(), out));
        }
        let mut leds = RppalLeds {
            pins,
            active_low,
            pwm_hz,
        };
        leds.write(&vec![0.0; lines.len()])?;
        Ok(leds)
    }
}

impl LedDriver for RppalLeds {
    fn describe(&self) -> String {
        "rppal".into()
    }

    fn write(&mut self, levels: &[f32]) -> Result<(), LedError> {
        for ((line, pin), &level) in self.pins.iter_mut().zip(levels) {
            let level = f64::from(level.clamp(0.0, 1.0));
            let duty = if self.active_low { 1.0 - level } else { level };
            let result = if duty <= 0.0 {
                pin.clear_pwm().map(|()| pin.set_low())
            } else if duty >= 1.0 {
                pin.clear_pwm().map(|()| pin.set_high())
            } else {
                pin.set_pwm_frequency(self.pwm_hz, duty)
            };
            result.map_err(|e| LedError::Write {
                device: "rppal".into(),
                line: format!("{} (GPIO{})", line.name, line.pin),
                reason: e.to_string(),
                cause: e.into(),
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_backend_names_the_lit_lines() {
        let lines = lines_of(&LedConfig::default());
        let mut log = LogLeds::new(lines);
        assert_eq!(log.describe_levels(&[0.0; 7]), "off");
        assert_eq!(
            log.describe_levels(&[0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]),
            "happy"
        );
        assert_eq!(
            log.describe_levels(&[0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]),
            "angry=50% neutral"
        );
    }

    #[test]
    fn a_missing_gpio_chip_is_named() {
        let err = GpiocdevLeds::open(
            Path::new("/dev/gpiochip-none"),
            &lines_of(&LedConfig::default()),
            false,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("gpiocdev:/dev/gpiochip-none"), "{err}");
        assert!(err.contains("gpiodetect"), "{err}");
    }

    #[test]
    fn a_missing_gpio_chip_keeps_gpiocdevs_error_as_the_source() {
        let err = GpiocdevLeds::open(
            Path::new("/dev/gpiochip-emotiond-none"),
            &lines_of(&LedConfig::default()),
            false,
        )
        .unwrap_err();
        assert!(matches!(err, LedError::Open { .. }), "{err}");
        let cause = std::error::Error::source(&err).expect("gpiocdev's error");
        assert!(
            cause.downcast_ref::<gpiocdev::Error>().is_some(),
            "{cause:?}"
        );
        assert!(err.to_string().contains(&cause.to_string()), "{err}");
    }

    #[test]
    fn rppal_off_a_pi_says_what_to_use_instead() {
        // This machine is not a Raspberry Pi (CI runs on x86-64 and under qemu-user).
        if std::fs::read_to_string("/proc/device-tree/model")
            .is_ok_and(|m| m.contains("Raspberry Pi"))
        {
            return;
        }
        let err = RppalLeds::open(&lines_of(&LedConfig::default()), false, 200.0).unwrap_err();
        let cause = std::error::Error::source(&err).expect("rppal's error");
        assert!(
            cause.downcast_ref::<rppal::gpio::Error>().is_some(),
            "{cause:?}"
        );
        let err = err.to_string();
        assert!(err.contains("gpiocdev"), "{err}");
        assert!(err.contains(&cause.to_string()), "{err}");
    }
}
