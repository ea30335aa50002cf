#!/bin/sh
# hil-test.service: emotiond.service, installed from the arm64 .deb and started by systemd with its
# sandbox, is judged as in the busybox VM (lib.sh's T_ lines), plus what systemd says of the unit.
# After the frames, with the last one shown: a SIGKILL and a SIGSTOP, each ending in a restart.
. /hil/lib.sh
find_chip
PID=$(prop MainPID)
echo "T_START uptime=$(up) pid=$PID"
[ "$PID" -gt 0 ] 2>/dev/null || { systemctl status emotiond.service | sed 's/^/T_STATUS /'; fail "emotiond.service is not running"; }
show_frames $PID
# Type=notify: "active" means emotiond sent READY=1. WatchdogSec=30: still the same process with no
# restart 40 s after it started means its WATCHDOG=1 pings arrive.
started=$(prop ActiveEnterTimestampMonotonic)
while [ $(( $(cut -d. -f1 /proc/uptime) - started / 1000000 )) -lt 40 ]; do sleep 1; done
echo "T_UNIT active=$(prop ActiveState) sub=$(prop SubState) restarts=$(prop NRestarts) pid=$(prop MainPID) was=$PID user=$(stat -c %U /proc/$PID) watchdog_usec=$(prop WatchdogUSec) for_s=$(( $(cut -d. -f1 /proc/uptime) - started / 1000000 ))"
report_rss $PID
fault_kill
fault_watchdog
t0=$(up)
systemctl stop emotiond.service
echo "T_EXIT code=$(prop ExecMainStatus) result=$(prop Result) after_term=$t0 at=$(up)"
echo "T_AFTER leds=$(leds)"
journalctl -b -u emotiond.service -o cat --no-pager | sed 's/^/E: /'
