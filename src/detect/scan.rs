//! The hot loops: running a compiled cascade over the windows of some rows of one pyramid level.
//!
//! Arithmetic follows OpenCV's `HaarEvaluator`/`LBPEvaluator` and `predict*` templates to the bit:
//! a Haar feature is `(w0*s0 + w1*s1 [+ w2*s2]) * varianceNormFactor` in `f32`, compared with the node
//! threshold; leaf values are summed in `f64` and compared with the stage threshold; the variance factor
//! is `(float)(1 / sqrt(area * sqsum - sum^2))` over the window inset by one pixel, and windows with
//! `area * factor >= 0.1` (nearly flat) are rejected before the first stage. An LBP feature compares
//! eight cell sums with the centre cell's in OpenCV's bit order and looks the code up in the node's
//! 256-bit subset.
//!
//! Nothing here allocates or knows about threads: [`scan_rows`] appends the candidates of the rows it
//! is given, in OpenCV's single-thread order, to a caller's buffer.

mod rows;

use super::compiled::{
    Compiled, Corners, HaarTest, LbpTest, StageAt, Stump, TreeNode, Trees, Weak,
};
use crate::frame::Rect;
pub(crate) use rows::{row_stages, RowScratch};

/// The integral tables of one pyramid level, all with the compiled stride.
pub(crate) struct Tables<'a> {
    pub sum: &'a [i32],
    pub sqsum: &'a [i32],
    pub tilted: &'a [i32],
}

/// Where the windows of one level lie and how candidates map back to the frame.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LevelScan {
    /// Windows start at `x < work_w`.
    pub work_w: usize,
    /// Window step in level pixels, in x and y (2 below scale 2, else 1).
    pub step: usize,
    /// Level-to-frame scale.
    pub scale: f32,
    /// The window's size in frame pixels.
    pub win_w: i32,
    pub win_h: i32,
}

/// What a window evaluation decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Every stage passed: a candidate.
    Face,
    /// Rejected by stage `n` (0 makes the scan skip the next column, as OpenCV does).
    Rejected(usize),
    /// Rejected before the first stage (flat window).
    Flat,
}

/// One window's slices of the tables, at least `span` entries each from its top-left corner.
///
/// Built only by [`Window::new`], which checks the length; every offset a [`Compiled`] holds is below
/// its `span` (checked by `Compiled::new`), which is what makes [`Window::at`]'s unchecked reads sound.
struct Window<'a> {
    sum: &'a [i32],
    tilted: &'a [i32],
}

impl<'a> Window<'a> {
    /// The window over `sum` and `tilted` (the upright table again for a cascade without tilted
    /// features), which must hold `span` entries each.
    #[inline(always)]
    fn new(sum: &'a [i32], tilted: &'a [i32], span: usize) -> Window<'a> {
        assert!(
            sum.len() >= span && tilted.len() >= span,
            "window past its table"
        );
        Window { sum, tilted }
    }

    /// `p0 - p1 - p2 + p3` over the upright (or tilted) table, wrapping like OpenCV's 32-bit tables.
    #[inline(always)]
    fn at(&self, tilted: bool, c: &Corners) -> i32 {
        let t = if tilted { self.tilted } else { self.sum };
        // SAFETY: `c` comes from the `Compiled` this window was made for, whose offsets are all below
        // its span (asserted in `Compiled::new`), and `Window::new` asserted both slices hold at least
        // span entries; so every index is in bounds.
        let get = |o: u32| unsafe { *t.get_unchecked(o as usize) };
        get(c[0])
            .wrapping_sub(get(c[1]))
            .wrapping_sub(get(c[2]))
            .wrapping_add(get(c[3]))
    }
}

/// `p0 - p1 - p2 + p3`, wrapping like OpenCV's 32-bit tables (bounds-checked).
#[inline(always)]
fn corner_sum(t: &[i32], c: &Corners) -> i32 {
    t[c[0] as usize]
        .wrapping_sub(t[c[1] as usize])
        .wrapping_sub(t[c[2] as usize])
        .wrapping_add(t[c[3] as usize])
}

/// A node test of either feature family.
trait Test {
    fn passes(&self, w: &Window<'_>, factor: f32) -> bool;
}

impl Test for HaarTest {
    #[inline(always)]
    fn passes(&self, w: &Window<'_>, factor: f32) -> bool {
        let mut v = self.weights[0] * w.at(self.tilted, &self.corners[0]) as f32
            + self.weights[1] * w.at(self.tilted, &self.corners[1]) as f32;
        if self.third {
            v += self.weights[2] * w.at(self.tilted, &self.corners[2]) as f32;
        }
        v * factor < self.threshold
    }
}

impl Test for LbpTest {
    #[inline(always)]
    fn passes(&self, w: &Window<'_>, _factor: f32) -> bool {
        let p = &self.points;
        self.goes_left(lbp_code(|a, b, c, d| {
            w.at(false, &[p[a], p[b], p[c], p[d]])
        }))
    }
}

/// The LBP code of a 3x3 block of cells, `cell(a, b, c, d)` giving the sum of the cell with grid
/// points `a`, `b`, `c`, `d`: a bit per outer cell whose sum is at least the centre's, clockwise
/// from the top-left cell in OpenCV's bit order.
#[inline(always)]
fn lbp_code(cell: impl Fn(usize, usize, usize, usize) -> i32) -> u32 {
    let centre = cell(5, 6, 9, 10);
    ((cell(0, 1, 4, 5) >= centre) as u32) << 7
        | ((cell(1, 2, 5, 6) >= centre) as u32) << 6
        | ((cell(2, 3, 6, 7) >= centre) as u32) << 5
        | ((cell(6, 7, 10, 11) >= centre) as u32) << 4
        | ((cell(10, 11, 14, 15) >= centre) as u32) << 3
        | ((cell(9, 10, 13, 14) >= centre) as u32) << 2
        | ((cell(8, 9, 12, 13) >= centre) as u32) << 1
        | (cell(4, 5, 8, 9) >= centre) as u32
}

impl LbpTest {
    /// Whether LBP code `code` (below 256) is in the node's subset: the test passes, go left.
    #[inline(always)]
    fn goes_left(&self, code: u32) -> bool {
        self.subset[(code >> 5) as usize] & (1 << (code & 31)) != 0
    }
}

#[inline(always)]
fn run_stumps<T: Test>(
    stages: &[StageAt],
    stumps: &[Stump<T>],
    w: &Window<'_>,
    factor: f32,
) -> Verdict {
    for (si, s) in stages.iter().enumerate() {
        let mut acc = 0.0f64;
        for st in &stumps[s.first as usize..(s.first + s.count) as usize] {
            acc += if st.test.passes(w, factor) {
                st.left
            } else {
                st.right
            } as f64;
        }
        if acc < s.threshold as f64 {
            return Verdict::Rejected(si);
        }
    }
    Verdict::Face
}

#[inline(always)]
fn run_trees<T: Test>(stages: &[StageAt], t: &Trees<T>, w: &Window<'_>, factor: f32) -> Verdict {
    for (si, s) in stages.iter().enumerate() {
        let mut acc = 0.0f64;
        for tree in &t.trees[s.first as usize..(s.first + s.count) as usize] {
            let mut idx = 0i32;
            loop {
                let node: &TreeNode<T> = &t.nodes[tree.first_node as usize + idx as usize];
                idx = if node.test.passes(w, factor) {
                    node.left
                } else {
                    node.right
                };
                if idx <= 0 {
                    break;
                }
            }
            acc += t.leaves[tree.first_leaf as usize + (-idx) as usize] as f64;
        }
        if acc < s.threshold as f64 {
            return Verdict::Rejected(si);
        }
    }
    Verdict::Face
}

/// OpenCV's `varianceNormFactor` for the window at `base`, or `None` for a flat window.
#[inline(always)]
fn variance_factor(c: &Compiled, t: &Tables<'_>, base: usize) -> Option<f32> {
    let valsum = corner_sum(&t.sum[base..], &c.norm);
    let valsqsum = corner_sum(&t.sqsum[base..], &c.norm) as u32;
    let nf = c.norm_area * valsqsum as f64 - valsum as f64 * valsum as f64;
    if nf <= 0.0 {
        return None;
    }
    let factor = (1.0 / nf.sqrt()) as f32;
    // OpenCV keeps the window when `area * factor < 0.1`.
    (c.norm_area * f64::from(factor) < 0.1).then_some(factor)
}

/// Appends the candidates of the windows in rows `rows` (level pixels, already on the step grid) to
/// `out`, in OpenCV's order.
pub(crate) fn scan_rows(
    c: &Compiled,
    t: &Tables<'_>,
    level: &LevelScan,
    mut rows: impl Iterator<Item = usize>,
    out: &mut Vec<Rect>,
    scratch: &mut RowScratch,
) {
    if rows::scan_rows(c, t, level, &mut rows, out, scratch) {
        return;
    }
    let span = c.span;
    let window = |base: usize| {
        let sum = &t.sum[base..base + span];
        let tilted = if c.tilted {
            &t.tilted[base..base + span]
        } else {
            sum
        };
        Window::new(sum, tilted, span)
    };
    match &c.weak {
        Weak::HaarStumps(stumps) => scan(c, level, rows, out, |base| {
            match variance_factor(c, t, base) {
                Some(f) => run_stumps(&c.stages, stumps, &window(base), f),
                None => Verdict::Flat,
            }
        }),
        Weak::HaarTrees(trees) => scan(c, level, rows, out, |base| {
            match variance_factor(c, t, base) {
                Some(f) => run_trees(&c.stages, trees, &window(base), f),
                None => Verdict::Flat,
            }
        }),
        Weak::LbpStumps(stumps) => scan(c, level, rows, out, |base| {
            run_stumps(&c.stages, stumps, &window(base), 0.0)
        }),
        Weak::LbpTrees(trees) => scan(c, level, rows, out, |base| {
            run_trees(&c.stages, trees, &window(base), 0.0)
        }),
    }
}

/// The window walk of one row: every `step` pixels, one more column skipped after a stage-0 rejection.
#[inline(always)]
fn scan(
    c: &Compiled,
    level: &LevelScan,
    rows: impl Iterator<Item = usize>,
    out: &mut Vec<Rect>,
    eval: impl Fn(usize) -> Verdict,
) {
    let step = level.step;
    for y in rows {
        let mut x = 0;
        while x < level.work_w {
            match eval(y * c.stride + x) {
                Verdict::Face => out.push(Rect::new(
                    (x as f32 * level.scale).round_ties_even() as i32,
                    (y as f32 * level.scale).round_ties_even() as i32,
                    level.win_w,
                    level.win_h,
                )),
                Verdict::Rejected(0) => x += step,
                Verdict::Rejected(_) | Verdict::Flat => {}
            }
            x += step;
        }
    }
}
