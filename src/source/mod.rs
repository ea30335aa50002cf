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
use crate::Cause;

pub use images::ImageSequence;
pub use rpicam::RpicamSource;
pub use settings::{PixelFormatChoice, SourceConfig, SourceSpec};
pub use v4l2::V4l2Source;
pub use y4m::Y4mSource;

/// Why a source could not give a frame. Every variant names the source, and keeps the error that
/// caused it (the OS's, the decoder's), when there is one, as its `source()`.
#[derive(Debug, Error)]
pub enum SourceError {
    /// The source could not be opened (missing file, device, permission).
    #[error("cannot open {source_name}: {reason}")]
    Open {
        /// The source, as `kind:path`.
        source_name: String,
        /// What went wrong (quoting the cause).
        reason: String,
        /// The underlying error, if any.
        #[source]
        cause: Option<Cause>,
    },
    /// The data is not what the source expects (a bad header, a truncated frame).
    #[error("{source_name}: {reason}")]
    Format {
        /// The source, as `kind:path`.
        source_name: String,
        /// What went wrong (quoting the cause).
        reason: String,
        /// The underlying error, if any.
        #[source]
        cause: Option<Cause>,
    },
    /// The device or program went away (unplugged, EIO, no frames, exited); opening the source again
    /// may bring it back.
    #[error("{source_name} lost: {reason}")]
    Lost {
        /// The source, as `kind:path`.
        source_name: String,
        /// What went wrong (quoting the cause).
        reason: String,
        /// The underlying error, if any (none for a program that stalled or exited).
        #[source]
        cause: Option<Cause>,
    },
    /// One frame could not be decoded; the source can go on with the next.
    #[error("{source_name}: {reason}")]
    BadFrame {
        /// The source, as `kind:path`.
        source_name: String,
        /// What went wrong (quoting the cause).
        reason: String,
        /// The underlying error, if any.
        #[source]
        cause: Option<Cause>,
    },
}

impl SourceError {
    /// True when the next call may succeed (one bad frame), false when the stream cannot go on.
    pub fn is_recoverable(&self) -> bool {
        matches!(self, SourceError::BadFrame { .. })
    }

    /// A [`SourceError::Open`]; `reason` should quote `cause`.
    pub(crate) fn open(name: &str, reason: impl Into<String>, cause: Option<Cause>) -> Self {
        let (source_name, reason) = (name.to_string(), reason.into());
        SourceError::Open {
            source_name,
            reason,
            cause,
        }
    }

    /// A [`SourceError::Format`]; `reason` should quote `cause`.
    pub(crate) fn format(name: &str, reason: impl Into<String>, cause: Option<Cause>) -> Self {
        let (source_name, reason) = (name.to_string(), reason.into());
        SourceError::Format {
            source_name,
            reason,
            cause,
        }
    }

    /// A [`SourceError::Lost`]; `reason` should quote `cause`.
    pub(crate) fn lost(name: &str, reason: impl Into<String>, cause: Option<Cause>) -> Self {
        let (source_name, reason) = (name.to_string(), reason.into());
        SourceError::Lost {
            source_name,
            reason,
            cause,
        }
    }

    /// A [`SourceError::BadFrame`] caused by `cause`, whose text is the reason.
    pub(crate) fn bad_frame(name: &str, cause: impl Into<Cause>) -> Self {
        let cause = cause.into();
        SourceError::BadFrame {
            source_name: name.to_string(),
            reason: cause.to_string(),
            cause: Some(cause),
        }
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

#[cfg(test)]
mod tests {
    use std::error::Error as _;
    use std::io::Cursor;

    use super::*;

    /// The error's source, checked to be quoted in its message (so the CLI prints it once).
    fn cause(e: &SourceError) -> &(dyn std::error::Error + 'static) {
        let cause = e.source().unwrap_or_else(|| panic!("no source: {e}"));
        assert!(e.to_string().contains(&cause.to_string()), "{e} / {cause}");
        cause
    }

    fn io_kind(e: &SourceError) -> std::io::ErrorKind {
        cause(e)
            .downcast_ref::<std::io::Error>()
            .unwrap_or_else(|| panic!("not an io::Error: {e}"))
            .kind()
    }

    #[test]
    fn a_missing_y4m_file_keeps_the_os_error() {
        let dir = tempfile::tempdir().unwrap();
        let e = Y4mSource::open(dir.path().join("nope.y4m")).unwrap_err();
        assert!(matches!(e, SourceError::Open { .. }), "{e}");
        assert_eq!(io_kind(&e), std::io::ErrorKind::NotFound);
    }

    #[test]
    fn a_y4m_read_error_is_kept_and_a_truncated_frame_has_none() {
        let cut = Box::new(Cursor::new(b"YUV4MPEG2 W4 H2".to_vec()));
        let e = Y4mSource::from_reader("y4m:cut", cut).unwrap_err();
        assert!(matches!(e, SourceError::Format { .. }), "{e}");
        assert_eq!(io_kind(&e), std::io::ErrorKind::InvalidData);

        let short = Box::new(Cursor::new(b"YUV4MPEG2 W4 H2 Cmono\nFRAME\n123".to_vec()));
        let mut src = Y4mSource::from_reader("y4m:short", short).unwrap();
        let e = src.next_frame(&mut GrayFrame::default()).unwrap_err();
        assert_eq!(e.to_string(), "y4m:short: frame 1 is truncated");
        assert!(e.source().is_none(), "{e}");
    }

    #[test]
    fn a_missing_image_folder_and_a_broken_png_keep_their_causes() {
        let dir = tempfile::tempdir().unwrap();
        let e = ImageSequence::from_dir(dir.path().join("nope")).unwrap_err();
        assert_eq!(io_kind(&e), std::io::ErrorKind::NotFound);

        std::fs::write(dir.path().join("broken.png"), b"\x89PNG\r\n\x1a\nnot a png").unwrap();
        let mut src = ImageSequence::from_dir(dir.path()).unwrap();
        let e = src.next_frame(&mut GrayFrame::default()).unwrap_err();
        assert!(e.is_recoverable(), "{e}");
        let still = cause(&e)
            .downcast_ref::<still::StillError>()
            .unwrap_or_else(|| panic!("not the image's error: {e}"));
        assert!(matches!(still, still::StillError::Decode { .. }), "{still}");
        let decoder = still.source().expect("the decoder's error");
        assert!(
            decoder.downcast_ref::<image::ImageError>().is_some(),
            "{decoder:?}"
        );
    }

    #[test]
    fn a_missing_v4l2_device_keeps_the_os_error() {
        let request = v4l2::V4l2Request {
            width: 640,
            height: 480,
            fps: 0.0,
            format: PixelFormatChoice::Auto,
        };
        let e = V4l2Source::open("/dev/video-emotiond-none", request).unwrap_err();
        assert!(matches!(e, SourceError::Open { .. }), "{e}");
        assert_eq!(io_kind(&e), std::io::ErrorKind::NotFound);
    }

    #[test]
    fn rpicam_that_cannot_start_keeps_the_os_error() {
        let e = RpicamSource::open(rpicam::RpicamRequest {
            command: "/nonexistent/rpicam-vid-emotiond-none".into(),
            width: 640,
            height: 480,
            fps: 10.0,
            frame_timeout: rpicam::FRAME_TIMEOUT,
        })
        .unwrap_err();
        assert!(matches!(e, SourceError::Open { .. }), "{e}");
        assert_eq!(io_kind(&e), std::io::ErrorKind::NotFound);
    }
}
