//! `emotiond explain`: occlusion maps of the faces in an image.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use serde::Serialize;

use emotiond::classify::crop::{pad_value, CropBuilder, INPUT_LEN};
use emotiond::classify::model::EmotionModel;
use emotiond::classify::DEFAULT_MODEL;
use emotiond::detect::{Cascade, DetectParams, Detector};
use emotiond::explain::{occlusion_map_of_crop, render, Occlusion};
use emotiond::frame::Rect;
use emotiond::source::still;

use super::detect::DEFAULT_CASCADE;
use super::faces::{parse_box, ModelArgs};

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// Image file (PNG or JPEG).
    #[arg(value_name = "IMAGE")]
    image: PathBuf,
    /// A face box as x,y,w,h (repeat for several); without it, faces are detected with fer's
    /// defaults (scale factor 1.1, 5 neighbours, 50 px).
    #[arg(long = "box", value_name = "X,Y,W,H", value_parser = parse_box, allow_hyphen_values = true)]
    boxes: Vec<Rect>,
    /// Cascade XML for detection. Default: haarcascade_frontalface_default.xml from ./models, then the
    /// installed data directory.
    #[arg(long, value_name = "PATH")]
    cascade: Option<PathBuf>,
    /// Side of the gray occluding patch, in pixels of the 64x64 network input.
    #[arg(long, default_value_t = 12, value_name = "PX")]
    patch: usize,
    /// Step between patch positions, in input pixels.
    #[arg(long, default_value_t = 4, value_name = "PX")]
    stride: usize,
    /// Occluded faces per network run (1 is fastest with tract on the CPUs measured; see README).
    #[arg(long, default_value_t = 1, value_name = "N")]
    batch: usize,
    /// Where to write the maps: a directory (one IMAGE-faceN.explain.png per face, default: the
    /// current one) or, for a single face, a .png file.
    #[arg(long, value_name = "DIR|OUT.png")]
    out: Option<PathBuf>,
    /// Print JSON (each face's box, class, probability, strongest patch and the drop grid).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    model: ModelArgs,
}

#[derive(Debug, Serialize)]
struct FaceMap {
    #[serde(rename = "box")]
    bbox: [i32; 4],
    label: &'static str,
    probability: f32,
    probs: [f32; 7],
    patch: usize,
    stride: usize,
    /// The patch whose cover lowers the class most: x, y, side in input pixels, and the drop.
    strongest: (usize, usize, usize, f32),
    /// Drops by patch position, rows of the grid top to bottom.
    drops: Vec<Vec<f32>>,
    png: String,
}

pub fn run(args: ExplainArgs) -> Result<()> {
    let occlusion = Occlusion {
        patch: args.patch,
        stride: args.stride,
    };
    let positions = occlusion.positions()?;
    if args.batch == 0 || args.batch > 1024 {
        bail!("--batch {}: give 1 to 1024 faces per run", args.batch);
    }
    let frame = still::load_gray(&args.image)?;
    let faces = if args.boxes.is_empty() {
        let path = super::find_model(args.cascade.as_deref(), DEFAULT_CASCADE, "--cascade")?;
        let mut detector = Detector::new(Cascade::from_file(&path)?);
        detector
            .detect(&frame, &DetectParams::default())
            .with_context(|| format!("detecting in {}", args.image.display()))?
    } else {
        args.boxes.clone()
    };
    if faces.is_empty() {
        bail!(
            "{}: no face found; give one with --box X,Y,W,H",
            args.image.display()
        );
    }
    let out_dir = match &args.out {
        Some(p) if p.extension().is_some_and(|e| e.eq_ignore_ascii_case("png")) => {
            if faces.len() > 1 {
                bail!(
                    "--out {}: {} faces, so give a directory for one PNG each",
                    p.display(),
                    faces.len()
                );
            }
            None
        }
        Some(p) => {
            std::fs::create_dir_all(p)
                .with_context(|| format!("creating --out {}", p.display()))?;
            Some(p.clone())
        }
        None => Some(PathBuf::from(".")),
    };
    let model_path = super::find_model(args.model.model.as_deref(), DEFAULT_MODEL, "--model")?;
    let mut model = EmotionModel::load_batched(&model_path, args.batch)?;
    let mut crops = CropBuilder::new(args.model.rule())?;
    let pad = pad_value(&frame)?;
    let stem = args
        .image
        .file_stem()
        .map_or("image".into(), |s| s.to_string_lossy().into_owned());
    let mut maps = Vec::new();
    for (i, &face) in faces.iter().enumerate() {
        let mut crop = [0u8; INPUT_LEN];
        crops
            .crop_u8(&frame, pad, face, &mut crop)
            .with_context(|| {
                format!(
                    "{}: box {},{},{},{}",
                    args.image.display(),
                    face.x,
                    face.y,
                    face.w,
                    face.h
                )
            })?;
        let map = occlusion_map_of_crop(&mut model, &crop, occlusion)?;
        let png = match &out_dir {
            Some(dir) => dir.join(format!("{stem}-face{}.explain.png", i + 1)),
            None => args.out.clone().expect("a .png --out"),
        };
        render(&crop, &map)
            .save_with_format(&png, image::ImageFormat::Png)
            .with_context(|| format!("writing {}", png.display()))?;
        let best = map.strongest();
        maps.push(FaceMap {
            bbox: face.to_array(),
            label: map.class.name(),
            probability: map.base.get(map.class),
            probs: map.base.0,
            patch: occlusion.patch,
            stride: occlusion.stride,
            strongest: (best.x, best.y, occlusion.patch, best.drop),
            drops: map
                .patches
                .chunks(positions.len())
                .map(|row| row.iter().map(|p| p.drop).collect())
                .collect(),
            png: png.display().to_string(),
        });
    }
    print(&args.image, &maps, args.json)
}

fn print(image: &Path, maps: &[FaceMap], json: bool) -> Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer(&mut out, maps)?;
        writeln!(out)?;
        return Ok(());
    }
    for (i, m) in maps.iter().enumerate() {
        let [x, y, w, h] = m.bbox;
        let (px, py, side, drop) = m.strongest;
        writeln!(
            out,
            "{} face {}: x={x} y={y} w={w} h={h}  {} {:.2}; covering input {side}x{side} at ({px},{py}) lowers it most, by {drop:.3} -> {}",
            image.display(),
            i + 1,
            m.label,
            m.probability,
            m.png
        )?;
    }
    Ok(())
}
