//! One request's head, read with a size and a time limit and parsed by `httparse`, and the access
//! rules: the token, or without one the loopback `Host`.

use std::io::{self, Read};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// The largest request head accepted (request line and headers); a larger one is answered 431.
pub const MAX_HEAD: usize = 8 * 1024;
/// The most headers accepted in one request; more are answered 431.
pub const MAX_HEADERS: usize = 32;

/// An HTTP status this server answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// 200.
    Ok,
    /// 400: the request could not be parsed.
    BadRequest,
    /// 401: no token or a wrong one.
    Unauthorized,
    /// 403: a foreign `Host`, or the preview is off.
    Forbidden,
    /// 404: no such path.
    NotFound,
    /// 405: a method other than GET and HEAD.
    MethodNotAllowed,
    /// 408: the head did not arrive in time.
    RequestTimeout,
    /// 431: the head is too large.
    HeaderTooLarge,
    /// 503: too many connections, or no frame in time.
    Unavailable,
}

impl Status {
    /// The code and its reason phrase.
    pub fn line(self) -> (u16, &'static str) {
        match self {
            Status::Ok => (200, "OK"),
            Status::BadRequest => (400, "Bad Request"),
            Status::Unauthorized => (401, "Unauthorized"),
            Status::Forbidden => (403, "Forbidden"),
            Status::NotFound => (404, "Not Found"),
            Status::MethodNotAllowed => (405, "Method Not Allowed"),
            Status::RequestTimeout => (408, "Request Timeout"),
            Status::HeaderTooLarge => (431, "Request Header Fields Too Large"),
            Status::Unavailable => (503, "Service Unavailable"),
        }
    }
}

/// A request that was refused before it was routed, and the text that says why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The answer.
    pub status: Status,
    /// One line for the body.
    pub why: String,
}

impl Refusal {
    fn new(status: Status, why: impl Into<String>) -> Self {
        Refusal {
            status,
            why: why.into(),
        }
    }
}

/// A parsed request head: what routing and the access rules need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `HEAD` rather than `GET`: the answer's headers only.
    pub head_only: bool,
    /// The path, without the query.
    pub path: String,
    /// The query, without the `?` (empty when there is none).
    pub query: String,
    /// The `Host` header.
    pub host: Option<String>,
    /// The `Authorization` header.
    pub authorization: Option<String>,
}

impl Request {
    /// Parses a whole head; `Ok(None)` while it is incomplete.
    pub fn parse(buf: &[u8]) -> Result<Option<Request>, Refusal> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(buf) {
            Ok(httparse::Status::Partial) => return Ok(None),
            Ok(httparse::Status::Complete(_)) => {}
            Err(httparse::Error::TooManyHeaders) => {
                return Err(Refusal::new(
                    Status::HeaderTooLarge,
                    format!("more than {MAX_HEADERS} headers"),
                ))
            }
            Err(e) => {
                return Err(Refusal::new(
                    Status::BadRequest,
                    format!("malformed request: {e}"),
                ))
            }
        }
        let head_only = match req.method {
            Some("GET") => false,
            Some("HEAD") => true,
            _ => {
                return Err(Refusal::new(
                    Status::MethodNotAllowed,
                    "only GET and HEAD are served",
                ))
            }
        };
        let target = req.path.unwrap_or_default();
        if !target.starts_with('/') {
            return Err(Refusal::new(
                Status::BadRequest,
                "the request target must be a path starting with /",
            ));
        }
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let header = |name: &str| {
            req.headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| String::from_utf8_lossy(h.value).trim().to_string())
        };
        Ok(Some(Request {
            head_only,
            path: path.to_string(),
            query: query.to_string(),
            host: header("host"),
            authorization: header("authorization"),
        }))
    }

    /// Reads one request head from `stream`, at most [`MAX_HEAD`] bytes, all of it by `deadline`.
    pub fn read(stream: &TcpStream, deadline: Instant) -> Result<Request, Refusal> {
        let mut reader = stream;
        let mut buf = [0u8; MAX_HEAD];
        let mut len = 0;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(timeout());
            }
            let _ = stream.set_read_timeout(Some(left.max(Duration::from_millis(1))));
            let n = match reader.read(&mut buf[len..]) {
                Ok(0) => {
                    return Err(Refusal::new(
                        Status::BadRequest,
                        "the connection closed mid-request",
                    ))
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(timeout())
                }
                Err(e) => return Err(Refusal::new(Status::BadRequest, e.to_string())),
            };
            len += n;
            if let Some(req) = Request::parse(&buf[..len])? {
                return Ok(req);
            }
            if len == MAX_HEAD {
                return Err(Refusal::new(
                    Status::HeaderTooLarge,
                    format!("the request head is over {} KiB", MAX_HEAD / 1024),
                ));
            }
        }
    }

    /// The value of `key` in the query, percent-decoded.
    pub fn query_value(&self, key: &str) -> Option<String> {
        self.query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| percent_decode(v))
    }
}

fn timeout() -> Refusal {
    Refusal::new(Status::RequestTimeout, "the request head took too long")
}

/// `%XX` escapes and `+` (a space) decoded; a bad escape is kept as it is.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let hex = |c: Option<&u8>| c.and_then(|&c| (c as char).to_digit(16)).map(|d| d as u8);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match (b[i], hex(b.get(i + 1)), hex(b.get(i + 2))) {
            (b'%', Some(h), Some(l)) => {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
            (b'+', _, _) => out.push(b' '),
            (c, _, _) => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Who may ask: everyone with the token, or without a token (a loopback address only) every
/// request whose `Host` is a loopback name, which a DNS-rebinding page cannot send.
#[derive(Clone)]
pub enum Access {
    /// Every request carries this token.
    Token(String),
    /// No token; the `Host` must be loopback.
    Loopback,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // The token stays out of logs.
            Access::Token(_) => f.write_str("Token(..)"),
            Access::Loopback => f.write_str("Loopback"),
        }
    }
}

impl Access {
    /// `Ok` when `req` may be answered, else the refusal.
    pub fn check(&self, req: &Request) -> Result<(), Refusal> {
        match self {
            Access::Token(token) => {
                let bearer = req
                    .authorization
                    .as_deref()
                    .and_then(|a| a.strip_prefix("Bearer "))
                    .map(|t| t.trim().to_string());
                let given = bearer.or_else(|| req.query_value("token"));
                match given {
                    Some(g) if same(g.as_bytes(), token.as_bytes()) => Ok(()),
                    Some(_) => Err(Refusal::new(Status::Unauthorized, "wrong token")),
                    None => Err(Refusal::new(
                        Status::Unauthorized,
                        "a token is needed: Authorization: Bearer TOKEN, or ?token=TOKEN",
                    )),
                }
            }
            Access::Loopback => match req.host.as_deref() {
                Some(h) if loopback_host(h) => Ok(()),
                Some(_) => Err(Refusal::new(
                    Status::Forbidden,
                    "this server answers only to a loopback Host (127.0.0.1, [::1], localhost)",
                )),
                None => Err(Refusal::new(Status::Forbidden, "a Host header is needed")),
            },
        }
    }
}

/// Whether `a` equals `b`, looking at every byte of both whatever they hold (no early exit).
pub fn same(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

/// Whether a `Host` header names this machine's loopback: `localhost`, `127.x.x.x` or `[::1]`,
/// with any port.
pub fn loopback_host(host: &str) -> bool {
    let name = if let Some(v6) = host.strip_prefix('[') {
        match v6.split_once(']') {
            Some((addr, rest)) if rest.is_empty() || port(rest) => {
                return addr
                    .parse::<std::net::Ipv6Addr>()
                    .is_ok_and(|a| a.is_loopback())
            }
            _ => return false,
        }
    } else {
        match host.split_once(':') {
            Some((name, rest)) if port(&format!(":{rest}")) => name,
            Some(_) => return false,
            None => host,
        }
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|a| a.is_loopback())
}

/// `:PORT`.
fn port(s: &str) -> bool {
    s.strip_prefix(':')
        .is_some_and(|p| !p.is_empty() && p.parse::<u16>().is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Option<Request>, Refusal> {
        Request::parse(text.as_bytes())
    }

    fn status(text: &str) -> Status {
        parse(text).unwrap_err().status
    }

    #[test]
    fn a_request_is_parsed_with_its_query_and_headers() {
        let r = parse("GET /events?token=a%2Bb+c&x=1 HTTP/1.1\r\nHost: localhost:8088\r\nauthorization:  Bearer t \r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(r.path, "/events");
        assert!(!r.head_only);
        assert_eq!(r.host.as_deref(), Some("localhost:8088"));
        assert_eq!(r.authorization.as_deref(), Some("Bearer t"));
        assert_eq!(r.query_value("token").as_deref(), Some("a+b c"));
        assert_eq!(r.query_value("x").as_deref(), Some("1"));
        assert_eq!(r.query_value("y"), None);
        let r = parse("HEAD / HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert!(r.head_only);
        assert_eq!((r.path.as_str(), r.query.as_str()), ("/", ""));
    }

    #[test]
    fn an_incomplete_head_asks_for_more() {
        assert_eq!(parse("GET / HTTP/1.1\r\nHost: x\r\n"), Ok(None));
        assert_eq!(parse(""), Ok(None));
    }

    #[test]
    fn bad_requests_get_their_status() {
        assert_eq!(status("BLAH\r\n\r\n"), Status::BadRequest);
        assert_eq!(status("GET / HTTP/9.9\r\n\r\n"), Status::BadRequest);
        assert_eq!(status("GET foo HTTP/1.1\r\n\r\n"), Status::BadRequest);
        assert_eq!(
            status("GET / HTTP/1.1\r\nbad header\r\n\r\n"),
            Status::BadRequest
        );
        assert_eq!(status("POST / HTTP/1.1\r\n\r\n"), Status::MethodNotAllowed);
        assert_eq!(
            status("DELETE /x HTTP/1.1\r\n\r\n"),
            Status::MethodNotAllowed
        );
        let many: String = (0..=MAX_HEADERS).map(|i| format!("X-{i}: y\r\n")).collect();
        assert_eq!(
            status(&format!("GET / HTTP/1.1\r\n{many}\r\n")),
            Status::HeaderTooLarge
        );
    }

    #[test]
    fn percent_escapes_decode_and_bad_ones_stay() {
        assert_eq!(percent_decode("a%20b%zz%4"), "a b%zz%4");
        assert_eq!(percent_decode("%E2%9C%93"), "\u{2713}");
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same(b"secret", b"secret"));
        assert!(!same(b"secret", b"secreT"));
        assert!(!same(b"secret", b"secret2"));
        assert!(!same(b"", b"x"));
        assert!(same(b"", b""));
    }

    fn request(host: Option<&str>, auth: Option<&str>, query: &str) -> Request {
        Request {
            head_only: false,
            path: "/".into(),
            query: query.into(),
            host: host.map(Into::into),
            authorization: auth.map(Into::into),
        }
    }

    #[test]
    fn with_a_token_every_request_carries_it() {
        let a = Access::Token("s3cret".into());
        let ok = |r: Request| a.check(&r).is_ok();
        assert!(ok(request(None, Some("Bearer s3cret"), "")));
        assert!(ok(request(Some("evil.example"), None, "token=s3cret")));
        assert!(ok(request(None, None, "a=1&token=s3cret")));
        assert!(!ok(request(None, None, "")));
        assert!(!ok(request(None, Some("Bearer s3cre"), "")));
        assert!(!ok(request(None, Some("Basic s3cret"), "")));
        assert!(!ok(request(None, None, "token=s3cretx")));
        assert_eq!(
            a.check(&request(Some("localhost"), None, ""))
                .unwrap_err()
                .status,
            Status::Unauthorized
        );
        assert_eq!(format!("{a:?}"), "Token(..)");
    }

    #[test]
    fn without_a_token_only_a_loopback_host_is_answered() {
        for host in [
            "127.0.0.1",
            "127.0.0.1:8088",
            "127.1.2.3:1",
            "localhost",
            "LocalHost:80",
            "[::1]",
            "[::1]:8088",
        ] {
            assert!(loopback_host(host), "{host}");
            assert!(Access::Loopback
                .check(&request(Some(host), None, ""))
                .is_ok());
        }
        for host in [
            "evil.example",
            "evil.example:8088",
            "localhost.evil.example",
            "127.0.0.1.evil.example",
            "192.168.1.2:8088",
            "[::2]:80",
            "[::1]x",
            "localhost:",
            "localhost:99999",
            "",
        ] {
            assert!(!loopback_host(host), "{host}");
            let r = Access::Loopback.check(&request(Some(host), None, ""));
            assert_eq!(r.unwrap_err().status, Status::Forbidden, "{host}");
        }
        let r = Access::Loopback.check(&request(None, None, ""));
        assert_eq!(r.unwrap_err().status, Status::Forbidden);
    }
}
