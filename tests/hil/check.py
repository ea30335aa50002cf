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
    # The frames' own events come first; the faults' follow them.
    emotions = [e for e in events if e[0] == "face" and "emotion" in e[1]][:len(ref["frames"])]
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

    last = ref["frames"][-1]
    last_want = "".join("1" if l == last["expect"]["emotion"] else "0" for l in labels)
    first = ref["frames"][0]
    first_want = "".join("1" if l == first["expect"]["emotion"] else "0" for l in labels)
    last_face = (last["expect"]["emotion"], ",".join(map(str, last["expect"]["box"])))
    after = events[events.index(emotions[-1]) + 1:] if emotions else []

    def shown(phase, frame, want):
        s = [fields(l) for l in t if l.startswith(f"T_SHOWN phase={phase} ")]
        ok = bool(s) and s[0]["leds"] == want
        need(ok, f"{phase}: the {frame['expect']['emotion']} LED lit again ({want}) after "
             f"{float(s[0]['at']) - float(s[0]['from']):.1f} s" if ok else "",
             f"{phase}: LEDs {s[0]['leds'] if s else 'never sampled'}, expected {want}")

    def in_order(steps, what):
        """Whether the serial events after the frames' own hold each step, in this order."""
        i, found = 0, []
        for step_name, test in steps:
            while i < len(after) and not test(after[i]):
                i += 1
            if i == len(after):
                need(False, "", f"serial ({what}): no {step_name} after {found or 'the frames'}: "
                     f"{[e[2] for e in after]}")
                return
            found.append(after[i][2])
            i += 1
        need(True, f"serial ({what}): " + " -> ".join(found), "")

    def is_(kind, **kv):
        return lambda e: e[0] == kind and all(e[1].get(k) == v for k, v in kv.items())

    def appeared_last(e):
        return e[0] == "face" and e[1].get("event") == "appeared" and (e[1].get("emotion"), e[1].get("box")) == last_face

    if "--systemd" not in sys.argv[4:]:
        # The faults of guest/test.sh, injected while the last frame is shown.
        lost = [fields(l) for l in t if l.startswith("T_LOST camera")]
        need(lost and lost[0]["leds"] == "0000000", "camera unplugged: the LEDs went off",
             f"camera unplugged: LEDs {lost}")
        shown("camera", last, last_want)
        shown("reader-gone", first, first_want)
        shown("reader-back", last, last_want)
        shown("serial-gone", first, first_want)
        shown("serial-back", last, last_want)
        down = [fields(l) for l in t if l.startswith("T_LEDS_DOWN")]
        need(down and down[0]["held"] == "0", "LED chip removed: emotiond let its lines go (no GPIO file open)",
             f"LED chip removed: emotiond still holds GPIO files: {down}")
        shown("gpio", last, last_want)
        need(any(l.startswith("T_ALIVE") for l in t), "emotiond ran through the three faults",
             "emotiond was gone after the faults")
        in_order([("source state=lost", lambda e: is_("source", state="lost")(e) and e[1].get("reason")),
                  ("source state=ok", is_("source", state="ok")),
                  ("the face again", appeared_last)], "camera")
        # The reader gone: what emotiond wrote meanwhile (the other face appearing) is lost on the
        # wire; it cannot tell, so it reports no loss, and the lines after the gap are whole.
        first_face = (first["expect"]["emotion"], ",".join(map(str, first["expect"]["box"])))
        ok_at = next((i for i, e in enumerate(after) if is_("source", state="ok")(e)), None)
        again = [i for i, e in enumerate(after) if appeared_last(e) and ok_at is not None and i > ok_at]
        gap = after[again[0] + 1:again[1]] if len(again) >= 2 else None
        need(gap is not None and not any(e[0] == "face" and (e[1].get("emotion"), e[1].get("box")) == first_face
                                          or e[0] == "serial" for e in gap),
             "serial (reader gone): the lines written while nobody read were lost on the wire, emotiond "
             "reported no loss, and the face came through after the reader was back",
             f"serial (reader gone): between the camera's face and the next: {gap}")
        in_order([("source state=ok", is_("source", state="ok")),
                  ("the face after the camera", appeared_last),
                  ("the face after the reader", appeared_last),
                  ("serial state=reopened with lines dropped",
                   lambda e: e[0] == "serial" and e[1].get("state") == "reopened" and int(e[1].get("dropped", 0)) >= 1),
                  ("the face again", appeared_last)], "serial port")
        in_order([("leds state=lost", lambda e: is_("leds", state="lost")(e) and e[1].get("reason")),
                  ("leds state=ok", is_("leds", state="ok"))], "LED chip")

    if "--systemd" in sys.argv[4:]:
        killed = [fields(l) for l in t if l.startswith("T_KILLED")]
        need(killed and killed[0]["leds"] == "0000000",
             "SIGKILL: every line reads 0 while systemd waits to restart",
             f"SIGKILL: {killed}")
        again = [fields(l) for l in t if l.startswith("T_RESTARTED phase=kill")]
        need(again and again[0]["leds"] == "0000000", "SIGKILL: the restarted emotiond starts with the LEDs off",
             f"SIGKILL: after the restart {again}")
        for phase in ("kill", "watchdog"):
            r = [fields(l) for l in t if l.startswith(f"T_RESTART phase={phase} ")]
            r = r[0] if r else {}
            ok = r and r["pid"] != r["was"] and int(r["restarts"]) == int(r["before"]) + 1
            if phase == "watchdog":
                ok = ok and int(r.get("watchdog_timeouts", 0)) >= 1
            need(ok, f"{phase}: systemd restarted emotiond.service (pid {r.get('was')} -> {r.get('pid')}, "
                 f"NRestarts {r.get('before')} -> {r.get('restarts')})",
                 f"{phase}: no restart by systemd: {r}")
            shown(phase, last, last_want)
        stop = [fields(l) for l in t if l.startswith("T_FAULT stop=")]
        need(stop and stop[0]["watchdog_usec"] in ("6s", "6000000"),
             "SIGSTOP: with the drop-in, WatchdogSec=6 (the journal says \"Watchdog timeout\")",
             f"SIGSTOP: {stop}")
        starts = [i for i, e in enumerate(events) if e[0] == "start"]
        need(len(starts) == 4, "serial: four start lines (the first, after SIGKILL, after the drop-in's restart, "
             "after the watchdog)", f"serial: {len(starts)} start lines")
        for a, b in zip(starts[1:], starts[2:] + [len(events)]):
            need(any(appeared_last(e) for e in events[a:b]),
                 f"serial: after the start line {events[a][2][:40]}..., the face again",
                 f"serial: no face after the start line {events[a][2]}")

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
