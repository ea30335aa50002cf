"use strict";
// The kiosk page: the emotion shown (the face that drives the LEDs), every face's probabilities,
// the event log, and the camera when the preview is on. A kiosk builder copies this: everything
// comes from /status, /events and /stream.mjpg, each carrying this page's own ?token=.
(function () {
  const EMOTIONS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"];
  const token = new URLSearchParams(location.search).get("token");
  const q = token ? "?token=" + encodeURIComponent(token) : "";
  const $ = (id) => document.getElementById(id);
  let shown = null;

  // The big word; each change goes to the console ("emotiond: shown happy").
  function show(emotion, conf) {
    const name = emotion || "none";
    if (name !== shown) {
      shown = name;
      $("shown").textContent = name;
      document.body.dataset.emotion = name;
      console.info("emotiond: shown " + name);
    }
    $("conf").textContent = emotion ? Math.round(conf * 100) + "% sure" : "no face";
  }

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // One card per face: seven bars.
  function bars(faces) {
    $("faces").replaceChildren(...faces.map((f) => {
      const card = el("div", "face");
      card.append(el("h3", "", "face " + f.id + ": " + f.emotion + " " + f.conf.toFixed(2)));
      for (const name of EMOTIONS) {
        const p = f.probs[name] || 0;
        const row = el("div", "row");
        const track = el("div", "track");
        const bar = el("div", "bar");
        bar.style.width = (p * 100).toFixed(1) + "%";
        bar.style.background = "var(--" + name + ")";
        track.append(bar);
        row.append(el("span", "", name), track, el("span", "value", p.toFixed(2)));
        card.append(row);
      }
      return card;
    }));
  }

  function summary(e) {
    switch (e.type) {
      case "face":
        return "face " + e.id + " " + e.event +
          (e.emotion ? " " + e.emotion + " " + e.conf.toFixed(2) : "") +
          (e.from ? " (was " + e.from + ")" : "");
      case "status":
        return "status: " + e.fps + " frames/s, " + e.faces + " face(s), latency " +
          e.latency_p50_ms + " ms";
      case "source":
        return "source " + e.state + (e.reason ? ": " + e.reason : "");
      case "start":
        return "start: emotiond " + e.version + " on " + e.source;
      case "stop":
        return "stop (" + e.reason + ")";
      case "snapshot":
        return "connected: " + e.faces + " face(s) followed";
      default:
        return e.type;
    }
  }

  function log(e) {
    const now = new Date().toTimeString().slice(0, 8);
    $("log").prepend(el("li", "", now + "  " + summary(e)));
    while ($("log").children.length > 40) $("log").lastChild.remove();
  }

  fetch("/status" + q).then((r) => r.json()).then((st) => {
    $("source").textContent = st.source || "";
    if (st.preview) {
      $("preview").src = "/stream.mjpg" + q;
      $("preview").hidden = false;
      $("no-preview").hidden = true;
    }
    if (shown === null) {
      show(st.leds.emotion, st.leds.conf);
      bars(st.tracks);
    }
  }).catch((err) => { $("connection").textContent = "no status: " + err; });

  const events = new EventSource("/events" + q);
  events.onopen = () => { $("connection").textContent = "live"; };
  // When emotiond stops or restarts, EventSource connects again by itself (every 2 s).
  events.onerror = () => { $("connection").textContent = "reconnecting…"; };
  events.onmessage = (m) => {
    const e = JSON.parse(m.data);
    if (e.type === "start") $("source").textContent = e.source;
    log(e);
  };
  events.addEventListener("faces", (m) => {
    const f = JSON.parse(m.data);
    show(f.driving.emotion, f.driving.conf);
    bars(f.faces);
  });
})();
