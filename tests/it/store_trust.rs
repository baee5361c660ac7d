//! What an object store can no longer be trusted with, each through the
//! fault-injecting proxy (`store_proxy`) in front of moto: a sha256
//! metadata write it refuses (the variant is not verified, and the next
//! run sets the metadata from the object's own bytes without fetching
//! them again), metadata stripped from outside (found and mended by
//! `mirror` and by `verify --repair`), incomplete uploads (counted by
//! `status`, aborted by `verify --repair`), conditional writes it ignores
//! (found out, refused in one line with exit 2 unless `--single-writer`),
//! and a lease judged by the store's clock, never its holder's.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use vault_mirror::fake::Vault;

use crate::common::require;
use crate::moto::{
    BUCKET, Moto, PREFIX, assert_objects_match, incomplete_uploads, objects, python,
};
use crate::store_faults::{behind_a_proxy, vault_with_videos};
use crate::store_proxy::{Fault, ignoring_conditions, writes_media, writes_metadata};

/// Every object under media/ carries its own sha256 as metadata.
fn assert_sealed(moto: &Moto) {
    for (key, object) in objects(moto)
        .iter()
        .filter(|(key, _)| key.starts_with("media/"))
    {
        assert_eq!(
            object.metadata_sha256.as_ref(),
            Some(&object.sha256),
            "{key}"
        );
    }
}

/// Strips the metadata of `key` (relative to the prefix) from outside,
/// as a careless `aws s3 cp` onto itself would, keeping its type.
fn strip_metadata(moto: &Moto, key: &str) {
    python(
        moto,
        &format!(
            "k = '{PREFIX}/{key}'\n\
             t = s3.head_object(Bucket='{BUCKET}', Key=k)['ContentType']\n\
             s3.copy_object(Bucket='{BUCKET}', Key=k, CopySource=dict(Bucket='{BUCKET}', Key=k), MetadataDirective='REPLACE', Metadata={{}}, ContentType=t)"
        ),
    );
}

#[test]
fn store_a_refused_sha256_metadata_leaves_the_variant_unverified_and_the_next_run_sets_it_without_fetching()
 {
    let vault = vault_with_videos();
    let refusing = Arc::new(AtomicBool::new(true));
    let refuses = refusing.clone();
    // Every CopyObject that would set a multipart object's sha256 fails,
    // as long as `refusing` holds.
    let (sandbox, proxy) = require!(behind_a_proxy(&vault, move |seen| {
        (writes_metadata(seen) && refuses.load(Ordering::SeqCst)).then_some(Fault::InternalError)
    }));

    let run = sandbox.run(&mut sandbox.command(&["mirror", "--json"]), 3);
    let (summary, output) = (run.json(), run.text());
    assert!(!proxy.injected().is_empty(), "{output}");
    assert_eq!(summary["outcome"], "partial", "{output}");
    assert_eq!(
        summary["failed"].as_array().map(Vec::len),
        Some(2),
        "the two videos: {output}"
    );
    assert!(
        output.contains("setting the sha256 metadata of"),
        "{output}"
    );
    let before = objects(sandbox.moto());
    for key in ["media/9100000001/full.mp4", "media/9100000002/full.mp4"] {
        assert_eq!(before[key].metadata_sha256, None, "{key}");
    }
    let status = sandbox.json(&mut sandbox.offline(&["status", "--json"]), 0);
    assert_eq!(status["total"]["failed"], 2, "{status}");

    // The store takes metadata again: the next run seals both from the
    // objects' own bytes, and fetches nothing.
    refusing.store(false, Ordering::SeqCst);
    let fetched = sandbox.server().stats().media_requests;
    let run = sandbox.run(&mut sandbox.command(&["mirror", "--json"]), 0);
    let (summary, output) = (run.json(), run.text());
    assert_eq!(summary["outcome"], "complete", "{output}");
    assert_eq!(summary["downloaded"], 0, "{output}");
    assert_eq!(sandbox.server().stats().media_requests, fetched, "{output}");
    assert!(
        output.contains("set from its bytes in the store"),
        "{output}"
    );
    assert_sealed(sandbox.moto());
    assert_objects_match(sandbox.moto(), &vault);
}

#[test]
fn store_objects_stripped_of_their_sha256_are_mended_by_mirror_and_verify_repair_without_fetching()
{
    let vault = vault_with_videos();
    // HEADs of media objects, counted: what looking at objects costs.
    let heads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = heads.clone();
    let (sandbox, _proxy) = require!(behind_a_proxy(&vault, move |seen| {
        if seen.method == "HEAD" && seen.target.contains("/media/") {
            counted.fetch_add(1, Ordering::SeqCst);
        }
        None
    }));
    sandbox.json(&mut sandbox.command(&["mirror", "--json"]), 0);
    assert_sealed(sandbox.moto());
    // An unchanged archive: no object is looked at.
    let before = heads.load(Ordering::SeqCst);
    sandbox.json(&mut sandbox.command(&["mirror", "--json"]), 0);
    assert_eq!(heads.load(Ordering::SeqCst), before);
    // A multipart object and a one-PUT one.
    let image = objects(sandbox.moto())
        .into_keys()
        .find(|key| key.starts_with("media/") && key.ends_with("full.jpg"))
        .expect("a full JPEG");
    let stripped = ["media/9100000002/full.mp4".to_owned(), image];

    // Last-Modified is whole seconds and a run's own writes are allowed
    // two: the strip must land later than that (a wait for ordering, not
    // a timed assertion).
    std::thread::sleep(Duration::from_millis(3_500));
    for key in &stripped {
        strip_metadata(sandbox.moto(), key);
    }
    let fetched = sandbox.server().stats().media_requests;
    let run = sandbox.run(&mut sandbox.command(&["mirror", "--json"]), 0);
    let (summary, output) = (run.json(), run.text());
    assert_eq!(summary["downloaded"], 0, "{output}");
    assert_eq!(sandbox.server().stats().media_requests, fetched, "{output}");
    for key in &stripped {
        assert!(
            output.contains(&format!("{key} lacked its sha256 metadata")),
            "{output}"
        );
    }
    assert_sealed(sandbox.moto());
    // Mended, and looked at no more by the runs after.
    let before = heads.load(Ordering::SeqCst);
    let output = sandbox
        .run(&mut sandbox.command(&["mirror", "--json"]), 0)
        .text();
    assert!(!output.contains("lacked its sha256"), "{output}");
    assert_eq!(heads.load(Ordering::SeqCst), before, "{output}");

    // verify tells; verify --repair looks at every object, whenever it
    // was written, and mends.
    for key in &stripped {
        strip_metadata(sandbox.moto(), key);
    }
    let fast = sandbox
        .run(&mut sandbox.offline(&["verify", "--fast"]), 0)
        .text();
    assert!(
        fast.contains("2 objects carry no sha256 metadata (checked by size only)"),
        "{fast}"
    );
    let run = sandbox.run(&mut sandbox.command(&["verify", "--repair", "--json"]), 0);
    let (report, output) = (run.json(), run.text());
    assert_eq!(report["outcome"], "intact", "{output}");
    assert_eq!(report["sha256_metadata"]["set"], 2, "{output}");
    assert_eq!(sandbox.server().stats().media_requests, fetched, "{output}");
    assert_sealed(sandbox.moto());
}

#[test]
fn store_incomplete_uploads_are_counted_by_status_and_aborted_by_verify_repair() {
    let vault = Vault::sample(4, 1);
    let (sandbox, _proxy) = require!(behind_a_proxy(&vault, |_| None));
    sandbox.json(&mut sandbox.command(&["mirror", "--json"]), 0);
    let status = sandbox.json(&mut sandbox.offline(&["status", "--json"]), 0);
    assert_eq!(status["incomplete_uploads"], 0, "{status}");

    // Two uploads left open (as by a store that lost an abort), and one
    // outside the prefix, which is none of ours.
    python(
        sandbox.moto(),
        &format!(
            "for k in ['{PREFIX}/media/9/full.mp4', '{PREFIX}/media/8/full.mp4', 'elsewhere/x.mp4']:\n\
             \x20   s3.create_multipart_upload(Bucket='{BUCKET}', Key=k)"
        ),
    );
    let status = sandbox.json(&mut sandbox.offline(&["status", "--json"]), 0);
    assert_eq!(status["incomplete_uploads"], 2, "{status}");
    let text = sandbox.run(&mut sandbox.offline(&["status"]), 0).text();
    assert!(text.contains("incomplete uploads: 2 under s3://"), "{text}");

    sandbox.json(&mut sandbox.command(&["verify", "--repair", "--json"]), 0);
    assert_eq!(incomplete_uploads(sandbox.moto()), ["elsewhere/x.mp4"]);
    let text = sandbox.run(&mut sandbox.offline(&["status"]), 0).text();
    assert!(text.contains("incomplete uploads: none"), "{text}");
}

#[test]
fn store_a_store_that_cannot_list_incomplete_uploads_is_mirrored_and_the_operator_told_what_is_not_cleaned()
 {
    let vault = Vault::sample(4, 1);
    let (sandbox, proxy) = require!(behind_a_proxy(&vault, |seen| {
        (seen.method == "GET" && seen.target.contains("uploads")).then_some(Fault::NotImplemented)
    }));
    let run = sandbox.run(&mut sandbox.command(&["mirror", "--json"]), 0);
    let (summary, output) = (run.json(), run.text());
    assert_eq!(summary["outcome"], "complete", "{output}");
    assert!(!proxy.injected().is_empty(), "{output}");
    assert_eq!(
        output.matches("cannot list incomplete uploads").count(),
        1,
        "{output}"
    );
    assert!(
        output.contains("AbortIncompleteMultipartUpload"),
        "{output}"
    );
    assert_objects_match(sandbox.moto(), &vault);
    let status = sandbox.json(&mut sandbox.offline(&["status", "--json"]), 0);
    assert_eq!(
        status["incomplete_uploads"],
        serde_json::Value::Null,
        "{status}"
    );
}

/// Plants a lease of `host` that says it was renewed `age_ms` ago by its
/// holder's clock (the store writes it now, whatever it says).
fn plant_lease(moto: &Moto, host: &str, age_ms: i64) {
    let renewed_at = vault_mirror::now_ms() - age_ms;
    python(
        moto,
        &format!(
            "s3.put_object(Bucket='{BUCKET}', Key='{PREFIX}/.vault-mirror/lease', Body=json.dumps(dict(host='{host}', pid=4242, command='mirror', started_at={renewed_at}, renewed_at={renewed_at})))"
        ),
    );
}

fn lease_holder(moto: &Moto) -> Option<String> {
    let out = python(
        moto,
        &format!(
            "import botocore\n\
             try:\n\
             \x20   print(json.loads(s3.get_object(Bucket='{BUCKET}', Key='{PREFIX}/.vault-mirror/lease')['Body'].read())['host'])\n\
             except botocore.exceptions.ClientError:\n\
             \x20   print('')"
        ),
    );
    Some(out.trim().to_owned()).filter(|host| !host.is_empty())
}

#[test]
fn store_a_store_that_ignores_conditional_writes_is_refused_naming_the_holder_and_the_way_out() {
    let vault = Vault::sample(4, 1);
    let (mut sandbox, proxy) = require!(behind_a_proxy(&vault, ignoring_conditions()));
    let moto = sandbox.moto();

    // Another host's fresh lease, on a store that would let it be
    // overwritten: found out before anything is written.
    plant_lease(moto, "other-host", 1_000);
    let run = sandbox.run(&mut sandbox.command(&["mirror"]), 2);
    let text = run.text();
    let errors: Vec<&str> = text
        .lines()
        .filter(|line| line.starts_with("error:"))
        .collect();
    assert_eq!(errors.len(), 1, "one line: {text}");
    let first = errors[0];
    assert!(first.starts_with("error: the object store ignores conditional writes (a PUT with If-None-Match: * replaced an object that exists)"), "{text}");
    assert!(
        first.contains("`mirror` (pid 4242) on other-host"),
        "{text}"
    );
    assert!(first.contains("--single-writer"), "{text}");
    assert!(!proxy.injected().is_empty());
    assert_eq!(lease_holder(moto).as_deref(), Some("other-host"));
    assert_eq!(sandbox.server().stats().media_requests, 0);
    assert!(!objects(moto).keys().any(|key| key.starts_with("media/")));

    // The operator's word that one writer exists is no licence to take a
    // fresh lease of another host.
    let text = sandbox
        .run(&mut sandbox.command(&["mirror", "--single-writer"]), 1)
        .text();
    assert!(text.contains("another run holds the archive"), "{text}");
    assert_eq!(lease_holder(moto).as_deref(), Some("other-host"));

    // No lease at all: still refused without the flag, nothing written.
    python(
        moto,
        &format!("s3.delete_object(Bucket='{BUCKET}', Key='{PREFIX}/.vault-mirror/lease')"),
    );
    let text = sandbox.run(&mut sandbox.command(&["mirror"]), 2).text();
    assert!(text.contains("no run holds the lease now"), "{text}");
    assert_eq!(lease_holder(moto), None);
    assert_eq!(sandbox.server().stats().media_requests, 0);

    // With the flag (here from the environment): the run goes on.
    sandbox.env("VAULT_MIRROR_SINGLE_WRITER", "true");
    let summary = sandbox.json(&mut sandbox.command(&["mirror", "--json"]), 0);
    assert_eq!(summary["outcome"], "complete", "{summary}");
    assert_eq!(lease_holder(sandbox.moto()), None, "given back");
}

#[test]
fn store_a_lease_written_just_now_by_a_slow_clock_is_not_taken_over() {
    let vault = Vault::sample(4, 1);
    let (sandbox, _proxy) = require!(behind_a_proxy(&vault, |_| None));
    // Its holder's clock runs 15 minutes slow: the lease says it was
    // renewed 15 minutes ago, but the store wrote it just now.
    plant_lease(sandbox.moto(), "slow-host", 15 * 60_000);
    let text = sandbox.run(&mut sandbox.command(&["mirror"]), 1).text();
    eprintln!("{text}");
    assert!(text.contains("another run holds the archive"), "{text}");
    assert!(text.contains("slow-host"), "{text}");
    assert_eq!(lease_holder(sandbox.moto()).as_deref(), Some("slow-host"));
    assert_eq!(sandbox.server().stats().media_requests, 0);
}

#[test]
fn store_a_lease_the_store_has_not_written_for_the_stale_period_is_taken_over() {
    let vault = Vault::sample(4, 1);
    let (mut sandbox, _proxy) = require!(behind_a_proxy(&vault, |_| None));
    sandbox.env("VAULT_MIRROR_TEST_LEASE_STALE_MS", "1000");
    // Its holder's clock says it was renewed just now (it runs fast, or
    // the holder died right after): the store's clock decides.
    plant_lease(sandbox.moto(), "gone-host", 0);
    // Ordering, not timing: the store's clock must pass the stale period
    // (whole seconds) after the lease was written.
    std::thread::sleep(Duration::from_millis(2_500));
    let run = sandbox.run(&mut sandbox.command(&["mirror", "--json"]), 0);
    let (summary, output) = (run.json(), run.text());
    assert_eq!(summary["outcome"], "complete", "{output}");
    assert!(output.contains("took over the lease"), "{output}");
    assert!(output.contains("gone-host"), "{output}");
}

#[test]
fn store_a_byte_changed_on_the_way_is_refused_or_caught_and_the_media_fetched_again() {
    let vault = vault_with_videos();
    // The first one-PUT object and the first part of a multipart one each
    // reach the store with a byte changed.
    let (single, part) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let (flipped_single, flipped_part) = (single.clone(), part.clone());
    let (sandbox, proxy) = require!(behind_a_proxy(&vault, move |seen| {
        if !writes_media(seen) {
            return None;
        }
        let which = if seen.target.contains("partNumber=") {
            &flipped_part
        } else {
            &flipped_single
        };
        (!which.swap(true, Ordering::SeqCst)).then_some(Fault::FlipByte)
    }));

    let run = sandbox.run(&mut sandbox.command(&["mirror", "--json"]), 0);
    let (summary, output) = (run.json(), run.text());
    assert_eq!(proxy.injected().len(), 2, "{output}");
    assert!(single.load(Ordering::SeqCst) && part.load(Ordering::SeqCst));
    assert_eq!(summary["outcome"], "complete", "{output}");
    // The part's change is seen only once the object is whole: by the
    // store's SHA-256 of it, in the answer to the copy that seals it.
    assert!(
        output.contains("holds other bytes than were sent"),
        "{output}"
    );
    // Every object holds the media's true bytes, and says so.
    assert_objects_match(sandbox.moto(), &vault);
    assert_sealed(sandbox.moto());
    let verify = sandbox.json(&mut sandbox.offline(&["verify", "--json"]), 0);
    assert_eq!(verify["outcome"], "intact", "{verify}");
}

#[test]
fn store_a_bucket_that_asks_a_checksum_of_every_part_gets_one_and_the_run_completes() {
    let vault = vault_with_videos();
    // As S3 with Object Lock: a part without a checksum of its own is
    // refused. Parts that carry one are counted.
    let checked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = checked.clone();
    let (sandbox, proxy) = require!(behind_a_proxy(&vault, move |seen| {
        if !seen.target.contains("partNumber=") || seen.method != "PUT" {
            return None;
        }
        if seen.header("x-amz-checksum-sha256").is_some() {
            counted.fetch_add(1, Ordering::SeqCst);
            return None;
        }
        Some(Fault::PartChecksumRequired)
    }));

    let run = sandbox.run(&mut sandbox.command(&["mirror", "--json"]), 0);
    let (summary, output) = (run.json(), run.text());
    assert_eq!(summary["outcome"], "complete", "{output}");
    assert!(!proxy.injected().is_empty(), "{output}");
    assert!(
        output.contains("asks for a checksum on every part"),
        "{output}"
    );
    // The two videos' parts went checked in the end (9.4 MB and 12.3 MB:
    // two parts each).
    assert!(checked.load(Ordering::SeqCst) >= 4, "{output}");
    assert_objects_match(sandbox.moto(), &vault);
    assert_sealed(sandbox.moto());
}
