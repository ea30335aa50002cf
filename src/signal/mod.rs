//! Signals out: LEDs, the protocol's event sinks (the serial line, MQTT, a local socket, a web API),
//! and the log.
//!
//! - [`leds`]: what the LEDs should show ([`LedController`]) and the hardware edge ([`LedDriver`]),
//!   with backends for a Raspberry Pi (`rppal`), any Linux GPIO character device (`gpiocdev`,
//!   including the kernel's gpio-sim) and the log (no hardware).
//! - [`led_retry`]: LEDs whose hardware fails mid-run are let go and opened again every 5 s
//!   ([`RetryingLeds`]); the daemon goes on without them meanwhile.
//! - [`protocol`]: the versioned serial line protocol, as text with a checksum or as JSON.
//! - [`fanout`]: the one fan-out that encodes each event once, as text and as JSON, and hands it
//!   to every [`EventSink`].
//! - [`serial`]: where protocol lines go (a tty through `rppal::uart`, or standard output), with
//!   retries when a port fails.
//! - [`socket`]: the local event socket, JSON lines to any number of readers on the same machine.
//! - [`http`]: the kiosk web API: Server-Sent Events, status, an annotated preview and a page.
//! - [`snapshot`]: the faces being followed, which the socket and `/events` send a new reader
//!   first.
//!
//! The log (`log` crate, stderr) never carries protocol lines, and the protocol never carries log
//! lines, so a program reading the serial line sees only the grammar in README.md.
//!
//! # Troubleshooting
//! - *Permission denied* on `/dev/gpiochipN` or `/dev/gpiomem`: add the user to the `gpio` group
//!   (`sudo usermod -aG gpio $USER`, then log in again); the packaged service already runs in it.
//! - *Permission denied* on a tty: the `dialout` group.
//! - *Line busy*: another program (or a device-tree overlay) holds the line; `gpioinfo` names it.

pub mod backends;
pub mod fanout;
pub mod http;
pub mod led_retry;
pub mod leds;
pub mod mqtt;
pub mod protocol;
pub mod serial;
pub mod snapshot;
pub mod socket;

pub use backends::{open_leds, open_retrying_leds};
pub use fanout::{EventSink, FaceBox, Fanout, Lines};
pub use http::{HttpConfig, HttpSink};
pub use led_retry::{LedHealth, RetryingLeds};
pub use leds::{LedController, LedDriver, LedError, LedLine, LedState};
pub use protocol::{Encoder, Event};
pub use serial::{LineSink, RetryingSerial, SerialSink};
pub use socket::{SocketConfig, SocketSink};
