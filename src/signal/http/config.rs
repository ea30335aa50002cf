//! `[http]`: the kiosk web API's address, the preview switch and the token file, each checked as
//! it is read (the config reader adds the line), with messages that say what would be right.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::de::{Deserializer, Error as _};
use serde::Deserialize;

/// `[http]`: the web API. Off while `listen` is unset.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// The address and port to listen on, e.g. `127.0.0.1:8088`; unset means no web API. Port 0
    /// takes any free port (the log says which).
    #[serde(deserialize_with = "listen_opt")]
    pub listen: Option<SocketAddr>,
    /// Let camera frames leave the process: `/snapshot.jpg`, `/snapshot.png`, `/stream.mjpg` and
    /// the page's picture. Off by default: they answer 403.
    pub preview: bool,
    /// A file holding the token every request must carry (`Authorization: Bearer TOKEN` or
    /// `?token=TOKEN`); required when `listen` is not a loopback address.
    pub token_file: Option<PathBuf>,
}

impl HttpConfig {
    /// Why these settings cannot be used together, if they cannot: a `listen` address that other
    /// machines can reach without a token.
    pub fn problem(&self) -> Option<String> {
        match self.listen {
            Some(addr) if !addr.ip().is_loopback() && self.token_file.is_none() => Some(format!(
                "http.listen {addr} can be reached from other machines, so every request must carry a token: set http.token_file (a file with a secret), or listen on 127.0.0.1"
            )),
            _ => None,
        }
    }
}

/// Reads `s` as `http.listen`: an IP address and a port.
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    s.parse().map_err(|_| {
        format!(
            "http.listen {s:?}: expected an IP address and a port, e.g. \"127.0.0.1:8088\" or \"[::1]:8088\" (a host name is not accepted)"
        )
    })
}

fn listen_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    let s = String::deserialize(d)?;
    parse_listen(&s).map(Some).map_err(D::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct File {
        #[serde(default)]
        http: HttpConfig,
    }

    fn parse(text: &str) -> Result<HttpConfig, String> {
        toml::from_str::<File>(text)
            .map(|f| f.http)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn an_empty_table_is_off() {
        let c = parse("[http]\n").unwrap();
        assert_eq!(c, HttpConfig::default());
        assert_eq!(c.listen, None);
        assert!(!c.preview);
        assert_eq!(c.problem(), None);
    }

    #[test]
    fn every_key_is_read() {
        let c = parse(
            "[http]\nlisten = \"[::1]:8088\"\npreview = true\ntoken_file = \"/etc/emotiond/http-token\"\n",
        )
        .unwrap();
        assert_eq!(c.listen, Some("[::1]:8088".parse().unwrap()));
        assert!(c.preview);
        assert_eq!(c.token_file, Some("/etc/emotiond/http-token".into()));
    }

    #[test]
    fn a_bad_address_names_the_key_and_its_line() {
        for bad in ["localhost:8088", "127.0.0.1", "8088", "127.0.0.1:99999", ""] {
            let err = parse(&format!("[http]\nlisten = {bad:?}\n")).unwrap_err();
            assert!(err.contains("http.listen"), "{bad}: {err}");
            assert!(err.contains("e.g. \"127.0.0.1:8088\""), "{bad}: {err}");
            assert!(err.contains("line 2"), "{bad}: {err}");
        }
    }

    #[test]
    fn only_loopback_may_go_without_a_token() {
        for (listen, token, ok) in [
            ("127.0.0.1:8088", false, true),
            ("127.0.0.2:0", false, true),
            ("[::1]:8088", false, true),
            ("0.0.0.0:8088", false, false),
            ("[::]:8088", false, false),
            ("192.168.1.20:80", false, false),
            ("0.0.0.0:8088", true, true),
        ] {
            let c = HttpConfig {
                listen: Some(listen.parse().unwrap()),
                token_file: token.then(|| "/t".into()),
                ..HttpConfig::default()
            };
            match c.problem() {
                None => assert!(ok, "{listen} without a token was accepted"),
                Some(why) => {
                    assert!(!ok, "{listen}: {why}");
                    assert!(why.contains("http.token_file"), "{why}");
                    assert!(why.contains(listen.trim_start_matches('[')), "{why}");
                }
            }
        }
    }
}
