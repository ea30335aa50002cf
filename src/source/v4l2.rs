//! USB (UVC) webcams and other V4L2 capture devices, through the `v4l` crate with mmap streaming.
//!
//! The source asks for the configured size and rate in the best format the device offers (GREY,
//! NV12, YU12, YUYV, then MJPEG; or the one configured) and takes what the driver settles on. A
//! device that stops giving frames (unplugged: ENODEV; EIO; no frame for 5 s) gives
//! [`SourceError::Lost`], and opening it again (the daemon does, with backoff) starts from scratch.
//!
//! # Troubleshooting
//! - *Permission denied*: the user needs the `video` group.
//! - A Raspberry Pi camera module on `/dev/video0` gives raw Bayer only on Raspberry Pi OS bookworm:
//!   use the `rpicam` source for it.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use v4l::buffer::Type;
use v4l::io::mmap::Stream;
use v4l::io::traits::CaptureStream;
use v4l::video::Capture;
use v4l::{Device, FourCC};

use super::luma::{luma_into, PixelFormat};
use super::{FrameSource, PixelFormatChoice, SourceError};
use crate::frame::GrayFrame;

/// How long to wait for a frame before the device counts as lost.
const FRAME_TIMEOUT: Duration = Duration::from_secs(5);

/// What to ask the camera for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct V4l2Request {
    /// Frame width.
    pub width: u32,
    /// Frame height.
    pub height: u32,
    /// Frames per second (0 = the driver's default).
    pub fps: f64,
    /// Pixel format, or `Auto`.
    pub format: PixelFormatChoice,
}

struct Streaming {
    stream: Stream<'static>,
    format: PixelFormat,
    width: usize,
    height: usize,
    stride: usize,
    _device: Device,
}

/// Frames from a V4L2 capture device.
pub struct V4l2Source {
    name: String,
    path: PathBuf,
    request: V4l2Request,
    live: Option<Streaming>,
    fps: Option<f64>,
}

impl std::fmt::Debug for V4l2Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("V4l2Source")
            .field("name", &self.name)
            .field("open", &self.live.is_some())
            .finish()
    }
}

fn choice_format(c: PixelFormatChoice) -> Option<PixelFormat> {
    match c {
        PixelFormatChoice::Auto => None,
        PixelFormatChoice::Grey => Some(PixelFormat::Grey),
        PixelFormatChoice::Yuyv => Some(PixelFormat::Yuyv),
        PixelFormatChoice::Nv12 => Some(PixelFormat::Nv12),
        PixelFormatChoice::Yu12 => Some(PixelFormat::Yu12),
        PixelFormatChoice::Mjpeg => Some(PixelFormat::Mjpeg),
    }
}

impl V4l2Source {
    /// Opens `path` and starts streaming.
    pub fn open(path: impl AsRef<Path>, request: V4l2Request) -> Result<Self, SourceError> {
        let path = path.as_ref().to_path_buf();
        let mut s = V4l2Source {
            name: format!("v4l2:{}", path.display()),
            path,
            request,
            live: None,
            fps: None,
        };
        s.start()?;
        Ok(s)
    }

    fn open_err(&self, what: &str, e: io::Error) -> SourceError {
        let hint = match e.raw_os_error() {
            Some(2) => " (no such device: is the camera plugged in? `emotiond cameras` lists them)",
            Some(13) => " (permission denied: add the user to the video group)",
            Some(16) => " (busy: another program is using the camera)",
            _ => "",
        };
        SourceError::open(&self.name, format!("{what}: {e}{hint}"), Some(e.into()))
    }

    fn start(&mut self) -> Result<(), SourceError> {
        self.live = None;
        let dev = Device::with_path(&self.path).map_err(|e| self.open_err("open", e))?;
        let caps = dev
            .query_caps()
            .map_err(|e| self.open_err("VIDIOC_QUERYCAP", e))?;
        if !caps
            .capabilities
            .contains(v4l::capability::Flags::VIDEO_CAPTURE)
        {
            return Err(SourceError::open(
                &self.name,
                format!(
                    "{} ({}) is not a video capture device; `emotiond cameras` lists the ones that are",
                    caps.card, caps.driver
                ),
                None,
            ));
        }
        let offered: Vec<PixelFormat> = dev
            .enum_formats()
            .map_err(|e| self.open_err("VIDIOC_ENUM_FMT", e))?
            .iter()
            .filter_map(|d| PixelFormat::from_fourcc(d.fourcc.repr))
            .collect();
        let format = match choice_format(self.request.format) {
            Some(f) if offered.contains(&f) => f,
            Some(f) => {
                return Err(SourceError::open(
                    &self.name,
                    format!(
                        "the camera does not offer {:?}; it offers {offered:?} (set source.format = \"auto\")",
                        f
                    ),
                    None,
                ))
            }
            None => PixelFormat::PREFERENCE
                .into_iter()
                .find(|f| offered.contains(f))
                .ok_or_else(|| {
                    let reason = "the camera offers none of GREY, NV12, YU12, YUYV or MJPEG";
                    SourceError::open(&self.name, reason, None)
                })?,
        };
        let mut fmt = dev.format().map_err(|e| self.open_err("VIDIOC_G_FMT", e))?;
        fmt.width = self.request.width;
        fmt.height = self.request.height;
        fmt.fourcc = FourCC::new(&format.fourcc());
        let got = dev
            .set_format(&fmt)
            .map_err(|e| self.open_err("VIDIOC_S_FMT", e))?;
        if got.fourcc.repr != format.fourcc() {
            let reason = format!("the driver refused {:?} and gave {}", format, got.fourcc);
            return Err(SourceError::open(&self.name, reason, None));
        }
        if self.request.fps > 0.0 {
            let params = v4l::video::capture::Parameters::with_fps(self.request.fps.round() as u32);
            match dev.set_params(&params) {
                Ok(p) if p.interval.numerator > 0 => {
                    self.fps =
                        Some(f64::from(p.interval.denominator) / f64::from(p.interval.numerator));
                }
                Ok(_) => {}
                Err(e) => log::warn!("{}: cannot set {} fps: {e}", self.name, self.request.fps),
            }
        }
        if (got.width, got.height) != (self.request.width, self.request.height) {
            log::info!(
                "{}: asked for {}x{}, the driver gives {}x{}",
                self.name,
                self.request.width,
                self.request.height,
                got.width,
                got.height
            );
        }
        // The driver's size, not the one asked for, is what each frame will be.
        crate::frame::check_size(u64::from(got.width), u64::from(got.height)).map_err(|e| {
            let reason = format!("the driver gives {e} (set source.width and source.height)");
            SourceError::open(&self.name, reason, Some(e.into()))
        })?;
        let mut stream = Stream::with_buffers(&dev, Type::VideoCapture, 4)
            .map_err(|e| self.open_err("VIDIOC_REQBUFS", e))?;
        stream.set_timeout(FRAME_TIMEOUT);
        log::info!(
            "{}: {} {}x{} {:?}, {}",
            self.name,
            caps.card,
            got.width,
            got.height,
            format,
            self.fps
                .map_or("driver's rate".into(), |f| format!("{f:.1} fps"))
        );
        self.live = Some(Streaming {
            stream,
            format,
            width: got.width as usize,
            height: got.height as usize,
            stride: got.stride as usize,
            _device: dev,
        });
        Ok(())
    }
}

impl FrameSource for V4l2Source {
    fn name(&self) -> &str {
        &self.name
    }

    fn next_frame(&mut self, frame: &mut GrayFrame) -> Result<bool, SourceError> {
        let Some(live) = &mut self.live else {
            return Err(SourceError::lost(&self.name, "not open", None));
        };
        let (format, w, h, stride) = (live.format, live.width, live.height, live.stride);
        match live.stream.next() {
            Ok((buf, meta)) => {
                let used = (meta.bytesused as usize).min(buf.len());
                let data = if used > 0 { &buf[..used] } else { buf };
                match luma_into(format, data, w, h, stride, frame) {
                    Ok(()) => Ok(true),
                    Err(e) => Err(SourceError::bad_frame(&self.name, e)),
                }
            }
            Err(e) => {
                self.live = None;
                Err(SourceError::lost(
                    &self.name,
                    format!("no frame: {e}"),
                    Some(e.into()),
                ))
            }
        }
    }

    fn nominal_fps(&self) -> Option<f64> {
        self.fps
    }
}
