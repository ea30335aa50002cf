//! The accepting thread, one thread per connection under the limits, and the routes.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::preview::{self, Format, Picture};
use super::request::{Refusal, Request, Status};
use super::{
    faces_message, sse, Client, Shared, Slot, IO_TIMEOUT, KEEP_ALIVE, MAX_CONNECTIONS, MAX_SSE,
    MAX_STREAMS, SNAPSHOT_WAIT, SSE_QUEUE, STACK, STREAM_FPS,
};

/// The headers every answer carries after its status line and content type.
const COMMON: &str = "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\nConnection: close\r\n";
/// What the page may load: only from this server, and no frames around it.
const PAGE_POLICY: &str = "Content-Security-Policy: default-src 'none'; connect-src 'self'; img-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'\r\n";

/// The accepting thread: each connection gets a thread of its own while there are fewer than
/// [`MAX_CONNECTIONS`]; one more is answered 503 from here and closed.
pub(super) fn accept(listener: &TcpListener, shared: &Arc<Shared>) {
    for conn in listener.incoming() {
        if shared.stopped.load(Ordering::Acquire) {
            return;
        }
        let stream = match conn {
            Ok(s) => s,
            Err(e) => {
                log::warn!("http: accept failed: {e}");
                thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        if shared.connections.load(Ordering::Acquire) >= MAX_CONNECTIONS {
            // Never waits: a refused client that does not read loses the answer, not our time.
            let _ = stream.set_nonblocking(true);
            let why = format!("{MAX_CONNECTIONS} connections already");
            let _ = reply(
                &stream,
                Status::Unavailable,
                "text/plain; charset=utf-8",
                "",
                why.as_bytes(),
                false,
            );
            log::warn!("http: a connection was turned away ({MAX_CONNECTIONS} already)");
            continue;
        }
        shared.connections.fetch_add(1, Ordering::AcqRel);
        let conn_shared = shared.clone();
        let spawned = thread::Builder::new()
            .name("http-conn".into())
            .stack_size(STACK)
            .spawn(move || {
                let _slot = Slot(&conn_shared.connections);
                serve(stream, &conn_shared);
            });
        if let Err(e) = spawned {
            shared.connections.fetch_sub(1, Ordering::AcqRel);
            log::warn!("http: cannot start a connection's thread: {e}");
        }
    }
}

/// Writes a whole answer: status line, headers, and `body` unless `head_only`.
fn reply(
    stream: &TcpStream,
    status: Status,
    content_type: &str,
    extra: &str,
    body: &[u8],
    head_only: bool,
) -> io::Result<()> {
    let (code, reason) = status.line();
    let head = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{COMMON}{extra}\r\n",
        body.len()
    );
    let deadline = Instant::now() + IO_TIMEOUT;
    write_by(stream, head.as_bytes(), deadline)?;
    if !head_only {
        write_by(stream, body, deadline)?;
    }
    Ok(())
}

/// Writes `buf` whole by `deadline`. A client that stopped reading can still take a few bytes now
/// and then (the kernel reopens its window), which would keep a plain `write_all` going for ever.
fn write_by(mut stream: &TcpStream, mut buf: &[u8], deadline: Instant) -> io::Result<()> {
    while !buf.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client stopped reading",
            ));
        }
        stream.set_write_timeout(Some(left))?;
        match stream.write(buf) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Writes `buf` whole within [`IO_TIMEOUT`].
fn write_all(stream: &TcpStream, buf: &[u8]) -> io::Result<()> {
    write_by(stream, buf, Instant::now() + IO_TIMEOUT)
}

/// Answers a refusal with its reason as the body.
fn refuse(stream: &TcpStream, r: &Refusal, head_only: bool) {
    let extra = match r.status {
        Status::Unauthorized => "WWW-Authenticate: Bearer realm=\"emotiond\"\r\n",
        Status::MethodNotAllowed => "Allow: GET, HEAD\r\n",
        _ => "",
    };
    let body = format!("{}\n", r.why);
    let _ = reply(
        stream,
        r.status,
        "text/plain; charset=utf-8",
        extra,
        body.as_bytes(),
        head_only,
    );
}

/// Closes our side and reads what the client still sends, briefly, so that closing does not
/// reset the connection before the client has read the answer.
fn linger(mut stream: TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let deadline = Instant::now() + Duration::from_millis(500);
    let mut buf = [0u8; 4096];
    let mut drained = 0usize;
    while drained < 1 << 20 && Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
}

/// One connection: its request, the access rules, the route.
fn serve(stream: TcpStream, shared: &Shared) {
    let req = match Request::read(&stream, Instant::now() + IO_TIMEOUT) {
        Ok(r) => r,
        Err(r) => {
            log::debug!("http: {} {}", r.status.line().0, r.why);
            refuse(&stream, &r, false);
            linger(stream);
            return;
        }
    };
    if let Err(r) = shared.access.check(&req) {
        log::debug!("http: {} {} for {}", r.status.line().0, r.why, req.path);
        refuse(&stream, &r, req.head_only);
        return;
    }
    let result = match req.path.as_str() {
        "/" | "/index.html" => reply(
            &stream,
            Status::Ok,
            "text/html; charset=utf-8",
            PAGE_POLICY,
            shared.page.as_bytes(),
            req.head_only,
        ),
        "/status" => {
            let body = status_json(shared).to_string();
            reply(
                &stream,
                Status::Ok,
                "application/json",
                "",
                body.as_bytes(),
                req.head_only,
            )
        }
        "/events" => events(&stream, shared, req.head_only),
        "/snapshot.jpg" | "/snapshot.png" | "/stream.mjpg" if !shared.preview_on => {
            refuse(
                &stream,
                &Refusal {
                    status: Status::Forbidden,
                    why: "the preview is off: frames leave emotiond only with preview = true in [http]".into(),
                },
                req.head_only,
            );
            Ok(())
        }
        "/snapshot.jpg" => snapshot(&stream, shared, Format::Jpeg, req.head_only),
        "/snapshot.png" => snapshot(&stream, shared, Format::Png, req.head_only),
        "/stream.mjpg" => stream_mjpeg(&stream, shared, req.head_only),
        _ => {
            let why = format!(
                "no {}: try /, /events, /status, /snapshot.jpg, /snapshot.png or /stream.mjpg",
                req.path
            );
            refuse(
                &stream,
                &Refusal {
                    status: Status::NotFound,
                    why,
                },
                req.head_only,
            );
            Ok(())
        }
    };
    if let Err(e) = result {
        log::debug!("http: {}: {e}", req.path);
    }
}

fn unavailable(stream: &TcpStream, why: String, head_only: bool) -> io::Result<()> {
    refuse(
        stream,
        &Refusal {
            status: Status::Unavailable,
            why,
        },
        head_only,
    );
    Ok(())
}

/// `/status`: the latest `status` event's figures (null before the first), and what the sink
/// knows now.
fn status_json(shared: &Shared) -> serde_json::Value {
    let temp_c = crate::pipeline::stats::cpu_temperature().map(|t| super::round(t, 1));
    let s = shared.lock();
    let status: Option<serde_json::Value> = s
        .status
        .as_deref()
        .and_then(|l| serde_json::from_str(l).ok());
    let pick = |key: &str| {
        status
            .as_ref()
            .and_then(|v| v.get(key))
            .cloned()
            .unwrap_or(serde_json::Value::Null)
    };
    let mut out = serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "source": s.source,
        "source_state": s.source_state,
        "uptime_s": (shared.started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        "faces": s.snapshot.len(),
        "tracks": super::faces_json(&s.faces),
        "leds": super::driving_json(s.driving),
        "temp_c": temp_c,
        "preview": shared.preview_on,
        "sse_clients": shared.sse.load(Ordering::Acquire),
    });
    for key in [
        "frames",
        "fps",
        "detect_p50_ms",
        "detect_p95_ms",
        "classify_p50_ms",
        "classify_p95_ms",
        "latency_p50_ms",
        "latency_p95_ms",
        "dropped",
        "bad_frames",
        "skipped_faces",
        "rss_mib",
    ] {
        out[key] = pick(key);
    }
    out
}

/// `/events`: the snapshot, then every event as it comes, from a queue the sink fills.
fn events(stream: &TcpStream, shared: &Shared, head_only: bool) -> io::Result<()> {
    let slot = Slot::take(&shared.sse, MAX_SSE);
    if slot.is_none() || shared.closing.load(Ordering::Acquire) {
        return unavailable(
            stream,
            format!("{MAX_SSE} event clients already, or stopping"),
            head_only,
        );
    }
    write_all(
        stream,
        format!("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n{COMMON}\r\n").as_bytes(),
    )?;
    if head_only {
        return Ok(());
    }
    write_all(stream, b"retry: 2000\n\n")?;
    let (tx, rx) = mpsc::sync_channel(SSE_QUEUE);
    let no = {
        // Under the lock, so no event falls between the snapshot and the stream.
        let mut s = shared.lock();
        let _ = tx.try_send(sse(None, &s.snapshot.head()));
        for line in s.snapshot.lines() {
            let _ = tx.try_send(sse(None, line));
        }
        let _ = tx.try_send(faces_message(&s));
        s.accepted += 1;
        let no = s.accepted;
        s.clients.push(Client { no, tx });
        no
    };
    log::info!("http: events client {no} connected");
    let result = loop {
        let sent = match rx.recv_timeout(KEEP_ALIVE) {
            Ok(msg) => write_all(stream, msg.as_bytes()),
            Err(RecvTimeoutError::Timeout) => write_all(stream, b": keep-alive\n\n"),
            Err(RecvTimeoutError::Disconnected) => break Ok(()),
        };
        if let Err(e) = sent {
            break Err(e);
        }
    };
    match &result {
        Ok(()) => log::info!("http: events client {no} closed"),
        Err(e) => log::info!("http: events client {no} gone ({e})"),
    }
    drop(slot);
    Ok(())
}

/// `/snapshot.*`: the next frame, annotated and encoded.
fn snapshot(
    stream: &TcpStream,
    shared: &Shared,
    format: Format,
    head_only: bool,
) -> io::Result<()> {
    let mut picture = Picture::default();
    if !shared.preview.next(&mut picture, SNAPSHOT_WAIT) {
        let why = format!(
            "no frame from the camera in {} s (is the source lost, or at its end?)",
            SNAPSHOT_WAIT.as_secs()
        );
        return unavailable(stream, why, head_only);
    }
    let body = preview::encode(&preview::annotate(&picture), format);
    reply(stream, Status::Ok, format.mime(), "", &body, head_only)
}

/// `/stream.mjpg`: annotated frames as `multipart/x-mixed-replace`, at most [`STREAM_FPS`] a
/// second, until the client goes or the daemon stops.
fn stream_mjpeg(stream: &TcpStream, shared: &Shared, head_only: bool) -> io::Result<()> {
    let Some(_slot) = Slot::take(&shared.streams, MAX_STREAMS) else {
        return unavailable(stream, format!("{MAX_STREAMS} streams already"), head_only);
    };
    write_all(
        stream,
        format!("HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\n{COMMON}\r\n")
            .as_bytes(),
    )?;
    if head_only {
        return Ok(());
    }
    let every = Duration::from_secs_f64(1.0 / STREAM_FPS);
    let mut picture = Picture::default();
    while !shared.closing.load(Ordering::Acquire) {
        let started = Instant::now();
        if !shared
            .preview
            .next(&mut picture, Duration::from_millis(500))
        {
            continue;
        }
        let jpeg = preview::encode(&preview::annotate(&picture), Format::Jpeg);
        let deadline = Instant::now() + IO_TIMEOUT;
        let part = format!(
            "--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
            jpeg.len()
        );
        write_by(stream, part.as_bytes(), deadline)?;
        write_by(stream, &jpeg, deadline)?;
        write_by(stream, b"\r\n", deadline)?;
        if let Some(rest) = every.checked_sub(started.elapsed()) {
            thread::sleep(rest);
        }
    }
    Ok(())
}
