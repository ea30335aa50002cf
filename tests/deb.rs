//! The Debian package, checked before anything is packaged: Cargo.toml's `[package.metadata.deb]` lists
//! the binary, every model the defaults need, the configuration as a conffile, the docs, the systemd
//! unit and the postinst; the unit keeps the promises README and board/README.md make.

use std::path::Path;

use emotiond::classify::DEFAULT_MODEL;
use emotiond::config::DEFAULT_PATH;
use emotiond::pipeline::daemon::BACKOFF_MAX;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn deb_metadata() -> toml::Table {
    let text = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let manifest: toml::Table = toml::from_str(&text).unwrap();
    manifest["package"]["metadata"]["deb"]
        .as_table()
        .expect("[package.metadata.deb]")
        .clone()
}

/// (source, destination, mode) for each asset.
fn assets() -> Vec<(String, String, String)> {
    deb_metadata()["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let a = a.as_array().unwrap();
            let s = |i: usize| a[i].as_str().unwrap().to_string();
            (s(0), s(1), s(2))
        })
        .collect()
}

/// Where an asset lands: a destination ending in `/` keeps the source's file name.
fn installed_path(src: &str, dst: &str) -> String {
    if dst.ends_with('/') {
        format!(
            "/{dst}{}",
            Path::new(src).file_name().unwrap().to_str().unwrap()
        )
    } else {
        format!("/{dst}")
    }
}

#[test]
fn the_package_holds_the_binary_models_config_and_docs() {
    let assets = assets();
    let installed: Vec<(String, &str)> = assets
        .iter()
        .map(|(s, d, m)| (installed_path(s, d), m.as_str()))
        .collect();
    let has = |path: &str, mode: &str| {
        assert!(
            installed.iter().any(|(p, m)| p == path && *m == mode),
            "the package lacks {path} (mode {mode}): {installed:?}"
        )
    };
    has("/usr/bin/emotiond", "755");
    has(DEFAULT_PATH, "644");
    has("/usr/share/doc/emotiond/README.md", "644");
    has("/usr/share/doc/emotiond/board.md", "644");
    has("/usr/share/doc/emotiond/kiosk.md", "644");
    has("/usr/share/emotiond/emotiond-network.conf", "644");
    has("/usr/share/emotiond/emotiond-kiosk.conf", "644");
    // Every model file in models/ ships, the defaults among them, where find_model looks.
    let models: Vec<String> = std::fs::read_dir(root().join("models"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    for name in ["haarcascade_frontalface_default.xml", DEFAULT_MODEL] {
        assert!(models.iter().any(|m| m == name), "models/ lacks {name}");
    }
    for m in &models {
        has(&format!("/usr/share/emotiond/models/{m}"), "644");
    }
    // Every source but the binary (built by cargo deb) is in the repository.
    for (src, _, _) in &assets {
        if src != "target/release/emotiond" {
            assert!(root().join(src).is_file(), "asset {src} is missing");
        }
    }
    // The configuration is the documented board config, and /etc files are conffiles in cargo-deb.
    assert_eq!(DEFAULT_PATH, "/etc/emotiond/config.toml");
    assert!(assets.iter().any(|(s, _, _)| s == "board/config.toml"));
}

fn unit() -> Vec<(String, String)> {
    settings("board/emotiond.service")
}

/// The `key=value` lines of a unit file or a drop-in.
fn settings(file: &str) -> Vec<(String, String)> {
    std::fs::read_to_string(root().join(file))
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('['))
        .map(|l| {
            let (k, v) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("not key=value: {l}"));
            (k.to_string(), v.to_string())
        })
        .collect()
}

#[test]
fn the_unit_is_hardened_and_matches_the_daemon() {
    let deb = deb_metadata();
    let units = deb["systemd-units"].as_table().unwrap();
    assert_eq!(units["unit-name"].as_str(), Some("emotiond"));
    let dir = units["unit-scripts"].as_str().unwrap();
    assert!(root().join(dir).join("emotiond.service").is_file());
    // Installing does not start it: the user edits the config, then enables it.
    assert_eq!(units["enable"].as_bool(), Some(false));

    let unit = unit();
    let get = |key: &str| -> Vec<&str> {
        unit.iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    let one = |key: &str| -> &str {
        match get(key)[..] {
            [v] => v,
            ref vs => panic!("{key}: {vs:?}"),
        }
    };
    assert_eq!(
        one("ExecStart"),
        format!("/usr/bin/emotiond run --config {DEFAULT_PATH}")
    );
    assert_eq!(one("Type"), "notify");
    assert_eq!(one("Restart"), "on-failure");
    assert_eq!(one("User"), "emotiond");
    let watchdog: u64 = one("WatchdogSec").parse().unwrap();
    assert!(
        watchdog > 2 * BACKOFF_MAX.as_secs(),
        "WatchdogSec={watchdog} must outlast a camera retry ({BACKOFF_MAX:?}) with room to spare"
    );
    for (k, v) in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("CapabilityBoundingSet", ""),
        ("DevicePolicy", "closed"),
    ] {
        assert_eq!(one(k), v, "{k}");
    }
    assert!(
        get("PrivateDevices").is_empty(),
        "PrivateDevices hides the camera and GPIO"
    );
    let groups = one("SupplementaryGroups");
    for g in ["video", "gpio", "dialout"] {
        assert!(
            groups.split_whitespace().any(|x| x == g),
            "{g} not in {groups}"
        );
    }
    let allow = get("DeviceAllow").join(" | ");
    for d in [
        "char-video4linux",
        "/dev/gpiomem",
        "/dev/gpiomem0",
        "char-gpiochip",
        "char-ttyAMA",
        "char-ttyS",
        "char-ttyUSB",
    ] {
        assert!(
            allow.contains(&format!("{d} rw")),
            "DeviceAllow lacks {d}: {allow}"
        );
    }
}

#[test]
fn the_postinst_creates_the_user_in_its_groups() {
    let deb = deb_metadata();
    let dir = root().join(deb["maintainer-scripts"].as_str().unwrap());
    let path = dir.join("postinst");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("adduser --system --group"), "{text}");
    assert!(text.contains("for group in video gpio dialout"), "{text}");
    assert!(
        text.contains("#DEBHELPER#"),
        "cargo-deb's systemd snippets go at #DEBHELPER#"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_ne!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o111,
        0,
        "postinst is not executable"
    );
    let syntax = std::process::Command::new("sh")
        .arg("-n")
        .arg(&path)
        .status()
        .unwrap();
    assert!(syntax.success(), "postinst has a shell syntax error");
}

#[test]
fn the_armhf_variant_is_the_same_package_with_plain_dependencies() {
    let deb = deb_metadata();
    let armhf = deb["variants"]["armhf"]
        .as_table()
        .expect("[package.metadata.deb.variants.armhf]");
    // cargo-deb names a variant's package <name>-<variant> unless told otherwise.
    assert_eq!(armhf["name"].as_str(), Some(env!("CARGO_PKG_NAME")));
    let depends = armhf["depends"].as_str().unwrap();
    // An architecture-qualified dependency ("libc6:armhf") is what $auto gives without an armhf
    // dpkg architecture, and is not what an armhf package may depend on.
    assert!(!depends.contains(':'), "{depends}");
    for needed in ["adduser", "libc6 (>= 2.34)", "libgcc-s1"] {
        assert!(depends.split(", ").any(|d| d == needed), "{depends}");
    }
    // Everything else comes from the main table: the variant must not drop the assets or the unit.
    for key in ["assets", "systemd-units", "maintainer-scripts"] {
        assert!(!armhf.contains_key(key), "the variant overrides {key}");
    }
}

#[test]
fn the_kiosk_drop_in_opens_loopback_and_nothing_else() {
    let unit = unit();
    let kiosk = settings("board/emotiond-kiosk.conf");
    let value = |set: &[(String, String)], key: &str| -> Vec<String> {
        set.iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    };
    assert_eq!(
        value(&unit, "PrivateNetwork"),
        ["yes"],
        "the unit alone has no network"
    );
    assert_eq!(value(&unit, "IPAddressDeny"), ["any"]);
    assert_eq!(value(&kiosk, "PrivateNetwork"), ["no"]);
    assert_eq!(
        value(&kiosk, "IPAddressAllow"),
        ["localhost"],
        "loopback only"
    );
    assert!(
        value(&kiosk, "IPAddressDeny").is_empty(),
        "the unit's deny-all stays"
    );
    let families = value(&kiosk, "RestrictAddressFamilies");
    let families: Vec<&str> = families[0].split_whitespace().collect();
    for f in ["AF_UNIX", "AF_NETLINK", "AF_INET", "AF_INET6"] {
        assert!(families.contains(&f), "{f}: {families:?}");
    }
    assert_eq!(families.len(), 4, "{families:?}");
}
