//! The object store misbehaving, through a fault-injecting proxy between
//! vault-mirror and moto (`store_proxy`): throttling, server errors,
//! resets and lost answers are retried under the one retry policy
//! (`archive::bucket::retry`), counted in the summary, and a run that ends
//! by itself leaves no incomplete multipart upload.

use std::collections::BTreeMap;

use vault_mirror::fake::{FakeMedia, FakeOptions, FakeVariant, Vault};

use crate::common::{require, stored_variants};
use crate::moto::{assert_objects_match, incomplete_uploads};
use crate::sandbox::Sandbox;
use crate::store_proxy::{Fault, FaultProxy, every};

/// The sample vault plus two videos of 9 and 12 MB, so that multipart
/// uploads (two parts each) happen.
fn vault_with_videos() -> Vault {
    let mut vault = Vault::sample(24, 3);
    for (id, size) in [("9100000001", 9_400_000), ("9100000002", 12_300_000)] {
        let mut variants = BTreeMap::new();
        variants.insert(
            "full".to_owned(),
            FakeVariant::stored(id, "full", "video/mp4", size),
        );
        vault.media.insert(
            id.to_owned(),
            FakeMedia {
                id: id.to_owned(),
                media_type: "video".into(),
                duration: Some(2.0),
                variants,
            },
        );
        vault.lists[0].members.push(id.to_owned());
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
    let (sandbox, proxy) = require!(behind_a_proxy(&vault, every(5, 2)));
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
    // Each fault cost one retry (none came twice in a row).
    assert_eq!(
        summary["store_retries"].as_u64().unwrap() as usize,
        injected.len(),
        "{output}"
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
