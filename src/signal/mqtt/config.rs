//! `[mqtt]`: the broker's URL and the client's settings, each checked as it is read (the config
//! reader adds the line), with messages that say what would be right.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use rumqttc::QoS;
use serde::de::{Deserializer, Error as _};
use serde::Deserialize;

/// The port of `mqtt://` when the URL gives none.
pub const DEFAULT_PORT: u16 = 1883;
/// The port of `mqtts://` when the URL gives none.
pub const DEFAULT_TLS_PORT: u16 = 8883;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::mqtt::MqttSink;

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
}
