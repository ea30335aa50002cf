//! The V4L2 bindings (moq-v4l's checked-in `videodev2.rs`, which needs no bindgen or libclang to
//! build) lay out every struct the camera path hands the kernel exactly as the C compiler does from
//! the kernel's `<linux/videodev2.h>` on the architecture the tests run on: x86-64 here, aarch64 and
//! 32-bit armhf under qemu (`scripts/cross-build --test`). The sizes come from
//! `scripts/make-v4l2-layout`, which asks each architecture's gcc.

mod common;

use std::mem::{offset_of, size_of};

use v4l::sys::*;

#[test]
fn v4l2_structs_match_the_kernel_headers_on_this_architecture() {
    let reference = common::reference("v4l2-layout.json");
    let arch = std::env::consts::ARCH;
    let want = reference[arch]
        .as_object()
        .unwrap_or_else(|| panic!("no {arch} in v4l2-layout.json: run scripts/make-v4l2-layout"));
    let got: Vec<(&str, usize)> = vec![
        ("v4l2_capability", size_of::<v4l2_capability>()),
        ("v4l2_format", size_of::<v4l2_format>()),
        ("v4l2_format.fmt", offset_of!(v4l2_format, fmt)),
        ("v4l2_pix_format", size_of::<v4l2_pix_format>()),
        ("v4l2_requestbuffers", size_of::<v4l2_requestbuffers>()),
        ("v4l2_buffer", size_of::<v4l2_buffer>()),
        ("v4l2_buffer.timestamp", offset_of!(v4l2_buffer, timestamp)),
        ("v4l2_buffer.sequence", offset_of!(v4l2_buffer, sequence)),
        ("v4l2_buffer.m", offset_of!(v4l2_buffer, m)),
        ("v4l2_buffer.length", offset_of!(v4l2_buffer, length)),
        ("v4l2_streamparm", size_of::<v4l2_streamparm>()),
        ("v4l2_captureparm", size_of::<v4l2_captureparm>()),
        ("v4l2_fmtdesc", size_of::<v4l2_fmtdesc>()),
        ("v4l2_frmsizeenum", size_of::<v4l2_frmsizeenum>()),
        ("v4l2_frmivalenum", size_of::<v4l2_frmivalenum>()),
        ("v4l2_queryctrl", size_of::<v4l2_queryctrl>()),
        ("v4l2_control", size_of::<v4l2_control>()),
        ("v4l2_ext_control", size_of::<v4l2_ext_control>()),
        ("v4l2_ext_controls", size_of::<v4l2_ext_controls>()),
    ];
    assert_eq!(
        got.len(),
        want.len(),
        "the script and this test list different items"
    );
    let wrong: Vec<String> = got
        .iter()
        .filter(|(name, n)| want[*name].as_u64() != Some(*n as u64))
        .map(|(name, n)| format!("{name}: Rust {n}, C {}", want[*name]))
        .collect();
    assert!(wrong.is_empty(), "{arch}: {}", wrong.join("; "));
}
