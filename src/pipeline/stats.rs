//! Running figures for the status line: latency percentiles over the last frames, frame rate, CPU
//! temperature and resident memory.

use std::time::Duration;

/// How many recent samples the percentiles cover.
const WINDOW: usize = 256;

/// The last [`WINDOW`] durations, in a ring, with a scratch buffer for percentiles (no allocation
/// after the first fill).
#[derive(Debug, Clone)]
pub struct Latencies {
    ring: Vec<f32>,
    next: usize,
    scratch: Vec<f32>,
}

impl Default for Latencies {
    fn default() -> Self {
        Latencies {
            ring: Vec::with_capacity(WINDOW),
            next: 0,
            scratch: Vec::with_capacity(WINDOW),
        }
    }
}

impl Latencies {
    /// Adds one sample.
    pub fn push(&mut self, d: Duration) {
        let ms = d.as_secs_f32() * 1000.0;
        if self.ring.len() < WINDOW {
            self.ring.push(ms);
        } else {
            self.ring[self.next] = ms;
        }
        self.next = (self.next + 1) % WINDOW;
    }

    /// The `q` quantile (0..=1) of the window in milliseconds (nearest rank), or `None` when empty.
    pub fn quantile_ms(&mut self, q: f32) -> Option<f32> {
        if self.ring.is_empty() {
            return None;
        }
        self.scratch.clear();
        self.scratch.extend_from_slice(&self.ring);
        let rank = ((q.clamp(0.0, 1.0) * self.scratch.len() as f32).ceil() as usize).max(1) - 1;
        let (_, v, _) = self.scratch.select_nth_unstable_by(rank, f32::total_cmp);
        Some(*v)
    }
}

/// The CPU temperature in °C from `/sys/class/thermal/thermal_zone0`, where the board has one.
pub fn cpu_temperature() -> Option<f32> {
    let text = std::fs::read_to_string("/sys/class/thermal/thermal_zone0/temp").ok()?;
    text.trim().parse::<f32>().ok().map(|m| m / 1000.0)
}

/// This process's resident memory in MiB (`VmRSS` in `/proc/self/status`).
pub fn resident_mib() -> Option<f32> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = text.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f32 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank_over_the_window() {
        let mut l = Latencies::default();
        assert_eq!(l.quantile_ms(0.5), None);
        for ms in 1..=10 {
            l.push(Duration::from_millis(ms));
        }
        assert_eq!(l.quantile_ms(0.5), Some(5.0));
        assert_eq!(l.quantile_ms(0.95), Some(10.0));
        assert_eq!(l.quantile_ms(0.0), Some(1.0));
        // The window forgets the oldest samples.
        for _ in 0..WINDOW {
            l.push(Duration::from_millis(100));
        }
        assert_eq!(l.quantile_ms(0.0), Some(100.0));
    }

    #[test]
    fn memory_is_read_on_linux() {
        let rss = resident_mib().unwrap();
        assert!(rss > 0.5 && rss < 4096.0, "{rss}");
    }
}
