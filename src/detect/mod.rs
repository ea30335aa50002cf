//! Viola-Jones face detection that gives the same boxes as OpenCV's
//! `CascadeClassifier::detectMultiScale`.
//!
//! A [`Cascade`] is read once from one of OpenCV's XML files (Haar or LBP, current or old layout). A
//! [`Detector`] owns it together with every per-frame buffer (pyramid level, integral tables, candidate
//! list), so detecting on a stream of frames of one size allocates nothing after the first frame.
//!
//! The procedure is OpenCV 4.x's, step for step:
//! 1. scales `f = 1, s, s^2, ...` while the window `round(24 f)` fits the image and `maxSize`; levels whose
//!    window is below `minSize` are skipped;
//! 2. each level is the input shrunk to `round(W / f) x round(H / f)` with OpenCV's bit-exact bilinear
//!    resize ([`crate::resize`], `INTER_LINEAR_EXACT`), and its integral tables are built ([`integral`]);
//! 3. windows are visited every 2 pixels (every pixel once `f >= 2`), one more column is skipped after a
//!    window that fails stage 0, and rows are split into OpenCV's stripes (which can leave out the last
//!    row of a level);
//! 4. candidates are grouped with `groupRectangles(minNeighbors, 0.2)` ([`group`]) and clipped to the image.
//!
//! With more than one thread ([`Detector::with_threads`]) the rows of each level are split into chunks
//! that a thread pool made once evaluates in parallel, as OpenCV's `parallel_for_` splits them into
//! stripes, and the next level's image and tables are built on the pool meanwhile (two table sets
//! take turns). Each chunk writes its candidates into a buffer of its own and the buffers are joined in
//! row order, so the candidate list, and with it the grouped boxes, is the single-thread one at any
//! thread count. The planning (levels, rows, chunks) lives here, the hot loops in `scan`, the cascade's flat
//! layout in `compiled`.
//!
//! ```no_run
//! use emotiond::detect::{Cascade, DetectParams, Detector};
//! use emotiond::frame::GrayFrame;
//!
//! let cascade = Cascade::from_file("models/haarcascade_frontalface_default.xml")?;
//! let mut detector = Detector::new(cascade);
//! let frame = GrayFrame::filled(640, 480, 128);
//! let faces = detector.detect(&frame, &DetectParams::fer())?;
//! println!("{} faces", faces.len());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod cascade;
mod compiled;
pub mod group;
pub mod integral;
mod scan;
pub mod settings;

pub use cascade::{Cascade, CascadeError, FeatureKind};
pub use settings::DetectConfig;

use crate::frame::GrayFrame;
pub use crate::frame::Rect;
use crate::resize::Resizer;
use compiled::Compiled;
use group::{Grouper, GROUP_EPS};
use rayon::prelude::*;
use scan::{LevelScan, RowScratch, Tables};

/// The most detector threads [`Detector::with_threads`] accepts: far more than any Pi has cores, few
/// enough that an absurd number is caught.
pub const MAX_THREADS: usize = 256;

/// The number of threads "auto" (0) means: the cores this process may run on.
pub fn auto_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Row chunks per thread and level: enough for the pool to balance rows of unequal cost.
const CHUNKS_PER_THREAD: usize = 4;

/// The parameters of `detectMultiScale`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectParams {
    /// Pyramid step, above 1 and at most 4 (OpenCV's `scaleFactor`).
    pub scale_factor: f64,
    /// A face needs more than this many raw candidates in its cluster (`minNeighbors`, at most
    /// 100); 0 returns every raw candidate ungrouped.
    pub min_neighbors: i32,
    /// Smallest face side in pixels; 0 for no limit (`minSize`, at most [`crate::frame::MAX_SIDE`]).
    pub min_size: usize,
    /// Largest face side in pixels; 0 for no limit (`maxSize`, at most [`crate::frame::MAX_SIDE`]).
    pub max_size: usize,
}

impl DetectParams {
    /// The `fer` package's parameters, emotiond's defaults: scale 1.1, 5 neighbours, faces of at least
    /// 50 pixels.
    pub fn fer() -> Self {
        DetectParams {
            scale_factor: 1.1,
            min_neighbors: 5,
            min_size: 50,
            max_size: 0,
        }
    }

    /// OpenCV's own defaults: scale 1.1, 3 neighbours, no size limits.
    pub fn opencv() -> Self {
        DetectParams {
            scale_factor: 1.1,
            min_neighbors: 3,
            min_size: 0,
            max_size: 0,
        }
    }

    /// Checks the values OpenCV would reject or that cannot work, by the same rules the
    /// configuration applies ([`settings`]).
    pub fn validate(&self) -> Result<(), DetectError> {
        let bad =
            |key: &'static str| move |e: String| DetectError::BadParam(format!("{key} = {e}"));
        let wide = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
        settings::scale_factor(self.scale_factor).map_err(bad("scale_factor"))?;
        settings::min_neighbors(i64::from(self.min_neighbors)).map_err(bad("min_neighbors"))?;
        let min = settings::face_side(wide(self.min_size)).map_err(bad("min_size"))?;
        let max = settings::face_side(wide(self.max_size)).map_err(bad("max_size"))?;
        settings::size_order(min, max).map_err(DetectError::BadParam)
    }
}

impl Default for DetectParams {
    fn default() -> Self {
        DetectParams::fer()
    }
}

/// Why a detection could not run.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// A parameter out of range.
    #[error("bad detector parameter: {0}")]
    BadParam(String),
    /// The frame has no pixels.
    #[error("the frame is empty (0x0); nothing to detect in")]
    EmptyFrame,
    /// A thread count out of range, or a pool that could not be started.
    #[error(transparent)]
    Threads(#[from] ThreadsError),
}

/// A thread count that cannot be used, for the detector or the classifier.
#[derive(Debug, thiserror::Error)]
pub enum ThreadsError {
    /// A count above [`MAX_THREADS`], refused by [`settings::threads`].
    #[error("{name} threads: {message}")]
    TooMany {
        /// Whose threads ("detector", "classifier").
        name: &'static str,
        /// What the rule says.
        message: String,
    },
    /// The thread pool could not be started.
    #[error("cannot start {threads} {name} threads: {source}")]
    Pool {
        /// Whose threads.
        name: &'static str,
        /// Threads asked for.
        threads: usize,
        /// What rayon said.
        #[source]
        source: rayon::ThreadPoolBuildError,
    },
}

/// The thread count `threads` stands for (0: one per core, [`auto_threads`]) and, above one, a pool
/// of that many threads named after `name` ("detector", "classifier"), made once by the caller's
/// constructor.
pub fn thread_pool(
    threads: usize,
    name: &'static str,
) -> Result<(usize, Option<rayon::ThreadPool>), ThreadsError> {
    settings::threads(i64::try_from(threads).unwrap_or(i64::MAX))
        .map_err(|message| ThreadsError::TooMany { name, message })?;
    let threads = if threads == 0 {
        auto_threads()
    } else {
        threads
    };
    if threads == 1 {
        return Ok((1, None));
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(move |i| format!("{name}-{i}"))
        .build()
        .map_err(|source| ThreadsError::Pool {
            name,
            threads,
            source,
        })?;
    Ok((threads, Some(pool)))
}

/// One pyramid level's geometry.
#[derive(Debug, Clone, Copy)]
struct Level {
    scale: f32,
    width: usize,
    height: usize,
}

/// A cascade plus every buffer detection needs; reuse one per video stream.
#[derive(Debug)]
pub struct Detector {
    cascade: Cascade,
    compiled: Option<Compiled>,
    levels: Vec<Level>,
    /// The level being scanned and the next one, which the pool builds meanwhile.
    tables: [LevelTables; 2],
    grouper: Grouper,
    /// The worker threads; `None` runs on the caller's thread alone.
    pool: Option<rayon::ThreadPool>,
    threads: usize,
    /// One candidate buffer per row chunk, joined in order after each level, with its scratch.
    chunks: Vec<(Vec<Rect>, RowScratch)>,
    /// The scratch of the single-thread path.
    scratch: RowScratch,
    /// How many times the cascade was laid out for a table stride.
    layouts: usize,
}

impl Detector {
    /// A detector for `cascade` that runs on the caller's thread, with empty buffers.
    pub fn new(cascade: Cascade) -> Detector {
        Detector {
            pool: None,
            threads: 1,
            chunks: Vec::new(),
            scratch: RowScratch::default(),
            layouts: 0,
            cascade,
            compiled: None,
            levels: Vec::new(),
            tables: Default::default(),
            grouper: Grouper::new(),
        }
    }

    /// A detector for `cascade` on `threads` threads (0: one per core, [`auto_threads`]); the pool is
    /// made here, once. The boxes are the same at any thread count.
    pub fn with_threads(cascade: Cascade, threads: usize) -> Result<Detector, DetectError> {
        let (threads, pool) = thread_pool(threads, "detector")?;
        let mut d = Detector::new(cascade);
        d.threads = threads;
        d.pool = pool;
        Ok(d)
    }

    /// How many times the cascade has been laid out for a table row stride: once for the widest
    /// frame seen, which then serves every narrower one (a local search's region, say).
    pub fn layouts_built(&self) -> usize {
        self.layouts
    }

    /// The threads detection runs on.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// The thread pool, when there is more than one thread; other stages may run work on it.
    pub fn pool(&self) -> Option<&rayon::ThreadPool> {
        self.pool.as_ref()
    }

    /// The cascade this detector runs.
    pub fn cascade(&self) -> &Cascade {
        &self.cascade
    }

    /// Detects faces; the returned boxes are OpenCV's for the same gray image and parameters.
    pub fn detect(
        &mut self,
        frame: &GrayFrame,
        params: &DetectParams,
    ) -> Result<Vec<Rect>, DetectError> {
        let mut out = Vec::new();
        self.detect_into(frame, params, &mut out)?;
        Ok(out)
    }

    /// Like [`Detector::detect`], writing into `out` (cleared first) so a caller can reuse it.
    pub fn detect_into(
        &mut self,
        frame: &GrayFrame,
        params: &DetectParams,
        out: &mut Vec<Rect>,
    ) -> Result<(), DetectError> {
        params.validate()?;
        out.clear();
        if frame.is_empty() {
            return Err(DetectError::EmptyFrame);
        }
        self.raw_candidates(frame, params, out);
        self.grouper.group(out, params.min_neighbors, GROUP_EPS);
        clip(out, frame.width() as i32, frame.height() as i32);
        Ok(())
    }

    /// The pyramid scales OpenCV would use for this image size and these parameters.
    fn plan_levels(&mut self, width: usize, height: usize, params: &DetectParams) {
        self.levels.clear();
        let (ww, wh) = self.cascade.window();
        let (max_w, max_h) = if params.max_size == 0 {
            (width as i64, height as i64)
        } else {
            (params.max_size as i64, params.max_size as i64)
        };
        let mut factor = 1.0f64;
        loop {
            let win_w = (ww as f64 * factor).round_ties_even() as i64;
            let win_h = (wh as f64 * factor).round_ties_even() as i64;
            if win_w > max_w || win_h > max_h || win_w > width as i64 || win_h > height as i64 {
                break;
            }
            if win_w >= params.min_size as i64 && win_h >= params.min_size as i64 {
                let scale = factor as f32;
                self.levels.push(Level {
                    scale,
                    width: (width as f32 / scale).round_ties_even() as usize,
                    height: (height as f32 / scale).round_ties_even() as usize,
                });
            }
            factor *= params.scale_factor;
        }
    }

    /// Every window that passes all stages, in OpenCV's single-thread order.
    fn raw_candidates(&mut self, frame: &GrayFrame, params: &DetectParams, out: &mut Vec<Rect>) {
        self.plan_levels(frame.width(), frame.height(), params);
        let Some(first) = self.levels.first().copied() else {
            return;
        };
        let (ww, wh) = self.cascade.window();
        // One compiled layout serves every narrower level and frame (a local search's region, say):
        // it is rebuilt only when a wider one comes.
        let stride = first.width + 1;
        if self.compiled.as_ref().is_none_or(|c| c.stride < stride) {
            self.compiled = Some(Compiled::new(&self.cascade, stride));
            self.layouts += 1;
        }
        let Detector {
            cascade,
            compiled,
            levels,
            tables,
            pool,
            threads,
            chunks,
            scratch,
            ..
        } = self;
        let compiled = compiled.as_ref().expect("compiled above");
        let layout = TableLayout {
            stride: compiled.stride,
            len: compiled.stride * (first.height + 1),
            squares: cascade.kind() == FeatureKind::Haar,
            tilted: compiled.tilted,
        };
        // OpenCV splits rows into stripes sized from the first level's working width.
        let nstripes = first.working((ww, wh)).0.div_ceil(32);
        if nstripes == 0 {
            return;
        }
        let plan = |level: &Level| LevelPlan::new(level, (ww, wh), nstripes);
        let [current, next] = tables;
        match pool {
            // Level by level: the pool scans this level's row chunks and, on the thread that is
            // free first, builds the next level's tables, so the serial resize and integral
            // overlap the scan. Each chunk's candidates go to a buffer of its own, joined in row
            // order.
            Some(pool) => pool.install(|| {
                current.build(frame, &first, layout);
                for li in 0..levels.len() {
                    let plan = plan(&levels[li]);
                    let n = (*threads * CHUNKS_PER_THREAD).min(plan.rows);
                    if chunks.len() < n {
                        chunks.resize_with(n, Default::default);
                    }
                    let (scanned, building) = (&*current, &mut *next);
                    rayon::join(
                        || {
                            let tables = scanned.tables();
                            chunks[..n].par_iter_mut().enumerate().for_each(
                                |(i, (buf, scratch))| {
                                    buf.clear();
                                    let (a, b) = (i * plan.rows / n, (i + 1) * plan.rows / n);
                                    let ys = (a..b).map(|r| r * plan.scan.step);
                                    scan::scan_rows(
                                        compiled, &tables, &plan.scan, ys, buf, scratch,
                                    );
                                },
                            )
                        },
                        || {
                            if let Some(level) = levels.get(li + 1) {
                                building.build(frame, level, layout);
                            }
                        },
                    );
                    for (buf, _) in &chunks[..n] {
                        out.extend_from_slice(buf);
                    }
                    std::mem::swap(current, next);
                }
            }),
            None => {
                for level in levels.iter() {
                    let plan = plan(level);
                    current.build(frame, level, layout);
                    let ys = (0..plan.rows).map(|r| r * plan.scan.step);
                    scan::scan_rows(compiled, &current.tables(), &plan.scan, ys, out, scratch);
                }
            }
        }
    }
}

/// How a level's integral tables are laid out: one row stride for every level (the compiled
/// cascade's), room for the first level's rows, and which tables the cascade reads.
#[derive(Debug, Clone, Copy)]
struct TableLayout {
    stride: usize,
    len: usize,
    squares: bool,
    tilted: bool,
}

/// One pyramid level's image and integral tables, with the scratch that builds them.
#[derive(Debug, Default)]
struct LevelTables {
    pixels: Vec<u8>,
    sum: Vec<i32>,
    sqsum: Vec<i32>,
    tilted: Vec<i32>,
    tilted_scratch: Vec<i32>,
    resizer: Resizer,
}

impl LevelTables {
    /// Shrinks `frame` to `level` and builds the tables `layout` asks for.
    fn build(&mut self, frame: &GrayFrame, level: &Level, layout: TableLayout) {
        let (lw, lh) = (level.width, level.height);
        self.pixels.resize(lw * lh, 0);
        self.resizer.resize_linear_exact(
            frame.pixels(),
            frame.width(),
            frame.height(),
            &mut self.pixels,
            lw,
            lh,
        );
        self.sum.resize(layout.len, 0);
        let squares = if layout.squares {
            self.sqsum.resize(layout.len, 0);
            Some(&mut self.sqsum[..])
        } else {
            None
        };
        integral::integral(&self.pixels, lw, lh, layout.stride, &mut self.sum, squares);
        if layout.tilted {
            self.tilted.resize(layout.len, 0);
            integral::tilted_integral(
                &self.pixels,
                lw,
                lh,
                layout.stride,
                &mut self.tilted,
                &mut self.tilted_scratch,
            );
        }
    }

    fn tables(&self) -> Tables<'_> {
        Tables {
            sum: &self.sum,
            sqsum: &self.sqsum,
            tilted: &self.tilted,
        }
    }
}

/// Which rows of a level are scanned (OpenCV's stripes, which can leave out the last row) and how
/// its windows map back to the frame.
#[derive(Debug, Clone, Copy)]
struct LevelPlan {
    scan: LevelScan,
    /// Rows on the step grid, from row 0.
    rows: usize,
}

impl Level {
    /// Where windows of size `window` can start: columns and rows.
    fn working(&self, (ww, wh): (usize, usize)) -> (usize, usize) {
        (
            (self.width + 1).saturating_sub(ww),
            (self.height + 1).saturating_sub(wh),
        )
    }
}

impl LevelPlan {
    fn new(level: &Level, (ww, wh): (usize, usize), nstripes: usize) -> LevelPlan {
        let (work_w, work_h) = level.working((ww, wh));
        let step = if level.scale >= 2.0 { 1 } else { 2 };
        let stripe = (work_h / step).div_ceil(nstripes).max(1) * step;
        let y_end = (nstripes * stripe).min(work_h);
        LevelPlan {
            scan: LevelScan {
                work_w,
                step,
                scale: level.scale,
                win_w: (ww as f32 * level.scale).round_ties_even() as i32,
                win_h: (wh as f32 * level.scale).round_ties_even() as i32,
            },
            rows: y_end.div_ceil(step),
        }
    }
}

/// OpenCV's `clipObjects`: intersect with the image, drop what becomes empty.
fn clip(rects: &mut Vec<Rect>, width: i32, height: i32) {
    rects.retain_mut(|r| {
        let x0 = r.x.max(0);
        let y0 = r.y.max(0);
        let x1 = (r.x + r.w).min(width);
        let y1 = (r.y + r.h).min(height);
        if x1 > x0 && y1 > y0 {
            *r = Rect {
                x: x0,
                y: y0,
                w: x1 - x0,
                h: y1 - y0,
            };
            true
        } else {
            false
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_checked() {
        let mut p = DetectParams::fer();
        assert!(p.validate().is_ok());
        p.scale_factor = 1.0;
        assert!(p.validate().unwrap_err().to_string().contains("above 1"));
        p.scale_factor = 9.0;
        assert!(p.validate().unwrap_err().to_string().contains("at most 4"));
        p.scale_factor = f64::NAN;
        assert!(p.validate().is_err());
        let p = DetectParams {
            max_size: 20,
            ..DetectParams::fer()
        };
        assert!(p
            .validate()
            .unwrap_err()
            .to_string()
            .contains("max_size 20 is below min_size 50"));
    }

    #[test]
    fn clip_trims_and_drops() {
        let mut r = vec![
            Rect {
                x: -5,
                y: 2,
                w: 10,
                h: 10,
            },
            Rect {
                x: 20,
                y: 20,
                w: 5,
                h: 5,
            },
            Rect {
                x: 8,
                y: 8,
                w: 5,
                h: 5,
            },
        ];
        clip(&mut r, 10, 10);
        assert_eq!(
            r,
            vec![
                Rect {
                    x: 0,
                    y: 2,
                    w: 5,
                    h: 8
                },
                Rect {
                    x: 8,
                    y: 8,
                    w: 2,
                    h: 2
                }
            ]
        );
    }
}
