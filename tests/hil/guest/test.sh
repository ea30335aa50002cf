# The HIL test inside the VM, run by /init. It sets up the real drivers, runs emotiond against them,
# and prints what it sees as T_ lines; tests/hil/check.py on the host judges them together with the
# serial port's capture. /hil/frames lists "NAME LEDS" per frame, LEDS being the expected values of
# gpio-sim lines 0..6 (angry .. neutral) while the camera shows /hil/NAME.yuyv.
up() { cut -d' ' -f1 /proc/uptime; }
fail() { echo "T_FAIL $*"; exit 1; }

echo "== drivers"
modprobe configfs && mount -t configfs none /sys/kernel/config || fail "configfs"
mount -t debugfs none /sys/kernel/debug || fail "debugfs"
modprobe vivid n_devs=1 node_types=0x101 || fail "modprobe vivid"
modprobe gpio-sim || fail "modprobe gpio-sim"

echo "== camera: vivid, HDMI output 1 looped back to HDMI input 3, 640x480 YUYV"
v4l2-ctl -d /dev/video0 -i 3 >/dev/null || fail "vivid input 3"
v4l2-ctl -d /dev/video1 -o 1 >/dev/null || fail "vivid output 1"
v4l2-ctl -d /dev/video0 --set-dv-bt-timings index=0 >/dev/null || fail "capture timings"
v4l2-ctl -d /dev/video1 --set-dv-bt-timings index=0 >/dev/null || fail "output timings"
v4l2-ctl -d /dev/video0 --set-fmt-video=width=640,height=480,pixelformat=YUYV || fail "capture format"
v4l2-ctl -d /dev/video1 --set-fmt-video-out=width=640,height=480,pixelformat=YUYV || fail "output format"
# loop_video copies the output into the capture; osd_text_mode=2 keeps vivid's text off the picture.
v4l2-ctl -d /dev/video0 -c loop_video=1 -c osd_text_mode=2 || fail "vivid controls"

echo "== LEDs: gpio-sim, 7 lines"
CFG=/sys/kernel/config/gpio-sim/leds
mkdir $CFG $CFG/bank0 || fail "gpio-sim configfs"
echo 7 > $CFG/bank0/num_lines
echo emotiond-leds > $CFG/bank0/label
echo 1 > $CFG/live || fail "gpio-sim live"
CHIP=$(cat $CFG/bank0/chip_name)
SIM=/sys/devices/platform/$(cat $CFG/dev_name)/$CHIP
echo "T_GPIOSIM chip=$CHIP"
leds() {
    s=""
    for i in 0 1 2 3 4 5 6; do s="$s$(cat $SIM/sim_gpio$i/value)"; done
    echo "$s"
}

echo "== serial: $HIL_SERIAL"
sed "s|@CHIP@|/dev/$CHIP|; s|@SERIAL@|$HIL_SERIAL|" /hil/config.toml > /tmp/config.toml

FEED=""
feed() {
    [ -n "$FEED" ] && { kill $FEED; wait $FEED 2>/dev/null; }
    v4l2-ctl -d /dev/video1 --stream-out-mmap --stream-from=/hil/$1.yuyv --stream-loop >/dev/null 2>&1 &
    FEED=$!
}

# Each frame shows until the LEDs read as expected (or a deadline), then the LEDs are sampled for 2 s.
first=$(head -n1 /hil/frames | cut -d' ' -f1)
feed "$first"
sleep 0.5
echo "T_START uptime=$(up)"
emotiond run --config /tmp/config.toml > /tmp/emotiond.log 2>&1 &
PID=$!
while read -r name want; do
    [ "$name" = "$first" ] || feed "$name"
    t0=$(up)
    n=0
    while [ "$(leds)" != "$want" ] && [ $n -lt 1800 ] && kill -0 $PID 2>/dev/null; do
        sleep 0.1
        n=$((n + 1))
    done
    echo "T_SHOWN frame=$name leds=$(leds) want=$want from=$t0 at=$(up)"
    for k in 1 2 3 4 5 6 7 8 9 10; do
        echo "T_SAMPLE frame=$name leds=$(leds)"
        sleep 0.2
    done
    # Which lines emotiond holds, as the kernel's gpiolib sees them ("out hi"/"out lo" and the consumer).
    sed -n "/^$CHIP:/,/^\$/p" /sys/kernel/debug/gpio | grep -E '^ *gpio-[0-9]+ ' | sed "s/^ */T_DEBUGFS frame=$name /"
done < /hil/frames

rss() { awk -v k="$1:" '$1 == k { print $2 }' /proc/$PID/status; }
echo "T_RSS kb=$(rss VmRSS) hwm_kb=$(rss VmHWM)"
kill -TERM $PID
t0=$(up)
wait $PID
echo "T_EXIT code=$? after_term=$t0 at=$(up)"
echo "T_AFTER leds=$(leds)"
kill $FEED 2>/dev/null
sed 's/^/E: /' /tmp/emotiond.log
