//! Each switchable fault of the fake alone, then mixed: every run must end
//! with every variant verified, and the fake's counters must show that each
//! fault switched on really struck (loopback only).

use std::time::Duration;

use vault_mirror::fake::{ApiRequest, Faults, RateLimitAnswer, RateLimitFault, Stats, Vault};
use vault_mirror::pipeline::Summary;
use vault_mirror::settings::Settings;

use crate::common::{assert_archive_matches, mirror, stored_variants};
use crate::sandbox::{Sandbox, with_faults};

/// Mirrors `vault` through a fake with `faults`; asserts a complete,
/// correct archive and returns the summary and the fake's counters.
async fn mirror_through(
    vault: Vault,
    faults: Faults,
    adjust: impl FnOnce(&mut Settings),
) -> (Summary, Stats) {
    let (summary, stats, _) = mirror_through_logged(vault, faults, adjust).await;
    (summary, stats)
}

/// [`mirror_through`], also returning every API call the fake saw.
async fn mirror_through_logged(
    vault: Vault,
    faults: Faults,
    adjust: impl FnOnce(&mut Settings),
) -> (Summary, Stats, Vec<ApiRequest>) {
    let options = with_faults(faults);
    let sandbox = Sandbox::start(&vault, options).await;
    let mut settings = sandbox.settings();
    settings.network.transfer_attempts = 12;
    settings.network.api_attempts = 12;
    adjust(&mut settings);
    let summary = mirror(&settings).await;
    assert_eq!(summary.exit_code, 0, "{summary:#?}");
    assert!(
        summary.failed.is_empty() && summary.pending.is_empty(),
        "{summary:#?}"
    );
    // Against the vault as it is now (faults may have stored pending variants).
    let vault = sandbox.server().with_vault(|vault| vault.clone());
    let expected = stored_variants(&vault, &["full", "thumb"]);
    assert_eq!(
        assert_archive_matches(sandbox.out(), &settings.db, &vault),
        expected
    );
    (
        summary,
        sandbox.server().stats(),
        sandbox.server().api_requests(),
    )
}

/// The API calls the client made while told to wait: for each 429, the
/// next call must come no sooner than `told` after the 429 was answered
/// (`told` picks the wait from what the 429 said; a few ms of slack for
/// clock granularity). Returns how many 429s were followed by a call.
fn assert_waited_as_told(
    requests: &[ApiRequest],
    told: impl Fn(&RateLimitAnswer) -> Duration,
) -> usize {
    let slack = Duration::from_millis(5);
    let mut checked = 0;
    for (index, pair) in requests.windows(2).enumerate() {
        let Some(answer) = &pair[0].rate_limited else {
            continue;
        };
        let waited = pair[1].arrived.saturating_duration_since(answer.answered);
        let wait = told(answer);
        assert!(
            waited + slack >= wait,
            "API call {} came {waited:?} after the 429 before it, which said to wait {wait:?} \
             ({answer:?})",
            index + 1
        );
        checked += 1;
    }
    checked
}

fn sample() -> Vault {
    Vault::sample(24, 2)
}

#[tokio::test]
async fn rate_limit_bursts_with_retry_after() {
    let faults = Faults {
        rate_limit: Some(RateLimitFault {
            every: 3,
            burst: 2,
            retry_after: Some(1),
            reset_after: None,
        }),
        ..Faults::default()
    };
    let (_, stats, requests) = mirror_through_logged(sample(), faults, |_| {}).await;
    assert!(stats.rate_limited >= 2, "{stats:?}");
    // Every call after a 429 waited out its `Retry-After` (the fake's
    // 1 s, far above the client's own 10 ms retry delay).
    let checked = assert_waited_as_told(&requests, |answer| {
        Duration::from_secs(answer.retry_after.expect("every 429 says Retry-After"))
    });
    assert!(checked >= 2, "{checked} waits checked: {requests:?}");
}

#[tokio::test]
async fn rate_limit_bursts_with_a_reset_header_or_nothing() {
    for reset_after in [Some(1), None] {
        let faults = Faults {
            rate_limit: Some(RateLimitFault {
                every: 4,
                burst: 1,
                retry_after: None,
                reset_after,
            }),
            ..Faults::default()
        };
        let (_, stats, requests) = mirror_through_logged(sample(), faults, |_| {}).await;
        assert!(stats.rate_limited >= 1, "{stats:?}");
        // With `X-RateLimit-Reset` the client waits until the reset; with
        // no word at all, at least its own retry delay (10 ms here).
        let checked = assert_waited_as_told(&requests, |answer| {
            assert_eq!(answer.retry_after, None);
            match answer.reset_after {
                Some(seconds) => Duration::from_secs(seconds),
                None => Duration::from_millis(10),
            }
        });
        assert!(checked >= 1, "{checked} waits checked: {requests:?}");
    }
}

#[tokio::test]
async fn api_server_errors_and_html_answers_are_retried() {
    let faults = Faults {
        api_server_errors: 0.3,
        ..Faults::default()
    };
    let (_, stats) = mirror_through(sample(), faults, |_| {}).await;
    assert!(stats.server_errors >= 1, "{stats:?}");
    assert_eq!(stats.media_server_errors, 0, "{stats:?}");
    let faults = Faults {
        api_html: 0.3,
        ..Faults::default()
    };
    let (_, stats) = mirror_through(sample(), faults, |_| {}).await;
    assert!(stats.html_answers >= 1, "{stats:?}");
    assert_eq!(stats.truncated_answers, 0, "{stats:?}");
}

#[tokio::test]
async fn media_server_errors_are_retried() {
    let faults = Faults {
        media_server_errors: 0.3,
        ..Faults::default()
    };
    let (summary, stats) = mirror_through(sample(), faults, |_| {}).await;
    assert!(stats.media_server_errors >= 1, "{stats:?}");
    assert_eq!(stats.server_errors, stats.media_server_errors, "{stats:?}");
    assert!(
        summary.transfer_retries >= stats.server_errors,
        "{summary:?} {stats:?}"
    );
}

#[tokio::test]
async fn cut_bodies_resume_from_the_bytes_on_disk() {
    let vault = sample();
    let archive_bytes: u64 = vault
        .media
        .values()
        .flat_map(|media| media.variants.iter())
        .filter(|(label, _)| matches!(label.as_str(), "full" | "thumb"))
        .map(|(_, variant)| variant.body.len() as u64)
        .sum();
    let faults = Faults {
        cut_bodies: 0.3,
        ..Faults::default()
    };
    let (summary, stats) = mirror_through(vault, faults, |_| {}).await;
    assert!(stats.cut_bodies >= 3, "{stats:?}");
    assert!(
        stats.range_requests >= 1,
        "cut transfers should resume: {stats:?}"
    );
    // Resuming keeps the bytes fetched close to the archive's size.
    assert!(
        summary.bytes < archive_bytes * 3 / 2,
        "{} of {archive_bytes}",
        summary.bytes
    );
}

#[tokio::test]
async fn cut_bodies_without_range_support_start_over() {
    let faults = Faults {
        cut_bodies: 0.3,
        ignore_range: true,
        ..Faults::default()
    };
    let (_, stats) = mirror_through(sample(), faults, |_| {}).await;
    assert!(stats.cut_bodies >= 3, "{stats:?}");
    // Cut transfers asked to resume, and were sent everything again.
    assert!(stats.ignored_ranges >= 1, "{stats:?}");
    assert_eq!(stats.range_requests, 0);
}

#[tokio::test]
async fn connection_resets_are_retried() {
    let faults = Faults {
        resets: 0.3,
        ..Faults::default()
    };
    let (_, stats) = mirror_through(sample(), faults, |_| {}).await;
    assert!(stats.resets >= 3, "{stats:?}");
}

#[tokio::test]
async fn wrong_sizes_and_types_are_quarantined_then_fetched_again() {
    for faults in [
        Faults {
            wrong_size: 0.5,
            ..Faults::default()
        },
        Faults {
            wrong_type: 0.5,
            ..Faults::default()
        },
    ] {
        let (summary, stats) = mirror_through(sample(), faults, |_| {}).await;
        let corrupted = stats.wrong_sizes + stats.wrong_types;
        assert!(corrupted >= 3, "{stats:?}");
        // Each corrupted serve cost one re-signed refetch, nothing more.
        assert_eq!(summary.transfer_retries, corrupted, "{summary:?}");
    }
}

#[tokio::test]
async fn pending_variants_are_waited_for() {
    let mut vault = sample();
    for media in vault.media.values_mut().take(5) {
        media.variants.get_mut("full").unwrap().status = "pending".into();
    }
    let faults = Faults {
        pending_for: Some(Duration::from_millis(700)),
        ..Faults::default()
    };
    let (summary, stats) = mirror_through(vault, faults, |settings| {
        settings.mirror.wait_pending = Some(Duration::from_secs(20));
        settings.network.poll_interval = Duration::from_millis(200);
    })
    .await;
    assert!(stats.stored_late >= 5, "{stats:?}");
    assert!(summary.downloaded >= 5);
}

#[tokio::test]
async fn a_run_many_times_the_url_lifetime_finishes_without_failures() {
    // URLs live 1 s; transfers are throttled so the run lasts several
    // seconds and most transfers outlive the URL they started with: the
    // sample's 421 KiB at 4 × 24 KiB/s take 4.4 s at least. (At 40 KiB/s
    // the 3 s below held only while drawing the sample media, cached for
    // the whole test binary, was part of the run.)
    let faults = Faults {
        url_ttl: Some(Duration::from_secs(1)),
        bandwidth_per_transfer: Some(24 * 1024),
        ..Faults::default()
    };
    let started = std::time::Instant::now();
    let (summary, stats) = mirror_through(Vault::sample(16, 2), faults, |settings| {
        settings.mirror.jobs = 4;
        settings.network.expiry_margin = Duration::from_millis(300);
    })
    .await;
    assert!(
        started.elapsed() > Duration::from_secs(3),
        "the run should outlast many URL lifetimes"
    );
    assert!(stats.throttled_bodies > 0, "{stats:?}");
    assert!(summary.urls_resigned > 0, "{summary:?}");
    assert!(
        stats.expired_hits > 0 || summary.resign_calls > 0,
        "{stats:?}"
    );
}

#[tokio::test]
async fn everything_at_once() {
    let faults = Faults {
        url_ttl: Some(Duration::from_secs(2)),
        bandwidth_per_transfer: Some(512 * 1024),
        rate_limit: Some(RateLimitFault {
            every: 6,
            burst: 1,
            retry_after: Some(1),
            reset_after: Some(1),
        }),
        api_server_errors: 0.1,
        api_html: 0.1,
        media_server_errors: 0.1,
        cut_bodies: 0.2,
        resets: 0.1,
        wrong_size: 0.1,
        wrong_type: 0.1,
        ..Faults::default()
    };
    let (summary, stats) = mirror_through(Vault::sample(30, 3), faults, |settings| {
        settings.network.expiry_margin = Duration::from_millis(500);
    })
    .await;
    // Every fault struck (in 40 runs, two at a time, each struck at least
    // twice).
    let api_server_errors = stats.server_errors - stats.media_server_errors;
    for (fault, strikes) in [
        ("rate_limit", stats.rate_limited),
        ("api_server_errors", api_server_errors),
        ("api_html", stats.html_answers),
        ("media_server_errors", stats.media_server_errors),
        ("cut_bodies", stats.cut_bodies),
        ("resets", stats.resets),
        ("wrong_size", stats.wrong_sizes),
        ("wrong_type", stats.wrong_types),
        ("bandwidth_per_transfer", stats.throttled_bodies),
    ] {
        assert!(strikes > 0, "{fault} never struck: {stats:?}");
    }
    // URLs outlived their 2 s: the run had to re-sign them.
    assert!(summary.urls_resigned > 0, "{summary:?}");
}

#[tokio::test]
async fn limit_rate_caps_the_overall_bandwidth() {
    let vault = Vault::sample(10, 1);
    let bytes: usize = vault
        .media
        .values()
        .flat_map(|media| media.variants.iter())
        .filter(|(label, _)| matches!(label.as_str(), "full" | "thumb"))
        .map(|(_, variant)| variant.body.len())
        .sum();
    let rate = 128 * 1024;
    let started = std::time::Instant::now();
    mirror_through(vault, Faults::default(), |settings| {
        settings.mirror.limit_rate = Some(rate as u64);
    })
    .await;
    // The bucket starts full (one second of bytes), then refills at `rate`.
    let floor = (bytes.saturating_sub(rate)) as f64 / rate as f64 * 0.8;
    assert!(
        started.elapsed().as_secs_f64() >= floor,
        "{bytes} bytes in {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn attempts_that_make_progress_do_not_spend_the_budget() {
    // Most bodies are cut, and only two tries are allowed: each cut attempt
    // still grows the file, so every variant completes.
    let faults = Faults {
        cut_bodies: 0.6,
        ..Faults::default()
    };
    let (summary, stats) = mirror_through(sample(), faults, |settings| {
        settings.network.transfer_attempts = 2;
    })
    .await;
    assert!(stats.cut_bodies > summary.downloaded / 2, "{stats:?}");
}

#[tokio::test]
async fn refused_urls_are_re_signed_and_transfers_resume() {
    // The media host refuses some URLs as expired (403, an XML body) and
    // cuts some bodies: the transfer gets a fresh URL and goes on from the
    // bytes on disk.
    let faults = Faults {
        refused_urls: 0.3,
        cut_bodies: 0.3,
        ..Faults::default()
    };
    let (summary, stats) = mirror_through(sample(), faults, |_| {}).await;
    assert!(stats.refused_urls >= 3, "{stats:?}");
    assert!(stats.expired_hits >= stats.refused_urls, "{stats:?}");
    assert!(stats.cut_bodies >= 1, "{stats:?}");
    assert_eq!(summary.expired_urls, stats.expired_hits, "{summary:?}");
    assert!(summary.urls_resigned >= stats.expired_hits);
    // Re-signing does not cost the bytes already on disk.
    assert!(stats.range_requests >= 1, "{stats:?}");
}

/// Ten minutes in ms: how far the fake's clock is set off this machine's.
const TEN_MINUTES_MS: i64 = 10 * 60 * 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_expiry_is_judged_by_the_servers_clock() {
    // `expiresAt` is in the server's time. URLs live 2 s and transfers are
    // slow, so the run outlasts several lifetimes and URLs must be
    // re-signed ahead of their transfers. A server clock 10 minutes behind
    // made every URL look expired on arrival (a re-sign per job); 10
    // minutes ahead, none looked close to expiring (transfers hit expired
    // URLs). Read from the API's `Date`, both runs go like the one with
    // the clocks in step. Without a `Date` to read, the local clock is all
    // there is: a URL that looks expired on arrival is used as it is and
    // re-signed only when refused, never re-signed per job ahead of time.
    let run = |clock_skew_ms, garbled_date| {
        let faults = Faults {
            url_ttl: Some(Duration::from_secs(2)),
            bandwidth_per_transfer: Some(32 * 1024),
            clock_skew_ms,
            garbled_date,
            ..Faults::default()
        };
        mirror_through(Vault::sample(24, 2), faults, |settings| {
            settings.mirror.jobs = 4;
            settings.network.expiry_margin = Duration::from_secs(1);
        })
    };
    let (in_step, behind, ahead, behind_without_date) = tokio::join!(
        run(0, false),
        run(-TEN_MINUTES_MS, false),
        run(TEN_MINUTES_MS, false),
        run(-TEN_MINUTES_MS, true),
    );
    let runs = [
        ("0", &in_step),
        ("-10m", &behind),
        ("+10m", &ahead),
        ("-10m, Date unreadable", &behind_without_date),
    ];
    for (skew, (summary, stats)) in runs {
        eprintln!(
            "clock skew {skew}: {} batch calls ({} to re-sign), {} expired hits",
            stats.batch_calls, summary.resign_calls, stats.expired_hits
        );
        assert!(stats.throttled_bodies > 0, "skew {skew}: {stats:?}");
    }
    // The clock faults struck: answers' `Date` kept the skewed clock, or
    // could not be read.
    assert_eq!(in_step.1.skewed_dates, 0, "{:?}", in_step.1);
    for (_, stats) in [&behind, &ahead] {
        assert!(
            stats.skewed_dates > 0 && stats.garbled_dates == 0,
            "{stats:?}"
        );
    }
    let garbled = &behind_without_date.1;
    assert!(
        garbled.garbled_dates > 0 && garbled.skewed_dates == 0,
        "{garbled:?}"
    );
    let (summary, stats) = &in_step;
    assert!(summary.resign_calls > 0, "the run must need re-signing");
    assert_eq!(stats.expired_hits, 0, "{stats:?}");
    for (skew, (summary, stats)) in &runs[1..3] {
        assert_eq!(stats.expired_hits, 0, "skew {skew}: {stats:?}");
        assert!(
            stats.batch_calls <= 2 * in_step.1.batch_calls,
            "skew {skew}: {} batch calls, {} in step ({summary:?})",
            stats.batch_calls,
            in_step.1.batch_calls
        );
    }
    let (summary, stats) = &behind_without_date;
    assert_eq!(
        summary.urls_resigned, summary.expired_urls,
        "only refused URLs are re-signed: {summary:?}"
    );
    assert!(
        stats.batch_calls < summary.variants_seen,
        "{stats:?} {summary:?}"
    );
}
