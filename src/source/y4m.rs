//! YUV4MPEG2 (`.y4m`) streams from a file or a pipe: what `ffmpeg -f yuv4mpegpipe` and gstreamer's
//! `y4menc` write.
//!
//! Only the luma plane is kept (the detector and the classifier work on gray); the chroma planes are
//! read past. 8-bit colour spaces are supported: `420jpeg`, `420paldv`, `420mpeg2`, `420`, `422`,
//! `444` and `mono` (no `C` tag means 4:2:0). Deeper samples (`420p10`, ...) are refused with the
//! ffmpeg option that avoids them.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use super::{FrameSource, SourceError};
use crate::frame::GrayFrame;

/// Longest header or frame line accepted (the spec sets no limit; real ones are < 100 bytes).
const MAX_LINE: usize = 4096;

/// Chroma layout of a stream: how many chroma bytes follow each luma plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chroma {
    /// 4:2:0: two planes of ceil(W/2) x ceil(H/2).
    C420,
    /// 4:2:2: two planes of ceil(W/2) x H.
    C422,
    /// 4:4:4: two planes of W x H.
    C444,
    /// Luma only.
    Mono,
}

impl Chroma {
    fn parse(tag: &str) -> Option<Chroma> {
        match tag {
            "420jpeg" | "420paldv" | "420mpeg2" | "420" => Some(Chroma::C420),
            "422" => Some(Chroma::C422),
            "444" => Some(Chroma::C444),
            "mono" => Some(Chroma::Mono),
            _ => None,
        }
    }

    /// Chroma bytes per frame of `w x h`.
    pub fn bytes(self, w: usize, h: usize) -> usize {
        match self {
            Chroma::C420 => 2 * w.div_ceil(2) * h.div_ceil(2),
            Chroma::C422 => 2 * w.div_ceil(2) * h,
            Chroma::C444 => 2 * w * h,
            Chroma::Mono => 0,
        }
    }
}

/// A Y4M stream's header fields that matter here.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Y4mHeader {
    /// Frame width.
    pub width: usize,
    /// Frame height.
    pub height: usize,
    /// Frames per second, when the header states a rate.
    pub fps: Option<f64>,
    /// Chroma layout.
    pub chroma: Chroma,
}

/// Frames from a Y4M stream.
pub struct Y4mSource {
    name: String,
    reader: Box<dyn BufRead + Send>,
    header: Y4mHeader,
    line: Vec<u8>,
    frames: u64,
}

impl std::fmt::Debug for Y4mSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Y4mSource")
            .field("name", &self.name)
            .field("header", &self.header)
            .field("frames", &self.frames)
            .finish_non_exhaustive()
    }
}

impl Y4mSource {
    /// Opens a Y4M file, or standard input for `-`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, SourceError> {
        let path = path.as_ref();
        if path == Path::new("-") {
            return Self::from_reader("y4m:-", Box::new(BufReader::new(std::io::stdin())));
        }
        let name = format!("y4m:{}", path.display());
        let file = File::open(path)
            .map_err(|e| SourceError::open(&name, e.to_string(), Some(e.into())))?;
        Self::from_reader(&name, Box::new(BufReader::with_capacity(1 << 16, file)))
    }

    /// Reads the stream header from `reader`; `name` names the stream in errors.
    pub fn from_reader(
        name: &str,
        mut reader: Box<dyn BufRead + Send>,
    ) -> Result<Self, SourceError> {
        let mut line = Vec::new();
        let bad = |reason: String| SourceError::format(name, reason, None);
        let n = read_line(&mut reader, &mut line)
            .map_err(|e| SourceError::format(name, e.to_string(), Some(e.into())))?;
        if n == 0 {
            return Err(bad("the stream is empty (no YUV4MPEG2 header)".into()));
        }
        let header = parse_header(&line).map_err(bad)?;
        Ok(Self {
            name: name.to_string(),
            reader,
            header,
            line,
            frames: 0,
        })
    }

    /// The stream's header.
    pub fn header(&self) -> Y4mHeader {
        self.header
    }
}

/// Reads one `\n`-terminated line (without the `\n`) of at most [`MAX_LINE`] bytes; returns the
/// number of bytes consumed, 0 at end of stream.
fn read_line(reader: &mut dyn BufRead, line: &mut Vec<u8>) -> std::io::Result<usize> {
    line.clear();
    let n = reader.take(MAX_LINE as u64 + 1).read_until(b'\n', line)?;
    if n > 0 && line.last() != Some(&b'\n') {
        let what = if n > MAX_LINE {
            "a header line longer than 4096 bytes"
        } else {
            "a header line cut off by the end of the stream"
        };
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, what));
    }
    line.pop();
    Ok(n)
}

fn parse_header(line: &[u8]) -> Result<Y4mHeader, String> {
    let text = std::str::from_utf8(line).map_err(|_| "the header is not text".to_string())?;
    let mut tags = text.split(' ');
    if tags.next() != Some("YUV4MPEG2") {
        return Err("not a Y4M stream: it does not start with \"YUV4MPEG2 \"".into());
    }
    let (mut width, mut height, mut fps, mut chroma) = (None, None, None, Chroma::C420);
    for tag in tags.filter(|t| !t.is_empty()) {
        // The key is the tag's first character, which may be any character in a broken header.
        let mut chars = tag.chars();
        let key = chars.next().unwrap_or(' ');
        let value = chars.as_str();
        match key {
            'W' => width = value.parse::<u64>().ok().filter(|&v| v > 0),
            'H' => height = value.parse::<u64>().ok().filter(|&v| v > 0),
            'F' => {
                fps = value
                    .split_once(':')
                    .and_then(|(n, d)| Some((n.parse::<f64>().ok()?, d.parse::<f64>().ok()?)))
                    .filter(|&(n, d)| n > 0.0 && d > 0.0)
                    .map(|(n, d)| n / d)
            }
            'C' => {
                chroma = Chroma::parse(value).ok_or_else(|| {
                    format!(
                    "colour space C{value} is not supported: emotiond reads 8-bit 4:2:0, 4:2:2, \
                         4:4:4 or mono (e.g. ffmpeg -pix_fmt yuv420p)"
                )
                })?
            }
            'I' if value != "p" && value != "?" => {
                log::warn!("Y4M stream is interlaced (I{value}); fields are used as one frame");
            }
            _ => {}
        }
    }
    let (width, height) = match (width, height) {
        (Some(w), Some(h)) => (w, h),
        (None, _) => return Err("the header has no valid width W".into()),
        (_, None) => return Err("the header has no valid height H".into()),
    };
    let (width, height) = crate::frame::check_size(width, height).map_err(|e| e.to_string())?;
    Ok(Y4mHeader {
        width,
        height,
        fps,
        chroma,
    })
}

impl FrameSource for Y4mSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn next_frame(&mut self, frame: &mut GrayFrame) -> Result<bool, SourceError> {
        let frame_no = self.frames + 1;
        let n = read_line(&mut self.reader, &mut self.line).map_err(|e| {
            SourceError::format(&self.name, format!("frame {frame_no}: {e}"), Some(e.into()))
        })?;
        if n == 0 {
            return Ok(false);
        }
        if !self.line.starts_with(b"FRAME") {
            let found = String::from_utf8_lossy(&self.line[..self.line.len().min(16)]);
            return Err(SourceError::format(
                &self.name,
                format!("frame {frame_no}: expected a FRAME line, found {found:?}"),
                None,
            ));
        }
        let Y4mHeader {
            width,
            height,
            chroma,
            ..
        } = self.header;
        frame.reset(width, height);
        // The end of the stream is said in words, not quoted, so it is not kept as the cause.
        let truncated = |e: std::io::Error| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                SourceError::format(&self.name, format!("frame {frame_no} is truncated"), None)
            } else {
                let reason = format!("frame {frame_no}: {e}");
                SourceError::format(&self.name, reason, Some(e.into()))
            }
        };
        self.reader
            .read_exact(frame.pixels_mut())
            .map_err(truncated)?;
        let skip = chroma.bytes(width, height) as u64;
        let skipped = std::io::copy(&mut (&mut self.reader).take(skip), &mut std::io::sink())
            .map_err(truncated)?;
        if skipped != skip {
            return Err(truncated(std::io::ErrorKind::UnexpectedEof.into()));
        }
        self.frames += 1;
        Ok(true)
    }

    fn nominal_fps(&self) -> Option<f64> {
        self.header.fps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chroma_sizes_round_up() {
        assert_eq!(Chroma::C420.bytes(5, 3), 2 * 3 * 2);
        assert_eq!(Chroma::C422.bytes(5, 3), 2 * 3 * 3);
        assert_eq!(Chroma::C444.bytes(5, 3), 30);
        assert_eq!(Chroma::Mono.bytes(5, 3), 0);
    }

    #[test]
    fn header_fields() {
        let h = parse_header(b"YUV4MPEG2 W640 H480 F30000:1001 Ip A1:1 C420jpeg XYSCSS=420JPEG")
            .unwrap();
        assert_eq!((h.width, h.height, h.chroma), (640, 480, Chroma::C420));
        assert!((h.fps.unwrap() - 29.97).abs() < 0.01);
        assert!(parse_header(b"YUV4MPEG2 W640 H480 C420p10")
            .unwrap_err()
            .contains("C420p10"));
        assert!(parse_header(b"YUV4MPEG2 H480")
            .unwrap_err()
            .contains("width"));
        assert!(parse_header(b"RIFF....").unwrap_err().contains("YUV4MPEG2"));
    }

    #[test]
    fn y4m_header_with_a_multibyte_tag_is_read_not_a_panic() {
        // Issue 15: a tag starting with a multi-byte character panicked the main thread.
        let h = parse_header("YUV4MPEG2 W64 H48 \u{e9}t\u{e9} \u{1f600}".as_bytes()).unwrap();
        assert_eq!((h.width, h.height), (64, 48));
        let e = parse_header("YUV4MPEG2 W\u{e9} H48".as_bytes()).unwrap_err();
        assert!(e.contains("width"), "{e}");
    }

    #[test]
    fn y4m_frame_sizes_past_the_memory_bound_are_refused() {
        let e = parse_header(b"YUV4MPEG2 W16384 H16384").unwrap_err();
        assert!(
            e.contains("16384x16384") && e.contains("scale it down"),
            "{e}"
        );
        let e = parse_header(b"YUV4MPEG2 W99999999999999999999 H480").unwrap_err();
        assert!(e.contains("width"), "{e}");
    }
}
