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

# The last frame's name and LED lines (the faults are injected while it is shown).
last_frame() { tail -n1 /hil/frames | cut -d' ' -f1; }
last_leds() { tail -n1 /hil/frames | cut -d' ' -f2; }
first_leds() { head -n1 /hil/frames | cut -d' ' -f2; }

# Waits until the LEDs read $1, for at most $2 seconds or while emotiond $3 runs.
wait_leds() {
    n=0
    while [ "$(leds)" != "$1" ] && [ $n -lt $(($2 * 10)) ] && kill -0 "$3" 2>/dev/null; do
        sleep 0.1
        n=$((n + 1))
    done
}

# Waits until the file $1 holds the text $2, for at most $3 seconds; fails if it never does.
wait_log() {
    n=0
    while ! grep -q "$2" "$1" 2>/dev/null; do
        [ $n -lt $(($3 * 10)) ] || fail "no \"$2\" in $1 after $3 s"
        sleep 0.1
        n=$((n + 1))
    done
}

# The camera unplugged and back, with emotiond $1 running and its log in $2. vivid's Disconnect
# control unregisters its nodes as a pulled USB camera does (every ioctl: ENODEV); they come back
# once the last program that had them open closes them: emotiond, when it sees the error, and the
# frame feeder, which is stopped here.
fault_camera() {
    echo "T_FAULT camera=unplugged at=$(up)"
    v4l2-ctl -d /dev/video0 -c disconnect=1 >/dev/null || fail "vivid disconnect"
    kill "$(cat $FEED_PID)" 2>/dev/null
    rm -f $FEED_PID
    wait_log "$2" "reopening with backoff" 20
    wait_leds 0000000 10 "$1"
    echo "T_LOST camera leds=$(leds) at=$(up)"
    # Back: the nodes answer again, emotiond reopens with backoff, the feeder shows the face again.
    n=0
    until v4l2-ctl -d /dev/video1 --get-output >/dev/null 2>&1; do
        [ $n -lt 100 ] || fail "vivid did not come back after the disconnect"
        sleep 0.1
        n=$((n + 1))
    done
    echo "T_FAULT camera=back at=$(up)"
    t0=$(up)
    feed "$(last_frame)"
    wait_leds "$(last_leds)" 120 "$1"
    echo "T_SHOWN phase=camera frame=$(last_frame) leds=$(leds) want=$(last_leds) from=$t0 at=$(up)"
}

# The serial line's reader gone and back: on the T_READER lines the host end closes its socket and
# connects again (tests/hil/serial_reader.py), and the other frame is shown meanwhile. A UART
# cannot tell whether anybody reads it, so emotiond goes on as if nothing happened: what it wrote
# meanwhile is lost on the wire, and the lines after are whole.
fault_reader() {
    echo "T_READER gone at=$(up)"
    sleep 1
    t0=$(up)
    feed "$(first_frame)"
    wait_leds "$(first_leds)" 120 "$1"
    echo "T_SHOWN phase=reader-gone frame=$(first_frame) leds=$(leds) want=$(first_leds) from=$t0 at=$(up)"
    echo "T_READER back at=$(up)"
    sleep 1
    t0=$(up)
    feed "$(last_frame)"
    wait_leds "$(last_leds)" 120 "$1"
    echo "T_SHOWN phase=reader-back frame=$(last_frame) leds=$(leds) want=$(last_leds) from=$t0 at=$(up)"
}

# The serial port gone and back, as a USB adapter pulled out: the 16550's PCI device is unbound from
# its driver (the tty is hung up: EIO), the other frame is shown meanwhile (its events cannot be
# written, so they are dropped and counted), then it is bound again and the last frame shown.
fault_serial() {
    dev=$(readlink -f /sys/class/tty/${HIL_SERIAL#/dev/}/device) || fail "no device under $HIL_SERIAL"
    addr=${dev##*/}
    drv=$(readlink -f "$dev/driver") || fail "no driver for $addr"
    echo "T_FAULT serial=gone device=$addr at=$(up)"
    echo "$addr" > "$drv/unbind" || fail "unbind $addr from $drv"
    t0=$(up)
    feed "$(first_frame)"
    wait_leds "$(first_leds)" 120 "$1"
    echo "T_SHOWN phase=serial-gone frame=$(first_frame) leds=$(leds) want=$(first_leds) from=$t0 at=$(up)"
    wait_log "$2" "write failed" 10
    echo "$addr" > "$drv/bind" || fail "bind $addr to $drv"
    [ -e "/sys/class/tty/${HIL_SERIAL#/dev/}/device" ] || fail "$HIL_SERIAL did not come back"
    echo "T_FAULT serial=back at=$(up)"
    # Past the retry interval (serial.retry_interval), so the next line reopens the port.
    sleep 1.5
    t0=$(up)
    feed "$(last_frame)"
    wait_leds "$(last_leds)" 120 "$1"
    echo "T_SHOWN phase=serial-back frame=$(last_frame) leds=$(leds) want=$(last_leds) from=$t0 at=$(up)"
    wait_log "$2" "serial.*open again" 10
}

# The LED chip removed while emotiond holds its lines (gpio-sim taken off line: its ioctls fail with
# ENODEV), then made again with the same settings; emotiond goes on without LEDs and reopens them.
# The kernel may number the new chip differently (gpiochip2 for gpiochip1), as it may a GPIO adapter
# plugged in again, so emotiond is given a stable name for it, /dev/emotiond-leds, as a udev rule's
# SYMLINK+= would give one; here it is pointed at the new chip by hand.
fault_gpio() {
    cfg=/sys/kernel/config/gpio-sim/leds
    was=$CHIP
    echo "T_FAULT gpio=removed chip=$CHIP at=$(up)"
    echo 0 > $cfg/live || fail "gpio-sim off line"
    wait_log "$2" "going on without LEDs" 10
    kill -0 "$1" 2>/dev/null || fail "emotiond stopped when its LED chip went"
    # emotiond must have let the lines go: no GPIO file left open.
    echo "T_LEDS_DOWN held=$(ls -l /proc/$1/fd 2>/dev/null | grep -c gpio) at=$(up)"
    echo 1 > $cfg/live || fail "gpio-sim back on line"
    find_chip
    ln -sfn /dev/$CHIP /dev/emotiond-leds
    echo "T_FAULT gpio=back chip=$CHIP was=$was at=$(up)"
    t0=$(up)
    wait_leds "$(last_leds)" 30 "$1"
    echo "T_SHOWN phase=gpio frame=$(last_frame) leds=$(leds) want=$(last_leds) from=$t0 at=$(up)"
}

# Under systemd: a property of emotiond.service.
prop() { systemctl show -p "$1" --value emotiond.service; }

# Waits (at most $2 s) until emotiond.service is active again with a main process other than $1.
wait_restart() {
    n=0
    while [ "$(prop MainPID)" = "$1" ] || [ "$(prop MainPID)" = 0 ] || [ "$(prop ActiveState)" != active ]; do
        [ $n -lt $(($2 * 10)) ] || fail "emotiond.service was not restarted within $2 s ($(prop ActiveState), pid $(prop MainPID))"
        sleep 0.1
        n=$((n + 1))
    done
}

# SIGKILL: systemd restarts the unit (Restart=on-failure, RestartSec=2). The kernel lets the killed
# process's lines go, so they read 0; the new process opens them off, then lights the emotion again.
fault_kill() {
    old=$(prop MainPID)
    before=$(prop NRestarts)
    echo "T_FAULT kill=$old at=$(up)"
    kill -KILL "$old"
    sleep 0.5
    echo "T_KILLED leds=$(leds) state=$(prop ActiveState) at=$(up)"
    wait_restart "$old" 120
    new=$(prop MainPID)
    echo "T_RESTARTED phase=kill leds=$(leds) at=$(up)"
    t0=$(up)
    wait_leds "$(last_leds)" 120 "$new"
    echo "T_SHOWN phase=kill frame=$(last_frame) leds=$(leds) want=$(last_leds) from=$t0 at=$(up)"
    echo "T_RESTART phase=kill was=$old pid=$new restarts=$(prop NRestarts) before=$before"
}

# A pipeline frozen with SIGSTOP: its watchdog pings stop, systemd kills it (Result=watchdog) and
# restarts it. A drop-in shortens WatchdogSec to 6 s for this; a restart hands the new value to the
# process (WATCHDOG_USEC).
fault_watchdog() {
    d=/run/systemd/system/emotiond.service.d
    mkdir -p $d
    printf '[Service]\nWatchdogSec=6\n' > $d/hil-watchdog.conf
    systemctl daemon-reload
    systemctl restart emotiond.service
    wait_restart 0 120
    pid=$(prop MainPID)
    wait_leds "$(last_leds)" 120 "$pid"
    before=$(prop NRestarts)
    echo "T_FAULT stop=$pid watchdog_usec=$(prop WatchdogUSec) leds=$(leds) at=$(up)"
    kill -STOP "$pid"
    wait_restart "$pid" 120
    new=$(prop MainPID)
    t0=$(up)
    wait_leds "$(last_leds)" 120 "$new"
    echo "T_SHOWN phase=watchdog frame=$(last_frame) leds=$(leds) want=$(last_leds) from=$t0 at=$(up)"
    timeouts=$(journalctl -b -u emotiond.service -o cat --no-pager | grep -c 'Watchdog timeout')
    echo "T_RESTART phase=watchdog was=$pid pid=$new restarts=$(prop NRestarts) before=$before watchdog_timeouts=$timeouts"
    rm $d/hil-watchdog.conf
    systemctl daemon-reload
}
