//! FER-2013's CSV: a header naming `emotion`, `pixels` and (usually) `Usage`, then one 48x48 face per
//! row as 2304 space-separated gray values. Read as a stream: one record buffer, reused.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::{BadSample, EvalError, LabeledFace, LabeledFaces, Next, Origin};
use crate::classify::Emotion;

/// FER-2013's face side in pixels.
pub const FER_SIDE: usize = 48;
/// Gray values per FER-2013 row.
pub const FER_PIXELS: usize = FER_SIDE * FER_SIDE;

/// Which rows of the CSV to use, by their `Usage` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// `Training` rows.
    Training,
    /// `PublicTest` rows (the original validation set).
    PublicTest,
    /// `PrivateTest` rows (the usual test set; the authors' ~66% is measured here).
    PrivateTest,
    /// Every row, whatever its usage (also the only choice for a CSV without a `Usage` column).
    All,
}

impl Usage {
    /// The name in the CSV (and on the command line).
    pub fn name(self) -> &'static str {
        match self {
            Usage::Training => "Training",
            Usage::PublicTest => "PublicTest",
            Usage::PrivateTest => "PrivateTest",
            Usage::All => "all",
        }
    }
}

impl FromStr for Usage {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [
            Usage::Training,
            Usage::PublicTest,
            Usage::PrivateTest,
            Usage::All,
        ]
        .into_iter()
        .find(|u| u.name().eq_ignore_ascii_case(s.trim()))
        .ok_or_else(|| {
            format!("unknown usage {s:?}; expected Training, PublicTest, PrivateTest or all")
        })
    }
}

/// Streams the faces of a FER-2013 CSV file.
pub struct FerCsv {
    path: PathBuf,
    reader: csv::Reader<BufReader<File>>,
    record: csv::ByteRecord,
    emotion_col: usize,
    pixels_col: usize,
    usage_col: Option<usize>,
    usage: Usage,
    size: u64,
    /// Rows read so far, selected or not.
    pub rows: u64,
    /// Rows left out because of their `Usage`.
    pub other_usage: u64,
}

impl std::fmt::Debug for FerCsv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FerCsv")
            .field("path", &self.path)
            .field("usage", &self.usage)
            .finish_non_exhaustive()
    }
}

impl FerCsv {
    /// Opens `path`, reads its header, and selects the rows of `usage`.
    pub fn open(path: &Path, usage: Usage) -> Result<Self, EvalError> {
        let data_err = |message: String| EvalError::Data {
            path: path.to_path_buf(),
            message,
            cause: None,
        };
        let file = File::open(path).map_err(|e| EvalError::Data {
            path: path.to_path_buf(),
            message: e.to_string(),
            cause: Some(e.into()),
        })?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .from_reader(BufReader::with_capacity(1 << 16, file));
        let header = reader
            .byte_headers()
            .map_err(|e| EvalError::Data {
                path: path.to_path_buf(),
                message: format!("cannot read the CSV header: {e}"),
                cause: Some(e.into()),
            })?
            .clone();
        let column = |name: &str| {
            header.iter().position(|h| {
                std::str::from_utf8(h).is_ok_and(|h| h.trim().eq_ignore_ascii_case(name))
            })
        };
        let names = String::from_utf8_lossy(&header.as_slice()[..header.as_slice().len().min(80)])
            .into_owned();
        let need = |name: &str| {
            column(name).ok_or_else(|| {
                data_err(format!(
                    "the header has no {name:?} column (it reads {names:?}); a FER-2013 CSV starts with emotion,pixels,Usage"
                ))
            })
        };
        let emotion_col = need("emotion")?;
        let pixels_col = need("pixels")?;
        let usage_col = column("Usage");
        if usage_col.is_none() && usage != Usage::All {
            return Err(data_err(format!(
                "the header has no \"Usage\" column, so rows cannot be chosen as {}; pass --usage all",
                usage.name()
            )));
        }
        Ok(Self {
            path: path.to_path_buf(),
            reader,
            record: csv::ByteRecord::new(),
            emotion_col,
            pixels_col,
            usage_col,
            usage,
            size,
            rows: 0,
            other_usage: 0,
        })
    }

    /// Parses the current record into `face`, or says what is wrong with it.
    fn parse(&self, face: &mut LabeledFace) -> Result<(), String> {
        let field = |i: usize, name: &str| {
            let raw = self.record.get(i).ok_or_else(|| {
                format!("{} fields, no {name} (column {})", self.record.len(), i + 1)
            })?;
            std::str::from_utf8(raw).map_err(|_| format!("the {name} field is not UTF-8 text"))
        };
        let emotion = field(self.emotion_col, "emotion")?.trim();
        let class: usize = emotion
            .parse()
            .map_err(|_| format!("emotion {emotion:?} is not a class number 0-6"))?;
        let label = *Emotion::ALL
            .get(class)
            .ok_or_else(|| format!("emotion {class} is outside the classes 0-6"))?;
        let pixels = field(self.pixels_col, "pixels")?;
        face.pixels.clear();
        for (i, value) in pixels.split_ascii_whitespace().enumerate() {
            let v: u8 = value
                .parse()
                .map_err(|_| format!("pixel {} is {value:?}, not a gray level 0-255", i + 1))?;
            face.pixels.push(v);
        }
        if face.pixels.len() != FER_PIXELS {
            return Err(format!(
                "{} pixel values; a 48x48 face has {FER_PIXELS}",
                face.pixels.len()
            ));
        }
        face.label = label;
        face.width = FER_SIDE;
        face.height = FER_SIDE;
        Ok(())
    }

    fn selected(&self) -> Result<bool, String> {
        let (Some(col), Usage::Training | Usage::PublicTest | Usage::PrivateTest) =
            (self.usage_col, self.usage)
        else {
            return Ok(true);
        };
        let raw = self.record.get(col).ok_or_else(|| {
            format!(
                "{} fields, no Usage (column {})",
                self.record.len(),
                col + 1
            )
        })?;
        Ok(std::str::from_utf8(raw).is_ok_and(|u| u.trim() == self.usage.name()))
    }
}

impl LabeledFaces for FerCsv {
    fn next_face(&mut self, face: &mut LabeledFace) -> Result<Next, EvalError> {
        loop {
            let more = self
                .reader
                .read_byte_record(&mut self.record)
                .map_err(|e| EvalError::Data {
                    path: self.path.clone(),
                    message: format!("cannot read the CSV: {e}"),
                    cause: Some(e.into()),
                })?;
            if !more {
                return Ok(Next::End);
            }
            self.rows += 1;
            let line = self.record.position().map_or(0, |p| p.line());
            face.origin = Origin::Line(line);
            match self.selected() {
                Ok(false) => {
                    self.other_usage += 1;
                    continue;
                }
                Ok(true) => {}
                Err(reason) => {
                    return Ok(Next::Bad(BadSample {
                        origin: Origin::Line(line),
                        reason,
                    }))
                }
            }
            return Ok(match self.parse(face) {
                Ok(()) => Next::Face,
                Err(reason) => Next::Bad(BadSample {
                    origin: Origin::Line(line),
                    reason,
                }),
            });
        }
    }

    fn progress(&self) -> (u64, u64) {
        (self.reader.position().byte(), self.size)
    }

    fn unit(&self) -> &'static str {
        "bytes"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn row(class: &str, value: u8, usage: &str) -> String {
        let pixels = vec![value.to_string(); FER_PIXELS].join(" ");
        format!("{class},{pixels},{usage}\n")
    }

    fn read_all(text: &str, usage: Usage) -> (Vec<(Origin, Emotion, u8)>, Vec<BadSample>, FerCsv) {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(text.as_bytes()).unwrap();
        let mut csv = FerCsv::open(file.path(), usage).unwrap();
        let (mut faces, mut bad) = (Vec::new(), Vec::new());
        let mut face = LabeledFace::default();
        loop {
            match csv.next_face(&mut face).unwrap() {
                Next::Face => faces.push((face.origin.clone(), face.label, face.pixels[0])),
                Next::Bad(b) => bad.push(b),
                Next::End => break,
            }
        }
        (faces, bad, csv)
    }

    #[test]
    fn rows_are_selected_by_usage_and_bad_rows_named_by_line() {
        let mut text = String::from("emotion,pixels,Usage\n");
        text += &row("3", 10, "PrivateTest"); // line 2
        text += &row("0", 20, "Training"); // line 3
        text += &row("7", 30, "PrivateTest"); // line 4: class out of range
        text += &format!("6,{},PrivateTest\n", vec!["1"; 2000].join(" ")); // line 5: short
        text += &row("x", 40, "PrivateTest"); // line 6: non-numeric class
        text += &row("6", 50, "PrivateTest").replacen("50", "5o", 1); // line 7
        text += &row("6", 60, "PrivateTest").replacen("60", "256", 1); // line 8
        text += &row("5", 70, "PrivateTest"); // line 9
        let (faces, bad, csv) = read_all(&text, Usage::PrivateTest);
        assert_eq!(
            faces,
            vec![
                (Origin::Line(2), Emotion::Happy, 10),
                (Origin::Line(9), Emotion::Surprise, 70)
            ]
        );
        let lines: Vec<_> = bad.iter().map(|b| b.to_string()).collect();
        assert_eq!(
            lines,
            vec![
                "line 4: emotion 7 is outside the classes 0-6",
                "line 5: 2000 pixel values; a 48x48 face has 2304",
                "line 6: emotion \"x\" is not a class number 0-6",
                "line 7: pixel 1 is \"5o\", not a gray level 0-255",
                "line 8: pixel 1 is \"256\", not a gray level 0-255",
            ]
        );
        assert_eq!((csv.rows, csv.other_usage), (8, 1));
        let (all, _, _) = read_all(&text, Usage::All);
        assert_eq!(all.len(), 3);
    }

    #[test]
    fn kaggle_header_order_and_spaces_are_accepted() {
        // icml_face_data.csv names its columns "emotion, Usage, pixels".
        let pixels = vec!["9"; FER_PIXELS].join(" ");
        let text = format!("emotion, Usage, pixels\n4,PublicTest,{pixels}\n");
        let (faces, bad, _) = read_all(&text, Usage::PublicTest);
        assert_eq!(faces, vec![(Origin::Line(2), Emotion::Sad, 9)]);
        assert!(bad.is_empty());
    }

    #[test]
    fn a_missing_csv_keeps_the_os_error() {
        let dir = tempfile::tempdir().unwrap();
        let e = FerCsv::open(&dir.path().join("nope.csv"), Usage::All).unwrap_err();
        assert!(matches!(e, EvalError::Data { .. }), "{e}");
        let cause = std::error::Error::source(&e).expect("the OS's error");
        let io = cause
            .downcast_ref::<std::io::Error>()
            .expect("an io::Error");
        assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
        assert!(e.to_string().contains(&cause.to_string()), "{e}");
    }

    #[test]
    fn a_header_without_the_columns_is_refused_with_the_fix() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(b"pixels\n1 2 3\n").unwrap();
        let e = FerCsv::open(file.path(), Usage::All)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no \"emotion\" column"), "{e}");
        file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(b"emotion,pixels\n").unwrap();
        let e = FerCsv::open(file.path(), Usage::PrivateTest)
            .unwrap_err()
            .to_string();
        assert!(e.contains("pass --usage all"), "{e}");
        assert!(FerCsv::open(file.path(), Usage::All).is_ok());
    }
}
