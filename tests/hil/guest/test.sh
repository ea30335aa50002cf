# The HIL test inside the busybox VM, run by /init: sets up the real drivers, runs emotiond against
# them, and prints what it sees as T_ lines for tests/hil/check.py (see lib.sh). After the frames, with
# the last one shown, four faults: the camera unplugged, the serial line's reader gone, the serial
# port gone, the LED chip removed, each followed by its return.
. /hil/lib.sh

echo "== drivers: vivid loopback, gpio-sim; serial $HIL_SERIAL"
setup_drivers
# The LED chip by a stable name (see fault_gpio in lib.sh).
ln -s /dev/$CHIP /dev/emotiond-leds
sed "s|@CHIP@|/dev/emotiond-leds|; s|@SERIAL@|$HIL_SERIAL|" /hil/config.toml > /tmp/config.toml
feed "$(first_frame)"
sleep 0.5
echo "T_START uptime=$(up)"
emotiond run --config /tmp/config.toml > /tmp/emotiond.log 2>&1 &
PID=$!
show_frames $PID
report_rss $PID
echo "== faults"
fault_camera $PID /tmp/emotiond.log
fault_reader $PID
fault_serial $PID /tmp/emotiond.log
fault_gpio $PID /tmp/emotiond.log
kill -0 $PID 2>/dev/null && echo "T_ALIVE after faults"
kill -TERM $PID
t0=$(up)
wait $PID
echo "T_EXIT code=$? after_term=$t0 at=$(up)"
echo "T_AFTER leds=$(leds)"
kill "$(cat $FEED_PID)" 2>/dev/null
sed 's/^/E: /' /tmp/emotiond.log
