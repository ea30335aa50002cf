# Sourced by .ci/run, scripts/cross-build, scripts/hil and scripts/bench-arm, which define die first.
# What they share for a Debian machine: root or sudo, installing from Debian's archive, binfmt_misc.
sudo_cmd=""
[ "$(id -u)" -eq 0 ] || sudo_cmd=sudo

# apt_install PACKAGE...: installs the packages that are missing (a prepared machine does not touch apt).
apt_install() {
    local missing=()
    for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "${0##*/}: installing ${missing[*]}" >&2
    $sudo_cmd apt-get -o DPkg::Lock::Timeout=900 update -qq || die "apt-get update failed"
    local install=($sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900
                   install -y -qq --no-install-recommends "${missing[@]}")
    # This machine's apt can drop downloaded archives mid-install: repair once and retry.
    "${install[@]}" >/dev/null || { $sudo_cmd apt-get -f install -y -qq >/dev/null || true; "${install[@]}" >/dev/null; } ||
        die "could not install ${missing[*]} from Debian's archive"
}

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
