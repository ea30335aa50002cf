//! The Raspberry Pi camera module, through `rpicam-vid` writing raw I420 to a pipe.
//!
//! On Raspberry Pi OS bookworm the camera module is driven by libcamera; a plain V4L2 program only
//! sees raw Bayer nodes. So emotiond starts
//! `rpicam-vid -t 0 -n --codec yuv420 --width W --height H --framerate F -o -`, reads each frame's
//! Y plane and skips its chroma. If the program exits or its pipe breaks, the source reports
//! [`SourceError::Lost`] and the daemon starts it again.
//!
//! rpicam-vid writes rows at the camera buffer's stride, so the width must be a multiple of 64
//! (640 and 1280 are); other widths are refused rather than read skewed.

use std::io::{BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};

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
}

/// Frames from `rpicam-vid`.
#[derive(Debug)]
pub struct RpicamSource {
    request: RpicamRequest,
    child: Option<(Child, BufReader<ChildStdout>)>,
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
            return Err(SourceError::Open {
                source_name: "rpicam".into(),
                reason: format!(
                    "{}x{}: the width must be a multiple of 64 and the height even (rpicam-vid pads rows to 64 bytes), e.g. 640x480",
                    request.width, request.height
                ),
            });
        }
        let chroma = vec![0; 2 * (request.width as usize / 2) * (request.height as usize / 2)];
        let mut s = RpicamSource {
            request,
            child: None,
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
            .stderr(Stdio::null());
        let mut child = cmd.spawn().map_err(|e| SourceError::Open {
            source_name: "rpicam".into(),
            reason: format!(
                "cannot start {}: {e} (install it with `sudo apt install rpicam-apps`, or set source.rpicam_command)",
                r.command.display()
            ),
        })?;
        let out = child.stdout.take().expect("stdout was piped");
        log::info!(
            "rpicam: started {} (pid {}), {}x{} at {} fps",
            r.command.display(),
            child.id(),
            r.width,
            r.height,
            r.fps
        );
        self.child = Some((child, BufReader::with_capacity(1 << 16, out)));
        Ok(())
    }

    fn stop(&mut self) {
        if let Some((mut child, _)) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn lost(&mut self, why: String) -> SourceError {
        let status = self
            .child
            .as_mut()
            .and_then(|(c, _)| c.try_wait().ok().flatten())
            .map(|s| format!(" ({})", s))
            .unwrap_or_default();
        self.stop();
        SourceError::Lost {
            source_name: "rpicam".into(),
            reason: format!("{why}{status}"),
        }
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
        let Some((_, reader)) = &mut self.child else {
            return Err(self.lost("not running".into()));
        };
        frame.reset(w, h);
        let result = reader
            .read_exact(frame.pixels_mut())
            .and_then(|()| reader.read_exact(&mut self.chroma));
        match result {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                Err(self.lost("rpicam-vid stopped sending frames".into()))
            }
            Err(e) => Err(self.lost(format!("reading from rpicam-vid: {e}"))),
        }
    }

    fn nominal_fps(&self) -> Option<f64> {
        Some(self.request.fps)
    }
}
