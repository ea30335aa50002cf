//! emotiond: a face and facial-expression daemon for the Raspberry Pi.
//!
//! The data flows through one module per stage:
//! - [`source`]: frames in: V4L2 cameras, the Pi camera through `rpicam-vid`, Y4M, image folders,
//! - [`frame`]: the gray frame every stage shares,
//! - [`detect`]: Viola-Jones cascades that give OpenCV's `detectMultiScale` boxes exactly,
//! - [`classify`]: fer's face crop, bit for bit, and the mini-Xception emotion network on tract,
//! - [`resize`]: OpenCV's bilinear resizes, bit for bit,
//! - [`track`]: faces over time, with stable ids, smoothing and hysteresis,
//! - [`signal`]: LEDs, the serial event protocol, logs,
//! - [`pipeline`]: the stages wired together, and the daemon's loop; [`config`] its settings,
//! - [`eval`] and [`explain`]: the network measured on labelled faces, and its occlusion maps,
//! - [`render`]: the drawing their report images share.
//!
//! The `emotiond` binary is a thin command line over this library.

#![warn(missing_docs)]

pub mod classify;
pub mod config;
pub mod detect;
pub mod eval;
pub mod explain;
pub mod frame;
pub mod pipeline;
pub mod render;
pub mod resize;
pub mod signal;
pub mod source;
pub mod track;

/// An underlying error of any type, kept as the `source()` of the error it caused: library errors
/// name the file, device or pin and quote the cause in their message, and keep the cause itself for
/// callers that look at it (its kind, its own causes).
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;
