//! The preview: the latest frame handed over only while someone waits for one, then annotated
//! (each face's box, track id, label and confidence) and encoded on the HTTP thread that asked.
//!
//! The pipeline's side is [`Preview::wanted`] (an atomic load, asked after every frame) and
//! [`Preview::offer`] (a copy into a buffer kept from frame to frame, then a wake-up). Nothing is
//! copied, drawn or encoded while nobody asks, and nothing is written to disk.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::{ImageEncoder, RgbImage};

use crate::frame::GrayFrame;
use crate::render::{Align, Canvas, FONT_9X15_BOLD};
use crate::signal::fanout::FaceBox;

/// The colour of the boxes and their labels' background.
pub const BOX_COLOR: [u8; 3] = [0, 255, 0];
/// How wide a box's edge is, in pixels.
pub const BOX_THICKNESS: i64 = 3;
/// JPEG quality for snapshots and the stream.
pub const JPEG_QUALITY: u8 = 80;

/// A picture format the preview is encoded in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `image/jpeg`.
    Jpeg,
    /// `image/png`.
    Png,
}

impl Format {
    /// The content type.
    pub fn mime(self) -> &'static str {
        match self {
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
        }
    }
}

/// A frame and its faces, as handed over.
#[derive(Debug, Default, Clone)]
pub struct Picture {
    /// The frame.
    pub frame: GrayFrame,
    /// Its confirmed faces.
    pub faces: Vec<FaceBox>,
    /// Counts the frames handed over; a waiter wants one newer than it has.
    pub seq: u64,
}

/// Where the pipeline leaves a frame for the HTTP threads that wait for one.
#[derive(Debug, Default)]
pub struct Preview {
    latest: Mutex<Picture>,
    fresh: Condvar,
    waiting: AtomicUsize,
}

impl Preview {
    fn lock(&self) -> MutexGuard<'_, Picture> {
        self.latest.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether an HTTP thread waits for a frame: the pipeline hands one over only then.
    pub fn wanted(&self) -> bool {
        self.waiting.load(Ordering::Relaxed) > 0
    }

    /// The pipeline's side: copies `frame` and `faces` into the kept buffer (no allocation once
    /// it has the frame's size) and wakes the waiters.
    pub fn offer(&self, frame: &GrayFrame, faces: &[FaceBox]) {
        let mut p = self.lock();
        p.frame.reset(frame.width(), frame.height());
        p.frame.pixels_mut().copy_from_slice(frame.pixels());
        p.faces.clear();
        p.faces.extend_from_slice(faces);
        p.seq += 1;
        drop(p);
        self.fresh.notify_all();
    }

    /// Waits up to `timeout` for a frame newer than `out.seq` and copies it into `out`; false
    /// when none came.
    pub fn next(&self, out: &mut Picture, timeout: Duration) -> bool {
        struct Waiting<'a>(&'a AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::Relaxed);
            }
        }
        let deadline = Instant::now() + timeout;
        let mut p = self.lock();
        // A first request takes the next frame, not one left from long ago.
        let after = if out.seq == 0 { p.seq } else { out.seq };
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let waiting = Waiting(&self.waiting);
        while p.seq <= after {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            p = self
                .fresh
                .wait_timeout(p, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        drop(waiting);
        out.frame.reset(p.frame.width(), p.frame.height());
        out.frame.pixels_mut().copy_from_slice(p.frame.pixels());
        out.faces.clone_from(&p.faces);
        out.seq = p.seq;
        true
    }
}

/// `picture` in colour with each face's box and, above it, `ID LABEL CONF`.
pub fn annotate(picture: &Picture) -> RgbImage {
    let mut c = Canvas::from_gray(&picture.frame);
    for f in &picture.faces {
        let r = f.rect;
        let (x, y, w, h) = (
            i64::from(r.x),
            i64::from(r.y),
            i64::from(r.w),
            i64::from(r.h),
        );
        c.outline((x, y, w, h), BOX_THICKNESS, BOX_COLOR);
        let label = format!("{} {} {:.2}", f.id, f.label, f.confidence);
        let (lw, lh) = (label.len() as i64 * 9 + 6, 18);
        // Above the box when there is room, else inside its top edge.
        let ly = if y >= lh { y - lh } else { y };
        c.fill(x, ly, lw, lh, BOX_COLOR);
        c.text(
            &label,
            (x + 3) as i32,
            (ly + lh / 2) as i32,
            &FONT_9X15_BOLD,
            [0, 0, 0],
            Align::Left,
        );
    }
    c.into_image()
}

/// `image` encoded as `format`.
pub fn encode(image: &RgbImage, format: Format) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 * 1024);
    let (w, h) = image.dimensions();
    let result = match format {
        Format::Jpeg => JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY).write_image(
            image.as_raw(),
            w,
            h,
            image::ExtendedColorType::Rgb8,
        ),
        Format::Png => PngEncoder::new(&mut out).write_image(
            image.as_raw(),
            w,
            h,
            image::ExtendedColorType::Rgb8,
        ),
    };
    // Encoding an RGB buffer of the image's own size into memory cannot fail.
    result.expect("encoding the preview in memory");
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::thread;

    use super::*;
    use crate::classify::{Emotion, Probs};
    use crate::frame::Rect;

    fn face(id: u64, rect: Rect) -> FaceBox {
        FaceBox {
            id,
            rect,
            label: Emotion::Happy,
            confidence: 0.87,
            probs: Probs::default(),
        }
    }

    #[test]
    fn a_frame_is_handed_over_only_while_someone_waits() {
        let p = Arc::new(Preview::default());
        let frame = GrayFrame::filled(32, 24, 7);
        assert!(!p.wanted());
        p.offer(&frame, &[]); // nobody waits: an old frame
        let waiter = {
            let p = p.clone();
            thread::spawn(move || {
                let mut out = Picture::default();
                let got = p.next(&mut out, Duration::from_secs(10));
                (got, out)
            })
        };
        while !p.wanted() {
            thread::sleep(Duration::from_millis(1));
        }
        let newer = GrayFrame::filled(32, 24, 9);
        p.offer(&newer, &[face(3, Rect::new(1, 2, 10, 10))]);
        let (got, out) = waiter.join().unwrap();
        assert!(got);
        assert_eq!(
            out.frame, newer,
            "the frame after the request, not the old one"
        );
        assert_eq!(out.faces.len(), 1);
        assert!(!p.wanted());
        let mut late = out.clone();
        assert!(
            !p.next(&mut late, Duration::from_millis(20)),
            "no newer frame"
        );
        assert!(!p.wanted(), "a waiter that gave up is no longer counted");
    }

    #[test]
    fn boxes_and_labels_are_drawn_and_both_formats_decode() {
        let picture = Picture {
            frame: GrayFrame::filled(120, 100, 128),
            faces: vec![
                face(1, Rect::new(40, 40, 50, 50)),
                face(2, Rect::new(0, 0, 30, 30)),
            ],
            seq: 1,
        };
        let img = annotate(&picture);
        assert_eq!(img.get_pixel(40, 60).0, BOX_COLOR, "the left edge");
        assert_eq!(img.get_pixel(89, 60).0, BOX_COLOR, "the right edge");
        assert_eq!(img.get_pixel(60, 60).0, [128; 3], "inside stays gray");
        assert_eq!(
            img.get_pixel(41, 30).0,
            BOX_COLOR,
            "the label above the box"
        );
        let ink = img.pixels().filter(|p| p.0 == [0, 0, 0]).count();
        assert!(ink > 50, "label text: {ink} black pixels");
        let png = image::load_from_memory(&encode(&img, Format::Png))
            .unwrap()
            .to_rgb8();
        assert_eq!(png, img);
        let jpeg = image::load_from_memory(&encode(&img, Format::Jpeg))
            .unwrap()
            .to_rgb8();
        assert_eq!(jpeg.dimensions(), (120, 100));
        let [r, g, b] = jpeg.get_pixel(41, 60).0;
        assert!(g > 180 && r < 90 && b < 90, "{r} {g} {b}");
    }
}
