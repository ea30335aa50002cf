//! MQTT, for fleets, Node-RED and Home Assistant: every protocol event goes to a broker as the
//! JSON form of the serial protocol, with a retained state topic and an online/offline status.
//!
//! `[mqtt]` in the configuration (off while `url` is unset):
//!
//! | topic | retained | payload |
//! |---|---|---|
//! | `<prefix>/event` | no | every protocol event, one JSON object (`{"v":1,"type":"face",...}`), status figures included |
//! | `<prefix>/state` | yes | the driving face: `{"emotion":"happy","conf":0.87}`, or `{"emotion":null,"conf":null}` |
//! | `<prefix>/status` | yes | `online` while connected; `offline` at a clean stop, and as the last will |
//!
//! With `discovery = true`, a Home Assistant sensor (`homeassistant/sensor/<client_id>/emotion/config`,
//! retained) shows the current emotion, with the confidence as an attribute.
//!
//! The pipeline never waits for the broker. Events go into a bounded queue (`queue` messages) that
//! one thread, `mqtt`, empties with rumqttc's synchronous client. A broker that is down at start,
//! restarts or refuses the login is logged once per outage (with the URL and the reason) and
//! retried with backoff (0.5 s doubling to 30 s) while the daemon runs on; what does not fit in
//! the queue meanwhile is dropped and counted. On every reconnection the client publishes `online`
//! and the current state again, and then an event
//! `{"v":1,"type":"mqtt","state":"reconnected","dropped":N}` on `<prefix>/event`.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rumqttc::{
    Client, ConnectReturnCode, Connection, ConnectionError, Disconnect, Event as MqttEvent,
    Incoming, LastWill, MqttOptions, Outgoing, Publish, QoS, Request, TlsConfiguration, Transport,
};
use thiserror::Error;

use super::fanout::{DrivingState, EventSink, Lines};

mod config;

pub use config::{MqttConfig, MqttUrl, DEFAULT_PORT, DEFAULT_TLS_PORT};

/// The first wait before a reconnection attempt; it doubles up to [`MAX_BACKOFF`].
pub const MIN_BACKOFF: Duration = Duration::from_millis(500);
/// The longest wait between reconnection attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long [`MqttSink::finish`] lets queued messages leave.
pub const FINISH_TIMEOUT: Duration = Duration::from_secs(1);
/// Seconds a TCP (and TLS) connection and the broker's answer may take.
const CONNECT_TIMEOUT_S: u64 = 5;
/// Where Home Assistant looks for discovery messages.
const DISCOVERY_PREFIX: &str = "homeassistant";

/// Why MQTT could not start. A broker that cannot be reached is not one of these: the daemon runs
/// on and retries.
#[derive(Debug, Error)]
pub enum MqttError {
    /// The password file cannot be read.
    #[error("mqtt.password_file {}: cannot read it: {source}", path.display())]
    PasswordFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The password file is empty.
    #[error("mqtt.password_file {}: the file is empty; put the password on its first line", path.display())]
    EmptyPassword {
        /// The file.
        path: PathBuf,
    },
    /// A password without a user name (MQTT 3.1.1 has no such login).
    #[error("mqtt.password_file is set but mqtt.username is not; MQTT needs a user name with a password")]
    NoUsername,
    /// The CA file cannot be read.
    #[error("mqtt.ca_file {}: cannot read it: {source}", path.display())]
    CaFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The CA file is not PEM certificates.
    #[error("mqtt.ca_file {}: not a PEM certificate file: {source}", path.display())]
    CaPem {
        /// The file.
        path: PathBuf,
        /// What is wrong in it.
        source: rustls::pki_types::pem::Error,
    },
    /// The CA file holds no certificate that can be used.
    #[error("mqtt.ca_file {}: no usable certificate in it (expected \"-----BEGIN CERTIFICATE-----\" blocks)", path.display())]
    NoCertificates {
        /// The file.
        path: PathBuf,
    },
    /// A CA file for a plain `mqtt://` URL, which would never be used.
    #[error(
        "mqtt.ca_file is set but mqtt.url {url} is not mqtts://; use mqtts:// or remove ca_file"
    )]
    CaWithoutTls {
        /// The URL.
        url: MqttUrl,
    },
    /// No system CA certificates for `mqtts://` without `ca_file`.
    #[error("mqtt {url}: no system CA certificates found ({reason}); install ca-certificates or set mqtt.ca_file")]
    SystemRoots {
        /// The URL.
        url: MqttUrl,
        /// What the search found.
        reason: String,
    },
    /// rustls refused the TLS set-up.
    #[error("mqtt {url}: TLS set-up: {source}")]
    Tls {
        /// The URL.
        url: MqttUrl,
        /// rustls's error.
        source: rustls::Error,
    },
    /// The `mqtt` thread could not be started.
    #[error("mqtt: cannot start its thread: {0}")]
    Thread(#[source] io::Error),
}

/// The topics of one client.
#[derive(Debug)]
struct Topics {
    event: String,
    state: String,
    status: String,
    /// Home Assistant's discovery topic and payload, when `discovery` is on.
    discovery: Option<(String, String)>,
}

impl Topics {
    fn new(cfg: &MqttConfig) -> Topics {
        let prefix = cfg.topic_prefix();
        let client_id = cfg.client_id();
        let node: String = client_id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let discovery = cfg.discovery.then(|| {
            let config = serde_json::json!({
                "name": "Emotion",
                "unique_id": format!("emotiond_{node}_emotion"),
                "object_id": format!("emotiond_{node}_emotion"),
                "state_topic": format!("{prefix}/state"),
                "value_template": "{{ value_json.emotion if value_json.emotion else 'none' }}",
                "json_attributes_topic": format!("{prefix}/state"),
                "availability_topic": format!("{prefix}/status"),
                "payload_available": "online",
                "payload_not_available": "offline",
                "icon": "mdi:emoticon-outline",
                "device": {
                    "identifiers": [format!("emotiond_{node}")],
                    "name": format!("emotiond {client_id}"),
                    "manufacturer": "emotiond",
                    "sw_version": env!("CARGO_PKG_VERSION"),
                },
            });
            (
                format!("{DISCOVERY_PREFIX}/sensor/{node}/emotion/config"),
                config.to_string(),
            )
        });
        Topics {
            event: format!("{prefix}/event"),
            state: format!("{prefix}/state"),
            status: format!("{prefix}/status"),
            discovery,
        }
    }

    /// Whether a message on `topic` is one the client sends again by itself on reconnection.
    fn resent_on_connect(&self, topic: &str) -> bool {
        topic == self.status || self.discovery.as_ref().is_some_and(|(t, _)| t == topic)
    }
}

/// The retained state payload.
fn state_payload(state: DrivingState) -> String {
    match state {
        Some((e, c)) => format!(
            "{{\"emotion\":\"{}\",\"conf\":{:.2}}}",
            e.name(),
            c.clamp(0.0, 1.0)
        ),
        None => "{\"emotion\":null,\"conf\":null}".to_string(),
    }
}

fn retained(topic: &str, qos: QoS, payload: impl Into<Vec<u8>>) -> Publish {
    let mut p = Publish::new(topic, qos, payload);
    p.retain = true;
    p
}

/// Why a connection attempt failed or a connection ended, for the log.
fn reason(e: &ConnectionError) -> String {
    match e {
        ConnectionError::ConnectionRefused(code) => {
            let why = match code {
                ConnectReturnCode::BadUserNamePassword => {
                    "bad user name or password (check mqtt.username and mqtt.password_file)"
                }
                ConnectReturnCode::NotAuthorized => {
                    "not authorized (check mqtt.username and mqtt.password_file)"
                }
                ConnectReturnCode::BadClientId => "client id rejected (set mqtt.client_id)",
                ConnectReturnCode::ServiceUnavailable => "service unavailable",
                ConnectReturnCode::RefusedProtocolVersion => "it does not speak MQTT 3.1.1",
                ConnectReturnCode::Success => "no reason given",
            };
            format!("connection refused by the broker: {why}")
        }
        ConnectionError::Io(e) => format!("cannot reach it: {e}"),
        ConnectionError::NetworkTimeout => {
            format!("no answer within {CONNECT_TIMEOUT_S} s")
        }
        ConnectionError::Tls(e) => format!("TLS: {e}"),
        other => other.to_string(),
    }
}

/// After DISCONNECT, reads until the broker closes the connection (it does once it has handled
/// everything before), for at most [`FINISH_TIMEOUT`]. Closing first, with the broker's
/// acknowledgements unread, would reset the connection, and the broker could lose the last
/// messages.
fn wait_for_close(connection: &mut Connection) {
    let until = Instant::now() + FINISH_TIMEOUT;
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        match connection.recv_timeout(left) {
            Ok(Ok(_)) => {}
            _ => break,
        }
    }
}

/// What the sink and the `mqtt` thread share.
#[derive(Debug, Default)]
struct Shared {
    /// Messages dropped since the last report.
    dropped: AtomicU64,
    /// The current retained state payload, sent again on every connection.
    state: Mutex<String>,
    /// [`MqttSink::finish`] has begun.
    stopping: AtomicBool,
    /// `finish` queued `offline` and the disconnect itself.
    final_queued: AtomicBool,
}

/// The MQTT event sink: see the module documentation.
pub struct MqttSink {
    url: MqttUrl,
    client: Client,
    qos: QoS,
    topics: Arc<Topics>,
    shared: Arc<Shared>,
    wake: mpsc::Sender<()>,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for MqttSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MqttSink")
            .field("url", &self.url)
            .field("topics", &self.topics)
            .field("dropped", &self.shared.dropped.load(Ordering::Relaxed))
            .finish()
    }
}

fn read_password(path: &Path) -> Result<String, MqttError> {
    let text = std::fs::read_to_string(path).map_err(|source| MqttError::PasswordFile {
        path: path.to_path_buf(),
        source,
    })?;
    let password = text
        .strip_suffix('\n')
        .map(|p| p.strip_suffix('\r').unwrap_or(p))
        .unwrap_or(&text);
    if password.is_empty() {
        return Err(MqttError::EmptyPassword {
            path: path.to_path_buf(),
        });
    }
    Ok(password.to_string())
}

/// The rustls client configuration for `mqtts://`, with the ring provider.
fn tls_config(cfg: &MqttConfig, url: &MqttUrl) -> Result<rustls::ClientConfig, MqttError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;

    let mut roots = rustls::RootCertStore::empty();
    match &cfg.ca_file {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|source| MqttError::CaFile {
                path: path.clone(),
                source,
            })?;
            let certs = CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|source| MqttError::CaPem {
                    path: path.clone(),
                    source,
                })?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(MqttError::NoCertificates { path: path.clone() });
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                let errors: Vec<String> = found.errors.iter().map(|e| e.to_string()).collect();
                return Err(MqttError::SystemRoots {
                    url: url.clone(),
                    reason: if errors.is_empty() {
                        "none in the usual places".into()
                    } else {
                        errors.join("; ")
                    },
                });
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|source| MqttError::Tls {
            url: url.clone(),
            source,
        })?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

impl MqttSink {
    /// Starts the client and its `mqtt` thread; `None` when `cfg.url` is unset. Fails only on the
    /// local set-up (password file, CA file, TLS); a broker that is down is retried while the
    /// daemon runs.
    pub fn start(cfg: &MqttConfig) -> Result<Option<MqttSink>, MqttError> {
        let Some(url) = cfg.url.clone() else {
            return Ok(None);
        };
        if cfg.ca_file.is_some() && !url.tls {
            return Err(MqttError::CaWithoutTls { url });
        }
        let password = cfg
            .password_file
            .as_deref()
            .map(read_password)
            .transpose()?;
        let client_id = cfg.client_id();
        let qos = cfg.qos();
        let topics = Arc::new(Topics::new(cfg));

        let host = if url.host.contains(':') {
            format!("[{}]", url.host)
        } else {
            url.host.clone()
        };
        let mut opts = MqttOptions::new(client_id.clone(), host, url.port);
        opts.set_keep_alive(Duration::from_secs(cfg.keep_alive))
            .set_clean_session(true)
            .set_last_will(LastWill::new(&topics.status, "offline", qos, true));
        match (&cfg.username, password) {
            (Some(user), password) => {
                opts.set_credentials(user.clone(), password.unwrap_or_default());
            }
            (None, Some(_)) => return Err(MqttError::NoUsername),
            (None, None) => {}
        }
        if url.tls {
            let tls = tls_config(cfg, &url)?;
            opts.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
                Arc::new(tls),
            )));
        }

        let (client, mut connection) = Client::new(opts, cfg.queue);
        let mut net = connection.eventloop.network_options();
        net.set_connection_timeout(CONNECT_TIMEOUT_S);
        connection.eventloop.set_network_options(net);

        let shared = Arc::new(Shared {
            state: Mutex::new(state_payload(None)),
            ..Shared::default()
        });
        let (wake, woken) = mpsc::channel();
        let worker = Worker {
            url: url.clone(),
            client_id,
            qos,
            queue: cfg.queue,
            topics: topics.clone(),
            shared: shared.clone(),
            woken,
        };
        let thread = thread::Builder::new()
            .name("mqtt".into())
            .spawn(move || worker.run(connection))
            .map_err(MqttError::Thread)?;
        Ok(Some(MqttSink {
            url,
            client,
            qos,
            topics,
            shared,
            wake,
            thread: Some(thread),
        }))
    }

    /// Messages dropped since the last reconnection report.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    fn send(&self, publish: Publish) -> bool {
        let Publish {
            topic,
            qos,
            retain,
            payload,
            ..
        } = publish;
        let ok = self.client.try_publish(topic, qos, retain, payload).is_ok();
        if !ok {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
        }
        ok
    }
}

impl EventSink for MqttSink {
    fn name(&self) -> String {
        format!("mqtt {}", self.url)
    }

    fn event(&mut self, lines: &Lines<'_>) {
        let payload = lines.json.trim_end_matches('\n');
        self.send(Publish::new(&self.topics.event, self.qos, payload));
    }

    fn state(&mut self, state: DrivingState) {
        let payload = state_payload(state);
        *self.shared.state.lock().unwrap_or_else(|e| e.into_inner()) = payload.clone();
        self.send(retained(&self.topics.state, self.qos, payload));
    }

    /// Publishes the state `none` and `offline` (a clean stop is offline too), disconnects, and
    /// gives what is queued up to [`FINISH_TIMEOUT`] to leave.
    fn finish(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        let none = state_payload(None);
        let changed = {
            let mut s = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
            std::mem::replace(&mut *s, none.clone()) != none
        };
        let mut queued = !changed || self.send(retained(&self.topics.state, self.qos, none));
        queued &= self.send(retained(&self.topics.status, self.qos, "offline"));
        queued &= self.client.try_disconnect().is_ok();
        // In this order: the thread, once it sees `stopping`, reads `final_queued` to know whether
        // it must send the last messages itself.
        self.shared.final_queued.store(queued, Ordering::SeqCst);
        self.shared.stopping.store(true, Ordering::SeqCst);
        let _ = self.wake.send(());
        let deadline = Instant::now() + FINISH_TIMEOUT;
        while !thread.is_finished() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        if thread.is_finished() {
            let _ = thread.join();
        } else {
            log::warn!(
                "mqtt {}: the broker did not take the last messages within {} s; leaving them",
                self.url,
                FINISH_TIMEOUT.as_secs()
            );
        }
    }
}

impl Drop for MqttSink {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The `mqtt` thread: drives the connection, reconnects with backoff, and re-announces on every
/// connection.
struct Worker {
    url: MqttUrl,
    client_id: String,
    qos: QoS,
    queue: usize,
    topics: Arc<Topics>,
    shared: Arc<Shared>,
    woken: mpsc::Receiver<()>,
}

impl Worker {
    fn stopping(&self) -> bool {
        self.shared.stopping.load(Ordering::SeqCst)
    }

    fn run(self, mut connection: Connection) {
        let mut backoff = MIN_BACKOFF;
        let mut connected = false;
        let mut ever_connected = false;
        let mut warned = false;
        let mut last_pushed = false;
        // Messages that were on their way when a connection broke, sent again on the next one.
        let mut held: VecDeque<Publish> = VecDeque::new();
        loop {
            let Ok(item) = connection.recv() else {
                break; // every sender is gone
            };
            match item {
                Ok(MqttEvent::Incoming(Incoming::ConnAck(_))) => {
                    self.announce(&mut connection, &mut held, ever_connected);
                    connected = true;
                    ever_connected = true;
                    warned = false;
                    backoff = MIN_BACKOFF;
                }
                // Only finish() disconnects.
                Ok(MqttEvent::Outgoing(Outgoing::Disconnect)) => {
                    wait_for_close(&mut connection);
                    break;
                }
                Ok(_) => {}
                Err(e) => {
                    if self.stopping() {
                        break;
                    }
                    self.hold(&mut connection, &mut held);
                    if connected {
                        log::warn!(
                            "mqtt {}: connection lost: {}; reconnecting, events are queued meanwhile",
                            self.url,
                            reason(&e)
                        );
                        warned = true;
                    } else if !warned {
                        log::warn!(
                            "mqtt {}: {}; retrying every {}-{} s, events are queued meanwhile",
                            self.url,
                            reason(&e),
                            MIN_BACKOFF.as_secs_f32(),
                            MAX_BACKOFF.as_secs()
                        );
                        warned = true;
                    } else {
                        log::debug!("mqtt {}: {}", self.url, reason(&e));
                    }
                    connected = false;
                    match self.woken.recv_timeout(backoff) {
                        Err(mpsc::RecvTimeoutError::Timeout) => {}
                        _ if self.stopping() => break,
                        _ => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            }
            // finish() could not queue the last messages (the queue was full): send them next.
            if connected
                && self.stopping()
                && !last_pushed
                && !self.shared.final_queued.load(Ordering::SeqCst)
            {
                last_pushed = true;
                let pending = &mut connection.eventloop.pending;
                pending.push_back(Request::Publish(retained(
                    &self.topics.state,
                    self.qos,
                    state_payload(None),
                )));
                pending.push_back(Request::Publish(retained(
                    &self.topics.status,
                    self.qos,
                    "offline",
                )));
                pending.push_back(Request::Disconnect(Disconnect));
            }
        }
    }

    /// After a broken connection: keeps the messages that were on their way (rumqttc would drop
    /// them with a new session), as many as the queue holds; the rest are counted as dropped.
    fn hold(&self, connection: &mut Connection, held: &mut VecDeque<Publish>) {
        for request in connection.eventloop.pending.drain(..) {
            if let Request::Publish(mut p) = request {
                if self.topics.resent_on_connect(&p.topic) {
                    continue;
                }
                p.pkid = 0;
                p.dup = false;
                held.push_back(p);
            }
        }
        while held.len() > self.queue {
            held.pop_front();
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// On every ConnAck: `online`, the current state, the discovery config, and after an outage
    /// the `mqtt state=reconnected` event, ahead of whatever is queued.
    fn announce(&self, connection: &mut Connection, held: &mut VecDeque<Publish>, again: bool) {
        let t = &self.topics;
        let state = self
            .shared
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut first = vec![
            retained(&t.status, self.qos, "online"),
            retained(&t.state, self.qos, state),
        ];
        if let Some((topic, config)) = &t.discovery {
            first.push(retained(topic, self.qos, config.as_str()));
        }
        let dropped = self.shared.dropped.swap(0, Ordering::Relaxed);
        if again || dropped > 0 {
            log::info!(
                "mqtt {}: reconnected; {dropped} messages dropped while it was away",
                self.url
            );
            let event = format!(
                "{{\"v\":1,\"type\":\"mqtt\",\"state\":\"reconnected\",\"dropped\":{dropped}}}"
            );
            first.push(Publish::new(&t.event, self.qos, event));
        } else {
            log::info!(
                "mqtt {}: connected as {}, topics {}/...",
                self.url,
                self.client_id,
                t.event.trim_end_matches("/event")
            );
        }
        let pending = &mut connection.eventloop.pending;
        // Anything left over from rumqttc's own bookkeeping goes after what was held.
        let leftover: Vec<Request> = pending.drain(..).collect();
        pending.extend(first.into_iter().map(Request::Publish));
        pending.extend(held.drain(..).map(Request::Publish));
        pending.extend(leftover);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::Emotion;

    fn url(s: &str) -> MqttUrl {
        s.parse().unwrap()
    }

    #[test]
    fn the_password_file_is_read_and_its_problems_named() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pass");
        std::fs::write(&f, "s3cret\n").unwrap();
        assert_eq!(read_password(&f).unwrap(), "s3cret");
        std::fs::write(&f, "s3cret\r\n").unwrap();
        assert_eq!(read_password(&f).unwrap(), "s3cret");
        std::fs::write(&f, "\n").unwrap();
        assert!(read_password(&f)
            .unwrap_err()
            .to_string()
            .contains("is empty"));
        let missing = dir.path().join("none");
        let err = read_password(&missing).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("mqtt.password_file") && text.contains("none"),
            "{text}"
        );
        assert!(std::error::Error::source(&err).is_some());

        let cfg = MqttConfig {
            url: Some(url("mqtt://127.0.0.1:1")),
            username: Some("u".into()),
            password_file: Some(missing),
            ..MqttConfig::default()
        };
        assert!(matches!(
            MqttSink::start(&cfg),
            Err(MqttError::PasswordFile { .. })
        ));
        let cfg = MqttConfig {
            username: None,
            password_file: Some(f.clone()),
            ..cfg
        };
        std::fs::write(&f, "x\n").unwrap();
        assert!(matches!(MqttSink::start(&cfg), Err(MqttError::NoUsername)));
    }

    #[test]
    fn ca_files_are_checked_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("ca.pem");
        std::fs::write(&bad, "not a certificate\n").unwrap();
        let cfg = MqttConfig {
            url: Some(url("mqtts://127.0.0.1:1")),
            ca_file: Some(bad.clone()),
            ..MqttConfig::default()
        };
        let err = MqttSink::start(&cfg).unwrap_err();
        assert!(matches!(err, MqttError::NoCertificates { .. }), "{err}");
        let cfg = MqttConfig {
            ca_file: Some(dir.path().join("missing.pem")),
            ..cfg
        };
        let err = MqttSink::start(&cfg).unwrap_err();
        assert!(matches!(err, MqttError::CaFile { .. }), "{err}");
        assert!(err.to_string().contains("missing.pem"), "{err}");
        let cfg = MqttConfig {
            url: Some(url("mqtt://127.0.0.1:1")),
            ca_file: Some(bad),
            ..cfg
        };
        assert!(matches!(
            MqttSink::start(&cfg),
            Err(MqttError::CaWithoutTls { .. })
        ));
    }

    #[test]
    fn state_payloads_and_discovery() {
        assert_eq!(
            state_payload(Some((Emotion::Happy, 0.871))),
            r#"{"emotion":"happy","conf":0.87}"#
        );
        assert_eq!(state_payload(None), r#"{"emotion":null,"conf":null}"#);
        let cfg = MqttConfig {
            client_id: Some("kiosk.1".into()),
            discovery: true,
            ..MqttConfig::default()
        };
        let t = Topics::new(&cfg);
        assert_eq!(t.status, "emotiond/kiosk.1/status");
        let (topic, payload) = t.discovery.clone().unwrap();
        assert_eq!(topic, "homeassistant/sensor/kiosk_1/emotion/config");
        let v: serde_json::Value = serde_json::from_str(&payload).unwrap();
        assert_eq!(v["state_topic"], "emotiond/kiosk.1/state");
        assert_eq!(v["availability_topic"], "emotiond/kiosk.1/status");
        assert!(t.resent_on_connect(&topic) && !t.resent_on_connect(&t.event));
    }

    #[test]
    fn an_unreachable_broker_never_holds_the_caller_up() {
        // A closed port: the sink takes events and stops within its bound all the same.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cfg = MqttConfig {
            url: Some(url(&format!("mqtt://127.0.0.1:{port}"))),
            queue: 4,
            ..MqttConfig::default()
        };
        let mut sink = MqttSink::start(&cfg).unwrap().unwrap();
        let event = super::super::protocol::Event::new("stop");
        let t = Instant::now();
        for _ in 0..100 {
            sink.event(&Lines {
                event: &event,
                text: "x\n",
                json: "{\"v\":1,\"type\":\"stop\"}\n",
            });
        }
        assert!(sink.dropped() >= 96, "{}", sink.dropped());
        sink.finish();
        assert!(t.elapsed() < FINISH_TIMEOUT + Duration::from_millis(500));
    }
}
