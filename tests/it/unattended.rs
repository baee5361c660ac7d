//! Unattended runs, through the binary against the fake on loopback: the
//! metrics file (parsed, and checked by `promtool` where it is installed),
//! the pings a loopback HTTP server receives, the `--events` stream read
//! back, and `history` after a run that added, changed, removed and pruned.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};

use vault_mirror::fake::{FakeOptions, Vault};
use vault_mirror::lock::ArchiveLock;

use crate::common::{against, json_with_code, missing, require, stored_variants, vault_mirror};
use crate::sandbox::{Sandbox, with_faults};

/// One request a [`PingServer`] received.
#[derive(Debug, Clone)]
struct Ping {
    method: String,
    /// Path and query, as sent.
    target: String,
    body: String,
}

impl Ping {
    fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    fn rid(&self) -> Option<String> {
        let query = self.target.split_once('?')?.1;
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix("rid="))
            .map(str::to_owned)
    }
}

/// A loopback HTTP server that records every request and answers 200, or
/// (`hang`) reads the request and never answers.
struct PingServer {
    url: String,
    received: Arc<Mutex<Vec<Ping>>>,
}

impl PingServer {
    fn start(hang: bool) -> PingServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/ping/check-uuid", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let store = received.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let Some(ping) = read_request(&mut stream) else {
                    continue;
                };
                store.lock().unwrap().push(ping);
                if hang {
                    // Keep the connection open, silent.
                    held.push(stream);
                } else {
                    let _ = stream.write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nOK",
                    );
                }
            }
        });
        PingServer { url, received }
    }

    fn pings(&self) -> Vec<Ping> {
        self.received.lock().unwrap().clone()
    }
}

fn read_request(stream: &mut std::net::TcpStream) -> Option<Ping> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let target = parts.next()?.to_owned();
    let mut length = 0;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Ping {
        method,
        target,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// The samples of a Prometheus text file, by `name{labels}`.
fn samples(path: &Path) -> BTreeMap<String, f64> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let (name, value) = line.rsplit_once(' ').unwrap();
            (name.to_owned(), value.parse::<f64>().unwrap())
        })
        .collect()
}

fn sample(samples: &BTreeMap<String, f64>, name: &str) -> f64 {
    let key = format!("{name}{{connection=\"conn_demo\"}}");
    *samples
        .get(&key)
        .unwrap_or_else(|| panic!("no {key} in {samples:?}"))
}

/// `promtool` on `args` with `input` on stdin, or why it cannot run here
/// (for [`require!`] or [`missing`]: a skip, or under `CI=true` a failure).
fn promtool(args: &[&str], input: Option<&Path>) -> Result<std::process::Output, String> {
    let mut command = std::process::Command::new("promtool");
    command.args(args);
    if let Some(input) = input {
        command.stdin(std::fs::File::open(input).unwrap());
    }
    match command.output() {
        Ok(output) => Ok(output),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Err(
            "promtool is not installed (Debian package `prometheus`); the metrics file and \
             the alert rule were not checked by it"
                .to_owned(),
        ),
        Err(error) => panic!("cannot run promtool: {error}"),
    }
}

/// promtool accepts the metrics file; where promtool is missing, only
/// this check is skipped (under `CI=true` it fails).
fn promtool_accepts(metrics: &Path) {
    match promtool(&["check", "metrics"], Some(metrics)) {
        Err(why) => missing(&why),
        Ok(output) => assert!(
            output.status.success(),
            "promtool check metrics: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}

fn run(command: &mut std::process::Command) -> (Option<i32>, String, String) {
    let output = command.output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `history [RUN] --json` of the archive at `out` (which must succeed).
fn history_json(out: &Path, run_id: Option<&str>) -> serde_json::Value {
    let mut command = vault_mirror();
    command
        .arg("history")
        .args(run_id)
        .arg("--json")
        .arg("--out")
        .arg(out);
    json_with_code(&mut command, 0)
}

/// The pings of one run: a start, then one end, with one rid; the body
/// small and free of the key and the ping URL.
fn one_run(pings: &[Ping], end_path: &str, secrets: &[&str]) -> String {
    assert_eq!(pings.len(), 2, "{pings:?}");
    assert_eq!(pings[0].path(), "/ping/check-uuid/start", "{pings:?}");
    assert_eq!(pings[1].path(), end_path, "{pings:?}");
    let rid = pings[0].rid().expect("a rid");
    assert_eq!(pings[1].rid().as_deref(), Some(rid.as_str()));
    assert_eq!(rid.len(), 36, "{rid}");
    for ping in pings {
        assert_eq!(ping.method, "POST");
        assert!(ping.body.len() <= 10_000, "{} bytes", ping.body.len());
        for secret in secrets {
            assert!(!ping.body.contains(secret), "{secret} in {}", ping.body);
        }
    }
    rid
}

#[test]
fn metrics_and_pings_after_a_success_a_refused_key_and_a_partial_run() {
    let vault = Vault::sample(8, 2);
    let sandbox = Sandbox::start_in_thread(&vault, FakeOptions::default());
    let pings = PingServer::start(false);
    let metrics = sandbox.out().join("metrics/vault_mirror.prom");
    std::fs::create_dir_all(metrics.parent().unwrap()).unwrap();
    let watched = |extra: &[&str]| {
        let mut command = against(
            sandbox.server(),
            &sandbox.out().join("archive"),
            &["mirror"],
        );
        command
            .env("VAULT_MIRROR_METRICS_FILE", &metrics)
            .env("VAULT_MIRROR_PING_URL", &pings.url)
            .args(extra);
        command
    };

    // 1. Success.
    let (code, _, stderr) = run(&mut watched(&[]));
    assert_eq!(code, Some(0), "{stderr}");
    let first = samples(&metrics);
    promtool_accepts(&metrics);
    let stored = stored_variants(&vault, &["full", "thumb"]) as f64;
    assert_eq!(sample(&first, "vault_mirror_run_exit_code"), 0.0);
    assert_eq!(sample(&first, "vault_mirror_downloaded_files"), stored);
    assert!(sample(&first, "vault_mirror_downloaded_bytes") > 0.0);
    assert_eq!(
        sample(&first, "vault_mirror_downloaded_bytes"),
        sample(&first, "vault_mirror_archive_bytes")
    );
    assert_eq!(
        first["vault_mirror_variants{connection=\"conn_demo\",state=\"verified\"}"],
        stored
    );
    let success = sample(&first, "vault_mirror_last_success_timestamp_seconds");
    let now = vault_mirror::now_ms() as f64 / 1000.0;
    assert!(
        success > now - 600.0 && success <= now,
        "{success} vs {now}"
    );
    assert!(sample(&first, "vault_mirror_last_run_timestamp_seconds") >= success);
    let run_one = one_run(
        &pings.pings(),
        "/ping/check-uuid",
        &[sandbox.server().api_key()],
    );
    assert!(
        pings.pings()[1].body.contains("mirrored 2 lists"),
        "{:?}",
        pings.pings()
    );

    // 2. The key is refused: exit 4; the last success stays.
    let (code, _, stderr) = run(watched(&[]).env("OFAUTH_API_KEY", "sk_refused_KEY"));
    assert_eq!(code, Some(4), "{stderr}");
    let second = samples(&metrics);
    promtool_accepts(&metrics);
    assert_eq!(sample(&second, "vault_mirror_run_exit_code"), 4.0);
    assert_eq!(sample(&second, "vault_mirror_downloaded_files"), 0.0);
    assert_eq!(
        sample(&second, "vault_mirror_last_success_timestamp_seconds"),
        success
    );
    let received = pings.pings();
    let run_two = one_run(
        &received[2..],
        "/ping/check-uuid/fail",
        &["sk_refused_KEY", "check-uuid"],
    );
    assert_ne!(run_one, run_two, "each run has its own rid");
    assert!(received[3].body.contains("error:"), "{:?}", received[3]);

    // 3. Partial: a variant is pending upstream (exit 3), pinged with its
    // exit code.
    sandbox.server().with_vault(|vault| {
        let mut media = vault.media.values().next().unwrap().clone();
        media.id = "4199999999".into();
        let full = media.variants.get_mut("full").unwrap();
        full.status = "pending".into();
        full.stored_at = None;
        vault.lists[0].members.push(media.id.clone());
        vault.media.insert(media.id.clone(), media);
    });
    let (code, _, stderr) = run(&mut watched(&["--ping-exit-code"]));
    assert_eq!(code, Some(3), "{stderr}");
    let third = samples(&metrics);
    promtool_accepts(&metrics);
    assert_eq!(sample(&third, "vault_mirror_run_exit_code"), 3.0);
    assert_eq!(
        sample(&third, "vault_mirror_last_success_timestamp_seconds"),
        success
    );
    assert!(third["vault_mirror_variants{connection=\"conn_demo\",state=\"pending\"}"] >= 1.0);
    let received = pings.pings();
    one_run(
        &received[4..],
        "/ping/check-uuid/3",
        &[sandbox.server().api_key()],
    );
    assert!(received[5].body.contains("pending"), "{:?}", received[5]);
    // Nothing but the file itself in its folder: no temporary left over.
    let names: Vec<_> = std::fs::read_dir(metrics.parent().unwrap())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(names, ["vault_mirror.prom"]);
}

#[test]
fn a_hanging_ping_server_and_an_unwritable_metrics_file_leave_the_outcome_alone() {
    let sandbox = Sandbox::start_in_thread(&Vault::sample(2, 1), FakeOptions::default());
    let pings = PingServer::start(true);
    // A metrics file that cannot be written (a folder is in its place) is
    // said, and changes nothing either.
    let metrics = sandbox.path("metrics/vault_mirror.prom");
    std::fs::create_dir_all(&metrics).unwrap();
    let (code, _, stderr) = run(
        against(sandbox.server(), &sandbox.out().join("a"), &["mirror"])
            .arg("--ping-url")
            .arg(&pings.url)
            .arg("--metrics-file")
            .arg(&metrics),
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("cannot write the metrics file"), "{stderr}");
    assert!(stderr.contains("vault_mirror.prom"), "{stderr}");
    assert!(stderr.contains("ping was not delivered"), "{stderr}");
    assert!(!stderr.contains("check-uuid"), "{stderr}");
    // Both pings were sent; neither was answered.
    let paths: Vec<String> = pings.pings().iter().map(|p| p.path().to_owned()).collect();
    assert_eq!(paths, ["/ping/check-uuid/start", "/ping/check-uuid"]);
}

#[test]
fn template_urls_are_filled_in_for_uptime_kuma_and_ntfy() {
    let sandbox = Sandbox::start_in_thread(&Vault::sample(2, 1), FakeOptions::default());
    let pings = PingServer::start(false);
    let base = pings.url.trim_end_matches("/ping/check-uuid").to_owned();
    // Uptime Kuma: status and msg in the query; no `{event}`, no start ping.
    let kuma = format!("{base}/api/push/TOKEN?status={{status}}&msg={{msg}}");
    let (code, _, stderr) = run(sandbox.command(&["mirror"]).arg("--ping-url").arg(&kuma));
    assert_eq!(code, Some(0), "{stderr}");
    let received = pings.pings();
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0].path(), "/api/push/TOKEN");
    let query = received[0].target.split_once('?').unwrap().1;
    assert!(
        query.starts_with("status=up&msg=mirrored+1+list+into+"),
        "{query}"
    );
    assert!(received[0].rid().is_some(), "{query}");
    // ntfy: the title says which end; `{event}` asks for the start too.
    let ntfy = format!("{base}/topic?title=vault-mirror+{{event}}+(exit+{{code}})");
    let (code, _, stderr) = run(sandbox
        .command(&["mirror"])
        .arg("--ping-url")
        .arg(&ntfy)
        .env("OFAUTH_API_KEY", "sk_refused"));
    assert_eq!(code, Some(4), "{stderr}");
    let received = pings.pings();
    let targets: Vec<&str> = received[1..]
        .iter()
        .map(|ping| ping.target.split("&rid=").next().unwrap())
        .collect();
    assert_eq!(
        targets,
        [
            "/topic?title=vault-mirror+start+(exit+)",
            "/topic?title=vault-mirror+fail+(exit+4)"
        ]
    );
    assert!(received[2].body.starts_with("error: "), "{:?}", received[2]);
}

#[test]
fn a_stopped_run_is_measured_pinged_and_recorded_and_a_killed_one_shows_interrupted() {
    use crate::cli::wait_for_verified;
    use crate::common::send_signal;
    use vault_mirror::fake::Faults;
    let vault = Vault::sample(40, 3);
    let throttled = with_faults(Faults {
        bandwidth_per_transfer: Some(64 * 1024),
        ..Faults::default()
    });
    let sandbox = Sandbox::start_in_thread(&vault, throttled);
    let pings = PingServer::start(false);
    let archive = sandbox.out().join("archive");
    let db = archive.join(".vault-mirror/state.sqlite");
    let metrics = sandbox.out().join("vault_mirror.prom");
    let events = sandbox.out().join("events.ndjson");
    let child = against(sandbox.server(), &archive, &["mirror", "--quiet"])
        .arg("--metrics-file")
        .arg(&metrics)
        .arg("--ping-url")
        .arg(&pings.url)
        .arg("--events")
        .arg(&events)
        .spawn()
        .unwrap();
    wait_for_verified(&db, 3);
    send_signal(&child, "INT");
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130));
    assert_eq!(
        sample(&samples(&metrics), "vault_mirror_run_exit_code"),
        130.0
    );
    one_run(
        &pings.pings(),
        "/ping/check-uuid/fail",
        &[sandbox.server().api_key()],
    );
    let text = std::fs::read_to_string(&events).unwrap();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    let tail: Vec<&str> = text.lines().rev().take(6).collect();
    assert_eq!(last["event"], "summary", "{tail:#?}");
    assert_eq!(last["summary"]["outcome"], "interrupted");

    // Killed outright: no end, so "interrupted" without an exit code.
    let mut child = against(sandbox.server(), &archive, &["mirror", "--quiet"])
        .spawn()
        .unwrap();
    let verified_before = last["summary"]["downloaded"].as_u64().unwrap() as usize;
    wait_for_verified(&db, verified_before + 2);
    child.kill().unwrap();
    child.wait().unwrap();
    let history = history_json(&archive, None);
    let runs = history["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{history}");
    assert_eq!(runs[0]["state"], "interrupted", "{history}");
    assert!(runs[0]["exit_code"].is_null(), "{history}");
    assert_eq!(runs[1]["state"], "interrupted", "{history}");
    assert_eq!(runs[1]["exit_code"], 130, "{history}");
    // What the stopped run verified is listed as added (a commit already
    // on its blocking thread when the signal came may land a moment after
    // the summary's count).
    let detail = history_json(&archive, Some("1"));
    let added = detail["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|change| change["kind"] == "added")
        .count();
    assert!(added >= verified_before && added > 0, "{detail}");
}

#[test]
fn a_run_refused_by_the_lock_is_recorded_measured_and_pinged() {
    let sandbox = Sandbox::start_in_thread(&Vault::sample(2, 1), FakeOptions::default());
    let pings = PingServer::start(false);
    let metrics = sandbox.out().join("vault_mirror.prom");
    let archive = sandbox.out().join("archive");
    let (code, _, stderr) = run(&mut against(sandbox.server(), &archive, &["mirror"]));
    assert_eq!(code, Some(0), "{stderr}");
    let _held = ArchiveLock::acquire(&archive, "mirror").unwrap();
    let (code, _, stderr) = run(against(sandbox.server(), &archive, &["mirror"])
        .arg("--metrics-file")
        .arg(&metrics)
        .arg("--ping-url")
        .arg(&pings.url));
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(
        sample(&samples(&metrics), "vault_mirror_run_exit_code"),
        1.0
    );
    one_run(
        &pings.pings(),
        "/ping/check-uuid/fail",
        &[sandbox.server().api_key()],
    );
    let history = history_json(&archive, None);
    let runs = history["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{history}");
    assert_eq!(runs[0]["state"], "refused");
    assert_eq!(runs[0]["exit_code"], 1);
    // `status` does not call the archive's last run failed.
    let output = vault_mirror()
        .args(["status", "--out"])
        .arg(&archive)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(
        said.contains("last run mirror #2: refused: another run held the archive (exit 1)"),
        "{said}"
    );
    assert!(!said.contains("failed ("), "{said}");
    assert!(
        runs[0]["error"]
            .as_str()
            .unwrap()
            .contains("another vault-mirror run"),
        "{history}"
    );
    assert_eq!(runs[1]["state"], "complete");
}

#[test]
fn a_run_without_a_key_creates_nothing_but_is_measured_and_pinged() {
    let pings = PingServer::start(false);
    let out = tempfile::tempdir().unwrap();
    let metrics = out.path().join("vault_mirror.prom");
    let archive = out.path().join("archive");
    let (code, _, stderr) = run(vault_mirror()
        .args(["mirror", "--connection", "conn_demo", "--out"])
        .arg(&archive)
        .arg("--metrics-file")
        .arg(&metrics)
        .arg("--ping-url")
        .arg(&pings.url));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(!archive.exists(), "the archive folder was created");
    let samples = samples(&metrics);
    assert_eq!(sample(&samples, "vault_mirror_run_exit_code"), 2.0);
    // No database to read: no last success is made up.
    assert!(
        !samples
            .keys()
            .any(|key| key.starts_with("vault_mirror_last_success")),
        "{samples:?}"
    );
    one_run(&pings.pings(), "/ping/check-uuid/fail", &[]);
    assert!(
        pings.pings()[1].body.contains("no API key"),
        "{:?}",
        pings.pings()
    );
}

#[test]
fn the_events_stream_reads_back_in_order() {
    let vault = Vault::sample(4, 1);
    let sandbox = Sandbox::start_in_thread(&vault, FakeOptions::default());
    let (code, stdout, stderr) = run(&mut sandbox.command(&["mirror", "--quiet", "--events", "-"]));
    assert_eq!(code, Some(0), "{stderr}");
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|event| event["event"].as_str().unwrap())
        .collect();
    for event in &events {
        assert_eq!(event["v"], 1, "{event}");
        assert_eq!(event["connection"], "conn_demo", "{event}");
        assert!(event["time"].as_str().unwrap().ends_with('Z'), "{event}");
    }
    assert_eq!(kinds.first(), Some(&"run_started"));
    assert_eq!(kinds.last(), Some(&"summary"));
    // Stages in pipeline order, each before the files.
    let stages: Vec<&str> = events
        .iter()
        .filter(|event| event["event"] == "stage")
        .map(|event| event["stage"].as_str().unwrap())
        .collect();
    let first_of = |stage: &str| stages.iter().position(|s| *s == stage).unwrap();
    assert!(first_of("lists") < first_of("sync"));
    assert!(first_of("sync") < first_of("membership"));
    assert!(first_of("membership") < first_of("resolve"));
    // Every file: started, then verified with its size and sha256.
    let stored = stored_variants(&vault, &["full", "thumb"]);
    let verified: Vec<&serde_json::Value> = events
        .iter()
        .filter(|event| event["event"] == "file_verified")
        .collect();
    assert_eq!(verified.len(), stored);
    for file in &verified {
        let transfer = &file["transfer"];
        let started = events
            .iter()
            .position(|event| event["event"] == "file_started" && event["transfer"] == *transfer)
            .unwrap();
        let done = events.iter().position(|event| event == *file).unwrap();
        assert!(started < done);
        let path = sandbox.out().join(file["path"].as_str().unwrap());
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(file["size"], bytes.len());
        use sha2::Digest;
        assert_eq!(
            file["sha256"],
            hex::encode(sha2::Sha256::digest(&bytes)).as_str()
        );
    }
    let summary = &events.last().unwrap()["summary"];
    assert_eq!(summary["exit_code"], 0);
    assert_eq!(summary["downloaded"], stored);

    // On stdout, events and the --json summary would mix: refused.
    let (code, stdout, stderr) = run(&mut sandbox.command(&["mirror", "--json", "--events", "-"]));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--events"), "{stderr}");
    assert!(!stdout.contains("\"event\""), "{stdout}");
}

#[test]
fn events_in_a_file_carry_retries_and_resigns() {
    use vault_mirror::fake::Faults;
    let vault = Vault::sample(6, 1);
    let options = with_faults(Faults {
        refused_urls: 0.3,
        media_server_errors: 0.3,
        ..Faults::default()
    });
    let sandbox = Sandbox::start_in_thread(&vault, options);
    let events = sandbox.out().join("log/events.ndjson");
    let (code, _, stderr) = run(against(
        sandbox.server(),
        &sandbox.out().join("a"),
        &["mirror", "--quiet"],
    )
    .env("VAULT_MIRROR_EVENTS", &events)
    .args(["--retries", "20"]));
    assert_eq!(code, Some(0), "{stderr}");
    let text = std::fs::read_to_string(&events).unwrap();
    let kinds: Vec<String> = text
        .lines()
        .map(|line| {
            let event: serde_json::Value = serde_json::from_str(line).unwrap();
            event["event"].as_str().unwrap().to_owned()
        })
        .collect();
    assert!(kinds.iter().any(|kind| kind == "retried"), "{kinds:?}");
    assert!(kinds.iter().any(|kind| kind == "resigned"), "{kinds:?}");
    assert!(!text.contains("sig="), "a signed URL's query in the events");
}

#[test]
fn history_lists_additions_changes_removals_and_prunes() {
    let vault = Vault::sample(10, 2);
    let ids: Vec<String> = vault.media.keys().cloned().collect();
    // `late` arrives in a list only after the first run.
    let late = ids[0].clone();
    let mut first_vault = vault.clone();
    for list in &mut first_vault.lists {
        list.members.retain(|member| *member != late);
    }
    let sandbox = Sandbox::start_in_thread(&first_vault, FakeOptions::default());
    let (code, _, stderr) = run(&mut sandbox.command(&["mirror"]));
    assert_eq!(code, Some(0), "{stderr}");

    let changed = ids
        .iter()
        .find(|id| {
            **id != late
                && vault.media[*id].variants.get("full").is_some_and(|full| {
                    full.status == "stored" && full.content_type == "image/jpeg"
                })
                && vault.lists.iter().any(|list| list.members.contains(id))
        })
        .unwrap()
        .clone();
    let removed = ids
        .iter()
        .find(|id| {
            **id != late
                && **id != changed
                && vault.lists.iter().any(|list| list.members.contains(id))
        })
        .unwrap()
        .clone();
    sandbox.server().with_vault(|current| {
        current.lists = vault.lists.clone();
        for list in &mut current.lists {
            list.members.retain(|member| *member != removed);
        }
    });
    crate::archive::change_upstream(sandbox.server(), &changed);
    let (code, _, stderr) = run(&mut sandbox.command(&["mirror", "--prune"]));
    assert_eq!(code, Some(0), "{stderr}");

    let history = history_json(sandbox.out(), None);
    let runs = history["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["run_id"], 2, "newest first");
    let run_id = runs[0]["run_id"].to_string();
    let detail = history_json(sandbox.out(), Some(&run_id));
    let changes = detail["changes"].as_array().unwrap();
    let of = |kind: &str| -> Vec<&serde_json::Value> {
        changes
            .iter()
            .filter(|change| change["kind"] == kind)
            .collect()
    };
    let added = of("added");
    assert!(
        added
            .iter()
            .any(|change| change["media_id"] == late.as_str()),
        "{detail}"
    );
    assert!(
        added
            .iter()
            .all(|change| change["media_id"] == late.as_str()),
        "{detail}"
    );
    let changes_upstream = of("changed");
    assert_eq!(changes_upstream.len(), 1, "{detail}");
    assert_eq!(changes_upstream[0]["media_id"], changed.as_str());
    assert_eq!(changes_upstream[0]["label"], "full");
    let kept = changes_upstream[0]["kept_path"].as_str().unwrap();
    assert!(kept.starts_with(".versions/"), "{kept}");
    assert!(sandbox.out().join(kept).is_file(), "{kept}");
    let gone = of("gone");
    assert!(!gone.is_empty(), "{detail}");
    assert!(
        gone.iter()
            .all(|change| change["media_id"] == removed.as_str())
    );
    let pruned = of("pruned");
    assert!(!pruned.is_empty(), "{detail}");
    for file in &pruned {
        assert_eq!(file["media_id"], removed.as_str());
        assert!(
            !sandbox
                .out()
                .join(file["local_path"].as_str().unwrap())
                .exists()
        );
    }

    // The same, for a person.
    let (_, text, _) = run(&mut sandbox.offline(&["history", &run_id]));
    for heading in [
        "added (",
        "changed upstream (1):",
        "gone upstream",
        "pruned (",
    ] {
        assert!(text.contains(heading), "{heading} missing in:\n{text}");
    }
    assert!(
        text.contains("the previous bytes are kept as .versions/"),
        "{text}"
    );
    let (_, text, _) = run(vault_mirror().args(["history", "--out"]).arg(sandbox.out()));
    assert!(text.contains("RUN") && text.contains("complete"), "{text}");
    let (code, _, stderr) = run(&mut sandbox.offline(&["history", "99"]));
    assert_eq!(code, Some(2), "{stderr}");

    // `export` and `verify` change the archive too: recorded; `status` and
    // `history` only read: not.
    for args in [&["export"][..], &["verify", "--fast"], &["status"]] {
        let (code, _, stderr) = run(vault_mirror().args(args).arg("--out").arg(sandbox.out()));
        assert_eq!(code, Some(0), "{args:?}: {stderr}");
    }
    let history = history_json(sandbox.out(), None);
    let commands: Vec<&str> = history["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|run| run["command"].as_str().unwrap())
        .collect();
    assert_eq!(commands, ["verify", "export", "mirror", "mirror"]);
    assert_eq!(history["runs"][0]["state"], "intact");
    assert_eq!(history["runs"][1]["state"], "complete");
}

#[test]
fn the_alert_rule_is_the_guides_and_fires_after_26_hours() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rules = root.join("contrib/prometheus/vault-mirror-alerts.yml");
    let text = std::fs::read_to_string(&rules).unwrap();
    let guide = std::fs::read_to_string(root.join("docs/scheduling.md")).unwrap();
    assert!(
        guide.contains(&format!("```yaml\n{text}```")),
        "the alert rule in docs/scheduling.md differs from {}",
        rules.display()
    );
    let output = require!(promtool(&["check", "rules", rules.to_str().unwrap()], None));
    assert!(
        output.status.success(),
        "promtool check rules: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let test = root.join("contrib/prometheus/vault-mirror-alerts.test.yml");
    let output = promtool(&["test", "rules", test.to_str().unwrap()], None).unwrap();
    assert!(
        output.status.success(),
        "promtool test rules: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn an_agencys_run_is_measured_per_connection_and_pinged_once() {
    use vault_mirror::fake::sample_account;
    // conn_01..03 healthy, conn_04 listed as expired (left out of
    // --all-connections), conn_05 listed as active but refused.
    let (vault, options) = sample_account(4, 2, 3, true);
    let sandbox = Sandbox::start_in_thread(&vault, options);
    let pings = PingServer::start(false);
    let metrics = sandbox.out().join("vault_mirror.prom");
    let events = sandbox.out().join("events.ndjson");
    let watched = |key: &str| {
        let mut command = against(
            sandbox.server(),
            &sandbox.out().join("archive"),
            &["mirror", "--all-connections"],
        );
        // The environment's connection is left out by --all-connections,
        // and so it is from what the process reports.
        command
            .env("OFAUTH_API_KEY", key)
            .env("VAULT_MIRROR_METRICS_FILE", &metrics)
            .env("VAULT_MIRROR_PING_URL", &pings.url)
            .env("VAULT_MIRROR_EVENTS", &events);
        command
    };

    // One refused connection among healthy ones: exit 4, one entry per
    // connection that ran, one start and one end ping.
    let (code, _, stderr) = run(&mut watched(sandbox.server().api_key()));
    assert_eq!(code, Some(4), "{stderr}");
    let first = samples(&metrics);
    promtool_accepts(&metrics);
    for healthy in ["conn_01", "conn_02", "conn_03"] {
        let name = format!("vault_mirror_run_exit_code{{connection=\"{healthy}\"}}");
        assert_eq!(first.get(&name), Some(&0.0), "{first:?}");
        let name = format!("vault_mirror_downloaded_files{{connection=\"{healthy}\"}}");
        assert!(first[&name] > 0.0, "{first:?}");
    }
    assert_eq!(
        first.get("vault_mirror_run_exit_code{connection=\"conn_05\"}"),
        Some(&4.0),
        "{first:?}"
    );
    assert!(
        !first.keys().any(|name| name.contains("conn_04")),
        "{first:?}"
    );
    one_run(
        &pings.pings(),
        "/ping/check-uuid/fail",
        &[sandbox.server().api_key()],
    );
    let body = &pings.pings()[1].body;
    for id in ["conn_01", "conn_02", "conn_03", "conn_05"] {
        assert!(body.contains(&format!("connection {id}:")), "{body}");
    }
    // Every connection's events in the one stream, each ending in its summary
    // or its failure.
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&events)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    // The run's start is the process's: no connection's.
    assert_eq!(lines[0]["event"], "run_started", "{:?}", lines[0]);
    assert_eq!(lines[0]["connection"], "", "{:?}", lines[0]);
    for (id, last) in [
        ("conn_01", "summary"),
        ("conn_02", "summary"),
        ("conn_03", "summary"),
        ("conn_05", "run_failed"),
    ] {
        let own: Vec<&serde_json::Value> = lines
            .iter()
            .filter(|line| line["connection"] == id)
            .collect();
        assert_eq!(own.last().unwrap()["event"], last, "{id}: {own:?}");
    }

    // The account's key refused while choosing the connections: no
    // connection ran, but the run is measured and pinged as failed.
    let (code, _, stderr) = run(&mut watched("sk_refused_KEY"));
    assert_eq!(code, Some(4), "{stderr}");
    let second = samples(&metrics);
    promtool_accepts(&metrics);
    assert_eq!(
        second.get("vault_mirror_run_exit_code{connection=\"\"}"),
        Some(&4.0),
        "{second:?}"
    );
    one_run(
        &pings.pings()[2..],
        "/ping/check-uuid/fail",
        &["sk_refused_KEY"],
    );
}

#[test]
fn the_metrics_file_says_how_old_the_oldest_check_is() {
    let vault = Vault::sample(8, 2);
    let sandbox = Sandbox::start_in_thread(&vault, FakeOptions::default());
    let metrics = sandbox.out().join("metrics/vault_mirror.prom");
    std::fs::create_dir_all(metrics.parent().unwrap()).unwrap();
    let archive = sandbox.out().join("archive");
    let command = |args: &[&str]| {
        let mut command = against(sandbox.server(), &archive, args);
        command.env("VAULT_MIRROR_METRICS_FILE", &metrics);
        command
    };
    let stored = stored_variants(&vault, &["full", "thumb"]) as f64;
    let before = vault_mirror::now_ms() as f64 / 1000.0;
    let (code, _, stderr) = run(&mut command(&["mirror"]));
    assert_eq!(code, Some(0), "{stderr}");
    let first = samples(&metrics);
    promtool_accepts(&metrics);
    // Nothing re-read yet: the oldest check is the oldest file's writing.
    assert_eq!(sample(&first, "vault_mirror_unchecked_files"), stored);
    let oldest = sample(&first, "vault_mirror_oldest_check_timestamp_seconds");
    assert!(oldest >= before.floor() && oldest <= vault_mirror::now_ms() as f64 / 1000.0);
    assert_eq!(
        sample(&first, "vault_mirror_last_verify_timestamp_seconds"),
        0.0
    );
    assert_eq!(sample(&first, "vault_mirror_verify_checked_bytes"), 0.0);

    // A rolling check of a few files, then the next mirror's file says so.
    let (code, _, stderr) = run(&mut command(&["verify", "--max-bytes", "20K", "--json"]));
    assert_eq!(code, Some(0), "{stderr}");
    let (code, _, stderr) = run(&mut command(&["mirror"]));
    assert_eq!(code, Some(0), "{stderr}");
    let second = samples(&metrics);
    promtool_accepts(&metrics);
    let unchecked = sample(&second, "vault_mirror_unchecked_files");
    assert!(
        unchecked >= 1.0 && unchecked < stored,
        "{unchecked} of {stored}"
    );
    let bytes = sample(&second, "vault_mirror_verify_checked_bytes");
    // Within the budget (or the one file a run always checks).
    assert!(
        bytes > 0.0 && (bytes <= 20.0 * 1024.0 || unchecked == stored - 1.0),
        "{bytes}"
    );
    assert_eq!(sample(&second, "vault_mirror_verify_damaged_files"), 0.0);
    assert!(sample(&second, "vault_mirror_last_verify_timestamp_seconds") >= oldest);
    // The files re-read were the oldest: the oldest check moved on.
    assert!(sample(&second, "vault_mirror_oldest_check_timestamp_seconds") >= oldest);
}

#[test]
fn the_oldest_check_alert_is_in_the_rules_and_fires_after_35_days() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rules =
        std::fs::read_to_string(root.join("contrib/prometheus/vault-mirror-alerts.yml")).unwrap();
    assert!(rules.contains("alert: VaultMirrorOldestCheckTooOld"));
    assert!(rules.contains("vault_mirror_oldest_check_timestamp_seconds > 35 * 86400"));
    let test =
        std::fs::read_to_string(root.join("contrib/prometheus/vault-mirror-alerts.test.yml"))
            .unwrap();
    assert!(test.contains("alertname: VaultMirrorOldestCheckTooOld"));
    // `promtool test rules` runs it in the_alert_rule_is_the_readmes_and_fires_after_26_hours.
}

/// `systemd-analyze verify` on the unit files of `deploy/systemd/` (their
/// `ExecStart` pointed at this build): no warning, where systemd is there.
#[test]
fn the_systemd_units_pass_systemd_analyze_verify() {
    let verify = |folder: &std::path::Path, units: &[&str]| {
        std::process::Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .args(units)
            .current_dir(folder)
            .output()
            .map_err(|error| format!("systemd-analyze cannot run ({error})"))
    };
    let folder = tempfile::tempdir().unwrap();
    let deploy = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/systemd");
    for entry in std::fs::read_dir(&deploy).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap().replace(
            "/usr/local/bin/vault-mirror",
            env!("CARGO_BIN_EXE_vault-mirror"),
        );
        std::fs::write(folder.path().join(path.file_name().unwrap()), text).unwrap();
    }
    // An instance of the template, as `systemctl start vault-mirror@2-3` makes it.
    std::fs::copy(
        folder.path().join("vault-mirror@.service"),
        folder.path().join("vault-mirror@2-3.service"),
    )
    .unwrap();
    let units = [
        "./vault-mirror.service",
        "./vault-mirror.timer",
        "./vault-mirror@2-3.service",
        "./vault-mirror@.timer",
        "./vault-mirror-failure@.service",
    ];
    let output = require!(verify(folder.path(), &units));
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success() && said.trim().is_empty(), "{said}");
}

/// A metrics file in a folder that does not exist would leave a good run
/// without metrics: refused before the run, with the command that fixes it.
#[test]
fn a_metrics_file_in_a_missing_folder_is_refused_up_front() {
    let sandbox = Sandbox::start_in_thread(&Vault::sample(2, 1), FakeOptions::default());
    let metrics = sandbox.path("no-such-folder/vault_mirror.prom");
    let output = sandbox
        .command(&["mirror", &format!("--metrics-file={}", metrics.display())])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{said}");
    assert!(
        said.contains(&format!(
            "its folder {} does not exist",
            sandbox.path("no-such-folder").display()
        )) && said.contains("mkdir -p"),
        "{said}"
    );
    assert_eq!(sandbox.server().stats().api_calls, 0);
    assert_eq!(std::fs::read_dir(sandbox.out()).unwrap().count(), 0);
}
