//! Image files replayed as a stream: a folder (its PNG and JPEG files in name order) or a list.

use std::path::{Path, PathBuf};

use super::{still, FrameSource, SourceError};
use crate::frame::GrayFrame;

/// A finite sequence of image files, read one per frame.
#[derive(Debug)]
pub struct ImageSequence {
    name: String,
    paths: Vec<PathBuf>,
    next: usize,
}

fn is_image(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
}

impl ImageSequence {
    /// The PNG and JPEG files in `dir`, sorted by file name.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self, SourceError> {
        let dir = dir.as_ref();
        let name = format!("images:{}", dir.display());
        let open_err = |e: std::io::Error| SourceError::open(&name, e.to_string(), Some(e.into()));
        let entries = std::fs::read_dir(dir).map_err(open_err)?;
        let mut paths = Vec::new();
        for entry in entries {
            let path = entry.map_err(open_err)?.path();
            if path.is_file() && is_image(&path) {
                paths.push(path);
            }
        }
        if paths.is_empty() {
            let reason = "the folder holds no .png, .jpg or .jpeg files";
            return Err(SourceError::open(&name, reason, None));
        }
        paths.sort();
        Ok(Self {
            name,
            paths,
            next: 0,
        })
    }

    /// The given files, in the given order.
    pub fn from_paths(paths: Vec<PathBuf>) -> Result<Self, SourceError> {
        let name = match paths.as_slice() {
            [one] => format!("images:{}", one.display()),
            _ => format!("images:{} files", paths.len()),
        };
        if paths.is_empty() {
            return Err(SourceError::open(&name, "no image files given", None));
        }
        Ok(Self {
            name,
            paths,
            next: 0,
        })
    }

    /// The files, in replay order.
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }
}

impl FrameSource for ImageSequence {
    fn name(&self) -> &str {
        &self.name
    }

    /// Decodes the next file. A file that cannot be read or decoded is a recoverable
    /// [`SourceError::BadFrame`]: the sequence moves on to the next file.
    fn next_frame(&mut self, frame: &mut GrayFrame) -> Result<bool, SourceError> {
        let Some(path) = self.paths.get(self.next) else {
            return Ok(false);
        };
        self.next += 1;
        still::load_gray_into(path, frame).map_err(|e| SourceError::bad_frame(&self.name, e))?;
        Ok(true)
    }
}
