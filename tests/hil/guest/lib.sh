# Shared by the HIL guests (guest/test.sh under busybox, systemd/setup.sh and systemd/test.sh under
# systemd): the drivers, the frames, and the T_ lines tests/hil/check.py reads.
# /hil/frames lists "NAME LEDS" per frame, LEDS being the expected values of gpio-sim lines 0..6
# (angry .. neutral) while the camera shows /hil/NAME.yuyv.
up() { cut -d' ' -f1 /proc/uptime; }
fail() { echo "T_FAIL $*"; exit 1; }
FEED_PID=/tmp/hil-feed.pid

# Loads vivid and gpio-sim, loops vivid's HDMI output back to its HDMI input at 640x480 YUYV, and makes
# a 7-line gpio-sim chip. Sets CHIP (gpiochipN) and SIM (its sysfs directory).
setup_drivers() {
    mountpoint -q /sys/kernel/config || { modprobe configfs && mount -t configfs none /sys/kernel/config; } ||
        fail "configfs"
    mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug || fail "debugfs"
    modprobe vivid n_devs=1 node_types=0x101 || fail "modprobe vivid"
    modprobe gpio-sim || fail "modprobe gpio-sim"
    v4l2-ctl -d /dev/video0 -i 3 >/dev/null || fail "vivid input 3"
    v4l2-ctl -d /dev/video1 -o 1 >/dev/null || fail "vivid output 1"
    v4l2-ctl -d /dev/video0 --set-dv-bt-timings index=0 >/dev/null || fail "capture timings"
    v4l2-ctl -d /dev/video1 --set-dv-bt-timings index=0 >/dev/null || fail "output timings"
    v4l2-ctl -d /dev/video0 --set-fmt-video=width=640,height=480,pixelformat=YUYV || fail "capture format"
    v4l2-ctl -d /dev/video1 --set-fmt-video-out=width=640,height=480,pixelformat=YUYV || fail "output format"
    # loop_video copies the output into the capture; osd_text_mode=2 keeps vivid's text off the picture.
    v4l2-ctl -d /dev/video0 -c loop_video=1 -c osd_text_mode=2 || fail "vivid controls"
    cfg=/sys/kernel/config/gpio-sim/leds
    mkdir $cfg $cfg/bank0 || fail "gpio-sim configfs"
    echo 7 > $cfg/bank0/num_lines
    echo emotiond-leds > $cfg/bank0/label
    echo 1 > $cfg/live || fail "gpio-sim live"
    CHIP=$(cat $cfg/bank0/chip_name)
    SIM=/sys/devices/platform/$(cat $cfg/dev_name)/$CHIP
    echo "T_GPIOSIM chip=$CHIP"
}

# The chip made by setup_drivers, for a later script.
find_chip() {
    cfg=/sys/kernel/config/gpio-sim/leds
    CHIP=$(cat $cfg/bank0/chip_name) && SIM=/sys/devices/platform/$(cat $cfg/dev_name)/$CHIP || fail "no gpio-sim chip"
}

leds() {
    s=""
    for i in 0 1 2 3 4 5 6; do s="$s$(cat $SIM/sim_gpio$i/value)"; done
    echo "$s"
}

# Shows /hil/NAME.yuyv to the camera, over and over, in place of what it showed before.
feed() {
    [ -f $FEED_PID ] && { kill "$(cat $FEED_PID)" 2>/dev/null; sleep 0.2; }
    v4l2-ctl -d /dev/video1 --stream-out-mmap --stream-from=/hil/$1.yuyv --stream-loop >/dev/null 2>&1 &
    echo $! > $FEED_PID
}

first_frame() { head -n1 /hil/frames | cut -d' ' -f1; }

# Shows each frame until the LEDs read as expected (or 3 minutes pass, or emotiond $1 is gone), then
# samples them 10 times over 2 s and prints gpiolib's view of the lines.
show_frames() {
    while read -r name want; do
        [ "$name" = "$(first_frame)" ] || feed "$name"
        t0=$(up)
        n=0
        while [ "$(leds)" != "$want" ] && [ $n -lt 1800 ] && kill -0 "$1" 2>/dev/null; do
            sleep 0.1
            n=$((n + 1))
        done
        echo "T_SHOWN frame=$name leds=$(leds) want=$want from=$t0 at=$(up)"
        for k in 1 2 3 4 5 6 7 8 9 10; do
            echo "T_SAMPLE frame=$name leds=$(leds)"
            sleep 0.2
        done
        # Which lines emotiond holds, as gpiolib sees them ("out hi"/"out lo" and the consumer).
        sed -n "/^$CHIP:/,/^\$/p" /sys/kernel/debug/gpio | grep -E '^ *gpio-[0-9]+ ' |
            sed "s/^ */T_DEBUGFS frame=$name /"
    done < /hil/frames
}

report_rss() {
    rss() { awk -v k="$1:" '$1 == k { print $2 }' /proc/$2/status; }
    echo "T_RSS kb=$(rss VmRSS "$1") hwm_kb=$(rss VmHWM "$1")"
}
