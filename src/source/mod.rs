//! Frames in: everything that turns pixels from outside into a [`GrayFrame`].
//!
//! Every source implements [`FrameSource`], which fills a caller-owned frame so a running pipeline
//! reuses one buffer. Sources so far: still images ([`still`]), folders or lists of images replayed in
//! order ([`images`]), and Y4M streams from a file or a pipe ([`y4m`]).

pub mod images;
pub mod still;
pub mod y4m;

use thiserror::Error;

use crate::frame::GrayFrame;

pub use images::ImageSequence;
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
