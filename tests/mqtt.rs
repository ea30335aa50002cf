//! MQTT against a real broker: Debian's `mosquitto`, started per test on a free loopback port. The
//! daemon is the real binary on the bundled replay. Without mosquitto each test says so and returns
//! (unless `EMOTIOND_REQUIRE_BROKER=1`, as in CI).

mod common;

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{daemon, scaled, stderr};
use rumqttc::{Client, Event, Incoming, MqttOptions, QoS};
use serde_json::Value;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A mosquitto on 127.0.0.1:`port`, killed when dropped.
struct Broker {
    exe: PathBuf,
    conf: PathBuf,
    port: u16,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

impl Broker {
    /// Anonymous logins allowed.
    fn start(exe: PathBuf) -> Broker {
        Broker::with_conf(exe, |_| "allow_anonymous true\n".to_string())
    }

    /// `extra` may put files in the broker's folder and gives the configuration's lines after the
    /// listener.
    fn with_conf(exe: PathBuf, extra: impl FnOnce(&Path) -> String) -> Broker {
        let dir = tempfile::tempdir().unwrap();
        let extra = extra(dir.path());
        let port = free_port();
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\npersistence false\n{extra}"),
        )
        .unwrap();
        let mut b = Broker {
            exe,
            conf,
            port,
            child: None,
            _dir: dir,
        };
        b.run();
        b
    }

    fn run(&mut self) {
        let child = Command::new(&self.exe)
            .arg("-c")
            .arg(&self.conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto");
        self.child = Some(child);
        let t = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                t.elapsed() < scaled(Duration::from_secs(5)),
                "mosquitto did not listen"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One message as a subscriber saw it.
#[derive(Debug, Clone)]
struct Msg {
    topic: String,
    payload: String,
    retain: bool,
}

/// A subscriber to `filter` that keeps every message; it resubscribes after a broker restart.
struct Subscriber {
    seen: Arc<Mutex<Vec<Msg>>>,
    subscribed: Arc<AtomicBool>,
    client: Client,
}

impl Subscriber {
    fn start(port: u16, filter: &str, login: Option<(&str, &str)>) -> Subscriber {
        let id = format!("test-sub-{}-{}", std::process::id(), free_port());
        let mut opts = MqttOptions::new(id, "127.0.0.1", port);
        opts.set_keep_alive(Duration::from_secs(5));
        if let Some((u, p)) = login {
            opts.set_credentials(u, p);
        }
        let (client, mut connection) = Client::new(opts, 16);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let subscribed = Arc::new(AtomicBool::new(false));
        let (s, sub, c, filter) = (
            seen.clone(),
            subscribed.clone(),
            client.clone(),
            filter.to_string(),
        );
        std::thread::spawn(move || {
            for item in connection.iter() {
                match item {
                    Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                        let _ = c.try_subscribe(filter.as_str(), QoS::AtLeastOnce);
                    }
                    Ok(Event::Incoming(Incoming::SubAck(_))) => sub.store(true, Ordering::SeqCst),
                    Ok(Event::Incoming(Incoming::Publish(p))) => s.lock().unwrap().push(Msg {
                        topic: p.topic.clone(),
                        payload: String::from_utf8_lossy(&p.payload).into_owned(),
                        retain: p.retain,
                    }),
                    Ok(_) => {}
                    Err(_) => {
                        sub.store(false, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
            }
        });
        let me = Subscriber {
            seen,
            subscribed,
            client,
        };
        me.wait_subscribed();
        me
    }

    fn wait_subscribed(&self) {
        let t = Instant::now();
        while !self.subscribed.load(Ordering::SeqCst) {
            assert!(t.elapsed() < scaled(Duration::from_secs(5)), "no SUBACK");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn seen(&self) -> Vec<Msg> {
        self.seen.lock().unwrap().clone()
    }

    /// Waits until `done` holds for what was seen (or panics after `within`).
    fn wait_for(&self, within: Duration, what: &str, done: impl Fn(&[Msg]) -> bool) -> Vec<Msg> {
        let t = Instant::now();
        loop {
            let seen = self.seen();
            if done(&seen) {
                return seen;
            }
            assert!(
                t.elapsed() < scaled(within),
                "no {what} within {within:?}; seen: {seen:#?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let _ = self.client.try_disconnect();
    }
}

/// The retained messages under `prefix`, as a new subscriber gets them.
fn retained(port: u16, prefix: &str, topics: &[&str]) -> Vec<Msg> {
    let sub = Subscriber::start(port, &format!("{prefix}/#"), None);
    sub.wait_for(Duration::from_secs(3), "retained messages", |seen| {
        topics
            .iter()
            .all(|t| seen.iter().any(|m| m.topic == format!("{prefix}/{t}")))
    })
}

fn payload_of(msgs: &[Msg], topic: &str) -> Option<String> {
    msgs.iter()
        .rev()
        .find(|m| m.topic == topic)
        .map(|m| m.payload.clone())
}

/// A config file in `dir` with `text`.
fn config(dir: &Path, text: &str) -> String {
    let p = dir.join("c.toml");
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

/// The replay once, as fast as it goes, with the serial protocol on stdout.
fn replay_command(cfg: &str, extra: &[&str]) -> Command {
    let mut args = vec![
        "--config",
        cfg,
        "--source",
        "images:tests/data/replay",
        "--once",
        "--fps",
        "0",
        "--leds",
        "none",
        "--serial",
        "-",
    ];
    args.extend_from_slice(extra);
    daemon(&args)
}

/// [`replay_command`], run to its end.
fn replay_once(cfg: &str, extra: &[&str]) -> Output {
    replay_command(cfg, extra).output().unwrap()
}

#[test]
fn the_replay_arrives_in_order_with_the_serial_json_payloads() {
    let Some(exe) = common::mosquitto("the_replay_arrives_in_order_with_the_serial_json_payloads")
    else {
        return;
    };
    let broker = Broker::start(exe);
    let prefix = "emotiond/t1";
    let sub = Subscriber::start(broker.port, &format!("{prefix}/#"), None);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        "[serial]\nformat = \"json\"\nstatus_interval = 0\n[mqtt]\nclient_id = \"t1\"\ndiscovery = true\n",
    );
    let out = replay_once(&cfg, &["--mqtt", &broker.url()]);
    let log = stderr(&out);
    assert!(out.status.success(), "{log}");
    let serial: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(serial.len(), 7, "{serial:#?}");

    let event_topic = format!("{prefix}/event");
    let seen = sub.wait_for(Duration::from_secs(3), "the stop event", |seen| {
        seen.iter()
            .any(|m| m.topic == event_topic && m.payload.contains("\"type\":\"stop\""))
    });
    let events: Vec<String> = seen
        .iter()
        .filter(|m| m.topic == event_topic)
        .map(|m| m.payload.clone())
        .collect();
    assert_eq!(events, serial, "MQTT events against the serial JSON lines");
    assert!(seen
        .iter()
        .filter(|m| m.topic == event_topic)
        .all(|m| !m.retain));
    for e in &events {
        let v: Value = serde_json::from_str(e).unwrap();
        assert_eq!(v["v"], 1);
    }

    // online first (before any event), offline last; the state follows the driving face and ends
    // as none.
    let status: Vec<&str> = seen
        .iter()
        .filter(|m| m.topic == format!("{prefix}/status"))
        .map(|m| m.payload.as_str())
        .collect();
    assert_eq!(status.first(), Some(&"online"), "{seen:#?}");
    assert_eq!(status.last(), Some(&"offline"), "{seen:#?}");
    assert_eq!(seen[0].topic, format!("{prefix}/status"));
    let states: Vec<Value> = seen
        .iter()
        .filter(|m| m.topic == format!("{prefix}/state"))
        .map(|m| serde_json::from_str(&m.payload).unwrap())
        .collect();
    assert!(
        states.iter().any(|s| s["emotion"] == "happy"),
        "{states:#?}"
    );
    assert_eq!(
        states.last().unwrap()["emotion"],
        Value::Null,
        "{seen:#?}\n{log}"
    );
    let ha = "homeassistant/sensor/t1/emotion/config";
    let discovery = Subscriber::start(broker.port, ha, None).wait_for(
        Duration::from_secs(3),
        "the retained discovery config",
        |seen| !seen.is_empty(),
    );
    let config: Value = serde_json::from_str(&discovery[0].payload).unwrap();
    assert_eq!(config["state_topic"], format!("{prefix}/state"));
    assert!(discovery[0].retain);

    // What a newcomer finds afterwards.
    let after = retained(broker.port, prefix, &["status", "state"]);
    assert_eq!(
        payload_of(&after, &format!("{prefix}/status")).unwrap(),
        "offline"
    );
    assert_eq!(
        payload_of(&after, &format!("{prefix}/state")).unwrap(),
        r#"{"emotion":null,"conf":null}"#
    );
    assert!(after.iter().all(|m| m.retain && m.topic != event_topic));
    assert!(
        log.contains(&format!("mqtt {}: connected as t1", broker.url())),
        "{log}"
    );
}

#[test]
fn a_broker_restart_is_reconnected_and_the_drops_reported() {
    let Some(exe) = common::mosquitto("a_broker_restart_is_reconnected_and_the_drops_reported")
    else {
        return;
    };
    let mut broker = Broker::start(exe);
    let prefix = "emotiond/t2";
    let sub = Subscriber::start(broker.port, &format!("{prefix}/#"), None);
    let dir = tempfile::tempdir().unwrap();
    // Status lines every 0.1 s give events while the broker is down; a queue of 2 drops most.
    let cfg = config(
        dir.path(),
        &format!(
            "[serial]\nstatus_interval = 0.1\n[mqtt]\nurl = \"{}\"\nclient_id = \"t2\"\nqueue = 2\n",
            broker.url()
        ),
    );
    let mut child = daemon(&[
        "--config",
        &cfg,
        "--source",
        "images:tests/data/replay",
        "--fps",
        "10",
        "--leds",
        "none",
        "--serial",
        "-",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let stdout = child.stdout.take().unwrap();
    let lines = std::thread::spawn(move || BufReader::new(stdout).lines().count());

    let event_topic = format!("{prefix}/event");
    sub.wait_for(Duration::from_secs(5), "a status event", |seen| {
        seen.iter()
            .any(|m| m.topic == event_topic && m.payload.contains("\"type\":\"status\""))
    });
    broker.kill();
    // Long enough for more status lines than the queue holds, also under emulation, where the
    // daemon's loop runs several times slower.
    std::thread::sleep(scaled(Duration::from_secs(2)));
    let before = sub.seen().len();
    broker.run();
    sub.wait_subscribed();
    let seen = sub.wait_for(Duration::from_secs(8), "the reconnected event", |seen| {
        seen.iter()
            .any(|m| m.topic == event_topic && m.payload.contains("\"type\":\"mqtt\""))
    });
    let after = &seen[before..];
    let reconnected: Value = serde_json::from_str(
        &after
            .iter()
            .find(|m| m.payload.contains("\"type\":\"mqtt\""))
            .unwrap()
            .payload,
    )
    .unwrap();
    assert_eq!(reconnected["v"], 1);
    assert_eq!(reconnected["state"], "reconnected");
    let dropped = reconnected["dropped"].as_u64().expect("a dropped count");
    assert!(dropped > 0, "{reconnected}");
    assert_eq!(
        payload_of(after, &format!("{prefix}/status")).as_deref(),
        Some("online"),
        "{after:#?}"
    );
    // Events flow again after the report.
    sub.wait_for(Duration::from_secs(3), "status events after it", |seen| {
        seen.iter()
            .skip_while(|m| !m.payload.contains("\"type\":\"mqtt\""))
            .any(|m| m.payload.contains("\"type\":\"status\""))
    });

    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let out = child.wait_with_output().unwrap();
    let log = stderr(&out);
    assert!(out.status.success(), "{log}");
    assert!(lines.join().unwrap() > 7);
    assert!(
        log.contains(&format!("mqtt {}: connection lost", broker.url())),
        "{log}"
    );
    assert!(log.contains("reconnected"), "{log}");
    let after = retained(broker.port, prefix, &["status"]);
    assert_eq!(
        payload_of(&after, &format!("{prefix}/status")).unwrap(),
        "offline"
    );
}

/// What the replay gives on the serial line in text form, without status lines.
fn text_replay_ok(out: &Output) {
    let log = stderr(out);
    assert!(out.status.success(), "{log}");
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 7, "{text}");
    assert!(lines[0].starts_with("emotiond/1 start "), "{text}");
    assert!(
        lines[6].starts_with("emotiond/1 stop reason=end frames=28 "),
        "{text}"
    );
}

#[test]
fn wrong_credentials_are_a_clear_warning_and_the_daemon_runs_on() {
    let Some(exe) =
        common::mosquitto("wrong_credentials_are_a_clear_warning_and_the_daemon_runs_on")
    else {
        return;
    };
    let broker = Broker::with_conf(exe, |dir| {
        let passwd = dir.join("passwd");
        let made = Command::new("mosquitto_passwd")
            .args(["-b", "-c"])
            .arg(&passwd)
            .args(["kiosk", "right"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(
            made,
            "mosquitto_passwd (package mosquitto-clients or mosquitto) failed"
        );
        format!(
            "allow_anonymous false\npassword_file {}\n",
            passwd.display()
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let wrong = dir.path().join("wrong.pass");
    std::fs::write(&wrong, "wrong\n").unwrap();
    let right = dir.path().join("right.pass");
    std::fs::write(&right, "right\n").unwrap();
    let mqtt = |pass: &Path| {
        format!(
            "[serial]\nstatus_interval = 0\n[mqtt]\nurl = \"{}\"\nclient_id = \"t3\"\nusername = \"kiosk\"\npassword_file = \"{}\"\n",
            broker.url(),
            pass.display()
        )
    };

    let cfg = config(dir.path(), &mqtt(&wrong));
    let out = replay_once(&cfg, &[]);
    text_replay_ok(&out);
    let log = stderr(&out);
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") && l.contains(&format!("mqtt {}:", broker.url())))
        .collect();
    assert_eq!(warnings.len(), 1, "one warning per outage: {log}");
    assert!(
        warnings[0].contains("connection refused by the broker:")
            && warnings[0].contains("mqtt.password_file"),
        "{log}"
    );

    // The right password gets through.
    let sub = Subscriber::start(broker.port, "emotiond/t3/#", Some(("kiosk", "right")));
    let cfg = config(dir.path(), &mqtt(&right));
    let out = replay_once(&cfg, &[]);
    text_replay_ok(&out);
    sub.wait_for(Duration::from_secs(3), "the stop event", |seen| {
        seen.iter().any(|m| m.payload.contains("\"type\":\"stop\""))
    });
}

#[test]
fn an_unreachable_broker_is_a_clear_warning_and_stop_is_prompt() {
    let Some(_) = common::mosquitto("an_unreachable_broker_is_a_clear_warning_and_stop_is_prompt")
    else {
        return;
    };
    let port = free_port(); // closed again: nothing listens
    let url = format!("mqtt://127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "[serial]\nstatus_interval = 0\n");
    let mut child = replay_command(&cfg, &["--mqtt", &url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut text = String::new();
    loop {
        let mut l = String::new();
        if stdout.read_line(&mut l).unwrap() == 0 {
            break;
        }
        let stop = l.starts_with("emotiond/1 stop ");
        text.push_str(&l);
        if stop {
            break;
        }
    }
    let t = Instant::now();
    let out = child.wait_with_output().unwrap();
    let took = t.elapsed();
    let out = Output {
        stdout: text.into_bytes(),
        ..out
    };
    text_replay_ok(&out);
    assert!(
        took < scaled(Duration::from_millis(1500)),
        "exit {took:?} after the stop line"
    );
    let log = stderr(&out);
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") && l.contains(&format!("mqtt {url}:")))
        .collect();
    assert_eq!(warnings.len(), 1, "one warning per outage: {log}");
    assert!(warnings[0].contains("cannot reach it"), "{log}");
}
