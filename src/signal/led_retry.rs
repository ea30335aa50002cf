//! LEDs that survive their hardware: when a write fails (the gpiochip unbound or removed, a USB GPIO
//! adapter pulled out) the lines are let go, the daemon goes on without LEDs, and opening them is
//! tried again every few seconds until it works.

use std::time::Duration;

use super::leds::{LedController, LedError, LedState};

/// How the LEDs are opened again after a failure: `Ok(None)` means "no LEDs configured".
pub type LedOpener = Box<dyn FnMut() -> Result<Option<LedController>, LedError> + Send>;

/// How long after a failure opening the LEDs is tried again.
pub const LED_RETRY: Duration = Duration::from_secs(5);
/// How often the driver is asked whether its hardware is still there ([`LedController::check`]),
/// so that hardware that went away is noticed even while the LEDs show the same thing for hours.
pub const LED_REFRESH: Duration = Duration::from_secs(1);

/// A change in the LEDs' health, for the daemon to report (`leds state=lost` / `leds state=ok`).
#[derive(Debug)]
pub enum LedHealth {
    /// A write failed: the lines were let go and the daemon goes on without them.
    Lost(LedError),
    /// Opening them again worked; the string names the backend and device.
    Back(String),
}

/// An [`LedController`] that is let go when it fails and opened again every `retry`.
pub struct RetryingLeds {
    leds: Option<LedController>,
    name: String,
    open: LedOpener,
    retry: Duration,
    /// When (time since start) to try opening again, while the LEDs are down.
    retry_at: Option<Duration>,
    /// When (time since start) the driver was last checked.
    refreshed_at: Duration,
}

impl std::fmt::Debug for RetryingLeds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetryingLeds")
            .field("name", &self.name)
            .field("up", &self.leds.is_some())
            .finish()
    }
}

impl RetryingLeds {
    /// Wraps LEDs that are open now; `open` opens them again after a failure.
    pub fn new(leds: LedController, open: LedOpener, retry: Duration) -> Self {
        RetryingLeds {
            name: leds.describe(),
            leds: Some(leds),
            open,
            retry,
            retry_at: None,
            refreshed_at: Duration::ZERO,
        }
    }

    /// The backend and device (`gpiocdev:/dev/gpiochip0`), also while they are down.
    pub fn describe(&self) -> &str {
        &self.name
    }

    /// How long after a failure opening the LEDs is tried again.
    pub fn retry(&self) -> Duration {
        self.retry
    }

    /// Whether the LEDs are open.
    pub fn is_up(&self) -> bool {
        self.leds.is_some()
    }

    /// The controller while the LEDs are open (for the lamp test).
    pub fn controller(&mut self) -> Option<&mut LedController> {
        self.leds.as_mut()
    }

    /// Shows `state` (`now` is the time since start) and says when the LEDs were lost or came back.
    /// While they are down nothing is shown; every `retry` they are opened again.
    pub fn show(&mut self, state: LedState, now: Duration) -> Option<LedHealth> {
        let mut back = None;
        if self.leds.is_none() {
            match self.retry_at {
                Some(at) if now >= at => {}
                _ => return None,
            }
            match (self.open)() {
                Ok(Some(leds)) => {
                    self.name = leds.describe();
                    self.leds = Some(leds);
                    self.retry_at = None;
                    self.refreshed_at = now;
                    back = Some(LedHealth::Back(self.name.clone()));
                }
                // The opener says there are no LEDs now: nothing to try again.
                Ok(None) => {
                    self.retry_at = None;
                    return None;
                }
                Err(e) => {
                    log::debug!("LEDs still down: {e}");
                    self.retry_at = Some(now + self.retry);
                    return None;
                }
            }
        }
        let leds = self.leds.as_mut()?;
        let mut result = leds.show(state, now);
        if result.is_ok() && now.saturating_sub(self.refreshed_at) >= LED_REFRESH {
            self.refreshed_at = now;
            result = leds.check();
        }
        match result {
            Ok(()) => back,
            Err(e) => {
                // Dropping the controller releases the lines (a gone chip keeps nothing).
                self.leds = None;
                self.retry_at = Some(now + self.retry);
                Some(LedHealth::Lost(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::classify::Emotion;
    use crate::signal::leds::LedConfig;
    use crate::signal::leds::LedDriver;

    /// A driver whose hardware can be taken away: writes fail while `gone` is set.
    struct Unpluggable {
        gone: Arc<AtomicBool>,
        writes: Arc<Mutex<Vec<Vec<f32>>>>,
    }

    impl LedDriver for Unpluggable {
        fn describe(&self) -> String {
            "unpluggable".into()
        }
        fn write(&mut self, levels: &[f32]) -> Result<(), LedError> {
            self.check()?;
            self.writes.lock().unwrap().push(levels.to_vec());
            Ok(())
        }
        fn check(&mut self) -> Result<(), LedError> {
            if self.gone.load(Ordering::Relaxed) {
                return Err(LedError::Write {
                    device: self.describe(),
                    line: "lines [0]".into(),
                    reason: "No such device (os error 19)".into(),
                    cause: std::io::Error::from_raw_os_error(19).into(),
                });
            }
            Ok(())
        }
    }

    #[test]
    fn a_failed_write_lets_the_leds_go_and_they_are_opened_again_when_the_chip_is_back() {
        let gone = Arc::new(AtomicBool::new(false));
        let writes = Arc::new(Mutex::new(Vec::new()));
        let opens = Arc::new(Mutex::new(0));
        let open = {
            let (gone, writes, opens) = (gone.clone(), writes.clone(), opens.clone());
            move || {
                *opens.lock().unwrap() += 1;
                let driver = Unpluggable {
                    gone: gone.clone(),
                    writes: writes.clone(),
                };
                LedController::new(&LedConfig::default(), Box::new(driver)).map(Some)
            }
        };
        let mut open: LedOpener = Box::new(open);
        let first = open().unwrap().unwrap();
        let mut leds = RetryingLeds::new(first, open, LED_RETRY);
        let happy = LedState::Emotion(Emotion::Happy, 0.9);
        let s = Duration::from_secs;
        assert!(leds.show(happy, s(0)).is_none());
        // The same state, unchanged: the chip goes, and the check notices within a second.
        gone.store(true, Ordering::Relaxed);
        assert!(leds.show(happy, Duration::from_millis(500)).is_none());
        assert!(matches!(
            leds.show(happy, s(1)),
            Some(LedHealth::Lost(LedError::Write { .. }))
        ));
        assert!(!leds.is_up());
        assert_eq!(leds.describe(), "unpluggable");
        // Down: nothing is tried before the retry interval, and a failed open waits another one.
        assert!(leds.show(happy, s(3)).is_none());
        assert_eq!(*opens.lock().unwrap(), 1);
        assert!(leds.show(happy, s(6)).is_none());
        assert_eq!(*opens.lock().unwrap(), 2);
        assert!(leds.show(happy, s(7)).is_none());
        assert_eq!(*opens.lock().unwrap(), 2);
        // Back: reported once, and the state is shown at once.
        gone.store(false, Ordering::Relaxed);
        assert!(matches!(leds.show(happy, s(11)), Some(LedHealth::Back(n)) if n == "unpluggable"));
        assert!(leds.is_up());
        assert!(leds.show(happy, s(11)).is_none());
        let writes = writes.lock().unwrap();
        let lit = [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0];
        // Opened (off), happy; after the reopen: off, then happy again.
        assert_eq!(
            *writes,
            [vec![0.0; 7], lit.to_vec(), vec![0.0; 7], lit.to_vec()]
        );
    }
}
