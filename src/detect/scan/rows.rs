//! The row-at-a-time stages: a cascade's first stages computed for every window of one row at once,
//! in loops over table entries a fixed step apart that the compiler turns into SIMD. OpenCV's window
//! walk then reads those results and runs the later stages window by window.
//!
//! Each window's numbers come from the same operations in the same order as the window-by-window
//! scan uses ([`Test::passes`], `run_stumps`, `run_trees`), so every decision is the same; what the
//! walk skips (the column after a stage-0 rejection, windows already rejected) is computed and not
//! read. A tree is evaluated by computing every one of its nodes for the whole row and looking the
//! leaf up by the pattern of node results, which gives the leaf the root-to-leaf walk reaches.

use super::{lbp_code, run_stumps, run_trees, LevelScan, Tables, Test, Verdict, Window};
use crate::detect::compiled::{
    Compiled, Corners, HaarTest, LbpTest, StageAt, Stump, Trees, Weak, PATTERN_NODES,
};
use crate::frame::Rect;

/// Leading stages of a Haar stump cascade computed a row at a time. A stump costs the row loop
/// about a sixth of what it costs window by window, so a stage pays while more than about a sixth
/// of the windows reach it; on the default cascade about 43% of the windows reach stage 1, 28%
/// stage 2, 18% stage 3 and 11% stage 4.
const HAAR_STUMP_ROW_STAGES: usize = 3;

/// Leading stages of a Haar tree cascade computed a row at a time. Every node of a tree is
/// computed, where a window walks one or two of alt2's two; on alt2 about 77% of the windows reach
/// stage 1, 46% stage 2, 23% stage 3 and 12% stage 4. Measured on alt2 (x86, one thread), 4 stages
/// took 0.95x the time of 3 and 0.87x that of 2; 5 took 1.08x that of 4.
const HAAR_TREE_ROW_STAGES: usize = 4;

/// Leading stages of an LBP cascade computed a row at a time. Every window of the row is computed,
/// a third more than the walk visits; on `lbpcascade_frontalface_improved` (x86, one thread) one
/// stage took 0.82-0.86x the time of none, and two took 1.16-1.22x the time of one.
const LBP_ROW_STAGES: usize = 1;

/// How many leading stages of a cascade with weak classifiers `weak` the row loops compute: the
/// kind's count, cut before the first stage holding a tree of more than [`PATTERN_NODES`] nodes.
pub(crate) fn row_stages(weak: &Weak, stages: &[StageAt]) -> usize {
    let (wanted, trees) = match weak {
        Weak::HaarStumps(_) => (HAAR_STUMP_ROW_STAGES, None),
        Weak::HaarTrees(t) => (HAAR_TREE_ROW_STAGES, Some(&t.trees[..])),
        Weak::LbpStumps(_) => (LBP_ROW_STAGES, None),
        Weak::LbpTrees(t) => (LBP_ROW_STAGES, Some(&t.trees[..])),
    };
    let small = |s: &&StageAt| {
        trees.is_none_or(|trees| {
            trees[s.first as usize..(s.first + s.count) as usize]
                .iter()
                .all(|t| t.node_count as usize <= PATTERN_NODES)
        })
    };
    stages.iter().take(wanted).take_while(small).count()
}

/// Per-thread buffers of the row-at-a-time stages, reused from row to row and frame to frame.
#[derive(Debug, Default)]
pub(crate) struct RowScratch {
    factor: Vec<f32>,
    textured: Vec<bool>,
    acc: Vec<f64>,
    /// Stumps: per window, one stump's leaf.
    leaf: Vec<f32>,
    /// Trees: per window, one tree's node results (bit `j` for node `j`).
    bits: Vec<u8>,
    /// Per window: how many of the row-at-a-time stages it passed in a row.
    reached: Vec<u8>,
}

/// One row's tables, from its first window's top-left entry to its last window's span.
struct Row<'a> {
    sum: &'a [i32],
    tilted: &'a [i32],
}

/// The lanes of one rectangle: for each of the `n` windows of a row, `STEP` entries apart, its four
/// corners (lane `i` of corner `k` is `lanes[k][STEP * i]`).
#[inline(always)]
fn lanes<'a, const STEP: usize>(tab: &'a [i32], c: &Corners, n: usize) -> [&'a [i32]; 4] {
    c.map(|o| &tab[o as usize..o as usize + STEP * (n - 1) + 1])
}

/// `p0 - p1 - p2 + p3` of lane `i`.
#[inline(always)]
fn lane_sum<const STEP: usize>(l: &[&[i32]; 4], i: usize) -> i32 {
    let j = STEP * i;
    l[0][j]
        .wrapping_sub(l[1][j])
        .wrapping_sub(l[2][j])
        .wrapping_add(l[3][j])
}

/// A node test computed for every window of a row.
trait RowTest: Test {
    /// Sets `out[i] = pick(passes, out[i])` for each window `i` of `row` (windows `STEP` entries
    /// apart), deciding each window exactly as [`Test::passes`] does.
    fn row<const STEP: usize, O: Copy>(
        &self,
        row: &Row<'_>,
        factor: &[f32],
        out: &mut [O],
        pick: impl Fn(bool, O) -> O,
    );
}

impl RowTest for HaarTest {
    #[inline(always)]
    fn row<const STEP: usize, O: Copy>(
        &self,
        row: &Row<'_>,
        factor: &[f32],
        out: &mut [O],
        pick: impl Fn(bool, O) -> O,
    ) {
        let n = out.len();
        let tab = if self.tilted { row.tilted } else { row.sum };
        let factor = &factor[..n];
        let r0 = lanes::<STEP>(tab, &self.corners[0], n);
        let r1 = lanes::<STEP>(tab, &self.corners[1], n);
        let (w0, w1, thr) = (self.weights[0], self.weights[1], self.threshold);
        if self.third {
            let r2 = lanes::<STEP>(tab, &self.corners[2], n);
            let w2 = self.weights[2];
            for i in 0..n {
                let mut v =
                    w0 * lane_sum::<STEP>(&r0, i) as f32 + w1 * lane_sum::<STEP>(&r1, i) as f32;
                v += w2 * lane_sum::<STEP>(&r2, i) as f32;
                out[i] = pick(v * factor[i] < thr, out[i]);
            }
        } else {
            for i in 0..n {
                let v = w0 * lane_sum::<STEP>(&r0, i) as f32 + w1 * lane_sum::<STEP>(&r1, i) as f32;
                out[i] = pick(v * factor[i] < thr, out[i]);
            }
        }
    }
}

impl RowTest for LbpTest {
    #[inline(always)]
    fn row<const STEP: usize, O: Copy>(
        &self,
        row: &Row<'_>,
        _factor: &[f32],
        out: &mut [O],
        pick: impl Fn(bool, O) -> O,
    ) {
        let n = out.len();
        let sum = row.sum;
        let p = self.points.map(|o| o as usize);
        assert!(
            p.iter().all(|&o| o + STEP * (n - 1) < sum.len()),
            "point past the row"
        );
        for (i, o) in out.iter_mut().enumerate() {
            let j = STEP * i;
            // SAFETY: every point `p[k]` satisfies `p[k] + STEP * (n - 1) < sum.len()` (asserted
            // above) and `j <= STEP * (n - 1)`, so `p[k] + j` is in bounds.
            let at = |k: usize| unsafe { *sum.get_unchecked(p[k] + j) };
            let cell = |a: usize, b: usize, c: usize, d: usize| {
                at(a)
                    .wrapping_sub(at(b))
                    .wrapping_sub(at(c))
                    .wrapping_add(at(d))
            };
            *o = pick(self.goes_left(lbp_code(cell)), *o);
        }
    }
}

/// The per-window buffers a stage fills.
struct Lanes<'a> {
    leaf: &'a mut [f32],
    bits: &'a mut [u8],
}

/// A cascade's weak classifiers, as the row loops evaluate them.
trait RowWeak {
    /// Adds to `acc[i]`, for each window `i` of `row`, the leaf of every weak classifier of `stage`,
    /// in stage order and in `f64` as the window-by-window scan sums them.
    fn add_stage<const STEP: usize>(
        &self,
        stage: &StageAt,
        row: &Row<'_>,
        factor: &[f32],
        acc: &mut [f64],
        lanes: &mut Lanes<'_>,
    );

    /// Runs `stages` on one window, as the window-by-window scan does.
    fn run(&self, stages: &[StageAt], w: &Window<'_>, factor: f32) -> Verdict;
}

impl<T: RowTest> RowWeak for [Stump<T>] {
    #[inline(always)]
    fn add_stage<const STEP: usize>(
        &self,
        stage: &StageAt,
        row: &Row<'_>,
        factor: &[f32],
        acc: &mut [f64],
        lanes: &mut Lanes<'_>,
    ) {
        for st in &self[stage.first as usize..(stage.first + stage.count) as usize] {
            let (left, right) = (st.left, st.right);
            st.test.row::<STEP, f32>(
                row,
                factor,
                lanes.leaf,
                |pass, _| {
                    if pass {
                        left
                    } else {
                        right
                    }
                },
            );
            // A pass of its own, so the loops above run four f32 lanes wide, not two f64 lanes.
            for (a, &l) in acc.iter_mut().zip(lanes.leaf.iter()) {
                *a += l as f64;
            }
        }
    }

    #[inline(always)]
    fn run(&self, stages: &[StageAt], w: &Window<'_>, factor: f32) -> Verdict {
        run_stumps(stages, self, w, factor)
    }
}

impl<T: RowTest> RowWeak for Trees<T> {
    #[inline(always)]
    fn add_stage<const STEP: usize>(
        &self,
        stage: &StageAt,
        row: &Row<'_>,
        factor: &[f32],
        acc: &mut [f64],
        lanes: &mut Lanes<'_>,
    ) {
        let first = stage.first as usize;
        for (k, tree) in self.trees[first..first + stage.count as usize]
            .iter()
            .enumerate()
        {
            lanes.bits.fill(0);
            let nodes = &self.nodes[tree.first_node as usize..][..tree.node_count as usize];
            for (j, node) in nodes.iter().enumerate() {
                node.test
                    .row::<STEP, u8>(row, factor, lanes.bits, |pass, b| b | (pass as u8) << j);
            }
            // `row_stages` keeps trees of more nodes than the pattern table has bits out.
            let table = &self.patterns[first + k];
            const MASK: u8 = (1 << PATTERN_NODES) - 1;
            for (a, &b) in acc.iter_mut().zip(lanes.bits.iter()) {
                *a += table[usize::from(b & MASK)] as f64;
            }
        }
    }

    #[inline(always)]
    fn run(&self, stages: &[StageAt], w: &Window<'_>, factor: f32) -> Verdict {
        run_trees(stages, self, w, factor)
    }
}

/// Runs the windows of rows `rows` with the row-at-a-time stages, appending candidates to `out`;
/// `false` (and nothing done) for a cascade or step the row loops do not cover.
pub(super) fn scan_rows(
    c: &Compiled,
    t: &Tables<'_>,
    level: &LevelScan,
    rows: &mut impl Iterator<Item = usize>,
    out: &mut Vec<Rect>,
    scratch: &mut RowScratch,
) -> bool {
    fn each<W: RowWeak + ?Sized>(
        c: &Compiled,
        w: &W,
        t: &Tables<'_>,
        level: &LevelScan,
        rows: &mut impl Iterator<Item = usize>,
        out: &mut Vec<Rect>,
        scratch: &mut RowScratch,
    ) -> bool {
        match level.step {
            1 => rows.for_each(|y| scan_row::<1, W>(c, w, t, level, y, out, scratch)),
            2 => rows.for_each(|y| scan_row::<2, W>(c, w, t, level, y, out, scratch)),
            _ => return false,
        }
        true
    }
    if c.row_stages == 0 {
        return false;
    }
    match &c.weak {
        Weak::HaarStumps(s) => each(c, &s[..], t, level, rows, out, scratch),
        Weak::HaarTrees(tr) => each(c, tr, t, level, rows, out, scratch),
        Weak::LbpStumps(s) => each(c, &s[..], t, level, rows, out, scratch),
        Weak::LbpTrees(tr) => each(c, tr, t, level, rows, out, scratch),
    }
}

/// One row: the variance factors (Haar), then the first `c.row_stages` stages for every window of
/// the row, then OpenCV's window walk over those results, running the later stages window by
/// window.
#[allow(clippy::too_many_arguments)]
fn scan_row<const STEP: usize, W: RowWeak + ?Sized>(
    c: &Compiled,
    weak: &W,
    t: &Tables<'_>,
    level: &LevelScan,
    y: usize,
    out: &mut Vec<Rect>,
    scratch: &mut RowScratch,
) {
    let n = level.work_w.div_ceil(STEP);
    if n == 0 {
        return;
    }
    let base = y * c.stride;
    // Every window of the row reads entries base .. base + STEP (n - 1) + span.
    let len = STEP * (n - 1) + c.span;
    let sum = &t.sum[base..base + len];
    let tilted = if c.tilted {
        &t.tilted[base..base + len]
    } else {
        sum
    };
    let row = Row { sum, tilted };
    let RowScratch {
        factor,
        textured,
        acc,
        leaf,
        bits,
        reached,
    } = scratch;
    for v in [&mut *factor, &mut *leaf] {
        v.resize(n, 0.0);
    }
    bits.resize(n, 0);
    textured.resize(n, true);
    acc.resize(n, 0.0);
    reached.clear();
    reached.resize(n, 0);
    let (factor, textured, acc, reached) = (
        &mut factor[..n],
        &mut textured[..n],
        &mut acc[..n],
        &mut reached[..n],
    );
    let mut lanes_of = Lanes {
        leaf: &mut leaf[..n],
        bits: &mut bits[..n],
    };

    if matches!(c.weak, Weak::HaarStumps(_) | Weak::HaarTrees(_)) {
        let sqsum = &t.sqsum[base..base + len];
        let s = lanes::<STEP>(sum, &c.norm, n);
        let q = lanes::<STEP>(sqsum, &c.norm, n);
        let area = c.norm_area;
        for i in 0..n {
            let valsum = lane_sum::<STEP>(&s, i);
            let valsqsum = lane_sum::<STEP>(&q, i) as u32;
            let nf = area * valsqsum as f64 - valsum as f64 * valsum as f64;
            let f = (1.0 / nf.sqrt()) as f32;
            factor[i] = f;
            // OpenCV keeps the window when `area * factor < 0.1` (and nf > 0).
            textured[i] = nf > 0.0 && area * f64::from(f) < 0.1;
        }
    } else {
        textured.fill(true);
    }
    let row_stages = c.row_stages.min(c.stages.len());
    for (si, stage) in c.stages[..row_stages].iter().enumerate() {
        let si = si as u8;
        if !reached.contains(&si) {
            break;
        }
        acc.fill(0.0);
        weak.add_stage::<STEP>(stage, &row, factor, acc, &mut lanes_of);
        let thr = stage.threshold as f64;
        for (r, &a) in reached.iter_mut().zip(acc.iter()) {
            *r += (*r == si && a >= thr) as u8;
        }
    }
    let later = &c.stages[row_stages..];
    let mut i = 0;
    while i < n {
        if textured[i] {
            match reached[i] as usize {
                // Rejected by stage 0: OpenCV skips the next column too.
                0 => i += 1,
                r if r < row_stages => {}
                _ => {
                    let x = STEP * i;
                    let w = Window::new(&sum[x..], &tilted[x..], c.span);
                    if weak.run(later, &w, factor[i]) == Verdict::Face {
                        out.push(Rect::new(
                            (x as f32 * level.scale).round_ties_even() as i32,
                            (y as f32 * level.scale).round_ties_even() as i32,
                            level.win_w,
                            level.win_h,
                        ));
                    }
                }
            }
        }
        i += 1;
    }
}
