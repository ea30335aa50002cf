//! Frames in: everything that turns pixels from outside into a [`GrayFrame`](crate::frame::GrayFrame).
//!
//! For now: still images from files ([`still`]). Cameras, Y4M streams and image folders follow.

pub mod still;
