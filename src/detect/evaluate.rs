//! Window evaluation: a cascade compiled to integral-table offsets for one row stride.
//!
//! Arithmetic follows OpenCV's `HaarEvaluator`/`LBPEvaluator` and `predict*` templates to the bit:
//! a Haar feature is `(w0*s0 + w1*s1 [+ w2*s2]) * varianceNormFactor` in `f32`, compared with the node
//! threshold; leaf values are summed in `f64` and compared with the stage threshold; the variance factor
//! is `(float)(1 / sqrt(area * sqsum - sum^2))` over the window inset by one pixel, and windows with
//! `area * factor >= 0.1` (nearly flat) are rejected before the first stage.

use super::cascade::{Cascade, FeatureKind, WinRect};

/// Offsets of a rectangle's four corners (top-left, top-right, bottom-left, bottom-right) in a table.
type Corners = [usize; 4];

fn corners(r: &WinRect, stride: usize) -> Corners {
    let (x, y, w, h) = (r.x as usize, r.y as usize, r.w as usize, r.h as usize);
    [
        y * stride + x,
        y * stride + x + w,
        (y + h) * stride + x,
        (y + h) * stride + x + w,
    ]
}

/// Corners of a 45-degree rectangle in the tilted table, as OpenCV's `CV_TILTED_OFS`.
fn tilted_corners(r: &WinRect, stride: usize) -> Corners {
    let (x, y, w, h) = (r.x as usize, r.y as usize, r.w as usize, r.h as usize);
    [
        y * stride + x,
        (y + h) * stride + x - h,
        (y + w) * stride + x + w,
        (y + w + h) * stride + x + w - h,
    ]
}

#[inline(always)]
fn rect_sum(t: &[i32], base: usize, c: &Corners) -> i32 {
    t[base + c[0]]
        .wrapping_sub(t[base + c[1]])
        .wrapping_sub(t[base + c[2]])
        .wrapping_add(t[base + c[3]])
}

/// A Haar feature ready to evaluate.
#[derive(Debug, Clone)]
struct HaarOpt {
    corners: [Corners; 3],
    weights: [f32; 3],
    tilted: bool,
}

impl HaarOpt {
    #[inline(always)]
    fn value(&self, tables: &Tables<'_>, base: usize) -> f32 {
        let t = if self.tilted {
            tables.tilted
        } else {
            tables.sum
        };
        let mut v = self.weights[0] * rect_sum(t, base, &self.corners[0]) as f32
            + self.weights[1] * rect_sum(t, base, &self.corners[1]) as f32;
        if self.weights[2] != 0.0 {
            v += self.weights[2] * rect_sum(t, base, &self.corners[2]) as f32;
        }
        v
    }
}

/// An LBP feature: the 16 grid points of a 3x3 block of cells.
#[derive(Debug, Clone)]
struct LbpOpt {
    points: [usize; 16],
}

impl LbpOpt {
    #[inline(always)]
    fn code(&self, t: &[i32], base: usize) -> usize {
        let p = &self.points;
        let cell = |a: usize, b: usize, c: usize, d: usize| {
            t[base + p[a]]
                .wrapping_sub(t[base + p[b]])
                .wrapping_sub(t[base + p[c]])
                .wrapping_add(t[base + p[d]])
        };
        let centre = cell(5, 6, 9, 10);
        // Clockwise from the top-left cell, in OpenCV's bit order.
        ((cell(0, 1, 4, 5) >= centre) as usize) << 7
            | ((cell(1, 2, 5, 6) >= centre) as usize) << 6
            | ((cell(2, 3, 6, 7) >= centre) as usize) << 5
            | ((cell(6, 7, 10, 11) >= centre) as usize) << 4
            | ((cell(10, 11, 14, 15) >= centre) as usize) << 3
            | ((cell(9, 10, 13, 14) >= centre) as usize) << 2
            | ((cell(8, 9, 12, 13) >= centre) as usize) << 1
            | (cell(4, 5, 8, 9) >= centre) as usize
    }
}

/// A stump of a stump-based Haar cascade, with its feature inlined, in stage order (OpenCV's
/// `Data::Stump` plus the feature's offsets).
#[derive(Debug, Clone)]
struct HaarStump {
    corners: [[u32; 4]; 3],
    weights: [f32; 3],
    tilted: bool,
    threshold: f32,
    left: f32,
    right: f32,
}

/// `p0 - p1 - p2 + p3` over a window slice.
#[inline(always)]
fn window_sum(w: &[i32], c: &[u32; 4]) -> i32 {
    w[c[0] as usize]
        .wrapping_sub(w[c[1] as usize])
        .wrapping_sub(w[c[2] as usize])
        .wrapping_add(w[c[3] as usize])
}

/// The integral tables of one pyramid level.
pub(crate) struct Tables<'a> {
    pub sum: &'a [i32],
    pub sqsum: &'a [i32],
    pub tilted: &'a [i32],
}

/// What a window evaluation decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Every stage passed: a candidate.
    Face,
    /// Rejected by stage `n` (0 makes the scan skip the next column, as OpenCV does).
    Rejected(usize),
    /// Rejected before the first stage (flat window).
    Flat,
}

/// A cascade compiled for one table stride.
#[derive(Debug)]
pub(crate) struct Compiled {
    stride: usize,
    haar: Vec<HaarOpt>,
    lbp: Vec<LbpOpt>,
    /// Stump-based Haar cascades only: every stump with its feature, in stage order.
    stumps: Vec<HaarStump>,
    /// Table entries a window spans: every offset of the cascade is below this.
    span: usize,
    norm: Corners,
    norm_area: f64,
}

impl Compiled {
    pub(crate) fn new(cascade: &Cascade, stride: usize) -> Compiled {
        let (ww, wh) = cascade.window();
        let haar: Vec<HaarOpt> = cascade
            .haar
            .iter()
            .map(|f| {
                let c = |r: &WinRect| {
                    if f.tilted {
                        tilted_corners(r, stride)
                    } else {
                        corners(r, stride)
                    }
                };
                HaarOpt {
                    corners: [c(&f.rects[0].0), c(&f.rects[1].0), c(&f.rects[2].0)],
                    weights: [f.rects[0].1, f.rects[1].1, f.rects[2].1],
                    tilted: f.tilted,
                }
            })
            .collect();
        let lbp = cascade
            .lbp
            .iter()
            .map(|r| {
                let mut points = [0; 16];
                for (j, row) in points.chunks_exact_mut(4).enumerate() {
                    for (i, p) in row.iter_mut().enumerate() {
                        *p = (r.y as usize + j * r.h as usize) * stride
                            + r.x as usize
                            + i * r.w as usize;
                    }
                }
                LbpOpt { points }
            })
            .collect();
        let norm_rect = WinRect {
            x: 1,
            y: 1,
            w: ww as i32 - 2,
            h: wh as i32 - 2,
        };
        let narrow = |c: &Corners| c.map(|o| o as u32);
        let stumps = if cascade.kind == FeatureKind::Haar && cascade.max_nodes_per_tree == 1 {
            cascade
                .trees
                .iter()
                .map(|t| {
                    let node = &cascade.nodes[t.first_node];
                    let f: &HaarOpt = &haar[node.feature];
                    HaarStump {
                        corners: [
                            narrow(&f.corners[0]),
                            narrow(&f.corners[1]),
                            narrow(&f.corners[2]),
                        ],
                        weights: f.weights,
                        tilted: f.tilted,
                        threshold: node.threshold,
                        left: cascade.leaves[t.first_leaf],
                        right: cascade.leaves[t.first_leaf + 1],
                    }
                })
                .collect()
        } else {
            Vec::new()
        };
        Compiled {
            stride,
            haar,
            lbp,
            stumps,
            span: wh * stride + ww + 1,
            norm: corners(&norm_rect, stride),
            norm_area: (norm_rect.w.max(0) * norm_rect.h.max(0)) as f64,
        }
    }

    pub(crate) fn stride(&self) -> usize {
        self.stride
    }

    /// Runs the cascade on the window whose top-left corner is at table offset `base`.
    #[inline]
    pub(crate) fn evaluate(&self, cascade: &Cascade, tables: &Tables<'_>, base: usize) -> Verdict {
        match cascade.kind {
            FeatureKind::Haar => {
                let valsum = rect_sum(tables.sum, base, &self.norm);
                let valsqsum = rect_sum(tables.sqsum, base, &self.norm) as u32;
                let nf = self.norm_area * valsqsum as f64 - valsum as f64 * valsum as f64;
                if nf <= 0.0 {
                    return Verdict::Flat;
                }
                let factor = (1.0 / nf.sqrt()) as f32;
                // OpenCV keeps the window when `area * factor < 0.1`.
                let textured = self.norm_area * f64::from(factor) < 0.1;
                if !textured {
                    return Verdict::Flat;
                }
                if !self.stumps.is_empty() {
                    return self.run_haar_stumps(cascade, tables, base, factor);
                }
                self.run_stages(
                    cascade,
                    |node_feature, threshold| {
                        let v = self.haar[node_feature].value(tables, base) * factor;
                        v < threshold
                    },
                    |_| unreachable!("Haar nodes carry thresholds"),
                )
            }
            FeatureKind::Lbp => self.run_stages(
                cascade,
                |_, _| unreachable!("LBP nodes carry subsets"),
                |node_feature| self.lbp[node_feature].code(tables.sum, base),
            ),
        }
    }

    /// The stump-based Haar fast path: same arithmetic as [`Compiled::run_stages`], features inlined.
    #[inline(always)]
    fn run_haar_stumps(
        &self,
        c: &Cascade,
        tables: &Tables<'_>,
        base: usize,
        factor: f32,
    ) -> Verdict {
        let sum = &tables.sum[base..base + self.span];
        let tilted = if tables.tilted.is_empty() {
            sum
        } else {
            &tables.tilted[base..base + self.span]
        };
        for (si, stage) in c.stages.iter().enumerate() {
            let mut acc = 0.0f64;
            for st in &self.stumps[stage.first_tree..stage.first_tree + stage.tree_count] {
                let w = if st.tilted { tilted } else { sum };
                let mut v = st.weights[0] * window_sum(w, &st.corners[0]) as f32
                    + st.weights[1] * window_sum(w, &st.corners[1]) as f32;
                if st.weights[2] != 0.0 {
                    v += st.weights[2] * window_sum(w, &st.corners[2]) as f32;
                }
                acc += if v * factor < st.threshold {
                    st.left
                } else {
                    st.right
                } as f64;
            }
            if acc < stage.threshold as f64 {
                return Verdict::Rejected(si);
            }
        }
        Verdict::Face
    }

    /// Walks the stages. `goes_left` answers an ordered (Haar) node, `code` gives an LBP category.
    #[inline(always)]
    fn run_stages(
        &self,
        c: &Cascade,
        goes_left: impl Fn(usize, f32) -> bool,
        code: impl Fn(usize) -> usize,
    ) -> Verdict {
        let ordered = c.kind == FeatureKind::Haar;
        // OpenCV's stump path takes leaf 0 on a pass and leaf 1 otherwise, whatever the child fields say.
        let stumps = c.max_nodes_per_tree == 1;
        let decide = |node_index: usize| -> bool {
            let node = &c.nodes[node_index];
            if ordered {
                goes_left(node.feature, node.threshold)
            } else {
                let cat = code(node.feature);
                let word = c.subsets[node_index * 8 + (cat >> 5)];
                word & (1 << (cat & 31)) != 0
            }
        };
        for (si, stage) in c.stages.iter().enumerate() {
            let mut sum = 0.0f64;
            for tree in &c.trees[stage.first_tree..stage.first_tree + stage.tree_count] {
                let leaf = if stumps {
                    if decide(tree.first_node) {
                        0
                    } else {
                        1
                    }
                } else {
                    let mut idx = 0i32;
                    loop {
                        let node = &c.nodes[tree.first_node + idx as usize];
                        idx = if decide(tree.first_node + idx as usize) {
                            node.left
                        } else {
                            node.right
                        };
                        if idx <= 0 {
                            break;
                        }
                    }
                    (-idx) as usize
                };
                sum += c.leaves[tree.first_leaf + leaf] as f64;
            }
            if sum < stage.threshold as f64 {
                return Verdict::Rejected(si);
            }
        }
        Verdict::Face
    }
}
