//! Frames in: everything that turns pixels from outside into a [`GrayFrame`].
//!
//! Every source implements [`FrameSource`], which fills a caller-owned frame so a running pipeline
//! reuses one buffer. Sources: still images ([`still`]), folders or lists of images replayed in
//! order ([`images`]), Y4M streams from a file or a pipe ([`y4m`]), V4L2 cameras ([`v4l2`], with the
//! pixel formats in [`luma`]) and the Pi camera module through `rpicam-vid` ([`rpicam`]).
//! [`open`] turns a configured [`SourceSpec`] into one of them. The source's settings and their
//! rules (frame rate, frame size) are in [`settings`].

pub mod images;
pub mod luma;
pub mod rpicam;
pub mod settings;
pub mod still;
pub mod v4l2;
pub mod y4m;

use thiserror::Error;

use crate::frame::GrayFrame;

pub use images::ImageSequence;
pub use rpicam::RpicamSource;
pub use settings::{PixelFormatChoice, SourceConfig, SourceSpec};
pub use v4l2::V4l2Source;
pub use y4m::Y4mSource;

/// Why a source could not give a frame. Every variant names the source.
#[derive(Debug, Error)]
pub enum SourceError {
    /// The source could not be opened (missing file, device, permission).
    #[error("cannot open {source_name}: {reason}")]
    Open {
        /// The source, as `kind:path`.
        source_name: String,
        /// What went wrong.
        reason: String,
    },
    /// The data is not what the source expects (a bad header, a truncated frame).
    #[error("{source_name}: {reason}")]
    Format {
        /// The source, as `kind:path`.
        source_name: String,
        /// What went wrong.
        reason: String,
    },
    /// The device or program went away (unplugged, EIO, no frames, exited); opening the source again
    /// may bring it back.
    #[error("{source_name} lost: {reason}")]
    Lost {
        /// The source, as `kind:path`.
        source_name: String,
        /// What went wrong.
        reason: String,
    },
    /// One frame could not be decoded; the source can go on with the next.
    #[error("{source_name}: {reason}")]
    BadFrame {
        /// The source, as `kind:path`.
        source_name: String,
        /// What went wrong.
        reason: String,
    },
}

impl SourceError {
    /// True when the next call may succeed (one bad frame), false when the stream cannot go on.
    pub fn is_recoverable(&self) -> bool {
        matches!(self, SourceError::BadFrame { .. })
    }
}

/// A stream of gray frames.
pub trait FrameSource {
    /// The source as the user named it (`y4m:replay.y4m`, `images:faces/`), for logs and errors.
    fn name(&self) -> &str;

    /// Fills `frame` with the next frame, reusing its buffer. `Ok(false)` at the end of a finite
    /// source.
    fn next_frame(&mut self, frame: &mut GrayFrame) -> Result<bool, SourceError>;

    /// The frame rate the source states, if any (a Y4M header's `F`).
    fn nominal_fps(&self) -> Option<f64> {
        None
    }
}

/// Opens the source `cfg` names.
pub fn open(cfg: &SourceConfig) -> Result<Box<dyn FrameSource + Send>, SourceError> {
    Ok(match &cfg.input {
        SourceSpec::Images(dir) => Box::new(ImageSequence::from_dir(dir)?),
        SourceSpec::Y4m(path) => Box::new(Y4mSource::open(path)?),
        SourceSpec::V4l2(path) => Box::new(V4l2Source::open(
            path,
            v4l2::V4l2Request {
                width: cfg.width,
                height: cfg.height,
                fps: cfg.fps,
                format: cfg.format,
            },
        )?),
        SourceSpec::Rpicam => Box::new(RpicamSource::open(rpicam::RpicamRequest {
            command: cfg.rpicam_command.clone(),
            width: cfg.width,
            height: cfg.height,
            fps: cfg.fps,
            frame_timeout: rpicam::FRAME_TIMEOUT,
        })?),
    })
}
