//! `[serial]`: the event line, and the serial stage's rules for its numbers (the baud rate and the
//! intervals), which the configuration applies.

use serde::{Deserialize, Deserializer};

use crate::config::values;

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
    /// Baud rate, one of [`BAUD_RATES`].
    #[serde(deserialize_with = "read_baud")]
    pub baud: u32,
    /// `text` or `json`.
    pub format: SerialFormat,
    /// Seconds between status lines (0 = none), up to a day.
    #[serde(deserialize_with = "read_seconds")]
    pub status_interval: f64,
    /// Seconds between attempts to reopen a serial port that failed, up to a day.
    #[serde(deserialize_with = "read_seconds")]
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

/// The rates a UART or USB adapter commonly supports.
pub const BAUD_RATES: [u32; 12] = [
    1200, 2400, 4800, 9600, 19_200, 38_400, 57_600, 115_200, 230_400, 460_800, 921_600, 1_000_000,
];

/// The baud rule: one of [`BAUD_RATES`].
pub fn baud(v: i64) -> Result<u32, String> {
    u32::try_from(v)
        .ok()
        .filter(|v| BAUD_RATES.contains(v))
        .ok_or_else(|| format!("{v} is not a supported baud rate; use one of {BAUD_RATES:?}"))
}

fn read_baud<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    values::read(d, baud)
}

fn read_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    values::read(d, values::seconds)
}
