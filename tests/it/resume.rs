//! Big transfers after a crash (`docs/resuming.md`): `kill -9` in the
//! middle of a 100 MB video, then a run that goes on from the last part
//! boundary instead of byte 0 — on object storage (the multipart upload
//! kept open, its parts checked with ListParts) and on the disk (the
//! `.part` hashed from its last saved sha256 state) — and the cases where
//! going on would be wrong or impossible, which start over: the media
//! changed upstream, the upload aborted behind our back, a part that is
//! not the one recorded. Bytes fetched again are counted by the fake's
//! media host (`media_bytes_served`).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vault_mirror::fake::{FakeOptions, Faults, Vault};

use crate::common::{add_video, assert_archive_matches, require};
use crate::moto::{BUCKET, PREFIX, assert_objects_match, incomplete_uploads, python};
use crate::sandbox::{Sandbox, with_faults};

/// The size of a part (`archive::bucket::upload::PART_SIZE`).
const PART: u64 = 8 << 20;
const BIG: &str = "9100000001";

/// A vault of one list holding one video of `size` bytes, nothing else
/// (so every byte the media host serves is the video's).
fn vault_with_a_video(size: usize) -> Vault {
    let mut vault = Vault::sample(1, 1);
    vault.media.clear();
    for list in &mut vault.lists {
        list.members.clear();
    }
    add_video(&mut vault, BIG, size);
    vault
}

/// The fake media host sends each transfer at most `rate` bytes a second.
fn throttled(rate: u64) -> FakeOptions {
    with_faults(Faults {
        bandwidth_per_transfer: Some(rate),
        ..Faults::default()
    })
}

/// The furthest point recorded for the video so far (0 before any).
fn furthest_point(db: &Path) -> u64 {
    // Read-only: opened to write, SQLite would create the file the run is
    // about to create.
    let Ok(connection) =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return 0;
    };
    connection
        .query_row(
            "SELECT coalesce(max(end_offset), 0) FROM resume_points WHERE media_id = ?1",
            [BIG],
            |row| row.get::<_, i64>(0),
        )
        .map_or(0, |end| end as u64)
}

/// Starts `command` and `kill -9`s it once `reached` says so.
fn kill_9_when(sandbox: &Sandbox, command: &mut Command, reached: impl Fn() -> bool) {
    let log = sandbox.path("killed-run.log");
    let mut child: Child = command
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    while !reached() {
        assert!(Instant::now() < deadline, "not reached in time");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended first: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

/// [`kill_9_when`] a point at `at` bytes or beyond is recorded. Returns
/// the furthest point recorded.
fn kill_9_past(sandbox: &Sandbox, command: &mut Command, at: u64) -> u64 {
    kill_9_when(sandbox, command, || furthest_point(&sandbox.db()) >= at);
    furthest_point(&sandbox.db())
}

fn mirror(sandbox: &Sandbox) -> Command {
    sandbox.command(&["mirror", "--json", "--quality", "full"])
}

/// On object storage: killed at about half of a `size`-byte video, the
/// next run fetches at most one part again. Returns the bytes fetched again.
fn s3_resume_after_kill_9(size: usize) -> Option<u64> {
    let vault = vault_with_a_video(size);
    let sandbox = match Sandbox::start_in_bucket(&vault, throttled(8 << 20)) {
        Ok(sandbox) => sandbox,
        Err(why) => {
            crate::common::missing(&why);
            return None;
        }
    };
    let moto = sandbox.moto();
    let size = size as u64;
    // Killed once a part past half the video is recorded: what was lost
    // is then what came after it, the part being filled. (Killed at any
    // moment, the part on its way to the store may be lost too: see
    // docs/resuming.md.)
    kill_9_past(&sandbox, &mut mirror(&sandbox), size / 2);
    let served_before = sandbox.server().stats().media_bytes_served;
    assert_eq!(incomplete_uploads(moto).len(), 1, "the upload was not kept");

    let run = sandbox.run(&mut mirror(&sandbox), 0);
    let output = run.text();
    assert!(
        output.contains(&format!("resuming the upload of media/{BIG}/full.mp4 at")),
        "{output}"
    );
    assert_eq!(run.json()["outcome"], "complete", "{output}");
    let fetched_by_second_run = sandbox.server().stats().media_bytes_served - served_before;
    // What the second run fetched that the first had fetched already.
    let fetched_again = fetched_by_second_run - (size - served_before);
    assert!(
        fetched_again <= PART,
        "{fetched_again} bytes fetched again, more than one part"
    );
    // The object is whole, with the exact sha256 of the whole file.
    assert_eq!(assert_objects_match(moto, &vault), 1);
    assert_eq!(incomplete_uploads(moto), Vec::<String>::new());
    let note = output
        .lines()
        .find(|line| line.contains("resuming the upload"))
        .unwrap_or_default();
    eprintln!(
        "{size} bytes: killed after {served_before} served; the resume fetched {fetched_by_second_run}, {fetched_again} of them again\n{note}"
    );
    Some(fetched_again)
}

#[test]
fn s3_kill_9_mid_upload_of_100_mb_then_the_resume_fetches_at_most_one_part_again() {
    s3_resume_after_kill_9(100_000_000);
}

/// The figure for 1 GB (slow: run it by name).
#[test]
#[ignore = "a 1 GB video: a figure for the docs, minutes long"]
fn s3_kill_9_mid_upload_of_1_gb_then_the_resume_fetches_at_most_one_part_again() {
    s3_resume_after_kill_9(1_000_000_000);
}

#[test]
fn kill_9_mid_download_of_100_mb_then_the_part_is_hashed_from_its_last_point() {
    let size = 100_000_000u64;
    let vault = vault_with_a_video(size as usize);
    let mut sandbox = Sandbox::start_in_thread(&vault, throttled(32 << 20));
    sandbox.env("VAULT_MIRROR_LOG", "debug");
    let reached = kill_9_past(&sandbox, &mut mirror(&sandbox), size / 2);
    let part = sandbox.out().join(format!("media/{BIG}/full.mp4.part"));
    let kept = std::fs::metadata(&part).unwrap().len();
    assert!(kept >= reached);
    let served_before = sandbox.server().stats().media_bytes_served;

    let run = sandbox.run(&mut mirror(&sandbox), 0);
    let output = run.text();
    // Only the bytes after the last durable point are read again to hash
    // them, not the whole `.part`.
    let line = output
        .lines()
        .find(|line| line.contains("bytes to resume from"))
        .unwrap_or_else(|| panic!("{output}"));
    let re_read: u64 = line
        .split(", ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|number| number.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    assert!(
        line.contains(&format!("{kept} bytes to resume from")),
        "{line}"
    );
    assert!(
        re_read <= kept - reached,
        "{line}: the point was at {reached}"
    );
    // Nothing is fetched again: the download goes on where the `.part` ends.
    let fetched = sandbox.server().stats().media_bytes_served - served_before;
    assert!(
        fetched <= size - kept + 1,
        "{fetched} fetched, {kept} were kept"
    );
    assert_eq!(run.json()["outcome"], "complete", "{output}");
    assert_archive_matches(sandbox.out(), &sandbox.db(), &vault);
    eprintln!("killed with {kept} bytes in .part, point at {reached}: {re_read} re-read to hash");
}

/// A bucket sandbox killed mid-upload of a 40 MB video, its upload kept.
fn killed_mid_upload() -> Result<(Sandbox, Vault), String> {
    let vault = vault_with_a_video(40_000_000);
    let sandbox = Sandbox::start_in_bucket(&vault, throttled(16 << 20))?;
    kill_9_past(&sandbox, &mut mirror(&sandbox), 2 * PART);
    assert_eq!(incomplete_uploads(sandbox.moto()).len(), 1);
    Ok((sandbox, vault))
}

/// The second run starts over: it fetches the whole video again and ends
/// with the upstream bytes in place, no upload left.
fn assert_starts_over(sandbox: &Sandbox, vault: &Vault, note: &str) {
    let served_before = sandbox.server().stats().media_bytes_served;
    let run = sandbox.run(&mut mirror(sandbox), 0);
    let output = run.text();
    assert_eq!(run.json()["outcome"], "complete", "{output}");
    assert!(output.contains(note), "{output}");
    let fetched = sandbox.server().stats().media_bytes_served - served_before;
    let size = vault.media[BIG].variants["full"].body.len() as u64;
    assert!(fetched >= size, "{fetched} fetched of {size}");
    assert_eq!(assert_objects_match(sandbox.moto(), vault), 1);
    assert_eq!(incomplete_uploads(sandbox.moto()), Vec::<String>::new());
}

#[test]
fn s3_the_media_changed_upstream_so_the_kept_upload_starts_over() {
    let (mut sandbox, mut vault) = require!(killed_mid_upload());
    // The same size, other bytes: the media host's ETag differs, so the
    // `If-Range` resume gets the whole new body.
    let variant = vault
        .media
        .get_mut(BIG)
        .unwrap()
        .variants
        .get_mut("full")
        .unwrap();
    let mut body = variant.body.to_vec();
    let last = body.len() - 1;
    body[last] ^= 0xFF;
    variant.body = body.into();
    sandbox.restart_server(&vault, FakeOptions::default());
    // The parts in the store are as recorded, so the run resumes; the
    // media host's whole new body (200, not 206) makes it start over.
    assert_starts_over(&sandbox, &vault, "resuming the upload of");
}

#[test]
fn s3_an_upload_aborted_behind_our_back_starts_over() {
    let (sandbox, vault) = require!(killed_mid_upload());
    // As a lifecycle rule would: the store forgets the upload.
    python(
        sandbox.moto(),
        &format!(
            "for u in s3.list_multipart_uploads(Bucket='{BUCKET}').get('Uploads', []):\n\
             \x20   s3.abort_multipart_upload(Bucket='{BUCKET}', Key=u['Key'], UploadId=u['UploadId'])"
        ),
    );
    assert_starts_over(&sandbox, &vault, "starts over: the upload is gone");
}

#[test]
fn s3_a_part_that_is_not_the_one_recorded_starts_the_upload_over() {
    let (sandbox, vault) = require!(killed_mid_upload());
    // Part 1 replaced by other bytes (another ETag); the recorded state
    // after it no longer describes what the store would assemble.
    python(
        sandbox.moto(),
        &format!(
            "u = s3.list_multipart_uploads(Bucket='{BUCKET}')['Uploads'][0]\n\
             assert u['Key'] == '{PREFIX}/media/{BIG}/full.mp4'\n\
             s3.upload_part(Bucket='{BUCKET}', Key=u['Key'], UploadId=u['UploadId'], PartNumber=1, Body=b'x' * {PART})"
        ),
    );
    assert_starts_over(
        &sandbox,
        &vault,
        "starts over: the parts the store holds are not the ones recorded",
    );
}

/// `bench/resume.sh`: the time to open a `.part` holding half of a 2 GB
/// video to resume it, hashing every byte again (what a resume cost
/// before the saved states, and still costs without them) and from its
/// last saved state. Prints figures, asserts nothing about speed. Set
/// `VAULT_MIRROR_BENCH_DIR` to put the 1 GB file elsewhere than /tmp.
#[test]
#[ignore = "a benchmark: bench/resume.sh runs it"]
fn bench_resume_half_of_a_2_gb_part() {
    use std::ffi::OsStr;
    use vault_mirror::archive::dir::ArchiveDir;
    use vault_mirror::pipeline::transfer::part::PartFile;

    let declared: u64 = 2_000_000_000;
    let half = declared / 2 + 12_345;
    let base = std::env::var_os("VAULT_MIRROR_BENCH_DIR")
        .map_or_else(std::env::temp_dir, std::path::PathBuf::from);
    let dir = tempfile::tempdir_in(base).unwrap();
    let folder = || {
        ArchiveDir::open(dir.path())
            .create_folder(Path::new(""))
            .unwrap()
    };
    let name = OsStr::new("full.mp4.part");
    let mut part = PartFile::open(folder(), name, declared, &[]).unwrap();
    let mut chunk = vec![0u8; 1 << 20];
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut written = 0;
    while written < half {
        for byte in chunk.iter_mut() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            *byte = seed as u8;
        }
        let take = chunk.len().min((half - written) as usize);
        part.write(&chunk[..take]).unwrap();
        written += take as u64;
    }
    let points = part.keep().unwrap();
    let expected = part.sha256();
    drop(part);
    let cold = || {
        // Root may drop the page cache, so the bytes come from the disk
        // as after a reboot; elsewhere every figure is a warm one.
        std::fs::write("/proc/sys/vm/drop_caches", "3").is_ok()
    };
    let time = |points: &[vault_mirror::store::ResumePoint]| {
        let started = Instant::now();
        let part = PartFile::open(folder(), name, declared, points).unwrap();
        let took = started.elapsed();
        assert_eq!(part.sha256(), expected);
        took
    };
    println!(
        "a .part of {written} bytes (of {declared}), {} points saved, the last at {}",
        points.len(),
        points.last().map_or(0, |point| point.end)
    );
    for (label, with) in [
        ("before (every byte hashed again)", &[][..]),
        ("after (from the last saved state)", &points[..]),
    ] {
        let warm = time(with);
        let was_cold = cold();
        let first = time(with);
        println!(
            "{label}: {:.3}s warm{}",
            warm.as_secs_f64(),
            if was_cold {
                format!(", {:.3}s cold", first.as_secs_f64())
            } else {
                String::new()
            }
        );
    }
}

#[test]
fn s3_the_parts_before_one_that_differs_are_kept() {
    let (sandbox, vault) = require!(killed_mid_upload());
    // Part 2 replaced by other bytes: part 1 still holds, so the run
    // resumes after it and fetches the rest again.
    python(
        sandbox.moto(),
        &format!(
            "u = s3.list_multipart_uploads(Bucket='{BUCKET}')['Uploads'][0]\n\
             s3.upload_part(Bucket='{BUCKET}', Key=u['Key'], UploadId=u['UploadId'], PartNumber=2, Body=b'x' * {PART})"
        ),
    );
    let run = sandbox.run(&mut mirror(&sandbox), 0);
    let output = run.text();
    assert!(
        output.contains(&format!(
            "resuming the upload of media/{BIG}/full.mp4 at 8.00 MiB of"
        )),
        "{output}"
    );
    assert_eq!(run.json()["outcome"], "complete", "{output}");
    assert_eq!(assert_objects_match(sandbox.moto(), &vault), 1);
    assert_eq!(incomplete_uploads(sandbox.moto()), Vec::<String>::new());
}
