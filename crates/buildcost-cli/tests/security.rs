//! Access to the endpoints: loopback by default, optional basic auth with bcrypt hashes and
//! optional HTTPS; an unauthenticated request gets 401; bad settings name their key.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use common::*;
use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::ssl::{SslConnector, SslMethod};
use openssl::x509::extension::SubjectAlternativeName;
use openssl::x509::{X509NameBuilder, X509};

/// A self-signed certificate for localhost / 127.0.0.1, written as PEM files.
fn certificate(dir: &Path) -> (PathBuf, PathBuf, X509) {
    let key = PKey::ec_gen("prime256v1").unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "localhost").unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_serial_number(&BigNum::from_u32(1).unwrap().to_asn1_integer().unwrap())
        .unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(2).unwrap())
        .unwrap();
    let san = SubjectAlternativeName::new()
        .dns("localhost")
        .ip("127.0.0.1")
        .build(&b.x509v3_context(None, None))
        .unwrap();
    b.append_extension(san).unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    let cert = b.build();
    let (cert_path, key_path) = (dir.join("tls.crt"), dir.join("tls.key"));
    std::fs::write(&cert_path, cert.to_pem().unwrap()).unwrap();
    std::fs::write(&key_path, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    (cert_path, key_path, cert)
}

/// `buildcost hash-password --cost 4` (the lowest cost keeps a debug build quick).
fn hash(password: &str) -> String {
    let out = run_with_stdin(
        buildcost().args(["hash-password", "--cost", "4"]),
        format!("{password}\n").as_bytes(),
    );
    assert!(out.status.success(), "{out:?}");
    let hash = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(hash.starts_with("$2") && hash.len() == 60, "{hash}");
    assert!(!hash.contains(password));
    hash
}

fn basic(user: &str, password: &str) -> (&'static str, String) {
    use openssl::base64::encode_block;
    (
        "Authorization",
        format!(
            "Basic {}",
            encode_block(format!("{user}:{password}").as_bytes())
        ),
    )
}

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
            "[http]\nbasic_auth_users = {{ prometheus = \"{}\" }}\n",
            hash("s3cret pass")
        ),
    );
    let served = serve(&config);
    for path in ["/metrics", "/healthz", "/readyz", "/"] {
        let (status, body) = served.get(path);
        assert_eq!(status, 401, "{path}: {body}");
    }
    let (status, _) = http_request(
        &served.addr,
        "GET",
        "/metrics",
        &[basic("prometheus", "wrong")],
        b"",
    );
    assert_eq!(status, 401);
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
