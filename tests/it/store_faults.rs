//! The object store misbehaving, through a fault-injecting proxy between
//! vault-mirror and moto (`store_proxy`): throttling, server errors,
//! resets and lost answers are retried under the one retry policy
//! (`archive::bucket::retry`), counted in the summary, and a run that ends
//! by itself leaves no incomplete multipart upload.

use vault_mirror::fake::{FakeOptions, Vault};

use crate::common::{require, stored_variants};
use crate::moto::{assert_objects_match, incomplete_uploads};
use crate::sandbox::Sandbox;
use crate::store_proxy::{Fault, FaultProxy, Seen, every, lose_first};

/// The sample vault plus two videos of 9 and 12 MB, so that multipart
/// uploads (two parts each) happen.
fn vault_with_videos() -> Vault {
    let mut vault = Vault::sample(24, 3);
    for (id, size) in [("9100000001", 9_400_000), ("9100000002", 12_300_000)] {
        crate::common::add_video(&mut vault, id, size);
    }
    vault
}

/// A bucket sandbox whose commands reach moto through a proxy faulting as
/// `schedule` says.
fn behind_a_proxy(
    vault: &Vault,
    schedule: impl Fn(&crate::store_proxy::Seen) -> Option<Fault> + Send + Sync + 'static,
) -> Result<(Sandbox, FaultProxy), String> {
    let mut sandbox = Sandbox::start_in_bucket(vault, FakeOptions::default())?;
    let proxy = FaultProxy::start(sandbox.moto().endpoint(), schedule);
    sandbox.env("AWS_ENDPOINT_URL", proxy.endpoint());
    Ok((sandbox, proxy))
}

#[test]
fn store_faults_are_retried_and_the_run_ends_complete_and_verified() {
    let vault = vault_with_videos();
    // Every 5th request, and at least one part upload whatever the order
    // the transfers' requests arrive in.
    let regular = every(5, 2);
    let part_faulted = std::sync::atomic::AtomicBool::new(false);
    let schedule = move |seen: &crate::store_proxy::Seen| {
        let is_part = seen.target.contains("partNumber=");
        let fault = regular(seen).or_else(|| {
            let first = is_part && !part_faulted.load(std::sync::atomic::Ordering::SeqCst);
            first.then_some(Fault::SlowDown)
        });
        if fault.is_some() && is_part {
            part_faulted.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        fault
    };
    let (sandbox, proxy) = require!(behind_a_proxy(&vault, schedule));
    let expected = stored_variants(&vault, &["full", "thumb"]);

    let run = sandbox.run(&mut sandbox.command(&["mirror", "--json"]), 0);
    let (summary, output) = (run.json(), run.text());
    let injected = proxy.injected();
    let kinds = |kind| injected.iter().filter(|(_, fault)| *fault == kind).count();
    eprintln!(
        "{} requests, {} faults: {} SlowDown, {} InternalError, {} resets, {} lost answers",
        proxy.requests(),
        injected.len(),
        kinds(Fault::SlowDown),
        kinds(Fault::InternalError),
        kinds(Fault::Reset),
        kinds(Fault::LoseAnswer)
    );
    assert!(injected.len() >= 25, "{} faults only", injected.len());
    assert!(kinds(Fault::LoseAnswer) >= 3);
    assert_eq!(summary["outcome"], "complete", "{output}");
    assert_eq!(summary["downloaded"].as_u64().unwrap() as usize, expected);
    // Each fault cost one retry (none came twice in a row); the lease is
    // given back after the summary is made, so a fault there is not in it.
    let retries = summary["store_retries"].as_u64().unwrap() as usize;
    assert!(
        (injected.len() - 1..=injected.len()).contains(&retries),
        "{retries} retries for {} faults: {output}",
        injected.len()
    );
    assert!(
        injected
            .iter()
            .any(|(seen, _)| seen.target.contains("partNumber=")),
        "a part upload was faulted"
    );
    assert_eq!(assert_objects_match(sandbox.moto(), &vault), expected);
    assert_eq!(incomplete_uploads(sandbox.moto()), Vec::<String>::new());

    // Every object verified, its bytes hashed again, through the faults.
    let before = proxy.injected().len();
    let verify = sandbox.json(&mut sandbox.offline(&["verify", "--json"]), 0);
    assert!(proxy.injected().len() > before, "verify met faults too");
    assert_eq!(verify["outcome"], "intact", "{verify}");
}

#[test]
fn store_an_upload_whose_creation_answer_was_lost_is_aborted_by_the_run() {
    let vault = vault_with_videos();
    let lost = std::sync::atomic::AtomicBool::new(false);
    // The first CreateMultipartUpload is applied, its answer lost: the
    // store holds an upload no record names.
    let (sandbox, proxy) = require!(behind_a_proxy(&vault, move |seen| {
        let creates = seen.method == "POST" && seen.target.contains("?uploads");
        (creates && !lost.swap(true, std::sync::atomic::Ordering::SeqCst))
            .then_some(Fault::LoseAnswer)
    }));

    let run = sandbox.run(&mut sandbox.command(&["mirror", "--json"]), 0);
    let (summary, output) = (run.json(), run.text());
    assert_eq!(proxy.injected().len(), 1);
    assert_eq!(summary["outcome"], "complete", "{output}");
    assert_eq!(summary["store_retries"], 1, "{output}");
    assert_eq!(
        assert_objects_match(sandbox.moto(), &vault),
        stored_variants(&vault, &["full", "thumb"])
    );
    assert_eq!(incomplete_uploads(sandbox.moto()), Vec::<String>::new());
}

#[test]
fn store_aborts_that_fail_for_a_while_are_retried_and_leave_no_upload() {
    let vault = vault_with_videos();
    // The media host lies about one video's type: its upload is aborted,
    // and the first two aborts fail.
    let mut liar = vault.clone();
    liar.media
        .get_mut("9100000002")
        .unwrap()
        .variants
        .get_mut("full")
        .unwrap()
        .content_type = "image/jpeg".into();
    let failed = std::sync::atomic::AtomicUsize::new(0);
    let (sandbox, proxy) = require!(behind_a_proxy(&liar, move |seen| {
        let aborts = seen.method == "DELETE" && seen.target.contains("uploadId=");
        (aborts && failed.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 2)
            .then_some(Fault::InternalError)
    }));

    let run = sandbox.run(&mut sandbox.command(&["mirror", "--json"]), 3);
    let (summary, output) = (run.json(), run.text());
    assert_eq!(proxy.injected().len(), 2, "{output}");
    assert!(summary["store_retries"].as_u64().unwrap() >= 2, "{output}");
    assert_eq!(incomplete_uploads(sandbox.moto()), Vec::<String>::new());
}

/// Runs `mirror` behind a proxy faulting as `schedule` says (a lost
/// answer, and what follows), and checks the run made it safe: the faults
/// met, one retry, nothing fetched twice, no take-over, every object whole
/// with its sha256, none left incomplete, the lease given back.
fn a_lost_answer_is_made_safe(
    schedule: impl Fn(&Seen) -> Option<Fault> + Send + Sync + 'static,
    env: &[(&str, &str)],
) -> Option<FaultProxy> {
    let vault = vault_with_videos();
    let (mut sandbox, proxy) = match behind_a_proxy(&vault, schedule) {
        Ok(found) => found,
        Err(why) => {
            crate::common::missing(&why);
            return None;
        }
    };
    for (name, value) in env {
        sandbox.env(name, *value);
    }

    let run = sandbox.run(&mut sandbox.command(&["mirror", "--json"]), 0);
    let (summary, output) = (run.json(), run.text());
    assert!(!proxy.injected().is_empty(), "an answer was lost: {output}");
    assert_eq!(summary["outcome"], "complete", "{output}");
    assert_eq!(summary["store_retries"], 1, "{output}");
    assert_eq!(summary["transfer_retries"], 0, "{output}");
    assert!(!output.contains("took over"), "{output}");
    assert_eq!(
        assert_objects_match(sandbox.moto(), &vault),
        stored_variants(&vault, &["full", "thumb"])
    );
    let objects = crate::moto::objects(sandbox.moto());
    for (key, object) in objects.iter().filter(|(key, _)| key.starts_with("media/")) {
        assert_eq!(
            object.metadata_sha256.as_ref(),
            Some(&object.sha256),
            "{key}"
        );
    }
    assert!(
        !objects.contains_key(".vault-mirror/lease"),
        "the lease was given back"
    );
    assert_eq!(incomplete_uploads(sandbox.moto()), Vec::<String>::new());
    Some(proxy)
}

/// The first CompleteMultipartUpload is applied and its answer lost; the
/// store has forgotten the upload when it is tried again (`NoSuchUpload`,
/// as some S3-compatible stores answer; moto, as AWS, would answer it as
/// the first, so the proxy answers for it).
#[test]
fn store_a_completion_whose_answer_was_lost_is_found_completed() {
    // The completion lost, and whether it was tried since.
    let lost = std::sync::Mutex::new(None::<(String, bool)>);
    let Some(proxy) = a_lost_answer_is_made_safe(
        move |seen| {
            let completes = seen.method == "POST" && seen.target.contains("uploadId=");
            if !completes {
                return None;
            }
            let mut lost = lost.lock().unwrap();
            match lost.as_mut() {
                None => {
                    *lost = Some((seen.target.clone(), false));
                    Some(Fault::LoseAnswer)
                }
                Some((target, again)) if *target == seen.target && !*again => {
                    *again = true;
                    Some(Fault::NoSuchUpload)
                }
                Some(_) => None,
            }
        },
        &[],
    ) else {
        return;
    };
    let kinds: Vec<Fault> = proxy.injected().into_iter().map(|(_, kind)| kind).collect();
    assert_eq!(kinds, [Fault::LoseAnswer, Fault::NoSuchUpload]);
}

#[test]
fn store_a_lease_creation_whose_answer_was_lost_is_found_ours() {
    let Some(proxy) = a_lost_answer_is_made_safe(
        lose_first(|seen| {
            seen.target.contains(".vault-mirror/lease") && seen.header("if-none-match").is_some()
        }),
        &[],
    ) else {
        return;
    };
    assert_eq!(proxy.injected().len(), 1);
}

#[test]
fn store_a_lease_renewal_whose_answer_was_lost_is_found_ours() {
    let Some(proxy) = a_lost_answer_is_made_safe(
        lose_first(|seen| {
            seen.target.contains(".vault-mirror/lease") && seen.header("if-match").is_some()
        }),
        &[("VAULT_MIRROR_TEST_LEASE_RENEW_MS", "50")],
    ) else {
        return;
    };
    assert_eq!(proxy.injected().len(), 1);
}
