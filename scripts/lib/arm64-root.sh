# Sourced by scripts/hil and scripts/bench-arm after scripts/lib/debian.sh (and their own die).
# The Debian bookworm arm64 root they share, made once with debootstrap and cached as a tar.

# Where the tar lives: scripts/hil's download cache, so either script reuses the other's.
arm64_root_tar=${EMOTIOND_HIL_CACHE:-$HOME/.cache/emotiond-hil}/rootfs-bookworm-arm64.tar

# ensure_arm64_root WORK: makes $arm64_root_tar unless it exists: debootstrap's minbase with systemd,
# udev, kmod, v4l-utils and adduser (what scripts/hil --systemd boots), built in WORK/debootstrap
# (log in WORK/debootstrap.log). Needs root; registers qemu-aarch64 with binfmt_misc, because
# debootstrap's second stage runs arm64 programs in a chroot.
ensure_arm64_root() {
    local work=$1
    [ "$(id -u)" -eq 0 ] || die "an arm64 root needs root (debootstrap, chroot, files owned by root)"
    apt_install debootstrap qemu-user-static
    ensure_binfmt qemu-aarch64
    [ -f "$arm64_root_tar" ] && return 0
    echo "${0##*/}: debootstrap of Debian bookworm arm64 into $work/debootstrap (a few minutes; cached as $arm64_root_tar)" >&2
    mkdir -p "$work" "$(dirname "$arm64_root_tar")"
    rm -rf "$work/debootstrap"
    debootstrap --arch=arm64 --variant=minbase --include=systemd,systemd-sysv,udev,kmod,v4l-utils,adduser \
        bookworm "$work/debootstrap" http://deb.debian.org/debian > "$work/debootstrap.log" 2>&1 ||
        die "debootstrap failed: see $work/debootstrap.log"
    tar -C "$work/debootstrap" -cf "$arm64_root_tar.part" . && mv "$arm64_root_tar.part" "$arm64_root_tar"
    rm -rf "$work/debootstrap"
}
