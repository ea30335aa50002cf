//! Where protocol lines go: a tty (UART, USB adapter, pty) through `rppal::uart`, or standard output;
//! and the retry wrapper that keeps the daemon running while a port is gone. The line's settings
//! and their rules are in [`settings`].

pub mod settings;

use std::io::{self, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::fanout::{EventSink, Lines};
use super::protocol::{Encoder, Event, Value};
pub use settings::{SerialConfig, SerialFormat, BAUD_RATES};

/// Something that takes whole protocol lines.
pub trait LineSink: Send {
    /// Sends one line (with its `\n`). An error means the sink is broken and should be reopened.
    fn send(&mut self, line: &str) -> io::Result<()>;

    /// Waits (briefly) until what was sent has left, before the daemon exits.
    fn finish(&mut self) {}
}

/// A serial path that can never be a serial line.
#[derive(Debug, thiserror::Error)]
pub enum SerialError {
    /// A regular file or a folder: writing it as a UART would fail on every line.
    #[error("serial {path}: not a tty but a {what}; give the serial device (/dev/serial0, /dev/ttyUSB0), or - to write the lines to standard output (emotiond run --serial - > lines.txt)")]
    NotATty {
        /// The path.
        path: PathBuf,
        /// "regular file" or "folder".
        what: &'static str,
    },
}

/// Checks, at start, that `path` can be a serial line: `-`, a device, or nothing yet (a USB
/// adapter that is plugged in later is opened then).
pub fn check_path(path: &str) -> Result<(), SerialError> {
    if path == "-" {
        return Ok(());
    }
    let what = match std::fs::metadata(path) {
        Ok(m) if m.is_file() => "regular file",
        Ok(m) if m.is_dir() => "folder",
        _ => return Ok(()),
    };
    Err(SerialError::NotATty {
        path: path.into(),
        what,
    })
}

/// Lines that may wait for standard output before new ones are refused (and counted as dropped).
const STDOUT_QUEUE: usize = 1024;
/// How long [`LineSink::finish`] waits for queued lines to reach standard output.
const STDOUT_FINISH: Duration = Duration::from_millis(500);

/// Standard output, written by a thread of its own: a reader that stops reading (a full pipe)
/// never holds the pipeline or the stop sequence up. While [`STDOUT_QUEUE`] lines wait, a new one
/// is refused, so the serial retry logic drops and counts it and says so when there is room again.
/// Every `StdoutSink` shares the one writer thread.
#[derive(Debug, Clone)]
pub struct StdoutSink {
    writer: &'static StdoutWriter,
}

#[derive(Debug)]
struct StdoutWriter {
    tx: std::sync::mpsc::SyncSender<String>,
    /// Lines queued and not yet written.
    pending: std::sync::atomic::AtomicUsize,
    /// Set when a write failed (the reader closed the pipe).
    broken: std::sync::atomic::AtomicBool,
}

static STDOUT: std::sync::OnceLock<StdoutWriter> = std::sync::OnceLock::new();

impl StdoutSink {
    /// The shared writer, started on first use.
    pub fn open() -> io::Result<Self> {
        if let Some(writer) = STDOUT.get() {
            return Ok(StdoutSink { writer });
        }
        let (tx, rx) = std::sync::mpsc::sync_channel::<String>(STDOUT_QUEUE);
        let writer = STDOUT.get_or_init(|| StdoutWriter {
            tx,
            pending: Default::default(),
            broken: Default::default(),
        });
        std::thread::Builder::new()
            .name("stdout".into())
            .spawn(move || {
                use std::sync::atomic::Ordering::Relaxed;
                for line in rx {
                    let mut out = io::stdout().lock();
                    if out
                        .write_all(line.as_bytes())
                        .and_then(|()| out.flush())
                        .is_err()
                    {
                        writer.broken.store(true, Relaxed);
                    }
                    writer.pending.fetch_sub(1, Relaxed);
                }
            })?;
        Ok(StdoutSink { writer })
    }
}

impl LineSink for StdoutSink {
    fn send(&mut self, line: &str) -> io::Result<()> {
        use std::sync::atomic::Ordering::Relaxed;
        let w = self.writer;
        if w.broken.load(Relaxed) {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        w.pending.fetch_add(1, Relaxed);
        w.tx.try_send(line.to_string()).map_err(|_| {
            w.pending.fetch_sub(1, Relaxed);
            io::Error::new(
                io::ErrorKind::WouldBlock,
                format!("{STDOUT_QUEUE} lines wait for standard output (is its reader stuck?)"),
            )
        })
    }

    fn finish(&mut self) {
        let until = Instant::now() + STDOUT_FINISH;
        while self
            .writer
            .pending
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
            && Instant::now() < until
        {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// How long a line may wait for room in the tty's queue before the rest of it is dropped.
const WRITE_DEADLINE: Duration = Duration::from_millis(200);

/// A tty opened with `rppal::uart::Uart::with_path`: raw mode, 8N1, no flow control. Writes never
/// block the pipeline for long: a line that finds no room within 200 ms is cut (its checksum then
/// fails, so a reader can tell).
pub struct UartSink {
    path: PathBuf,
    uart: rppal::uart::Uart,
}

impl std::fmt::Debug for UartSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UartSink")
            .field("path", &self.path)
            .finish()
    }
}

impl UartSink {
    /// Opens `path` at `baud`.
    pub fn open(path: impl Into<PathBuf>, baud: u32) -> io::Result<Self> {
        let path = path.into();
        let uart = rppal::uart::Uart::with_path(&path, baud, rppal::uart::Parity::None, 8, 1)
            .map_err(uart_io)?;
        Ok(UartSink { path, uart })
    }
}

fn uart_io(e: rppal::uart::Error) -> io::Error {
    match e {
        rppal::uart::Error::Io(io) => io,
        other => io::Error::other(other.to_string()),
    }
}

impl LineSink for UartSink {
    fn send(&mut self, line: &str) -> io::Result<()> {
        let mut rest = line.as_bytes();
        let deadline = Instant::now() + WRITE_DEADLINE;
        while !rest.is_empty() {
            let n = self.uart.write(rest).map_err(uart_io)?;
            rest = &rest[n..];
            if n == 0 {
                if Instant::now() > deadline {
                    log::debug!("serial {}: queue full, line cut", self.path.display());
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        Ok(())
    }

    fn finish(&mut self) {
        let deadline = Instant::now() + Duration::from_millis(500);
        while self.uart.output_len().is_ok_and(|n| n > 0) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Opens a sink; called again after a failure.
pub type Opener = Box<dyn FnMut() -> io::Result<Box<dyn LineSink>> + Send>;

/// A sink that survives its port: when a send fails (a USB adapter pulled out, EIO) the port is
/// closed, lines are dropped and counted, and opening is tried again every `retry` until it works.
pub struct RetryingSerial {
    name: String,
    open: Opener,
    sink: Option<Box<dyn LineSink>>,
    retry: Duration,
    next_try: Instant,
    dropped: u64,
    reopened: Option<u64>,
}

impl std::fmt::Debug for RetryingSerial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetryingSerial")
            .field("name", &self.name)
            .field("up", &self.sink.is_some())
            .field("dropped", &self.dropped)
            .finish()
    }
}

impl RetryingSerial {
    /// Opens now; a failure is logged and retried later, not returned.
    pub fn new(name: impl Into<String>, mut open: Opener, retry: Duration) -> Self {
        let name = name.into();
        let sink = match open() {
            Ok(s) => Some(s),
            Err(e) => {
                log::warn!(
                    "serial {name}: cannot open: {e}; lines are dropped until it opens (retrying every {retry:?})"
                );
                None
            }
        };
        RetryingSerial {
            name,
            open,
            sink,
            retry,
            next_try: Instant::now() + retry,
            dropped: 0,
            reopened: None,
        }
    }

    /// The tty on `path`, or standard output for `-`.
    pub fn for_path(path: &str, baud: u32, retry: Duration) -> Self {
        if path == "-" {
            return RetryingSerial::new(
                "stdout",
                Box::new(|| Ok(Box::new(StdoutSink::open()?))),
                retry,
            );
        }
        let p = PathBuf::from(path);
        RetryingSerial::new(
            path,
            Box::new(move || Ok(Box::new(UartSink::open(p.clone(), baud)?))),
            retry,
        )
    }

    /// Whether the port is open.
    pub fn is_up(&self) -> bool {
        self.sink.is_some()
    }

    /// Lines dropped since the port last failed.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// After a reopen, once: how many lines were lost while the port was down.
    pub fn take_reopened(&mut self) -> Option<u64> {
        self.reopened.take()
    }

    /// While the port is down and the retry interval has passed, tries to open it again
    /// ([`RetryingSerial::take_reopened`] says when that worked).
    pub fn reopen_if_due(&mut self) {
        if self.sink.is_none() && Instant::now() >= self.next_try {
            self.next_try = Instant::now() + self.retry;
            match (self.open)() {
                Ok(s) => {
                    log::info!(
                        "serial {}: open again after {} dropped lines",
                        self.name,
                        self.dropped
                    );
                    self.sink = Some(s);
                    self.reopened = Some(self.dropped);
                    self.dropped = 0;
                }
                Err(e) => log::debug!("serial {}: still cannot open: {e}", self.name),
            }
        }
    }

    /// Sends `line`, or drops it while the port is down.
    pub fn send(&mut self, line: &str) {
        self.reopen_if_due();
        let Some(sink) = &mut self.sink else {
            self.dropped += 1;
            return;
        };
        if let Err(e) = sink.send(line) {
            log::warn!(
                "serial {}: write failed: {e}; closing it and retrying every {:?}",
                self.name,
                self.retry
            );
            self.sink = None;
            self.dropped += 1;
            self.next_try = Instant::now() + self.retry;
        }
    }

    /// Lets the last lines leave.
    pub fn finish(&mut self) {
        if let Some(s) = &mut self.sink {
            s.finish();
        }
    }
}

/// The serial event line as a sink of the fan-out: each event in the configured form, and after a
/// port comes back, a `serial state=reopened dropped=N` line saying how many were lost.
pub struct SerialSink {
    serial: RetryingSerial,
    format: SerialFormat,
    encoder: Encoder,
}

impl std::fmt::Debug for SerialSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SerialSink")
            .field("serial", &self.serial)
            .field("format", &self.format)
            .finish()
    }
}

impl SerialSink {
    /// Sends `format` lines through `serial`.
    pub fn new(serial: RetryingSerial, format: SerialFormat) -> Self {
        SerialSink {
            serial,
            format,
            encoder: Encoder::new(format),
        }
    }
}

impl EventSink for SerialSink {
    fn name(&self) -> String {
        format!("serial {}", self.serial.name)
    }

    fn event(&mut self, lines: &Lines<'_>) {
        // A port that comes back says what was lost before the first line after the gap.
        self.serial.reopen_if_due();
        if let Some(dropped) = self.serial.take_reopened() {
            let again = Event::new("serial")
                .with("state", Value::Str("reopened"))
                .with("dropped", Value::Int(dropped as i64));
            self.serial.send(self.encoder.encode(&again));
        }
        self.serial.send(lines.form(self.format));
    }

    fn finish(&mut self) {
        self.serial.finish();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A sink into a shared vector that fails on demand, for the retry logic.
    struct Shared(Arc<Mutex<Vec<String>>>, Arc<AtomicU32>);

    impl LineSink for Shared {
        fn send(&mut self, line: &str) -> io::Result<()> {
            if self.1.load(Ordering::SeqCst) > 0 {
                return Err(io::Error::from_raw_os_error(5)); // EIO
            }
            self.0.lock().unwrap().push(line.to_string());
            Ok(())
        }
    }

    #[test]
    fn a_failed_port_drops_lines_and_is_reopened() {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let broken = Arc::new(AtomicU32::new(0));
        let opens = Arc::new(AtomicU32::new(0));
        let (l, b, o) = (lines.clone(), broken.clone(), opens.clone());
        let mut s = RetryingSerial::new(
            "test",
            Box::new(move || {
                o.fetch_add(1, Ordering::SeqCst);
                if b.load(Ordering::SeqCst) > 1 {
                    return Err(io::Error::from_raw_os_error(2));
                }
                b.store(0, Ordering::SeqCst);
                Ok(Box::new(Shared(l.clone(), b.clone())))
            }),
            Duration::ZERO,
        );
        s.send("a\n");
        broken.store(2, Ordering::SeqCst); // writes fail and so does reopening
        s.send("b\n");
        assert!(!s.is_up());
        s.send("c\n");
        broken.store(1, Ordering::SeqCst); // reopening works again
        s.send("d\n");
        assert!(s.is_up());
        assert_eq!(s.take_reopened(), Some(2), "b and c were dropped");
        assert_eq!(s.take_reopened(), None);
        assert_eq!(*lines.lock().unwrap(), ["a\n", "d\n"]);
        assert_eq!(opens.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn the_reopened_line_comes_before_the_first_line_after_the_gap() {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let broken = Arc::new(AtomicU32::new(0));
        let (l, b) = (lines.clone(), broken.clone());
        let serial = RetryingSerial::new(
            "test",
            Box::new(move || {
                b.store(0, Ordering::SeqCst);
                Ok(Box::new(Shared(l.clone(), b.clone())))
            }),
            Duration::ZERO,
        );
        let mut sink = SerialSink::new(serial, SerialFormat::Text);
        let send = |sink: &mut SerialSink, kind| {
            crate::signal::fanout::with_lines(&Event::new(kind), |l| sink.event(l))
        };
        send(&mut sink, "start");
        broken.store(1, Ordering::SeqCst);
        send(&mut sink, "face"); // fails: dropped, the port closed
        send(&mut sink, "stop"); // reopens first
        let lines = lines.lock().unwrap();
        let kinds: Vec<&str> = lines
            .iter()
            .map(|l| l.split(' ').nth(1).unwrap_or(""))
            .collect();
        assert_eq!(kinds, ["start", "serial", "stop"]);
        assert!(
            lines[1].contains("state=reopened dropped=1"),
            "{}",
            lines[1]
        );
    }

    #[test]
    fn a_missing_tty_does_not_stop_the_caller() {
        let mut s =
            RetryingSerial::for_path("/dev/tty-emotiond-none", 115_200, Duration::from_secs(60));
        assert!(!s.is_up());
        s.send("x\n");
        assert_eq!(s.dropped(), 1);
    }
}
