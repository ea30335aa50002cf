//! emotiond: a face and facial-expression daemon for the Raspberry Pi.
//!
//! The data flows through one module per stage:
//! - [`source`]: frames in (still images now; cameras and streams next),
//! - [`frame`]: the gray frame every stage shares,
//! - [`detect`]: Viola-Jones cascades that give OpenCV's `detectMultiScale` boxes exactly,
//! - [`classify`]: fer's face crop, bit for bit, and the mini-Xception emotion network on tract,
//! - [`resize`]: OpenCV's bilinear resizes, bit for bit,
//! - [`track`]: faces over time, with stable ids, smoothing and hysteresis.
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
