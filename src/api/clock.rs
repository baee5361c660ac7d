//! The API's clock. `expiresAt`, `X-RateLimit-Reset` and a `Retry-After`
//! date are instants in the server's time, which may be minutes off this
//! machine's. [`ServerClock`] estimates the offset from the `Date` header of
//! every API answer, so the pipeline asks it how long a URL has left
//! instead of comparing server instants with the local clock.
//!
//! Invariants: without a usable `Date` the offset is 0 (the local clock).
//! An answer whose `Date` contradicts the estimate does not move it alone;
//! two in a row that agree with each other do (a clock was set). A URL
//! lifetime that is not positive, or longer than any signed URL lives, is
//! not trusted ([`UrlLifetime::new`] gives none): such a URL is used at once
//! and re-signed only when the media host refuses it, never once per job.

use std::sync::{Mutex, PoisonError};

use reqwest::header::{self, HeaderMap};

/// `Date` names whole seconds: the answer was written within the second
/// that starts at the instant it names.
const DATE_RESOLUTION_MS: i64 = 1000;

/// The longest life believed for a signed URL. S3-style signatures are
/// capped at 7 days; an `expiresAt` further ahead (years, say) is a clock
/// or a field gone wrong, not a URL's expiry.
const LONGEST_LIFETIME_MS: i64 = 7 * 24 * 60 * 60 * 1000;

/// The server's clock as this machine sees it: ours plus an offset learnt
/// from the API's answers.
#[derive(Debug, Default)]
pub struct ServerClock {
    estimate: Mutex<Estimate>,
}

impl ServerClock {
    /// Learns from one answer: its `Date`, the local time the request left
    /// (`sent_ms`) and the local time its headers arrived (`received_ms`),
    /// both epoch ms. An answer without a readable `Date` changes nothing.
    pub fn observe(&self, headers: &HeaderMap, sent_ms: i64, received_ms: i64) {
        let Some(date) = headers.get(header::DATE).and_then(|v| v.to_str().ok()) else {
            return;
        };
        if let Some(reading) = Offsets::read(date, sent_ms, received_ms) {
            self.estimate
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .add(reading);
        }
    }

    /// How far the server's clock is ahead of ours, in ms (negative:
    /// behind); 0 until an answer carried a `Date`.
    pub fn offset_ms(&self) -> i64 {
        let estimate = self.estimate.lock().unwrap_or_else(PoisonError::into_inner);
        estimate.agreed.map_or(0, Offsets::middle)
    }

    /// The server's time now, epoch ms.
    pub fn now_ms(&self) -> i64 {
        crate::now_ms().saturating_add(self.offset_ms())
    }

    /// How long the URL has left by the server's clock, in ms (negative
    /// once it has expired).
    pub fn left_ms(&self, lifetime: &UrlLifetime) -> i64 {
        lifetime.expires_at.saturating_sub(self.now_ms())
    }
}

/// A signed URL's life by the server's clock (epoch ms): given at
/// `signed_at`, refused from `expires_at` on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UrlLifetime {
    pub signed_at: i64,
    pub expires_at: i64,
}

impl UrlLifetime {
    /// The life of a URL the API gave with `expires_at` when the server's
    /// clock read `server_now`. None when it cannot be reasoned about: no
    /// `expiresAt`, one already past, or one further ahead than a signed
    /// URL lives. The URL is then used as it is, and re-signed only when
    /// the media host refuses it.
    pub fn new(expires_at: Option<i64>, server_now: i64) -> Option<UrlLifetime> {
        let expires_at = expires_at?;
        let length = expires_at.checked_sub(server_now)?;
        (length > 0 && length <= LONGEST_LIFETIME_MS).then_some(UrlLifetime {
            signed_at: server_now,
            expires_at,
        })
    }

    /// The whole lifetime, in ms (always positive).
    pub fn length_ms(&self) -> i64 {
        self.expires_at - self.signed_at
    }
}

/// An HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`, or the two obsolete
/// forms), or an RFC 3339 one as some servers send in `Retry-After`, as
/// epoch ms.
pub fn parse_date(text: &str) -> Option<i64> {
    let text = text.trim();
    let when = httpdate::parse_http_date(text)
        .ok()
        .or_else(|| humantime::parse_rfc3339_weak(text).ok())?;
    let since = when.duration_since(std::time::UNIX_EPOCH).ok()?;
    i64::try_from(since.as_millis()).ok()
}

/// The offsets (server minus local, ms) that answers allow: `low..=high`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Offsets {
    low: i64,
    high: i64,
}

impl Offsets {
    /// What one answer allows: the server wrote its `Date` at some instant
    /// of the second it names, and at some local time between sending and
    /// receiving. The middle of that is the middle of the round trip, half
    /// a second into the named second. None when our own clock went back
    /// during the call (the times say nothing then) or `Date` is unreadable.
    fn read(date: &str, sent_ms: i64, received_ms: i64) -> Option<Offsets> {
        if received_ms < sent_ms {
            return None;
        }
        let date_ms = parse_date(date)?;
        Some(Offsets {
            low: date_ms.saturating_sub(received_ms),
            high: (date_ms + DATE_RESOLUTION_MS - 1).saturating_sub(sent_ms),
        })
    }

    fn overlap(self, other: Offsets) -> Option<Offsets> {
        let low = self.low.max(other.low);
        let high = self.high.min(other.high);
        (low <= high).then_some(Offsets { low, high })
    }

    fn middle(self) -> i64 {
        // In i128: the bounds of a wild `Date` may be near i64's ends.
        ((i128::from(self.low) + i128::from(self.high)) / 2) as i64
    }
}

/// The offsets every answer since the last change of clock allows (each
/// answer narrows them, so the estimate sharpens as answers arrive at
/// different fractions of a second), and the last answer that disagreed.
#[derive(Debug, Default)]
struct Estimate {
    agreed: Option<Offsets>,
    dissent: Option<Offsets>,
}

impl Estimate {
    fn add(&mut self, reading: Offsets) {
        let Some(agreed) = self.agreed else {
            self.agreed = Some(reading);
            return;
        };
        if let Some(narrower) = agreed.overlap(reading) {
            self.agreed = Some(narrower);
            self.dissent = None;
        } else if let Some(confirmed) = self.dissent.and_then(|dissent| dissent.overlap(reading)) {
            // Two answers in a row place the server's clock elsewhere: one
            // of the clocks was set (or drifted past the estimate).
            self.agreed = Some(confirmed);
            self.dissent = None;
        } else {
            // One odd `Date` (a proxy's, a broken node's) moves nothing yet.
            self.dissent = Some(reading);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-01-01 00:00:00 UTC.
    const NEW_YEAR: i64 = 1_767_225_600_000;
    const NEW_YEAR_DATE: &str = "Thu, 01 Jan 2026 00:00:00 GMT";

    fn headers(date: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::DATE, date.parse().unwrap());
        headers
    }

    fn date_at(epoch_ms: i64) -> String {
        let when = crate::epoch_time(epoch_ms);
        httpdate::fmt_http_date(when)
    }

    #[test]
    fn dates_parse_in_every_form_and_nothing_else() {
        assert_eq!(parse_date(NEW_YEAR_DATE), Some(NEW_YEAR));
        let late = " Thu, 01 Jan 2026 00:00:07 GMT ";
        assert_eq!(parse_date(late), Some(NEW_YEAR + 7000));
        assert_eq!(
            parse_date("Thursday, 01-Jan-26 00:00:00 GMT"),
            Some(NEW_YEAR)
        );
        assert_eq!(parse_date("Thu Jan  1 00:00:00 2026"), Some(NEW_YEAR));
        assert_eq!(parse_date("2026-01-01T00:00:00Z"), Some(NEW_YEAR));
        let bad = [
            "",
            "yesterday",
            "1767225600",
            "Thu, 01 Jan 2026 25:00:00 GMT",
            // The weekday must be the date's.
            "Fri, 01 Jan 2026 00:00:00 GMT",
        ];
        for text in bad {
            assert_eq!(parse_date(text), None, "{text:?}");
        }
    }

    #[test]
    fn one_answer_gives_the_middle_of_its_round_trip_and_second() {
        let clock = ServerClock::default();
        assert_eq!(clock.offset_ms(), 0, "no answer yet: the local clock");
        // Sent at 10:00:00.000 local, received 200 ms later; the server
        // said 09:50:00: it wrote that between .000 and .999 of its second.
        let sent = NEW_YEAR + 600_000;
        clock.observe(&headers(NEW_YEAR_DATE), sent, sent + 200);
        // The middle of -600_200 ..= -599_001.
        assert_eq!(clock.offset_ms(), -599_600);
    }

    #[test]
    fn answers_narrow_the_estimate_towards_the_true_offset() {
        // The server is 10 minutes and 250 ms behind; each call takes 30 ms
        // and the server answers in its middle. Calls 1.37 s apart fall at
        // different fractions of the server's second.
        let offset = -600_250;
        let clock = ServerClock::default();
        let mut errors = Vec::new();
        for call in 0..12 {
            let sent = NEW_YEAR + call * 1_370;
            let written = sent + 15 + offset;
            let date = date_at(written - written.rem_euclid(1000));
            clock.observe(&headers(&date), sent, sent + 30);
            errors.push((clock.offset_ms() - offset).abs());
        }
        // One answer pins the offset to its second and round trip; twelve
        // to about the widest gap between the fractions they fell at.
        assert!(errors[0] <= 515, "{errors:?}");
        assert!(errors[11] <= 50, "{errors:?}");
        assert!(errors[11] < errors[0], "{errors:?}");
    }

    #[test]
    fn one_odd_date_is_ignored_two_that_agree_move_the_estimate() {
        let clock = ServerClock::default();
        let at = |seconds: i64| NEW_YEAR + seconds * 1000;
        clock.observe(&headers(&date_at(at(0))), at(0), at(0) + 10);
        let in_step = clock.offset_ms();
        assert!(in_step.abs() < 1000, "{in_step}");
        // A proxy's page says 1994: ignored alone.
        clock.observe(&headers("Sun, 06 Nov 1994 08:49:37 GMT"), at(1), at(1) + 10);
        assert_eq!(clock.offset_ms(), in_step);
        // The next answer agrees with the estimate: the dissent is forgotten.
        clock.observe(&headers(&date_at(at(2))), at(2), at(2) + 10);
        clock.observe(&headers(&date_at(at(3) + 3_600_000)), at(3), at(3) + 10);
        assert!(clock.offset_ms().abs() < 1000);
        clock.observe(&headers(&date_at(at(4))), at(4), at(4) + 10);
        assert!(clock.offset_ms().abs() < 1000);
        // The server's clock was set an hour ahead: the second answer
        // saying so moves the estimate.
        clock.observe(&headers(&date_at(at(5) + 3_600_000)), at(5), at(5) + 10);
        assert!(clock.offset_ms().abs() < 1000);
        clock.observe(&headers(&date_at(at(6) + 3_600_000)), at(6), at(6) + 10);
        assert!(
            (clock.offset_ms() - 3_600_000).abs() < 1000,
            "{}",
            clock.offset_ms()
        );
    }

    #[test]
    fn unusable_answers_change_nothing() {
        let clock = ServerClock::default();
        clock.observe(&HeaderMap::new(), NEW_YEAR, NEW_YEAR + 5);
        clock.observe(&headers("not a date"), NEW_YEAR, NEW_YEAR + 5);
        // Our clock went back during the call: the times bound nothing.
        clock.observe(&headers(NEW_YEAR_DATE), NEW_YEAR + 5, NEW_YEAR);
        assert_eq!(clock.offset_ms(), 0);
        let now = crate::now_ms();
        assert!((clock.now_ms() - now).abs() < 1000);
    }

    #[test]
    fn lifetimes_are_kept_only_when_plausible() {
        let now = NEW_YEAR;
        let lifetime = UrlLifetime::new(Some(now + 600_000), now).unwrap();
        assert_eq!(lifetime.length_ms(), 600_000);
        assert_eq!(lifetime.signed_at, now);
        assert!(UrlLifetime::new(Some(now + LONGEST_LIFETIME_MS), now).is_some());
        // Absent, already past when given, or years ahead: not trusted.
        assert_eq!(UrlLifetime::new(None, now), None);
        assert_eq!(UrlLifetime::new(Some(now), now), None);
        assert_eq!(UrlLifetime::new(Some(now - 600_000), now), None);
        assert_eq!(UrlLifetime::new(Some(1_715_886_400_000), now), None);
        assert_eq!(
            UrlLifetime::new(Some(now + 3 * 365 * 86_400_000), now),
            None
        );
        assert_eq!(UrlLifetime::new(Some(i64::MIN), i64::MAX), None);
        assert_eq!(UrlLifetime::new(Some(i64::MAX), i64::MIN), None);
    }

    #[test]
    fn time_left_is_counted_on_the_servers_clock() {
        // The server is 10 minutes behind and gave a URL for 5 minutes: by
        // the local clock it expired 5 minutes ago; by the server's it
        // has about 5 minutes left.
        let clock = ServerClock::default();
        let local = crate::now_ms();
        let server = local - 600_000;
        let date = date_at(server - server.rem_euclid(1000));
        clock.observe(&headers(&date), local, local + 1);
        let lifetime = UrlLifetime::new(Some(server + 300_000), clock.now_ms()).unwrap();
        let left = clock.left_ms(&lifetime);
        assert!((299_000..=301_100).contains(&left), "{left}");
    }
}
