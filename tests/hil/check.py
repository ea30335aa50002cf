#!/usr/bin/env python3
"""Judges a HIL run (scripts/hil): the VM's console (the T_ lines of tests/hil/guest/test.sh) and the
bytes emotiond wrote to the 16550, against tests/hil/reference.json (OpenCV and LiteRT on the frames).

usage: check.py REFERENCE.json CONSOLE.log SERIAL.log [--systemd]
exit 0 when every check holds, 1 otherwise; --systemd also checks what systemd says of emotiond.service
"""
import json
import re
import sys
from functools import reduce


def fields(line):
    return dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)


def protocol_lines(raw, problems):
    """The serial capture as (event, {key: value}) pairs, each checksum verified."""
    events = []
    for n, line in enumerate(raw.decode("ascii", "replace").splitlines(), 1):
        m = re.fullmatch(r"(emotiond/1 .*) \*([0-9A-F]{2})", line)
        if not m:
            problems.append(f"serial line {n} is not a protocol line: {line!r}")
            continue
        body, sum_hex = m.groups()
        if reduce(lambda a, c: a ^ c, body.encode(), 0) != int(sum_hex, 16):
            problems.append(f"serial line {n} has a wrong checksum: {line!r}")
        words = body.split()
        events.append((words[1], dict(w.split("=", 1) for w in words[2:] if "=" in w), line))
    return events


def main():
    ref_path, console_path, serial_path = sys.argv[1:4]
    ref = json.load(open(ref_path))
    labels = ref["labels"]
    console = open(console_path, "rb").read().decode("utf-8", "replace").splitlines()
    # Under busybox the lines come bare; under systemd the journal prefixes "[ uptime] test.sh[pid]: ".
    t = [m.group(1).strip() for m in (re.match(r"(?:\[[ 0-9.]+\] [\w.-]+\[\d+\]: )?(T_.*)", l) for l in console) if m]
    problems = []
    passed = []

    def need(cond, ok, bad):
        (passed if cond else problems).append(ok if cond else bad)

    fails = [l for l in t if l.startswith("T_FAIL")]
    need(not fails, "the guest set up vivid, gpio-sim and the serial port", f"the guest failed: {fails}")
    need(any(l.startswith("T_GPIOSIM") for l in t), "gpio-sim came up", "no T_GPIOSIM line")

    # LEDs: while each frame shows, exactly its emotion's line is high, held by emotiond as an output.
    for frame in ref["frames"]:
        name, emotion = frame["name"], frame["expect"]["emotion"]
        want = "".join("1" if l == emotion else "0" for l in labels)
        shown = [fields(l) for l in t if l.startswith(f"T_SHOWN frame={name} ")]
        need(shown and shown[0]["leds"] == want,
             f"{name}: the {emotion} LED lit ({want}) after {float(shown[0]['at']) - float(shown[0]['from']):.1f} s"
             if shown and shown[0]["leds"] == want else "",
             f"{name}: LEDs read {shown[0]['leds'] if shown else 'nothing'}, expected {want} ({emotion})")
        samples = [fields(l)["leds"] for l in t if l.startswith(f"T_SAMPLE frame={name} ")]
        need(len(samples) == 10 and all(s == want for s in samples),
             f"{name}: 10 samples in a row, 0.2 s apart, all {want}",
             f"{name}: samples {samples}, expected 10 of {want}")
        held = [l for l in t if l.startswith(f"T_DEBUGFS frame={name} ")]
        states = [("hi" if l.rstrip().endswith(" hi") else "lo" if l.rstrip().endswith(" lo") else "?")
                  for l in held]
        need(len(held) == 7 and all("emotiond" in l and " out " in l for l in held)
             and "".join("1" if s == "hi" else "0" for s in states) == want,
             f"{name}: gpiolib lists all 7 lines as outputs held by emotiond, {want}",
             f"{name}: gpiolib's view of the lines: {held}")

    exits = [fields(l) for l in t if l.startswith("T_EXIT")]
    need(exits and exits[0]["code"] == "0",
         f"SIGTERM: emotiond exited 0 in {float(exits[0]['at']) - float(exits[0]['after_term']):.2f} s"
         if exits and exits[0]["code"] == "0" else "",
         f"emotiond's exit after SIGTERM: {exits}")
    after = [fields(l)["leds"] for l in t if l.startswith("T_AFTER")]
    need(after == ["0000000"], "after SIGTERM every LED line is low", f"LEDs after SIGTERM: {after}")

    # Serial: checksummed protocol lines; a start, one emotion event per frame in order, a stop.
    events = protocol_lines(open(serial_path, "rb").read(), problems)
    need(events and events[0][0] == "start" and events[0][1].get("source") == "v4l2:/dev/video0",
         "serial: the start line names v4l2:/dev/video0",
         f"serial: first line {events[0][2] if events else 'missing'}")
    need(events and events[-1][0] == "stop" and events[-1][1].get("reason") == "signal",
         "serial: the last line is the stop line with reason=signal",
         f"serial: last line {events[-1][2] if events else 'missing'}")
    emotions = [e for e in events if e[0] == "face" and "emotion" in e[1]]
    got = [(e[1]["emotion"], e[1]["box"]) for e in emotions]
    want = [(f["expect"]["emotion"], ",".join(map(str, f["expect"]["box"]))) for f in ref["frames"]]
    need(got == want, f"serial: face events {got}, the reference's boxes exactly",
         f"serial: face events {got}, expected {want}")
    for e, f in zip(emotions, ref["frames"]):
        d = abs(float(e[1]["conf"]) - f["expect"]["conf"])
        need(d <= 0.005 + 1e-9, f"serial: {f['name']} conf={e[1]['conf']} (LiteRT {f['expect']['conf']:.4f})",
             f"serial: {f['name']} conf={e[1]['conf']}, LiteRT says {f['expect']['conf']:.4f}")

    # Under systemd (scripts/hil --systemd): the unit from the .deb, started with its sandbox.
    units = [fields(l) for l in t if l.startswith("T_UNIT")]
    if "--systemd" in sys.argv[4:]:
        u = units[0] if units else {}
        need(u.get("active") == "active" and u.get("sub") == "running",
             "systemd: emotiond.service is active (running), so Type=notify's READY=1 arrived",
             f"systemd: the unit is {u.get('active')} ({u.get('sub')})")
        need(u.get("restarts") == "0" and u.get("pid") == u.get("was") and int(u.get("for_s", 0)) >= 40
             and u.get("watchdog_usec") in ("30s", "30000000"),
             f"systemd: the same process after {u.get('for_s')} s, no restart: WATCHDOG=1 pings arrive"
             " within WatchdogSec=30",
             f"systemd: watchdog or restarts: {u}")
        need(u.get("user") == "emotiond", "systemd: it runs as the user emotiond",
             f"systemd: it runs as {u.get('user')}")
        need(exits and exits[0].get("result") == "success",
             "systemd: systemctl stop ends it with Result=success",
             f"systemd: after stop: {exits}")

    rss = [fields(l) for l in t if l.startswith("T_RSS")]
    if rss:
        print(f"hil: emotiond in the VM: VmRSS {int(rss[0]['kb']) / 1024:.1f} MB, peak {int(rss[0]['hwm_kb']) / 1024:.1f} MB")
    for p in passed:
        print("ok  ", p)
    for p in problems:
        print("FAIL", p)
    if problems:
        sys.exit(1)
    print(f"hil: all {len(passed)} checks hold")


if __name__ == "__main__":
    main()
