//! XMP sidecars (`sidecars = "xmp"`, issue 21), read back by the real
//! `exiftool`: the media's date and its lists as keywords, listed in
//! `SHA256SUMS`, rewritten when the media's lists change; on a disk and
//! on object storage.

use std::path::Path;
use std::process::Command;

use vault_mirror::fake::{FakeOptions, Vault};
use vault_mirror::pipeline::Outcome;

use crate::common::{mirror, require};
use crate::moto::{BUCKET, PREFIX, objects, python};
use crate::sandbox::Sandbox;

/// `exiftool -json` of the files given: one object per file.
fn exiftool(files: &[&Path]) -> Result<Vec<serde_json::Value>, String> {
    let output = Command::new("exiftool")
        .arg("-json")
        .arg("-G0")
        .args(files)
        .output()
        .map_err(|error| {
            format!("exiftool cannot run ({error}); install libimage-exiftool-perl")
        })?;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(serde_json::from_slice(&output.stdout).unwrap())
}

/// The keywords exiftool reads from one sidecar (`XMP:Subject`).
fn subjects(tags: &serde_json::Value) -> Vec<String> {
    match &tags["XMP:Subject"] {
        serde_json::Value::String(one) => vec![one.clone()],
        serde_json::Value::Array(many) => many
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect(),
        _ => Vec::new(),
    }
}

#[tokio::test]
async fn sidecars_carry_the_date_and_lists_and_follow_the_lists() {
    let mut vault = Vault::sample(8, 2);
    let sandbox = Sandbox::start(&vault, FakeOptions::default()).await;
    let mut settings = sandbox.settings();
    settings.layout.sidecars = true;
    settings.mirror.export = true;
    let first = mirror(&settings).await;
    assert_eq!(first.outcome, Outcome::Complete, "{first:?}");
    let files = crate::common::variant_rows(&settings.db)
        .into_iter()
        .filter(|row| row.4 == "verified")
        .count();
    assert_eq!(first.sidecars.clone().unwrap().written, files);
    // The first media: dated by the Access API, in the first list.
    let media = vault.lists[0].members[0].clone();
    let list_name = vault.lists[0].name.clone();
    let sidecar = sandbox.out().join(format!("media/{media}/full.xmp"));
    let tags = require!(exiftool(&[&sidecar]));
    let created = &vault.media[&media].access.as_ref().unwrap().created_at;
    let date = vault_mirror::api::models::parse_media_date(created).unwrap();
    let expected = chrono_like(date);
    assert_eq!(tags[0]["XMP:DateTimeOriginal"], expected, "{:#}", tags[0]);
    assert_eq!(tags[0]["XMP:CreateDate"], expected);
    assert!(subjects(&tags[0]).contains(&list_name), "{:#}", tags[0]);
    assert_eq!(tags[0]["XMP:ImageWidth"], 320);
    // Listed in SHA256SUMS, and right.
    let sums = std::fs::read_to_string(sandbox.out().join("SHA256SUMS")).unwrap();
    assert!(
        sums.contains(&format!("  media/{media}/full.xmp\n")),
        "{sums}"
    );
    let check = Command::new("sha256sum")
        .args(["-c", "--quiet", "SHA256SUMS"])
        .current_dir(sandbox.out())
        .status()
        .unwrap();
    assert!(check.success());

    // A re-run writes none; the media joining another list rewrites its own.
    let again = mirror(&settings).await;
    assert_eq!(again.sidecars.unwrap().written, 0);
    let other = vault.lists[1].name.clone();
    vault.lists[1].members.push(media.clone());
    sandbox
        .server()
        .with_vault(|live| live.lists[1].members.push(media.clone()));
    let moved = mirror(&settings).await;
    let labels = vault.media[&media]
        .variants
        .keys()
        .filter(|l| ["full", "thumb"].contains(&l.as_str()))
        .count();
    assert_eq!(moved.sidecars.unwrap().written, labels);
    let tags = exiftool(&[&sidecar]).unwrap();
    let found = subjects(&tags[0]);
    assert!(
        found.contains(&list_name) && found.contains(&other),
        "{found:?}"
    );
}

/// `2025:05:17 12:00:00+00:00`, as exiftool prints an XMP date in UTC.
fn chrono_like(epoch_ms: i64) -> String {
    vault_mirror::api::models::format_offset_date(epoch_ms, 0)
        .replacen('-', ":", 2)
        .replacen('T', " ", 1)
}

#[test]
fn sidecars_and_template_views_on_object_storage() {
    let vault = Vault::sample(6, 2);
    let sandbox = require!(Sandbox::start_in_bucket(&vault, FakeOptions::default()));
    let config = sandbox.path("vault-mirror.toml");
    std::fs::write(&config, "sidecars = \"xmp\"\nviews = [\"by-date\"]\n").unwrap();
    let config = config.to_string_lossy().into_owned();
    let summary = sandbox.json(
        &mut sandbox.command(&["--config", &config, "mirror", "--export", "--json"]),
        0,
    );
    assert!(
        summary["sidecars"]["written"].as_u64().unwrap() > 0,
        "{summary:#}"
    );
    assert_eq!(summary["template_views"]["indexes"], 1, "{summary:#}");
    let found = objects(sandbox.moto());
    let media = &vault.lists[0].members[0];
    let key = format!("media/{media}/full.xmp");
    assert!(
        found.contains_key(&key),
        "{:?}",
        found.keys().collect::<Vec<_>>()
    );
    assert!(found.contains_key("by-date/index.html"));
    let files = python(
        sandbox.moto(),
        &format!(
            "print(s3.get_object(Bucket='{BUCKET}', Key='{PREFIX}/by-date/files.txt')['Body'].read().decode())"
        ),
    );
    assert!(
        files
            .lines()
            .any(|line| line.contains(&format!("_{media}_full."))
                && line.contains(&format!("\t../media/{media}/full."))),
        "{files}"
    );
    let body = python(
        sandbox.moto(),
        &format!(
            "print(s3.get_object(Bucket='{BUCKET}', Key='{PREFIX}/{key}')['Body'].read().decode(), end='')"
        ),
    );
    let local = sandbox.path("full.xmp");
    std::fs::write(&local, body).unwrap();
    let tags = require!(exiftool(&[&local]));
    assert!(
        subjects(&tags[0]).contains(&vault.lists[0].name),
        "{:#}",
        tags[0]
    );
    let sums = python(
        sandbox.moto(),
        &format!(
            "print(s3.get_object(Bucket='{BUCKET}', Key='{PREFIX}/SHA256SUMS')['Body'].read().decode())"
        ),
    );
    assert!(sums.contains(&key), "{sums}");
}
