//! What `detect` and `classify` print: the JSON shape and the table, and the emotion options both share.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use serde::Serialize;

use emotiond::classify::{
    settings, Classifier, CropRule, Offsets, ParallelClassifier, Probs, DEFAULT_MODEL,
};
use emotiond::frame::Rect;

/// One image's result, the JSON shape of `--json`.
#[derive(Debug, Serialize)]
pub struct ImageFaces {
    pub image: String,
    pub width: usize,
    pub height: usize,
    pub faces: Vec<Face>,
}

/// One face: its box, and with emotions its seven probabilities and top label.
#[derive(Debug, Serialize)]
pub struct Face {
    #[serde(rename = "box")]
    pub bbox: [i32; 4],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probs: Option<[f32; 7]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<&'static str>,
}

impl Face {
    /// A face with its emotion, if it was classified.
    pub fn new(r: Rect, probs: Option<Probs>) -> Self {
        Face {
            bbox: r.to_array(),
            probs: probs.map(|p| p.0),
            label: probs.map(|p| p.top().name()),
        }
    }
}

/// Options that choose the emotion model and how faces are cropped for it.
#[derive(Debug, Args)]
pub struct ModelArgs {
    /// Emotion model (.tflite, mini-Xception: input 64x64x1 float32, 7 outputs). Default:
    /// emotion_mini_xception_f32.tflite from ./models, then the installed data directory.
    #[arg(long, value_name = "PATH")]
    pub model: Option<PathBuf>,
    /// Margin around the squared face box, in pixels, as fer adds it: X,Y.
    #[arg(long, value_name = "X,Y", default_value = "10,10", value_parser = parse_pixel_offsets)]
    pub offsets: (i32, i32),
    /// Margin in proportion to the face size instead (0.1,0.1 adds 10% each side); the image is
    /// extended with fer's pad value where the margin leaves it.
    #[arg(long, value_name = "FX,FY", conflicts_with = "offsets", value_parser = parse_relative_offsets)]
    pub relative_offsets: Option<(f32, f32)>,
}

impl ModelArgs {
    /// The crop rule these options describe.
    pub fn rule(&self) -> CropRule {
        let offsets = match self.relative_offsets {
            Some((x, y)) => Offsets::Proportional { x, y },
            None => Offsets::Pixels {
                x: self.offsets.0,
                y: self.offsets.1,
            },
        };
        CropRule { offsets }
    }

    /// Finds and loads the model.
    pub fn load(&self) -> Result<Classifier> {
        let path = super::find_model(self.model.as_deref(), DEFAULT_MODEL, "--model")?;
        let classifier = Classifier::load(&path, self.rule())?;
        log::info!("emotion model {}", path.display());
        Ok(classifier)
    }

    /// The model on `threads` threads (the `--threads` flag; 0 for one per core).
    pub fn load_parallel(&self, threads: usize) -> Result<ParallelClassifier> {
        ParallelClassifier::new(self.load()?, threads).context("--threads")
    }
}

/// Splits `A,B` into two numbers; the values are the stage's to check.
fn split_pair<T: std::str::FromStr>(s: &str, form: &str) -> Result<(T, T), String> {
    s.split_once(',')
        .and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)))
        .ok_or_else(|| format!("{s:?}: expected two numbers as {form}"))
}

/// `--offsets X,Y`, checked by the crop's rule for `classify.offsets`.
fn parse_pixel_offsets(s: &str) -> Result<(i32, i32), String> {
    let (x, y) = split_pair(s, "X,Y, e.g. 10,10")?;
    let [x, y] = settings::pixel_offsets(x, y)?;
    Ok((x, y))
}

/// `--relative-offsets FX,FY`, checked by the crop's rule for `classify.relative_offsets`.
fn parse_relative_offsets(s: &str) -> Result<(f32, f32), String> {
    let (x, y) = split_pair(s, "FX,FY, e.g. 0.1,0.1")?;
    let [x, y] = settings::relative_offsets(x, y)?;
    Ok((x, y))
}

/// Parses `x,y,w,h` (whole pixels; x and y may be negative).
pub fn parse_box(s: &str) -> Result<Rect, String> {
    Rect::parse(s)
}

/// Prints results as JSON (`--json`) or as a table.
pub fn print(results: &[ImageFaces], json: bool) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if json {
        serde_json::to_writer(&mut out, results)?;
        writeln!(out)?;
    } else {
        print_table(&mut out, results)?;
    }
    out.flush()?;
    Ok(())
}

fn print_table(out: &mut impl Write, results: &[ImageFaces]) -> std::io::Result<()> {
    for r in results {
        let n = r.faces.len();
        writeln!(
            out,
            "{} ({}x{}): {n} face{}",
            r.image,
            r.width,
            r.height,
            if n == 1 { "" } else { "s" }
        )?;
        for (i, f) in r.faces.iter().enumerate() {
            let [x, y, w, h] = f.bbox;
            write!(out, "  face {}: x={x} y={y} w={w} h={h}", i + 1)?;
            if let (Some(p), Some(label)) = (f.probs, f.label) {
                let top = p.iter().copied().fold(0f32, f32::max);
                write!(out, "  {label} {top:.2}")?;
            }
            writeln!(out)?;
        }
    }
    Ok(())
}

/// Where `--annotate` writes for `image`: the given file, or a file in the given directory.
pub fn annotate_target(out: &Path, dir: bool, image: &Path) -> PathBuf {
    if !dir {
        return out.to_path_buf();
    }
    let stem = image
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image".into());
    out.join(format!("{stem}.annotated.png"))
}

/// Checks `--annotate` against the number of images; true when it names a directory.
pub fn annotate_is_dir(out: Option<&Path>, images: usize) -> Result<bool> {
    match out {
        Some(p) if p.is_dir() => Ok(true),
        Some(p) if images > 1 => bail!(
            "--annotate {}: with {images} images, give an existing directory to write one PNG per image",
            p.display()
        ),
        _ => Ok(false),
    }
}

/// Classifies `faces` on `frame`, naming the image and box in any error.
pub fn classify_faces(
    classifier: &mut ParallelClassifier,
    frame: &emotiond::frame::GrayFrame,
    faces: &[Rect],
    image: &Path,
) -> Result<Vec<Face>> {
    let mut results = Vec::with_capacity(faces.len());
    classifier
        .classify_all(frame, faces, &mut results)
        .with_context(|| format!("classifying faces in {}", image.display()))?;
    faces
        .iter()
        .zip(results)
        .map(|(&r, p)| {
            let p = p.with_context(|| {
                format!("{}: box {},{},{},{}", image.display(), r.x, r.y, r.w, r.h)
            })?;
            Ok(Face::new(r, Some(p)))
        })
        .collect()
}
