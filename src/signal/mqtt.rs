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
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rumqttc::{
    Client, ConnectReturnCode, Connection, ConnectionError, Disconnect, Event as MqttEvent,
    Incoming, LastWill, MqttOptions, Outgoing, Publish, QoS, Request, TlsConfiguration, Transport,
};
use serde::de::{Deserializer, Error as _};
use serde::Deserialize;
use thiserror::Error;

use super::fanout::{DrivingState, EventSink, Lines};

/// The port of `mqtt://` when the URL gives none.
pub const DEFAULT_PORT: u16 = 1883;
/// The port of `mqtts://` when the URL gives none.
pub const DEFAULT_TLS_PORT: u16 = 8883;
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

/// A broker's address: `mqtt://host[:port]` (plain TCP) or `mqtts://host[:port]` (TLS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttUrl {
    /// `mqtts://`.
    pub tls: bool,
    /// A host name or an IP address (IPv6 in brackets in the URL, kept without them here).
    pub host: String,
    /// The port: 1883 or 8883 unless the URL says.
    pub port: u16,
}

impl FromStr for MqttUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (tls, rest) = if let Some(r) = s.strip_prefix("mqtt://") {
            (false, r)
        } else if let Some(r) = s.strip_prefix("mqtts://") {
            (true, r)
        } else {
            return Err(format!(
                "{s:?}: expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT], e.g. mqtt://broker.local:1883"
            ));
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('@') {
            return Err(format!(
                "{s:?}: no user name or password in the URL; set mqtt.username and mqtt.password_file"
            ));
        }
        if rest.contains(['/', '?', '#']) {
            return Err(format!(
                "{s:?}: nothing may follow the host and port (the topics come from mqtt.topic_prefix)"
            ));
        }
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("{s:?}: an IPv6 address needs its closing ']'"))?;
            let ok = !host.is_empty() && host.chars().all(|c| c.is_ascii_hexdigit() || c == ':');
            if !ok {
                return Err(format!("{s:?}: {host:?} is not an IPv6 address"));
            }
            match after {
                "" => (host, None),
                _ => match after.strip_prefix(':') {
                    Some(p) => (host, Some(p)),
                    None => return Err(format!("{s:?}: expected :PORT after ']'")),
                },
            }
        } else {
            match rest.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (rest, None),
            }
        };
        if host.is_empty() {
            return Err(format!(
                "{s:?}: no host, e.g. mqtt://192.168.1.10:1883 or mqtt://broker.local"
            ));
        }
        let v6 = rest.starts_with('[');
        if !v6
            && !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        {
            return Err(format!(
                "{s:?}: {host:?} is not a host name or an address (IPv6 goes in brackets)"
            ));
        }
        let port = match port {
            None if tls => DEFAULT_TLS_PORT,
            None => DEFAULT_PORT,
            Some(p) => p.parse::<u16>().ok().filter(|&p| p != 0).ok_or_else(|| {
                format!("{s:?}: port {p:?} is not a port number (1 to 65535; 1883 for mqtt, 8883 for mqtts)")
            })?,
        };
        Ok(MqttUrl {
            tls,
            host: host.to_string(),
            port,
        })
    }
}

impl fmt::Display for MqttUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// `[mqtt]`: the MQTT event sink. Off while `url` is unset.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttConfig {
    /// `mqtt://host[:port]` or `mqtts://host[:port]` (ports 1883 and 8883 by default); unset means
    /// no MQTT.
    #[serde(deserialize_with = "url_opt")]
    pub url: Option<MqttUrl>,
    /// The MQTT client id; unset means the machine's host name.
    #[serde(deserialize_with = "client_id_opt")]
    pub client_id: Option<String>,
    /// What every topic starts with; unset means `emotiond/<client_id>`.
    #[serde(deserialize_with = "topic_prefix_opt")]
    pub topic_prefix: Option<String>,
    /// 0 (at most once), 1 (at least once: the default; the broker acknowledges each message) or
    /// 2 (exactly once).
    #[serde(deserialize_with = "qos")]
    pub qos: u8,
    /// The user name to log in with.
    #[serde(deserialize_with = "username_opt")]
    pub username: Option<String>,
    /// A file holding the password (one line; a trailing newline is ignored). The password itself
    /// is never in the configuration, which every user can read.
    pub password_file: Option<PathBuf>,
    /// Seconds between keep-alive pings, 5 to 3600 (30).
    #[serde(deserialize_with = "keep_alive")]
    pub keep_alive: u64,
    /// PEM file of the certificate authorities to trust for `mqtts://`; unset means the system's
    /// (`/etc/ssl/certs`).
    pub ca_file: Option<PathBuf>,
    /// Announce a Home Assistant sensor with the current emotion (MQTT discovery).
    pub discovery: bool,
    /// Messages that may wait for the broker, 1 to 65536 (256); more are dropped and counted.
    #[serde(deserialize_with = "queue")]
    pub queue: usize,
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            url: None,
            client_id: None,
            topic_prefix: None,
            qos: 1,
            username: None,
            password_file: None,
            keep_alive: 30,
            ca_file: None,
            discovery: false,
            queue: 256,
        }
    }
}

impl MqttConfig {
    /// The client id: `client_id`, or else the host name (from `/proc/sys/kernel/hostname` or
    /// `/etc/hostname`), or else `emotiond`.
    pub fn client_id(&self) -> String {
        self.client_id.clone().unwrap_or_else(hostname)
    }

    /// The topic prefix: `topic_prefix`, or else `emotiond/<client_id>`.
    pub fn topic_prefix(&self) -> String {
        self.topic_prefix
            .clone()
            .unwrap_or_else(|| format!("emotiond/{}", self.client_id()))
    }

    /// The quality of service every message is sent with.
    pub fn qos(&self) -> QoS {
        match self.qos {
            0 => QoS::AtMostOnce,
            2 => QoS::ExactlyOnce,
            _ => QoS::AtLeastOnce,
        }
    }
}

/// The machine's host name, good as a client id and in a topic, or `emotiond`.
fn hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_string())
        .find(|s| check_client_id(s).is_ok())
        .unwrap_or_else(|| "emotiond".to_string())
}

fn url_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<MqttUrl>, D::Error> {
    let s = String::deserialize(d)?;
    s.parse()
        .map(Some)
        .map_err(|e| D::Error::custom(format!("mqtt.url {e}")))
}

fn check_client_id(s: &str) -> Result<(), String> {
    let ok = (1..=128).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '+' | '#' | '/'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "client_id {s:?}: expected 1 to 128 printable ASCII characters without spaces, '/', '+' or '#', e.g. \"kiosk-12\""
        ))
    }
}

fn client_id_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    check_client_id(&s).map_err(D::Error::custom)?;
    Ok(Some(s))
}

fn topic_prefix_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    let ok = (1..=200).contains(&s.len())
        && !s.starts_with('/')
        && !s.ends_with('/')
        && !s.contains("//")
        && !s.contains(['+', '#', '\0'])
        && !s.chars().any(char::is_control);
    if ok {
        Ok(Some(s))
    } else {
        Err(D::Error::custom(format!(
            "topic_prefix {s:?}: expected topic levels without a leading or trailing '/' and without '+' or '#', e.g. \"site3/emotiond/kiosk-12\""
        )))
    }
}

fn username_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    if s.is_empty() || s.len() > 256 || s.chars().any(char::is_control) {
        return Err(D::Error::custom(format!(
            "username {s:?}: expected 1 to 256 characters, or no username key for an anonymous login"
        )));
    }
    Ok(Some(s))
}

fn qos<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    let v = i64::deserialize(d)?;
    match v {
        0..=2 => Ok(v as u8),
        _ => Err(D::Error::custom(format!(
            "qos {v} is out of range: expected 0 (at most once), 1 (at least once) or 2 (exactly once)"
        ))),
    }
}

fn keep_alive<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let v = i64::deserialize(d)?;
    match v {
        5..=3600 => Ok(v as u64),
        _ => Err(D::Error::custom(format!(
            "keep_alive {v} is out of range: expected 5 to 3600 seconds (30 is usual)"
        ))),
    }
}

fn queue<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let v = i64::deserialize(d)?;
    match v {
        1..=65_536 => Ok(v as usize),
        _ => Err(D::Error::custom(format!(
            "queue {v} is out of range: expected 1 to 65536 messages (256 is usual)"
        ))),
    }
}

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

    #[derive(Debug, Deserialize)]
    struct File {
        #[serde(default)]
        mqtt: MqttConfig,
    }

    fn parse(text: &str) -> Result<MqttConfig, String> {
        toml::from_str::<File>(text)
            .map(|f| f.mqtt)
            .map_err(|e| e.to_string())
    }

    fn url(s: &str) -> MqttUrl {
        s.parse().unwrap()
    }

    #[test]
    fn urls_take_their_default_ports() {
        assert_eq!(
            url("mqtt://broker.local"),
            MqttUrl {
                tls: false,
                host: "broker.local".into(),
                port: 1883
            }
        );
        assert_eq!(url("mqtts://10.0.0.2").port, 8883);
        assert_eq!(url("mqtt://10.0.0.2:1884/").port, 1884);
        assert_eq!(url("mqtt://[::1]:1884").host, "::1");
        assert_eq!(url("mqtt://[::1]").to_string(), "mqtt://[::1]:1883");
        assert_eq!(url("mqtts://b:8884").to_string(), "mqtts://b:8884");
    }

    #[test]
    fn bad_urls_are_refused_naming_the_key() {
        for (text, needle) in [
            ("http://broker", "expected mqtt://HOST[:PORT]"),
            ("broker:1883", "expected mqtt://HOST[:PORT]"),
            ("mqtt://", "no host"),
            ("mqtt://:1883", "no host"),
            ("mqtt://b:0", "not a port number"),
            ("mqtt://b:70000", "not a port number"),
            ("mqtt://b:x", "not a port number"),
            ("mqtt://u:p@b", "password_file"),
            ("mqtt://b/topic", "topic_prefix"),
            ("mqtt://b c", "not a host name"),
            ("mqtt://[::1", "closing"),
        ] {
            let err = parse(&format!("[mqtt]\nurl = {text:?}\n")).unwrap_err();
            assert!(err.contains("mqtt.url"), "{text}: {err}");
            assert!(err.contains(needle), "{text}: {err}");
            assert!(err.contains("line 2"), "{text}: {err}");
        }
    }

    #[test]
    fn an_empty_table_is_off_with_the_defaults() {
        let c = parse("[mqtt]\n").unwrap();
        assert_eq!(c, MqttConfig::default());
        assert_eq!(c.url, None);
        assert_eq!(c.qos(), QoS::AtLeastOnce);
        assert_eq!(c.keep_alive, 30);
        assert_eq!(c.queue, 256);
        assert!(MqttSink::start(&c).unwrap().is_none());
        let id = c.client_id();
        assert!(check_client_id(&id).is_ok(), "{id}");
        assert_eq!(c.topic_prefix(), format!("emotiond/{id}"));
    }

    #[test]
    fn every_key_is_read() {
        let c = parse(
            "[mqtt]\nurl = \"mqtts://b\"\nclient_id = \"kiosk-1\"\nqos = 2\nusername = \"u\"\n\
             password_file = \"/etc/emotiond/mqtt.pass\"\nkeep_alive = 60\nca_file = \"/ca.pem\"\n\
             discovery = true\nqueue = 16\n",
        )
        .unwrap();
        assert_eq!(c.topic_prefix(), "emotiond/kiosk-1");
        assert_eq!(c.qos(), QoS::ExactlyOnce);
        assert_eq!(c.keep_alive, 60);
        assert_eq!(c.queue, 16);
        assert!(c.discovery);
        let c = parse("[mqtt]\ntopic_prefix = \"site/a\"\n").unwrap();
        assert_eq!(c.topic_prefix(), "site/a");
    }

    #[test]
    fn bad_values_say_what_would_be_right() {
        for (line, needle) in [
            (
                "qos = 3",
                "expected 0 (at most once), 1 (at least once) or 2",
            ),
            ("qos = -1", "expected 0 (at most once)"),
            ("keep_alive = 0", "expected 5 to 3600 seconds"),
            ("keep_alive = 4000", "expected 5 to 3600 seconds"),
            ("queue = 0", "expected 1 to 65536 messages"),
            ("client_id = \"a b\"", "client_id \"a b\""),
            ("client_id = \"\"", "expected 1 to 128"),
            ("topic_prefix = \"a/#\"", "without '+' or '#'"),
            ("topic_prefix = \"/a\"", "leading or trailing '/'"),
            ("username = \"\"", "anonymous"),
        ] {
            let err = parse(&format!("[mqtt]\n{line}\n")).unwrap_err();
            assert!(err.contains(needle), "{line}: {err}");
            assert!(err.contains("line 2"), "{line}: {err}");
        }
    }

    #[test]
    fn a_password_cannot_be_in_the_config() {
        let err = parse("[mqtt]\nusername = \"u\"\npassword = \"secret\"\n").unwrap_err();
        assert!(err.contains("unknown field `password`"), "{err}");
        assert!(err.contains("password_file"), "{err}");
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
