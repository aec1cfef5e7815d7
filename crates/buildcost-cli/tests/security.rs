//! Access to the endpoints: loopback by default, optional basic auth with bcrypt hashes and
//! optional HTTPS; an unauthenticated request gets 401; bad settings name their key.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use std::io::{Read, Write};
use std::path::Path;

use common::*;
use openssl::ssl::{SslConnector, SslMethod};
use openssl::x509::X509;

/// A GET over HTTPS that trusts only `ca`: the status code and the whole answer.
fn https_get(addr: &str, path: &str, ca: &X509, headers: &[(&str, String)]) -> (u16, String) {
    let mut builder = SslConnector::builder(SslMethod::tls()).unwrap();
    builder.cert_store_mut().add_cert(ca.clone()).unwrap();
    let connector = builder.build();
    let tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    let mut tls = connector.connect("localhost", tcp).unwrap();
    let mut head = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    tls.write_all(head.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = tls.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, answer)
}

fn serve(config: &Path) -> Served {
    Served::start(buildcost().args([
        "--config",
        config.to_str().unwrap(),
        "serve",
        "--listen",
        "127.0.0.1:0",
    ]))
}

#[test]
fn with_basic_auth_an_unauthenticated_request_gets_401_and_a_known_user_gets_in() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "[http]\nbasic_auth_users = {{ prometheus = \"{}\", portal = \"{}\" }}\n",
            hash("s3cret pass"),
            hash("portal pass")
        ),
    );
    let served = serve(&config);
    for path in ["/metrics", "/"] {
        let (status, body) = served.get(path);
        assert_eq!(status, 401, "{path}: {body}");
    }
    // Kubernetes probes send no credentials: the health endpoints stay open, and say nothing
    // about the figures.
    for path in ["/healthz", "/readyz"] {
        let (status, body) = served.get(path);
        assert!(status == 200 || status == 503, "{path}: {status} {body}");
        assert!(!body.contains("buildcost_"), "{path}: {body}");
    }
    let (status, _) = http_request(
        &served.addr,
        "GET",
        "/metrics",
        &[basic("nobody", "s3cret pass")],
        b"",
    );
    assert_eq!(status, 401);
    let (status, body) = http_request(
        &served.addr,
        "GET",
        "/metrics",
        &[basic("prometheus", "s3cret pass")],
        b"",
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("buildcost_build_info"), "{body}");
    // Wrong passwords: the first ones get 401 (one was spent on `nobody` above), then the
    // address waits, without a bcrypt check — unless it presents credentials verified before,
    // so an attacker behind Prometheus' address cannot lock Prometheus out.
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let (status, _) = http_request(
            &served.addr,
            "GET",
            "/metrics",
            &[basic("prometheus", "wrong")],
            b"",
        );
        statuses.push(status);
    }
    assert_eq!(statuses[..9], [401; 9], "{statuses:?}");
    assert_eq!(statuses[9..], [429; 3], "{statuses:?}");
    let (status, answer) = http_request(
        &served.addr,
        "GET",
        "/metrics",
        &[basic("portal", "portal pass")],
        b"",
    );
    assert_eq!(status, 429, "not verified before: {answer}");
    assert!(answer.contains("too many failed attempts"), "{answer}");
    let (status, _) = http_request(
        &served.addr,
        "GET",
        "/metrics",
        &[basic("prometheus", "s3cret pass")],
        b"",
    );
    assert_eq!(status, 200, "verified before");
    // Requests without credentials are not counted and the probes still answer.
    let (status, _) = served.get("/healthz");
    assert_eq!(status, 200);
    let log = served.log_text();
    assert!(
        log.contains("without TLS"),
        "a warning says passwords go in the clear: {log}"
    );
    assert!(!log.contains("s3cret"), "{log}");
}

#[test]
fn over_https_with_basic_auth_only_the_right_credentials_get_the_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, ca) = certificate(dir.path());
    let config = write_config(
        dir.path(),
        &format!(
            "[http]\ntls_cert_file = \"{}\"\ntls_key_file = \"{}\"\nbasic_auth_users = {{ prometheus = \"{}\" }}\n",
            cert.display(),
            key.display(),
            hash("s3cret")
        ),
    );
    let served = serve(&config);
    assert!(
        served.log_text().contains("serving https://"),
        "{}",
        served.log_text()
    );
    let (status, answer) = https_get(&served.addr, "/metrics", &ca, &[]);
    assert_eq!(status, 401, "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("www-authenticate: basic"),
        "{answer}"
    );
    let (status, answer) = https_get(
        &served.addr,
        "/metrics",
        &ca,
        &[basic("prometheus", "s3cret")],
    );
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains("buildcost_build_info"));
    // Plain HTTP to the HTTPS port gets no HTTP answer.
    let (status, _) = http_get(&served.addr, "/metrics");
    assert_ne!(status, 200);
}

#[test]
fn bad_security_settings_are_refused_at_start_and_name_their_key() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, _, _) = certificate(dir.path());
    for (extra, key) in [
        (
            "[http]\nbasic_auth_users = { prometheus = \"plain-password\" }\n".to_owned(),
            "http.basic_auth_users.prometheus",
        ),
        (
            format!("[http]\ntls_cert_file = \"{}\"\n", cert.display()),
            "http.tls_key_file",
        ),
        (
            format!(
                "[http]\ntls_cert_file = \"{}\"\ntls_key_file = \"{}\"\n",
                cert.display(),
                dir.path().join("missing.key").display()
            ),
            "missing.key",
        ),
    ] {
        let config = write_config(dir.path(), &extra);
        let out = buildcost()
            .args([
                "--config",
                config.to_str().unwrap(),
                "serve",
                "--listen",
                "127.0.0.1:0",
            ])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra}: {stderr}");
        assert!(stderr.contains(key), "{extra}: {stderr}");
        assert!(
            !stderr.contains("plain-password"),
            "the value is not echoed: {stderr}"
        );
    }
}

/// What `tests/support/slowloris.py` saw of one wave.
#[derive(serde::Deserialize, Debug)]
struct Wave {
    opened: u64,
    still_open: u64,
    max_seconds_open: Option<f64>,
    p50_seconds_open: Option<f64>,
    healthz: String,
    max_open: u64,
    rss_kb_base: u64,
    rss_kb_peak: u64,
    rss_kb_end: u64,
}

#[test]
fn connections_that_send_half_a_header_are_closed_within_30_s_and_memory_stays_bounded() {
    let Some(python) = external_tool("BUILDCOST_PYTHON", "python3", &["--version"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bearer.token"), "ci-token\n").unwrap();
    // The receiver's producer needs no broker to accept connections; nothing is sent.
    let config = write_config(
        dir.path(),
        "[kafka]\nbrokers = \"127.0.0.1:9\"\n\n[webhook]\ntoken_file = \"bearer.token\"\n",
    );
    let hook = Served::start(buildcost().arg("--config").arg(&config).args([
        "webhook",
        "--listen",
        "127.0.0.1:0",
    ]));
    let wave = |connections: u64| -> Wave {
        let out = std::process::Command::new(&python)
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/slowloris.py"))
            .args(["--addr", &hook.addr, "--pid", &hook.child.id().to_string()])
            .args([
                "--connections",
                &connections.to_string(),
                "--deadline",
                "30",
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        serde_json::from_slice(&out.stdout).unwrap()
    };
    // The attack, then three smaller waves that open fast enough to be held all at once, so
    // that what the allocator keeps between them does not vary with how many were.
    let waves = [wave(5000), wave(1000), wave(1000), wave(1000)];
    eprintln!("slowloris waves: {waves:?}");
    for (w, connections) in waves.iter().zip([5000, 1000, 1000, 1000]) {
        assert_eq!(w.opened, connections, "{w:?}");
        assert_eq!(w.still_open, 0, "every connection is closed: {w:?}");
        // Each connection from its own opening: opening 5,000 takes a while on a busy machine.
        let seconds = w.max_seconds_open.unwrap();
        assert!(
            seconds <= 30.0,
            "each closed within 30 s (http.header_timeout 10 s): {w:?}"
        );
        // Most at the header timeout itself.
        assert!(w.p50_seconds_open.unwrap() <= 15.0, "{w:?}");
        assert!(
            w.healthz.starts_with("HTTP/1.1 200"),
            "/healthz answers while they are held: {w:?}"
        );
        // At most 64 KiB per connection held at once (the bound on a request head).
        let per_connection_kb = w.rss_kb_peak.saturating_sub(w.rss_kb_base) / w.max_open.max(1);
        assert!(
            per_connection_kb <= 64,
            "{per_connection_kb} KiB each: {w:?}"
        );
    }
    // A closed connection leaves nothing behind: from the end of the first small wave to the
    // end of the third, what the process holds grows by less than 2 KiB per connection of the
    // two later waves (a connection's buffers alone are 16 KiB).
    let (first, third) = (&waves[1], &waves[3]);
    let later = waves[2].opened + third.opened;
    assert!(
        third.rss_kb_end <= first.rss_kb_end + 2 * later,
        "{} KiB more held after {later} more connections: {waves:?}",
        third.rss_kb_end.saturating_sub(first.rss_kb_end)
    );
    let log = hook.log_text();
    assert!(!log.contains("panicked"), "{log}");
}
