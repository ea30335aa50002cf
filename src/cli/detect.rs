//! `emotiond detect`: faces in still images.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use serde::Serialize;

use emotiond::detect::{Cascade, DetectParams, Detector, Rect};
use emotiond::source::still;

/// The cascade used when `--cascade` is not given.
pub const DEFAULT_CASCADE: &str = "haarcascade_frontalface_default.xml";

#[derive(Debug, Args)]
pub struct DetectArgs {
    /// Image files (PNG or JPEG).
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<PathBuf>,
    /// Cascade XML (OpenCV's Haar or LBP format). Default: haarcascade_frontalface_default.xml from
    /// ./models, then the installed data directory.
    #[arg(long, value_name = "PATH")]
    cascade: Option<PathBuf>,
    /// Pyramid step (OpenCV's scaleFactor), above 1.
    #[arg(long, default_value_t = 1.1, value_name = "F")]
    scale_factor: f64,
    /// Raw detections a face needs beyond the first (OpenCV's minNeighbors); 0 shows raw windows.
    #[arg(long, default_value_t = 5, value_name = "N")]
    min_neighbors: i32,
    /// Smallest face side in pixels; 0 for no limit.
    #[arg(long, default_value_t = 50, value_name = "PX")]
    min_size: usize,
    /// Largest face side in pixels; 0 for no limit.
    #[arg(long, default_value_t = 0, value_name = "PX")]
    max_size: usize,
    /// Print one JSON array (an object per image) instead of a table.
    #[arg(long)]
    json: bool,
    /// Write the image with its boxes drawn as PNG: a file for one image, a directory for several.
    #[arg(long, value_name = "OUT.png")]
    annotate: Option<PathBuf>,
}

/// One image's result, the JSON shape of `--json`.
#[derive(Debug, Serialize)]
struct ImageFaces {
    image: String,
    width: usize,
    height: usize,
    faces: Vec<Face>,
}

#[derive(Debug, Serialize)]
struct Face {
    #[serde(rename = "box")]
    bbox: [i32; 4],
}

pub fn run(args: DetectArgs) -> Result<()> {
    let params = DetectParams {
        scale_factor: args.scale_factor,
        min_neighbors: args.min_neighbors,
        min_size: args.min_size,
        max_size: args.max_size,
    };
    params.validate()?;
    let cascade_path = super::find_model(args.cascade.as_deref(), DEFAULT_CASCADE, "--cascade")?;
    let cascade = Cascade::from_file(&cascade_path)?;
    log::info!(
        "cascade {}: {:?}, {} stages, window {:?}",
        cascade_path.display(),
        cascade.kind(),
        cascade.stage_count(),
        cascade.window()
    );
    let annotate_dir = match &args.annotate {
        Some(p) if p.is_dir() => Some(p.clone()),
        Some(p) if args.images.len() > 1 => {
            bail!(
                "--annotate {}: with {} images, give an existing directory to write one PNG per image",
                p.display(),
                args.images.len()
            )
        }
        _ => None,
    };
    let mut detector = Detector::new(cascade);
    let mut results = Vec::with_capacity(args.images.len());
    for path in &args.images {
        let frame = still::load_gray(path)?;
        let faces = detector
            .detect(&frame, &params)
            .with_context(|| format!("detecting in {}", path.display()))?;
        if let Some(out) = &args.annotate {
            let target = match &annotate_dir {
                Some(dir) => dir.join(annotated_name(path)),
                None => out.clone(),
            };
            annotate(path, &faces, &target)?;
        }
        results.push(ImageFaces {
            image: path.display().to_string(),
            width: frame.width(),
            height: frame.height(),
            faces: faces.iter().map(|r| Face { bbox: r.to_array() }).collect(),
        });
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.json {
        serde_json::to_writer(&mut out, &results)?;
        writeln!(out)?;
    } else {
        print_table(&mut out, &results)?;
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
            writeln!(out, "  face {}: x={x} y={y} w={w} h={h}", i + 1)?;
        }
    }
    Ok(())
}

fn annotated_name(image: &Path) -> String {
    let stem = image
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image".into());
    format!("{stem}.annotated.png")
}

/// Draws each box as a 3-pixel green frame over the colour image and saves it as PNG.
fn annotate(image: &Path, faces: &[Rect], target: &Path) -> Result<()> {
    let mut rgb = still::load_rgb(image)?;
    let (w, h) = (rgb.width() as i32, rgb.height() as i32);
    let thickness = (w.max(h) / 300).clamp(2, 6);
    for r in faces {
        for t in 0..thickness {
            let (x0, y0, x1, y1) = (r.x + t, r.y + t, r.x + r.w - 1 - t, r.y + r.h - 1 - t);
            for x in x0..=x1 {
                for y in [y0, y1] {
                    if (0..w).contains(&x) && (0..h).contains(&y) {
                        rgb.put_pixel(x as u32, y as u32, image::Rgb([0, 230, 0]));
                    }
                }
            }
            for y in y0..=y1 {
                for x in [x0, x1] {
                    if (0..w).contains(&x) && (0..h).contains(&y) {
                        rgb.put_pixel(x as u32, y as u32, image::Rgb([0, 230, 0]));
                    }
                }
            }
        }
    }
    rgb.save_with_format(target, image::ImageFormat::Png)
        .with_context(|| format!("writing annotated image {}", target.display()))?;
    Ok(())
}
