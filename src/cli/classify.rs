//! `emotiond classify`: the expression in given face boxes.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use emotiond::frame::Rect;
use emotiond::source::still;

use super::detect::annotate;
use super::faces::{annotate_target, classify_faces, parse_box, print, ImageFaces, ModelArgs};

#[derive(Debug, Args)]
pub struct ClassifyArgs {
    /// Image file (PNG or JPEG).
    #[arg(value_name = "IMAGE")]
    image: PathBuf,
    /// A face box as x,y,w,h in pixels (repeat for several faces; results keep this order).
    #[arg(long = "box", required = true, value_name = "X,Y,W,H", value_parser = parse_box, allow_hyphen_values = true)]
    boxes: Vec<Rect>,
    /// Print JSON (the same shape as `detect --emotions --json`) instead of a table.
    #[arg(long)]
    json: bool,
    /// Write the image with the boxes drawn as PNG.
    #[arg(long, value_name = "OUT.png")]
    annotate: Option<PathBuf>,
    /// Threads the boxes are classified on, 0 for one per core (results are the same).
    #[arg(long, default_value_t = 1, value_name = "N")]
    threads: usize,
    #[command(flatten)]
    model: ModelArgs,
}

pub fn run(args: ClassifyArgs) -> Result<()> {
    let mut classifier = args.model.load_parallel(args.threads)?;
    let frame = still::load_gray(&args.image)?;
    let faces = classify_faces(&mut classifier, &frame, &args.boxes, &args.image)?;
    if let Some(out) = &args.annotate {
        annotate(
            &args.image,
            &args.boxes,
            &annotate_target(out, out.is_dir(), &args.image),
        )?;
    }
    let result = ImageFaces {
        image: args.image.display().to_string(),
        width: frame.width(),
        height: frame.height(),
        faces,
    };
    print(&[result], args.json)
}
