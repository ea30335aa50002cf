//! Integral images with OpenCV's layout and arithmetic.
//!
//! For a `w x h` image the tables are `(w + 1) x (h + 1)`, stored with a caller-chosen row `stride`
//! (at least `w + 1`) so that feature offsets computed once for a stride serve every pyramid level.
//! Entry `(x, y)` holds the sum over rows `< y` and columns `< x`. Like OpenCV's `CV_32S` tables they are
//! 32-bit and wrap on large bright images; window sums taken as differences are still exact because a
//! window's true sum fits in 32 bits.

/// Fills `sum` (and `sqsum`, when given) for `img` (`w x h`, row-major).
///
/// # Panics
/// When `stride < w + 1` or a table is shorter than `stride * (h + 1)`.
pub fn integral(
    img: &[u8],
    w: usize,
    h: usize,
    stride: usize,
    sum: &mut [i32],
    sqsum: Option<&mut [i32]>,
) {
    assert!(
        stride > w,
        "integral stride {stride} too small for width {w}"
    );
    let len = stride * (h + 1);
    assert!(sum.len() >= len, "integral table too short");
    sum[..=w].fill(0);
    match sqsum {
        Some(sq) => {
            assert!(sq.len() >= len, "integral table too short");
            sq[..=w].fill(0);
            for y in 0..h {
                let line = &img[y * w..(y + 1) * w];
                let (prev, cur) = sum.split_at_mut((y + 1) * stride);
                let prev = &prev[y * stride..y * stride + w + 1];
                let cur = &mut cur[..w + 1];
                let (qprev, qcur) = sq.split_at_mut((y + 1) * stride);
                let qprev = &qprev[y * stride..y * stride + w + 1];
                let qcur = &mut qcur[..w + 1];
                cur[0] = 0;
                qcur[0] = 0;
                let (mut s, mut q) = (0i32, 0i32);
                for x in 0..w {
                    let p = line[x] as i32;
                    s = s.wrapping_add(p);
                    q = q.wrapping_add(p * p);
                    cur[x + 1] = prev[x + 1].wrapping_add(s);
                    qcur[x + 1] = qprev[x + 1].wrapping_add(q);
                }
            }
        }
        None => {
            for y in 0..h {
                let line = &img[y * w..(y + 1) * w];
                let (prev, cur) = sum.split_at_mut((y + 1) * stride);
                let prev = &prev[y * stride..y * stride + w + 1];
                let cur = &mut cur[..w + 1];
                cur[0] = 0;
                let mut s = 0i32;
                for x in 0..w {
                    s = s.wrapping_add(line[x] as i32);
                    cur[x + 1] = prev[x + 1].wrapping_add(s);
                }
            }
        }
    }
}

/// Fills the 45-degree ("tilted", rotated) integral table of `img` as OpenCV defines it:
/// `T(X, Y) = sum of I(x, y) over y < Y and |x - X + 1| <= Y - 1 - y`, an upward-opening triangle whose
/// apex is pixel `(X - 1, Y - 1)`. `scratch` is reused between calls.
///
/// The triangles reach past the image sides, so the table is first built over columns
/// `-(h + 1) ..= w + h + 1` with the recurrence
/// `T(X, Y) = T(X - 1, Y - 1) + T(X + 1, Y - 1) - T(X, Y - 2) + I(X - 1, Y - 1) + I(X - 1, Y - 2)`,
/// and the columns `0 ..= w` are copied out.
pub fn tilted_integral(
    img: &[u8],
    w: usize,
    h: usize,
    stride: usize,
    out: &mut [i32],
    scratch: &mut Vec<i32>,
) {
    assert!(
        stride > w,
        "integral stride {stride} too small for width {w}"
    );
    assert!(out.len() >= stride * (h + 1), "integral table too short");
    let pad = h + 2;
    let ew = w + 2 * pad + 1; // extended columns: X = c - pad
    scratch.clear();
    scratch.resize(ew * (h + 1), 0);
    let pixel = |x: i64, y: i64| -> i32 {
        if x < 0 || y < 0 || x >= w as i64 || y >= h as i64 {
            0
        } else {
            img[y as usize * w + x as usize] as i32
        }
    };
    for y in 1..=h {
        for c in 1..ew - 1 {
            let x = c as i64 - pad as i64;
            let mut v = scratch[(y - 1) * ew + c - 1].wrapping_add(scratch[(y - 1) * ew + c + 1]);
            if y >= 2 {
                v = v.wrapping_sub(scratch[(y - 2) * ew + c]);
            }
            v = v
                .wrapping_add(pixel(x - 1, y as i64 - 1))
                .wrapping_add(pixel(x - 1, y as i64 - 2));
            scratch[y * ew + c] = v;
        }
    }
    for y in 0..=h {
        out[y * stride..y * stride + w + 1]
            .copy_from_slice(&scratch[y * ew + pad..y * ew + pad + w + 1]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(w: usize, h: usize, seed: u32) -> Vec<u8> {
        let mut s = seed;
        (0..w * h)
            .map(|_| {
                s = s.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (s >> 16) as u8
            })
            .collect()
    }

    #[test]
    fn sums_match_brute_force() {
        let (w, h, stride) = (7, 5, 9);
        let img = image(w, h, 1);
        let mut sum = vec![-1; stride * (h + 1)];
        let mut sq = vec![-1; stride * (h + 1)];
        integral(&img, w, h, stride, &mut sum, Some(&mut sq));
        for y in 0..=h {
            for x in 0..=w {
                let (mut s, mut q) = (0i64, 0i64);
                for yy in 0..y {
                    for xx in 0..x {
                        let p = img[yy * w + xx] as i64;
                        s += p;
                        q += p * p;
                    }
                }
                assert_eq!(sum[y * stride + x] as i64, s, "sum at {x},{y}");
                assert_eq!(sq[y * stride + x] as i64, q, "sqsum at {x},{y}");
            }
        }
    }

    #[test]
    fn square_sums_wrap_like_opencv_but_differences_stay_exact() {
        // 300x300 of 255: the square table overflows i32, a 24x24 window difference does not.
        let (w, h) = (300, 300);
        let img = vec![255u8; w * h];
        let stride = w + 1;
        let mut sum = vec![0; stride * (h + 1)];
        let mut sq = vec![0; stride * (h + 1)];
        integral(&img, w, h, stride, &mut sum, Some(&mut sq));
        let at = |t: &[i32], x: usize, y: usize| t[y * stride + x];
        let (x0, y0, x1, y1) = (270, 270, 294, 294);
        let win = at(&sq, x1, y1)
            .wrapping_sub(at(&sq, x0, y1))
            .wrapping_sub(at(&sq, x1, y0))
            .wrapping_add(at(&sq, x0, y0)) as u32;
        assert_eq!(win, 24 * 24 * 255 * 255);
    }

    #[test]
    fn tilted_matches_its_definition() {
        let (w, h, stride) = (9, 7, 11);
        let img = image(w, h, 7);
        let mut t = vec![0; stride * (h + 1)];
        let mut scratch = Vec::new();
        tilted_integral(&img, w, h, stride, &mut t, &mut scratch);
        for yy in 0..=h as i64 {
            for xx in 0..=w as i64 {
                let mut s = 0i64;
                for y in 0..yy {
                    for x in 0..w as i64 {
                        if (x - xx + 1).abs() <= yy - 1 - y {
                            s += img[y as usize * w + x as usize] as i64;
                        }
                    }
                }
                assert_eq!(
                    t[yy as usize * stride + xx as usize] as i64,
                    s,
                    "tilted at {xx},{yy}"
                );
            }
        }
    }
}
