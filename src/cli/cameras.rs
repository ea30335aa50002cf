//! `emotiond cameras`: the V4L2 capture devices, with their formats, sizes and rates.

use std::io::Write;

use anyhow::Result;
use v4l::video::Capture;

use emotiond::source::luma::PixelFormat;

pub fn run() -> Result<()> {
    let mut out = std::io::stdout().lock();
    let mut nodes = v4l::context::enum_devices();
    nodes.sort_by_key(|n| n.index());
    if nodes.is_empty() {
        writeln!(out, "no V4L2 devices (/dev/video*) found: is a USB camera plugged in? For a Raspberry Pi camera module use --source rpicam")?;
        return Ok(());
    }
    for node in nodes {
        let path = node.path().display().to_string();
        let dev = match v4l::Device::with_path(node.path()) {
            Ok(d) => d,
            Err(e) => {
                writeln!(out, "{path}: cannot open: {e}")?;
                continue;
            }
        };
        let caps = match dev.query_caps() {
            Ok(c) => c,
            Err(e) => {
                writeln!(out, "{path}: cannot query: {e}")?;
                continue;
            }
        };
        if !caps
            .capabilities
            .contains(v4l::capability::Flags::VIDEO_CAPTURE)
        {
            writeln!(
                out,
                "{path}: {} ({}): not a capture device",
                caps.card, caps.driver
            )?;
            continue;
        }
        writeln!(out, "{path}: {} ({}, {})", caps.card, caps.driver, caps.bus)?;
        if matches!(
            caps.driver.as_str(),
            "unicam" | "rp1-cfe" | "bcm2835-isp" | "pispbe"
        ) {
            writeln!(
                out,
                "  a Raspberry Pi camera node: use --source rpicam for the camera module"
            )?;
        }
        for desc in dev.enum_formats().unwrap_or_default() {
            let usable = PixelFormat::from_fourcc(desc.fourcc.repr).is_some();
            writeln!(
                out,
                "  {} {}{}",
                desc.fourcc,
                desc.description,
                if usable {
                    ""
                } else {
                    " (not read by emotiond)"
                }
            )?;
            for size in dev.enum_framesizes(desc.fourcc).unwrap_or_default() {
                for d in size.size.to_discrete() {
                    let rates: Vec<String> = dev
                        .enum_frameintervals(desc.fourcc, d.width, d.height)
                        .unwrap_or_default()
                        .iter()
                        .filter_map(|i| match &i.interval {
                            v4l::frameinterval::FrameIntervalEnum::Discrete(f)
                                if f.numerator > 0 =>
                            {
                                Some(format!(
                                    "{:.4}",
                                    f64::from(f.denominator) / f64::from(f.numerator)
                                ))
                            }
                            _ => None,
                        })
                        .map(|s| s.trim_end_matches('0').trim_end_matches('.').to_string())
                        .collect();
                    writeln!(
                        out,
                        "    {}x{} @ {} fps",
                        d.width,
                        d.height,
                        if rates.is_empty() {
                            "?".into()
                        } else {
                            rates.join(", ")
                        }
                    )?;
                }
            }
        }
    }
    Ok(())
}
