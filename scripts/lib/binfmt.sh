# Sourced by scripts/cross-build and scripts/hil (which define die and sudo_cmd).
# ensure_binfmt NAME: lets the kernel start ARM programs through qemu-user (NAME is qemu-aarch64 or
# qemu-arm), for tests that start the ARM emotiond themselves and for chroots into an arm64 tree.
ensure_binfmt() {
    local name=$1 dir=/proc/sys/fs/binfmt_misc
    [ -e "$dir/$name" ] && return 0
    [ -e "$dir/register" ] || $sudo_cmd mount -t binfmt_misc binfmt_misc "$dir" ||
        die "cannot mount binfmt_misc, so ARM programs cannot be started here (needs root in a privileged machine)"
    [ -f "/usr/lib/binfmt.d/$name.conf" ] || die "no /usr/lib/binfmt.d/$name.conf (apt install qemu-user-static)"
    $sudo_cmd sh -c "cat /usr/lib/binfmt.d/$name.conf > $dir/register" || die "cannot register $name with binfmt_misc"
}
