//! `emotiond detect`: faces in still images.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;

use super::faces::{
    annotate_is_dir, annotate_target, classify_faces, print, Face, ImageFaces, ModelArgs,
};
use emotiond::detect::{Cascade, DetectParams, Detector};
use emotiond::frame::Rect;
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
    /// Detector threads; 0 for one per core. The boxes are the same at any count.
    #[arg(long, default_value_t = 0, value_name = "N")]
    threads: usize,
    /// Print one JSON array (an object per image) instead of a table.
    #[arg(long)]
    json: bool,
    /// Write the image with its boxes drawn as PNG: a file for one image, a directory for several.
    #[arg(long, value_name = "OUT.png")]
    annotate: Option<PathBuf>,
    /// Also classify each face's expression (adds "probs" and "label" to the JSON).
    #[arg(long)]
    emotions: bool,
    #[command(flatten)]
    model: ModelArgs,
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
    let annotate_dir = annotate_is_dir(args.annotate.as_deref(), args.images.len())?;
    let mut classifier = if args.emotions {
        Some(args.model.load_parallel(args.threads)?)
    } else {
        None
    };
    let mut detector = Detector::with_threads(cascade, args.threads)
        .map_err(|e| anyhow::anyhow!("--threads: {e}"))?;
    let mut results = Vec::with_capacity(args.images.len());
    for path in &args.images {
        let frame = still::load_gray(path)?;
        let faces = detector
            .detect(&frame, &params)
            .with_context(|| format!("detecting in {}", path.display()))?;
        if let Some(out) = &args.annotate {
            annotate(path, &faces, &annotate_target(out, annotate_dir, path))?;
        }
        let faces = match classifier.as_mut() {
            Some(c) => classify_faces(c, &frame, &faces, path)?,
            None => faces.iter().map(|&r| Face::new(r, None)).collect(),
        };
        results.push(ImageFaces {
            image: path.display().to_string(),
            width: frame.width(),
            height: frame.height(),
            faces,
        });
    }
    print(&results, args.json)
}

/// Draws each box as a 3-pixel green frame over the colour image and saves it as PNG.
pub fn annotate(image: &Path, faces: &[Rect], target: &Path) -> Result<()> {
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
