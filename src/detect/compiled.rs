//! A cascade compiled for one integral-table row stride: every weak classifier laid out flat in stage
//! order with its feature's table offsets inlined beside its threshold and leaves, as OpenCV lays out
//! its `Data::Stump` array, so evaluating a window walks memory in order.
//!
//! Four layouts cover OpenCV's cascades: Haar stumps (`haarcascade_frontalface_default`), Haar trees
//! (`haarcascade_frontalface_alt2`, the tilted-feature eye cascades), LBP stumps
//! (`lbpcascade_frontalface_improved`) and LBP trees. The arithmetic lives in [`super::scan`]; this
//! module only decides where each number sits.

use super::cascade::{Cascade, FeatureKind, WinRect};

/// Table offsets of a rectangle's corners relative to a window's top-left entry, in the order
/// `p0 - p1 - p2 + p3` sums them.
pub(crate) type Corners = [u32; 4];

fn corners(r: &WinRect, stride: usize) -> Corners {
    let (x, y, w, h) = (r.x as usize, r.y as usize, r.w as usize, r.h as usize);
    [
        y * stride + x,
        y * stride + x + w,
        (y + h) * stride + x,
        (y + h) * stride + x + w,
    ]
    .map(narrow)
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
    .map(narrow)
}

/// Offsets fit in 32 bits: a window spans at most `4097 * stride` entries and the stride of any frame
/// a source accepts is far below `2^32 / 4097`; [`Compiled::new`] checks the span.
fn narrow(offset: usize) -> u32 {
    u32::try_from(offset).expect("window offsets fit in 32 bits (checked against the span)")
}

/// A Haar test: `(w0 s0 + w1 s1 + w2 s2) * varianceNormFactor < threshold` over up to three rectangle
/// sums. An unused third rectangle has weight 0 and all-zero corners, so it adds exactly `+0.0`.
#[derive(Debug, Clone)]
pub(crate) struct HaarTest {
    pub corners: [Corners; 3],
    pub weights: [f32; 3],
    /// Whether the third rectangle is used (OpenCV skips it when its weight is 0).
    pub third: bool,
    /// Read the tilted table instead of the upright one.
    pub tilted: bool,
    pub threshold: f32,
}

/// An LBP test: the 16 grid points of a 3x3 block of cells, and the 256-bit set of codes that go left.
#[derive(Debug, Clone)]
pub(crate) struct LbpTest {
    pub points: [u32; 16],
    pub subset: [i32; 8],
}

/// A weak classifier of one node: `left` when the test passes, `right` otherwise.
#[derive(Debug, Clone)]
pub(crate) struct Stump<T> {
    pub test: T,
    pub left: f32,
    pub right: f32,
}

/// A node of a deeper weak classifier: children `> 0` are nodes of the same tree (relative to its
/// first node), `<= 0` are leaves `-child` of the tree.
#[derive(Debug, Clone)]
pub(crate) struct TreeNode<T> {
    pub test: T,
    pub left: i32,
    pub right: i32,
}

/// Where a tree's nodes and leaves start.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TreeAt {
    pub first_node: u32,
    pub node_count: u32,
    pub first_leaf: u32,
}

/// A stage over a run of weak classifiers (stumps or trees) of the compiled layout.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StageAt {
    pub first: u32,
    pub count: u32,
    pub threshold: f32,
}

/// The weak classifiers of a compiled cascade.
#[derive(Debug)]
pub(crate) enum Weak {
    HaarStumps(Vec<Stump<HaarTest>>),
    HaarTrees(Trees<HaarTest>),
    LbpStumps(Vec<Stump<LbpTest>>),
    LbpTrees(Trees<LbpTest>),
}

/// Trees laid out flat: `trees[i]` names its nodes in `nodes` and its leaves in `leaves`.
#[derive(Debug)]
pub(crate) struct Trees<T> {
    pub trees: Vec<TreeAt>,
    pub nodes: Vec<TreeNode<T>>,
    pub leaves: Vec<f32>,
    /// Per tree of at most [`PATTERN_NODES`] nodes: the leaf it reaches for each pattern of node
    /// results (bit `j` set when node `j` passes), so a row of windows can look its leaves up once
    /// every node's test is known; all zero for a larger tree.
    pub patterns: Vec<[f32; 1 << PATTERN_NODES]>,
}

/// The most nodes a tree may have for the row-at-a-time stages to evaluate it by pattern.
pub(crate) const PATTERN_NODES: usize = 4;

/// A cascade compiled for one table stride.
#[derive(Debug)]
pub(crate) struct Compiled {
    pub stride: usize,
    pub stages: Vec<StageAt>,
    pub weak: Weak,
    /// Table entries a window spans: every offset of the cascade is below this.
    pub span: usize,
    /// Haar only: the variance window (inset by one pixel) and its area.
    pub norm: Corners,
    pub norm_area: f64,
    /// Haar only: some feature reads the tilted table.
    pub tilted: bool,
    /// How many leading stages are computed a row of windows at a time (see `scan`); 0 scans window
    /// by window from the first stage.
    pub row_stages: usize,
}

impl Compiled {
    /// Lays `cascade` out for tables of row stride `stride`.
    pub(crate) fn new(cascade: &Cascade, stride: usize) -> Compiled {
        let (ww, wh) = cascade.window();
        let span = wh * stride + ww + 1;
        assert!(
            u32::try_from(span).is_ok(),
            "a {ww}x{wh} window over rows of {stride} entries does not fit 32-bit offsets"
        );
        let haar_test = |feature: usize, threshold: f32| {
            let f = &cascade.haar[feature];
            let c = |r: &WinRect| {
                if f.tilted {
                    tilted_corners(r, stride)
                } else {
                    corners(r, stride)
                }
            };
            let third = f.rects[2].1 != 0.0;
            HaarTest {
                corners: [
                    c(&f.rects[0].0),
                    c(&f.rects[1].0),
                    if third { c(&f.rects[2].0) } else { [0; 4] },
                ],
                weights: [f.rects[0].1, f.rects[1].1, f.rects[2].1],
                third,
                tilted: f.tilted,
                threshold,
            }
        };
        let lbp_test = |node_index: usize, feature: usize| {
            let r = &cascade.lbp[feature];
            let mut points = [0u32; 16];
            for (j, row) in points.chunks_exact_mut(4).enumerate() {
                for (i, p) in row.iter_mut().enumerate() {
                    *p = narrow(
                        (r.y as usize + j * r.h as usize) * stride
                            + r.x as usize
                            + i * r.w as usize,
                    );
                }
            }
            let mut subset = [0i32; 8];
            subset.copy_from_slice(&cascade.subsets[node_index * 8..node_index * 8 + 8]);
            LbpTest { points, subset }
        };
        let stages: Vec<StageAt> = cascade
            .stages
            .iter()
            .map(|s| StageAt {
                first: s.first_tree as u32,
                count: s.tree_count as u32,
                threshold: s.threshold,
            })
            .collect();
        let stumps = cascade.max_nodes_per_tree == 1;
        // OpenCV's stump path takes leaf 0 on a pass and leaf 1 otherwise, whatever the child fields say.
        let stump_of = |t: &super::cascade::Tree| {
            let node = &cascade.nodes[t.first_node];
            (
                t.first_node,
                node,
                cascade.leaves[t.first_leaf],
                cascade.leaves[t.first_leaf + 1],
            )
        };
        let weak = match (cascade.kind, stumps) {
            (FeatureKind::Haar, true) => Weak::HaarStumps(
                cascade
                    .trees
                    .iter()
                    .map(|t| {
                        let (_, node, left, right) = stump_of(t);
                        Stump {
                            test: haar_test(node.feature, node.threshold),
                            left,
                            right,
                        }
                    })
                    .collect(),
            ),
            (FeatureKind::Lbp, true) => Weak::LbpStumps(
                cascade
                    .trees
                    .iter()
                    .map(|t| {
                        let (ni, node, left, right) = stump_of(t);
                        Stump {
                            test: lbp_test(ni, node.feature),
                            left,
                            right,
                        }
                    })
                    .collect(),
            ),
            (FeatureKind::Haar, false) => Weak::HaarTrees(trees(cascade, |ni| {
                let n = &cascade.nodes[ni];
                haar_test(n.feature, n.threshold)
            })),
            (FeatureKind::Lbp, false) => {
                Weak::LbpTrees(trees(cascade, |ni| lbp_test(ni, cascade.nodes[ni].feature)))
            }
        };
        let norm_rect = WinRect {
            x: 1,
            y: 1,
            w: ww as i32 - 2,
            h: wh as i32 - 2,
        };
        let (norm, norm_area) = if norm_rect.w > 0 && norm_rect.h > 0 {
            (
                corners(&norm_rect, stride),
                (norm_rect.w * norm_rect.h) as f64,
            )
        } else {
            ([0; 4], 0.0)
        };
        let row_stages = super::scan::row_stages(&weak, &stages);
        let compiled = Compiled {
            row_stages,
            stride,
            stages,
            weak,
            span,
            norm,
            norm_area,
            tilted: cascade.has_tilted_features(),
        };
        // The scan reads windows without bounds checks on the strength of this.
        assert!(
            compiled.max_offset() < span,
            "a cascade offset lies outside its {span}-entry window"
        );
        compiled
    }

    /// The largest table offset any test or the variance window reads.
    fn max_offset(&self) -> usize {
        let haar = |t: &HaarTest| t.corners.iter().flatten().copied().max().unwrap_or(0);
        let lbp = |t: &LbpTest| t.points.iter().copied().max().unwrap_or(0);
        let weak = match &self.weak {
            Weak::HaarStumps(s) => s.iter().map(|s| haar(&s.test)).max(),
            Weak::HaarTrees(t) => t.nodes.iter().map(|n| haar(&n.test)).max(),
            Weak::LbpStumps(s) => s.iter().map(|s| lbp(&s.test)).max(),
            Weak::LbpTrees(t) => t.nodes.iter().map(|n| lbp(&n.test)).max(),
        };
        let norm = self.norm.iter().copied().max().unwrap_or(0);
        weak.unwrap_or(0).max(norm) as usize
    }
}

/// The trees of `cascade` with each node's test built by `test(node_index)`.
fn trees<T>(cascade: &Cascade, test: impl Fn(usize) -> T) -> Trees<T> {
    Trees {
        trees: cascade
            .trees
            .iter()
            .map(|t| TreeAt {
                first_node: t.first_node as u32,
                node_count: t.node_count as u32,
                first_leaf: t.first_leaf as u32,
            })
            .collect(),
        patterns: cascade
            .trees
            .iter()
            .map(|t| {
                let mut leaves = [0.0; 1 << PATTERN_NODES];
                if t.node_count <= PATTERN_NODES {
                    for (pattern, leaf) in leaves.iter_mut().enumerate() {
                        *leaf = cascade.leaves[t.first_leaf + leaf_reached(cascade, t, pattern)];
                    }
                }
                leaves
            })
            .collect(),
        nodes: (0..cascade.nodes.len())
            .map(|ni| {
                let n = &cascade.nodes[ni];
                TreeNode {
                    test: test(ni),
                    left: n.left,
                    right: n.right,
                }
            })
            .collect(),
        leaves: cascade.leaves.clone(),
    }
}

/// The leaf of `tree` (relative to its first) that node results `pattern` lead to, walking from the
/// root as the window-by-window scan does. Children come after their parent (checked when the
/// cascade is read), so the walk ends.
fn leaf_reached(cascade: &Cascade, tree: &super::cascade::Tree, pattern: usize) -> usize {
    let mut idx = 0i32;
    loop {
        let node = &cascade.nodes[tree.first_node + idx as usize];
        idx = if (pattern >> idx) & 1 == 1 {
            node.left
        } else {
            node.right
        };
        if idx <= 0 {
            return (-idx) as usize;
        }
    }
}
