//! A boosted cascade as OpenCV stores it, read from OpenCV's own XML files.
//!
//! Two layouts are read:
//! - the current one (`type_id="opencv-cascade-classifier"`, `stageType`/`featureType`/`stages`/`features`),
//!   used by OpenCV's `data/` folder for Haar and LBP cascades;
//! - the old `opencv-haar-classifier` one (`size`/`stages`/`trees`, nodes with `left_val`/`left_node`),
//!   which OpenCV still loads by converting it; the `fer` package ships its cascade in it. It is converted
//!   here the same way, so both files of a cascade give the same model and the same boxes.
//!
//! Numbers are parsed as `f64` and narrowed to `f32` where OpenCV narrows them, so thresholds and leaf
//! values carry the same bits as OpenCV's in-memory copy. Every index is checked when the file is read:
//! a cascade that loads can be evaluated without bounds surprises.

use std::path::{Path, PathBuf};

use roxmltree::Document;

type XmlNode<'a, 'i> = roxmltree::Node<'a, 'i>;

/// OpenCV subtracts this from every stage threshold when it reads a cascade.
const THRESHOLD_EPS: f32 = 1e-5;

/// Why a cascade file could not be used. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum CascadeError {
    /// The file could not be read at all.
    #[error("cannot read cascade {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The file is not well-formed XML (truncated, binary, or not XML).
    #[error("cascade {path} is not valid XML: {message}")]
    Xml {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
        /// The parser's error (none for a file that is not UTF-8, which never reached it).
        #[source]
        source: Option<roxmltree::Error>,
    },
    /// Valid XML, but neither of OpenCV's cascade layouts.
    #[error(
        "{path} is not an OpenCV cascade: expected <opencv_storage> holding a cascade \
         (stageType/featureType/stages/features, or the old size/stages/trees layout)"
    )]
    NotACascade {
        /// The file.
        path: PathBuf,
    },
    /// An OpenCV cascade of a kind this detector does not run.
    #[error("cascade {path}: {what} is not supported (emotiond runs BOOST cascades of HAAR or LBP features)")]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// What was found.
        what: String,
    },
    /// A cascade whose contents contradict each other (bad index, missing value, rectangle outside the
    /// window, wrong number of values).
    #[error("cascade {path}, line {line}: {what}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line of the element at fault (0 when not known).
        line: u32,
        /// What is wrong.
        what: String,
    },
}

/// Which feature family a cascade uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeatureKind {
    /// Haar-like rectangle features with variance normalisation.
    Haar,
    /// Multi-block local binary patterns (256 categories).
    Lbp,
}

/// An axis-aligned rectangle in window coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WinRect {
    /// Left edge.
    pub x: i32,
    /// Top edge.
    pub y: i32,
    /// Width.
    pub w: i32,
    /// Height.
    pub h: i32,
}

/// A Haar feature: up to three weighted rectangles, upright or tilted by 45 degrees.
#[derive(Debug, Clone, PartialEq)]
pub struct HaarFeature {
    /// The rectangles and their weights; unused slots have weight 0.
    pub rects: [(WinRect, f32); 3],
    /// True for a 45-degree feature evaluated on the tilted integral image.
    pub tilted: bool,
}

/// One decision node of a weak classifier.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Node {
    /// Index into the feature list.
    pub feature: usize,
    /// Haar only: go left when the feature value is below this.
    pub threshold: f32,
    /// Child when the test passes: `> 0` is a node of the same tree, `<= 0` is leaf `-left`.
    pub left: i32,
    /// Child when the test fails, same encoding as `left`.
    pub right: i32,
}

/// A weak classifier (a small tree) inside a stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tree {
    /// Index of its first node in the cascade's node list.
    pub first_node: usize,
    /// Number of nodes.
    pub node_count: usize,
    /// Index of its first leaf in the cascade's leaf list (a tree has `node_count + 1` leaves).
    pub first_leaf: usize,
}

/// A stage: a sum of weak classifiers compared with a threshold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stage {
    /// Index of its first tree in the cascade's tree list.
    pub first_tree: usize,
    /// Number of trees.
    pub tree_count: usize,
    /// The stage rejects a window whose sum is below this (already lowered by OpenCV's 1e-5).
    pub threshold: f32,
}

/// A parsed, validated cascade. Build one with [`Cascade::from_file`] or [`Cascade::from_xml`].
#[derive(Debug, Clone)]
pub struct Cascade {
    pub(crate) kind: FeatureKind,
    pub(crate) window_width: usize,
    pub(crate) window_height: usize,
    pub(crate) stages: Vec<Stage>,
    pub(crate) trees: Vec<Tree>,
    pub(crate) nodes: Vec<Node>,
    pub(crate) leaves: Vec<f32>,
    /// LBP: 8 words (256 bits) per node, the categories that go left.
    pub(crate) subsets: Vec<i32>,
    pub(crate) haar: Vec<HaarFeature>,
    pub(crate) lbp: Vec<WinRect>,
    pub(crate) max_nodes_per_tree: usize,
}

impl Cascade {
    /// Reads and validates a cascade XML file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Cascade, CascadeError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| CascadeError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let text = String::from_utf8(bytes).map_err(|e| CascadeError::Xml {
            path: path.to_path_buf(),
            message: format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
            source: None,
        })?;
        Cascade::from_xml(&text, path)
    }

    /// Parses cascade XML held in memory; `path` is only used in error messages.
    pub fn from_xml(text: &str, path: impl AsRef<Path>) -> Result<Cascade, CascadeError> {
        let path = path.as_ref();
        let doc = Document::parse(text).map_err(|e| CascadeError::Xml {
            path: path.to_path_buf(),
            message: e.to_string(),
            source: Some(e),
        })?;
        let p = Parser { doc: &doc, path };
        let storage = doc.root_element();
        if storage.tag_name().name() != "opencv_storage" {
            return Err(CascadeError::NotACascade {
                path: path.to_path_buf(),
            });
        }
        let top = storage
            .children()
            .find(XmlNode::is_element)
            .ok_or_else(|| CascadeError::NotACascade {
                path: path.to_path_buf(),
            })?;
        let cascade = if child(top, "stageType").is_some() {
            p.read_current(top)?
        } else if child(top, "size").is_some() && child(top, "stages").is_some() {
            p.read_old(top)?
        } else {
            return Err(CascadeError::NotACascade {
                path: path.to_path_buf(),
            });
        };
        cascade.validate(&p, top)?;
        Ok(cascade)
    }

    fn empty(kind: FeatureKind, window_width: usize, window_height: usize) -> Cascade {
        Cascade {
            kind,
            window_width,
            window_height,
            stages: Vec::new(),
            trees: Vec::new(),
            nodes: Vec::new(),
            leaves: Vec::new(),
            subsets: Vec::new(),
            haar: Vec::new(),
            lbp: Vec::new(),
            max_nodes_per_tree: 0,
        }
    }

    /// The feature family.
    pub fn kind(&self) -> FeatureKind {
        self.kind
    }

    /// The training window, `(width, height)` in pixels.
    pub fn window(&self) -> (usize, usize) {
        (self.window_width, self.window_height)
    }

    /// Number of stages.
    pub fn stage_count(&self) -> usize {
        self.stages.len()
    }

    /// Number of weak classifiers over all stages.
    pub fn tree_count(&self) -> usize {
        self.trees.len()
    }

    /// True when every weak classifier is a single node (a stump).
    pub fn is_stump_based(&self) -> bool {
        self.max_nodes_per_tree == 1
    }

    /// True when some Haar feature is tilted by 45 degrees.
    pub fn has_tilted_features(&self) -> bool {
        self.haar.iter().any(|f| f.tilted)
    }

    /// Checks every cross-reference once, so evaluation never meets a bad index.
    fn validate(&self, p: &Parser<'_>, top: XmlNode<'_, '_>) -> Result<(), CascadeError> {
        let (ww, wh) = (self.window_width as i32, self.window_height as i32);
        let nfeatures = match self.kind {
            FeatureKind::Haar => self.haar.len(),
            FeatureKind::Lbp => self.lbp.len(),
        };
        if self.stages.is_empty() {
            return Err(p.invalid(top, "the cascade has no stages".into()));
        }
        for (ti, tree) in self.trees.iter().enumerate() {
            for ni in 0..tree.node_count {
                let node = &self.nodes[tree.first_node + ni];
                if node.feature >= nfeatures {
                    return Err(p.invalid(
                        top,
                        format!(
                            "weak classifier {ti} uses feature {} but the cascade has {nfeatures} features",
                            node.feature
                        ),
                    ));
                }
                for child in [node.left, node.right] {
                    let bad = if child > 0 {
                        // Children come after their parent, which also rules out loops.
                        child as usize <= ni || child as usize >= tree.node_count
                    } else {
                        (-(child as i64)) as usize > tree.node_count
                    };
                    if bad {
                        return Err(p.invalid(
                            top,
                            format!(
                                "weak classifier {ti}, node {ni}: child index {child} is outside its \
                                 {} nodes and {} leaves",
                                tree.node_count,
                                tree.node_count + 1
                            ),
                        ));
                    }
                }
            }
        }
        // In i64: numbers near i32's limits must fail here, not overflow at evaluation. Every
        // slot is checked, weight 0 included, because evaluation reads every slot.
        let (ww, wh) = (i64::from(ww), i64::from(wh));
        for (fi, f) in self.haar.iter().enumerate() {
            for (r, weight) in &f.rects {
                let (x, y, w, h) = (
                    i64::from(r.x),
                    i64::from(r.y),
                    i64::from(r.w),
                    i64::from(r.h),
                );
                let inside = if f.tilted {
                    x - h >= 0 && x + w <= ww && y >= 0 && y + w + h <= wh
                } else {
                    x >= 0 && y >= 0 && x + w <= ww && y + h <= wh
                };
                if w < 0 || h < 0 || !inside {
                    return Err(p.invalid(
                        top,
                        format!(
                            "Haar feature {fi}: rectangle {x} {y} {w} {h}{} does not fit the {ww}x{wh} window",
                            if f.tilted { " (tilted)" } else { "" }
                        ),
                    ));
                }
                if !weight.is_finite() {
                    return Err(p.invalid(
                        top,
                        format!("Haar feature {fi}: rectangle weight {weight} is not a number"),
                    ));
                }
            }
        }
        for (fi, r) in self.lbp.iter().enumerate() {
            let (x, y, w, h) = (
                i64::from(r.x),
                i64::from(r.y),
                i64::from(r.w),
                i64::from(r.h),
            );
            if x < 0 || y < 0 || w <= 0 || h <= 0 || x + 3 * w > ww || y + 3 * h > wh {
                return Err(p.invalid(
                    top,
                    format!(
                        "LBP feature {fi}: block {x} {y} {w} {h} (3x3 cells) does not fit the {ww}x{wh} window"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// The first child element called `name`.
fn child<'a, 'i>(node: XmlNode<'a, 'i>, name: &str) -> Option<XmlNode<'a, 'i>> {
    node.children()
        .find(|n| n.is_element() && n.tag_name().name() == name)
}

/// The element children of a sequence node (`<_>` items).
fn items<'a, 'i>(node: XmlNode<'a, 'i>) -> impl Iterator<Item = XmlNode<'a, 'i>> {
    node.children().filter(XmlNode::is_element)
}

/// The whitespace-separated text of an element (comments skipped).
fn text_of(node: XmlNode<'_, '_>) -> String {
    node.descendants()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .collect::<Vec<_>>()
        .join(" ")
}

struct Parser<'d> {
    doc: &'d Document<'d>,
    path: &'d Path,
}

impl Parser<'_> {
    fn line(&self, node: XmlNode<'_, '_>) -> u32 {
        self.doc.text_pos_at(node.range().start).row
    }

    fn invalid(&self, node: XmlNode<'_, '_>, what: String) -> CascadeError {
        CascadeError::Invalid {
            path: self.path.to_path_buf(),
            line: self.line(node),
            what,
        }
    }

    fn required<'a, 'i>(
        &self,
        node: XmlNode<'a, 'i>,
        name: &str,
    ) -> Result<XmlNode<'a, 'i>, CascadeError> {
        child(node, name).ok_or_else(|| {
            self.invalid(
                node,
                format!("<{}> has no <{name}>", node.tag_name().name()),
            )
        })
    }

    /// All numbers in an element's text.
    fn numbers(&self, node: XmlNode<'_, '_>) -> Result<Vec<f64>, CascadeError> {
        text_of(node)
            .split_ascii_whitespace()
            .map(|tok| {
                tok.parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| {
                        self.invalid(
                            node,
                            format!("<{}> holds {tok:?}, not a number", node.tag_name().name()),
                        )
                    })
            })
            .collect()
    }

    fn number(&self, node: XmlNode<'_, '_>, name: &str) -> Result<f64, CascadeError> {
        let n = self.required(node, name)?;
        match self.numbers(n)?.as_slice() {
            [v] => Ok(*v),
            other => Err(self.invalid(
                n,
                format!("<{name}> should hold one number, holds {}", other.len()),
            )),
        }
    }

    fn int(&self, node: XmlNode<'_, '_>, value: f64) -> Result<i32, CascadeError> {
        if value.fract() != 0.0 || value.abs() > i32::MAX as f64 {
            return Err(self.invalid(node, format!("{value} should be an integer")));
        }
        Ok(value as i32)
    }

    fn window_size(
        &self,
        node: XmlNode<'_, '_>,
        w: f64,
        h: f64,
    ) -> Result<(usize, usize), CascadeError> {
        let (w, h) = (self.int(node, w)?, self.int(node, h)?);
        if w <= 0 || h <= 0 || w > 4096 || h > 4096 {
            return Err(self.invalid(node, format!("window size {w}x{h} is not usable")));
        }
        Ok((w as usize, h as usize))
    }

    /// The current layout (`opencv-cascade-classifier`).
    fn read_current(&self, top: XmlNode<'_, '_>) -> Result<Cascade, CascadeError> {
        let stage_type = text_of(self.required(top, "stageType")?);
        if stage_type.trim() != "BOOST" {
            return Err(CascadeError::Unsupported {
                path: self.path.to_path_buf(),
                what: format!("stageType {:?}", stage_type.trim()),
            });
        }
        let feature_type = text_of(self.required(top, "featureType")?);
        let kind = match feature_type.trim() {
            "HAAR" => FeatureKind::Haar,
            "LBP" => FeatureKind::Lbp,
            other => {
                return Err(CascadeError::Unsupported {
                    path: self.path.to_path_buf(),
                    what: format!("featureType {other:?}"),
                })
            }
        };
        let (window_width, window_height) =
            self.window_size(top, self.number(top, "width")?, self.number(top, "height")?)?;
        let params = self.required(top, "featureParams")?;
        let ncat = self.int(params, self.number(params, "maxCatCount")?)?;
        let subset_size = match (kind, ncat) {
            (FeatureKind::Haar, 0) => 0,
            (FeatureKind::Lbp, 256) => 8,
            _ => {
                return Err(self.invalid(
                    params,
                    format!("maxCatCount {ncat} does not fit {feature_type} features"),
                ))
            }
        };
        let node_step = 3 + if subset_size > 0 { subset_size } else { 1 };

        let mut c = Cascade::empty(kind, window_width, window_height);
        for stage in items(self.required(top, "stages")?) {
            let threshold = self.number(stage, "stageThreshold")? as f32 - THRESHOLD_EPS;
            let weak = self.required(stage, "weakClassifiers")?;
            let first_tree = c.trees.len();
            for tree in items(weak) {
                let internal = self.required(tree, "internalNodes")?;
                let values = self.numbers(internal)?;
                let leaves = self.numbers(self.required(tree, "leafValues")?)?;
                if values.is_empty() || values.len() % node_step != 0 {
                    return Err(self.invalid(
                        internal,
                        format!(
                            "internalNodes holds {} numbers, not a multiple of {node_step} per node",
                            values.len()
                        ),
                    ));
                }
                let node_count = values.len() / node_step;
                if leaves.len() != node_count + 1 {
                    return Err(self.invalid(
                        tree,
                        format!(
                            "a tree of {node_count} nodes needs {} leafValues, found {}",
                            node_count + 1,
                            leaves.len()
                        ),
                    ));
                }
                c.trees.push(Tree {
                    first_node: c.nodes.len(),
                    node_count,
                    first_leaf: c.leaves.len(),
                });
                for chunk in values.chunks_exact(node_step) {
                    let feature = self.int(internal, chunk[2])?;
                    if feature < 0 {
                        return Err(self.invalid(internal, format!("feature index {feature}")));
                    }
                    let mut threshold = 0.0;
                    if subset_size > 0 {
                        for &word in &chunk[3..] {
                            c.subsets.push(self.int(internal, word)?);
                        }
                    } else {
                        threshold = chunk[3] as f32;
                    }
                    c.nodes.push(Node {
                        feature: feature as usize,
                        threshold,
                        left: self.int(internal, chunk[0])?,
                        right: self.int(internal, chunk[1])?,
                    });
                }
                c.leaves.extend(leaves.iter().map(|&v| v as f32));
                c.max_nodes_per_tree = c.max_nodes_per_tree.max(node_count);
            }
            let tree_count = c.trees.len() - first_tree;
            if tree_count == 0 {
                return Err(self.invalid(stage, "a stage without weak classifiers".into()));
            }
            c.stages.push(Stage {
                first_tree,
                tree_count,
                threshold,
            });
        }
        for feature in items(self.required(top, "features")?) {
            match kind {
                FeatureKind::Haar => c.haar.push(self.haar_feature(feature, false)?),
                FeatureKind::Lbp => {
                    let rect = self.required(feature, "rect")?;
                    match self.numbers(rect)?.as_slice() {
                        [x, y, w, h] => c.lbp.push(WinRect {
                            x: self.int(rect, *x)?,
                            y: self.int(rect, *y)?,
                            w: self.int(rect, *w)?,
                            h: self.int(rect, *h)?,
                        }),
                        other => {
                            return Err(self.invalid(
                                rect,
                                format!("an LBP rect needs 4 numbers, found {}", other.len()),
                            ))
                        }
                    }
                }
            }
        }
        Ok(c)
    }

    /// A Haar feature: `<rects>` of "x y w h weight" items and an optional `<tilted>`.
    /// `drop_tiny_third` mirrors OpenCV's old-format converter, which drops a third rectangle whose
    /// weight is below `FLT_EPSILON`.
    fn haar_feature(
        &self,
        feature: XmlNode<'_, '_>,
        drop_tiny_third: bool,
    ) -> Result<HaarFeature, CascadeError> {
        let rects = self.required(feature, "rects")?;
        let mut out = HaarFeature {
            rects: [(WinRect::default(), 0.0); 3],
            tilted: false,
        };
        let list: Vec<_> = items(rects).collect();
        if list.is_empty() || list.len() > 3 {
            return Err(self.invalid(
                rects,
                format!("a Haar feature has 1 to 3 rectangles, found {}", list.len()),
            ));
        }
        for (k, item) in list.iter().enumerate() {
            match self.numbers(*item)?.as_slice() {
                [x, y, w, h, weight] => {
                    let weight = *weight as f32;
                    if drop_tiny_third && k >= 2 && weight.abs() < f32::EPSILON {
                        break;
                    }
                    out.rects[k] = (
                        WinRect {
                            x: self.int(*item, *x)?,
                            y: self.int(*item, *y)?,
                            w: self.int(*item, *w)?,
                            h: self.int(*item, *h)?,
                        },
                        weight,
                    );
                }
                other => {
                    return Err(self.invalid(
                        *item,
                        format!(
                            "a Haar rect needs 5 numbers (x y w h weight), found {}",
                            other.len()
                        ),
                    ))
                }
            }
        }
        if child(feature, "tilted").is_some() {
            out.tilted = self.number(feature, "tilted")? != 0.0;
        }
        Ok(out)
    }

    /// The old `opencv-haar-classifier` layout, converted as OpenCV's `haar_cvt::convert` does: each node
    /// gets its own feature, leaves are numbered in the order left/right values appear.
    fn read_old(&self, top: XmlNode<'_, '_>) -> Result<Cascade, CascadeError> {
        let size_node = self.required(top, "size")?;
        let (window_width, window_height) = match self.numbers(size_node)?.as_slice() {
            [w, h] => self.window_size(size_node, *w, *h)?,
            other => {
                return Err(self.invalid(
                    size_node,
                    format!("<size> needs 2 numbers, found {}", other.len()),
                ))
            }
        };
        let mut c = Cascade::empty(FeatureKind::Haar, window_width, window_height);
        for stage in items(self.required(top, "stages")?) {
            // Written as a double by the converter and read back as a float.
            let threshold = self.number(stage, "stage_threshold")? as f32 - THRESHOLD_EPS;
            let first_tree = c.trees.len();
            for tree in items(self.required(stage, "trees")?) {
                let first_node = c.nodes.len();
                let first_leaf = c.leaves.len();
                let mut leaf_count = 0i32;
                for node in items(tree) {
                    let feature = self.haar_feature(self.required(node, "feature")?, true)?;
                    let threshold = self.number(node, "threshold")? as f32;
                    let mut side = |val: &str, link: &str| -> Result<i32, CascadeError> {
                        if child(node, val).is_some() {
                            c.leaves.push(self.number(node, val)? as f32);
                            leaf_count += 1;
                            Ok(-(leaf_count - 1))
                        } else {
                            let v = self.number(node, link)?;
                            self.int(node, v)
                        }
                    };
                    let left = side("left_val", "left_node")?;
                    let right = side("right_val", "right_node")?;
                    c.nodes.push(Node {
                        feature: c.haar.len(),
                        threshold,
                        left,
                        right,
                    });
                    c.haar.push(feature);
                }
                let node_count = c.nodes.len() - first_node;
                if node_count == 0 || leaf_count as usize != node_count + 1 {
                    return Err(self.invalid(
                        tree,
                        format!(
                            "a tree of {node_count} nodes has {leaf_count} leaf values; it needs {}",
                            node_count + 1
                        ),
                    ));
                }
                c.trees.push(Tree {
                    first_node,
                    node_count,
                    first_leaf,
                });
                c.max_nodes_per_tree = c.max_nodes_per_tree.max(node_count);
            }
            let tree_count = c.trees.len() - first_tree;
            if tree_count == 0 {
                return Err(self.invalid(stage, "a stage without trees".into()));
            }
            c.stages.push(Stage {
                first_tree,
                tree_count,
                threshold,
            });
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STUMP: &str = r#"<?xml version="1.0"?>
<opencv_storage>
<cascade type_id="opencv-cascade-classifier"><stageType>BOOST</stageType>
  <featureType>HAAR</featureType><height>4</height><width>4</width>
  <featureParams><maxCatCount>0</maxCatCount></featureParams>
  <stages><_><stageThreshold>-1.</stageThreshold><weakClassifiers>
    <_><internalNodes>0 -1 0 5.e-01</internalNodes><leafValues>1. -1.</leafValues></_>
  </weakClassifiers></_></stages>
  <features><_><rects><_>0 0 2 4 -1.</_><_>2 0 2 4 1.</_></rects></_></features>
</cascade></opencv_storage>"#;

    #[test]
    fn reads_a_minimal_stump_cascade() {
        let c = Cascade::from_xml(STUMP, "mini.xml").unwrap();
        assert_eq!(c.kind(), FeatureKind::Haar);
        assert_eq!(c.window(), (4, 4));
        assert!(c.is_stump_based());
        assert_eq!(c.stages[0].threshold, -1.0f32 - 1e-5);
        assert_eq!(c.leaves, vec![1.0, -1.0]);
        assert_eq!(
            c.haar[0].rects[1],
            (
                WinRect {
                    x: 2,
                    y: 0,
                    w: 2,
                    h: 4
                },
                1.0
            )
        );
    }

    fn err(text: &str) -> String {
        Cascade::from_xml(text, "bad.xml").unwrap_err().to_string()
    }

    #[test]
    fn rejects_bad_indices_and_shapes() {
        let e = err(&STUMP.replace("0 -1 0 5.e-01", "0 -1 3 5.e-01"));
        assert!(e.contains("uses feature 3 but the cascade has 1"), "{e}");
        let e = err(&STUMP.replace("0 -1 0 5.e-01", "0 -5 0 5.e-01"));
        assert!(e.contains("child index -5"), "{e}");
        let e = err(&STUMP.replace("<_>2 0 2 4 1.</_>", "<_>3 0 2 4 1.</_>"));
        assert!(e.contains("does not fit the 4x4 window"), "{e}");
        let e = err(&STUMP.replace("1. -1.</leafValues>", "1.</leafValues>"));
        assert!(e.contains("needs 2 leafValues"), "{e}");
        let e = err(&STUMP.replace("0 -1 0 5.e-01", "0 -1 0"));
        assert!(e.contains("not a multiple of 4"), "{e}");
        let e = err(&STUMP.replace("<featureType>HAAR", "<featureType>HOG"));
        assert!(e.contains("featureType \"HOG\" is not supported"), "{e}");
        let e = err(&STUMP.replace("5.e-01", "abc"));
        assert!(e.contains("\"abc\", not a number"), "{e}");
        let e = err(&STUMP[..STUMP.len() / 2]);
        assert!(e.contains("not valid XML"), "{e}");
        let e = err("<opencv_storage><x>1</x></opencv_storage>");
        assert!(e.contains("not an OpenCV cascade"), "{e}");
        let e = err("<html/>");
        assert!(e.contains("not an OpenCV cascade"), "{e}");
    }

    #[test]
    fn rect_numbers_past_i32_and_weight_zero_rects_are_checked() {
        // Issue 15: x + w summed past i32 passed the check and overflowed at evaluation.
        let e = err(&STUMP.replace("<_>2 0 2 4 1.</_>", "<_>2147483000 0 2000 4 1.</_>"));
        assert!(e.contains("does not fit the 4x4 window"), "{e}");
        let e = err(&STUMP.replace("<_>2 0 2 4 1.</_>", "<_>2 0 2 2147483000 1.</_>"));
        assert!(e.contains("does not fit the 4x4 window"), "{e}");
        // A rect of weight 0 is still read at evaluation, so it must fit too.
        let e = err(&STUMP.replace("<_>2 0 2 4 1.</_>", "<_>9 9 9 9 0.</_>"));
        assert!(e.contains("does not fit the 4x4 window"), "{e}");
    }

    #[test]
    fn broken_xml_keeps_the_parsers_error_as_the_source() {
        let e = Cascade::from_xml(&STUMP[..STUMP.len() / 2], "bad.xml").unwrap_err();
        let cause = std::error::Error::source(&e).expect("the parser's error");
        assert!(
            cause.downcast_ref::<roxmltree::Error>().is_some(),
            "{cause:?}"
        );
        assert!(e.to_string().contains(&cause.to_string()), "{e}");
    }
}
