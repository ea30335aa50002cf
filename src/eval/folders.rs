//! The other common layout of a labelled face set: one folder per class (`angry/`, `happy/`, ...)
//! holding face images. Each image is a face crop; it is read as gray with OpenCV's weights.

use std::path::{Path, PathBuf};

use super::{BadSample, EvalError, LabeledFace, LabeledFaces, Next, Origin};
use crate::classify::Emotion;
use crate::source::still;

/// The image files under a folder per class, in class order, then by name.
#[derive(Debug)]
pub struct ClassFolders {
    files: Vec<(Emotion, PathBuf)>,
    next: usize,
}

impl ClassFolders {
    /// Lists `root`'s class folders. Every sub-folder must be named after a class (any case); files
    /// beside them and hidden entries are ignored.
    pub fn open(root: &Path) -> Result<Self, EvalError> {
        let data_err = |path: &Path, message: String| EvalError::Data {
            path: path.to_path_buf(),
            message,
            cause: None,
        };
        let io_err = |path: &Path, e: std::io::Error| EvalError::Data {
            path: path.to_path_buf(),
            message: e.to_string(),
            cause: Some(e.into()),
        };
        let entries = std::fs::read_dir(root).map_err(|e| io_err(root, e))?;
        let names: Vec<&str> = Emotion::ALL.iter().map(|e| e.name()).collect();
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_err(root, e))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !path.is_dir() {
                continue;
            }
            let label: Emotion = name.to_ascii_lowercase().parse().map_err(|_| {
                data_err(
                    &path,
                    format!(
                        "not a class folder; the folders must be named {} (give the folder that holds them)",
                        names.join(", ")
                    ),
                )
            })?;
            for file in std::fs::read_dir(&path).map_err(|e| io_err(&path, e))? {
                let file = file.map_err(|e| io_err(&path, e))?;
                if !file.file_name().to_string_lossy().starts_with('.') {
                    files.push((label, file.path()));
                }
            }
        }
        if files.is_empty() {
            return Err(data_err(
                root,
                format!(
                    "no images in class folders; expected sub-folders named {} holding face images",
                    names.join(", ")
                ),
            ));
        }
        files.sort_by(|a, b| (a.0.index(), &a.1).cmp(&(b.0.index(), &b.1)));
        Ok(Self { files, next: 0 })
    }

    /// How many files there are.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether there are none (never, for an opened set).
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

impl LabeledFaces for ClassFolders {
    fn next_face(&mut self, face: &mut LabeledFace) -> Result<Next, EvalError> {
        let Some((label, path)) = self.files.get(self.next) else {
            return Ok(Next::End);
        };
        self.next += 1;
        face.origin = Origin::File(path.clone());
        match still::load_gray(path) {
            Ok(gray) => {
                face.label = *label;
                face.width = gray.width();
                face.height = gray.height();
                face.pixels.clear();
                face.pixels.extend_from_slice(gray.pixels());
                Ok(Next::Face)
            }
            Err(e) => Ok(Next::Bad(BadSample {
                origin: Origin::File(path.clone()),
                reason: e.to_string(),
            })),
        }
    }

    fn progress(&self) -> (u64, u64) {
        (self.next as u64, self.files.len() as u64)
    }

    fn unit(&self) -> &'static str {
        "files"
    }
}
