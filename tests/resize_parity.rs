//! OpenCV's resizes and gray conversion, bit for bit.
//!
//! `tests/data/reference/resize.json` holds SHA-256 digests of `cv2.resize` and `cv2.cvtColor` outputs
//! made by `scripts/make-resize-reference.py` with opencv-python 4.14.

mod common;

use emotiond::frame::rgb_to_gray;
use emotiond::resize::Resizer;
use emotiond::source::still::load_gray;

use common::{hex, reference, root};

#[test]
fn resizes_match_opencv_bit_for_bit() {
    let reference = reference("resize.json");
    let mut resizer = Resizer::new();
    let mut failures = Vec::new();
    let cases = reference["resize"].as_array().unwrap();
    for case in cases {
        let name = case["image"].as_str().unwrap();
        let img = load_gray(root().join("tests/data/images").join(name)).unwrap();
        let (dw, dh) = (
            case["width"].as_u64().unwrap() as usize,
            case["height"].as_u64().unwrap() as usize,
        );
        let mut out = vec![0u8; dw * dh];
        resizer.resize_linear(img.pixels(), img.width(), img.height(), &mut out, dw, dh);
        if hex(&out) != case["linear"].as_str().unwrap() {
            failures.push(format!("{name} -> {dw}x{dh} INTER_LINEAR"));
        }
        resizer.resize_linear_exact(img.pixels(), img.width(), img.height(), &mut out, dw, dh);
        if hex(&out) != case["linear_exact"].as_str().unwrap() {
            failures.push(format!("{name} -> {dw}x{dh} INTER_LINEAR_EXACT"));
        }
    }
    assert!(cases.len() >= 30, "too few resize cases");
    assert!(failures.is_empty(), "differ from cv2.resize: {failures:#?}");
}

#[test]
fn gray_conversion_matches_opencv_on_every_colour() {
    let mut gray = Vec::with_capacity(1 << 24);
    for v in 0u32..1 << 24 {
        gray.push(rgb_to_gray((v >> 16) as u8, (v >> 8) as u8, v as u8));
    }
    assert_eq!(
        hex(&gray),
        reference("resize.json")["gray_all_colours_sha256"]
            .as_str()
            .unwrap()
    );
}
