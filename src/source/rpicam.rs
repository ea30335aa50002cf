//! The Raspberry Pi camera module, through `rpicam-vid` writing raw I420 to a pipe.
//!
//! On Raspberry Pi OS bookworm the camera module is driven by libcamera; a plain V4L2 program only
//! sees raw Bayer nodes. So emotiond starts
//! `rpicam-vid -t 0 -n --codec yuv420 --width W --height H --framerate F -o -`, reads each frame's
//! Y plane and skips its chroma. If the program exits or its pipe breaks, the source reports
//! [`SourceError::Lost`] and the daemon starts it again. So does a program that stalls: one that
//! sends nothing for the frame timeout (5 s) is killed. Either way, the last lines it wrote to its
//! standard error are the reason given.
//!
//! rpicam-vid writes rows at the camera buffer's stride, so the width must be a multiple of 64
//! (640 and 1280 are); other widths are refused rather than read skewed.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{FrameSource, SourceError};
use crate::frame::GrayFrame;

/// What to ask `rpicam-vid` for.
#[derive(Debug, Clone, PartialEq)]
pub struct RpicamRequest {
    /// The program (`rpicam-vid`, or a path to it).
    pub command: PathBuf,
    /// Frame width, a multiple of 64.
    pub width: u32,
    /// Frame height.
    pub height: u32,
    /// Frames per second.
    pub fps: f64,
    /// How long the program may send nothing before it counts as stalled.
    pub frame_timeout: Duration,
}

/// The usual frame timeout, as for V4L2 cameras.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(5);
/// How many of the program's last standard-error lines are kept for the reason it was lost.
const STDERR_LINES: usize = 4;

/// The last lines a child wrote to its standard error, filled by a thread of its own.
type Tail = Arc<Mutex<VecDeque<String>>>;

/// Frames from `rpicam-vid`.
#[derive(Debug)]
pub struct RpicamSource {
    request: RpicamRequest,
    child: Option<(Child, ChildStdout)>,
    stderr: Tail,
    chroma: Vec<u8>,
}

impl RpicamSource {
    /// Starts `rpicam-vid`.
    pub fn open(request: RpicamRequest) -> Result<Self, SourceError> {
        if request.width == 0
            || request.width % 64 != 0
            || request.height == 0
            || request.height % 2 != 0
        {
            return Err(SourceError::open(
                "rpicam",
                format!(
                    "{}x{}: the width must be a multiple of 64 and the height even (rpicam-vid pads rows to 64 bytes), e.g. 640x480",
                    request.width, request.height
                ),
                None,
            ));
        }
        crate::frame::check_size(u64::from(request.width), u64::from(request.height)).map_err(
            |e| {
                let reason = format!("{e} (set source.width and source.height)");
                SourceError::open("rpicam", reason, Some(e.into()))
            },
        )?;
        let chroma = vec![0; 2 * (request.width as usize / 2) * (request.height as usize / 2)];
        let mut s = RpicamSource {
            request,
            child: None,
            stderr: Tail::default(),
            chroma,
        };
        s.start()?;
        Ok(s)
    }

    fn start(&mut self) -> Result<(), SourceError> {
        self.stop();
        let r = &self.request;
        let mut cmd = Command::new(&r.command);
        cmd.args(["-t", "0", "-n", "--codec", "yuv420"])
            .args([
                "--width",
                &r.width.to_string(),
                "--height",
                &r.height.to_string(),
            ])
            .args(["--framerate", &format!("{}", r.fps)])
            .args(["-o", "-"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // Looked up first, so a missing program is always this error, whether or not the platform's
        // spawn reports a failed exec (qemu-user's posix_spawn does not).
        let mut child = find_program(&r.command).and_then(|_| cmd.spawn()).map_err(|e| {
            let reason = format!(
                "cannot start {}: {e} (install it with `sudo apt install rpicam-apps`, or set source.rpicam_command)",
                r.command.display()
            );
            SourceError::open("rpicam", reason, Some(e.into()))
        })?;
        let out = child.stdout.take().expect("stdout was piped");
        let err = child.stderr.take().expect("stderr was piped");
        self.stderr = Tail::default();
        let tail = self.stderr.clone();
        // Ends at the end of the pipe, when the program exits or is killed.
        let _ = std::thread::Builder::new()
            .name("rpicam-stderr".into())
            .spawn(move || keep_tail(err, &tail));
        log::info!(
            "rpicam: started {} (pid {}), {}x{} at {} fps",
            r.command.display(),
            child.id(),
            r.width,
            r.height,
            r.fps
        );
        self.child = Some((child, out));
        Ok(())
    }

    fn stop(&mut self) {
        if let Some((mut child, _)) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the program; the error says `why`, with how it exited and its last words. `cause` is
    /// the read error `why` quotes, if any.
    fn lost(&mut self, why: String, cause: Option<std::io::Error>) -> SourceError {
        let status = self
            .child
            .as_mut()
            .and_then(|(c, _)| c.try_wait().ok().flatten())
            .map(|s| format!(" ({})", s))
            .unwrap_or_default();
        self.stop();
        // The stderr thread reads until the pipe closes; give it a moment to take the last lines.
        for _ in 0..20 {
            if std::sync::Arc::strong_count(&self.stderr) == 1 {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let tail = lock(&self.stderr);
        let said = if tail.is_empty() {
            String::new()
        } else {
            let lines: Vec<&str> = tail.iter().map(String::as_str).collect();
            format!("; it said: {}", lines.join(" | "))
        };
        SourceError::lost(
            "rpicam",
            format!("{why}{status}{said}"),
            cause.map(Into::into),
        )
    }
}

/// How reading a frame from the program's pipe ended, when it did not fill the frame.
enum Fill {
    /// The pipe closed.
    Ended,
    /// Nothing came within the frame timeout.
    Stalled,
    /// The read failed.
    Failed(std::io::Error),
}

/// Fills `buf` from the pipe, waiting at most `timeout` for each piece.
fn fill(out: &mut ChildStdout, buf: &mut [u8], timeout: Duration) -> Result<(), Fill> {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let limit = Timespec {
        tv_sec: timeout.as_secs() as i64,
        tv_nsec: i64::from(timeout.subsec_nanos()),
    };
    let mut done = 0;
    while done < buf.len() {
        let mut fds = [PollFd::new(&*out, PollFlags::IN)];
        match poll(&mut fds, Some(&limit)) {
            Ok(0) => return Err(Fill::Stalled),
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(Fill::Failed(e.into())),
        }
        match out.read(&mut buf[done..]) {
            Ok(0) => return Err(Fill::Ended),
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Fill::Failed(e)),
        }
    }
    Ok(())
}

fn lock(tail: &Mutex<VecDeque<String>>) -> std::sync::MutexGuard<'_, VecDeque<String>> {
    tail.lock().unwrap_or_else(|p| p.into_inner())
}

/// Keeps the last [`STDERR_LINES`] lines of `err` (logged as they come) until the pipe closes.
fn keep_tail(err: std::process::ChildStderr, tail: &Tail) {
    for line in BufReader::new(err).split(b'\n') {
        let Ok(line) = line else { return };
        let line = String::from_utf8_lossy(&line).trim().to_string();
        if line.is_empty() {
            continue;
        }
        log::debug!("rpicam-vid: {line}");
        let mut t = lock(tail);
        if t.len() == STDERR_LINES {
            t.pop_front();
        }
        t.push_back(line.chars().take(200).collect());
    }
}

impl Drop for RpicamSource {
    fn drop(&mut self) {
        self.stop();
    }
}

impl FrameSource for RpicamSource {
    fn name(&self) -> &str {
        "rpicam"
    }

    fn next_frame(&mut self, frame: &mut GrayFrame) -> Result<bool, SourceError> {
        let (w, h) = (self.request.width as usize, self.request.height as usize);
        let timeout = self.request.frame_timeout;
        let Some((_, out)) = &mut self.child else {
            return Err(self.lost("not running".into(), None));
        };
        frame.reset(w, h);
        let result = fill(out, frame.pixels_mut(), timeout)
            .and_then(|()| fill(out, &mut self.chroma, timeout));
        match result {
            Ok(()) => Ok(true),
            Err(Fill::Ended) => Err(self.lost("rpicam-vid stopped sending frames".into(), None)),
            Err(Fill::Stalled) => Err(self.lost(
                format!(
                    "rpicam-vid sent nothing for {} s (stalled; it was stopped)",
                    timeout.as_secs_f64()
                ),
                None,
            )),
            Err(Fill::Failed(e)) => {
                Err(self.lost(format!("reading from rpicam-vid: {e}"), Some(e)))
            }
        }
    }

    fn nominal_fps(&self) -> Option<f64> {
        Some(self.request.fps)
    }
}

/// `command` as the OS would run it: a path with a `/` as it is, a bare name looked up in `PATH`;
/// NotFound when there is no executable file there.
fn find_program(command: &std::path::Path) -> std::io::Result<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let runnable = |p: &std::path::Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    let found = if command.components().count() > 1 || command.is_absolute() {
        runnable(command).then(|| command.to_path_buf())
    } else {
        std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(command))
                .find(|p| runnable(p))
        })
    };
    found.ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
}
