//! The exit-code policy: what each code means (docs/reference.md, "Exit codes"),
//! and how the codes of many connections combine into the process's one.

/// How a command ended, as the process's exit code says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExitStatus {
    /// 0: everything selected is mirrored and verified (or intact).
    Ok,
    /// 1: a fatal error; nothing more could be done.
    Failed,
    /// 2: a usage or configuration error; nothing was created.
    Usage,
    /// 3: finished, with something failed, pending, missing or refused by a guard.
    Partial,
    /// 4: the API refused the key, or the connection needs re-linking.
    Refused,
    /// 130: stopped by Ctrl-C (SIGINT).
    Interrupted,
    /// 143: stopped by SIGTERM.
    Terminated,
}

impl ExitStatus {
    /// The process exit code.
    pub const fn code(self) -> i32 {
        match self {
            ExitStatus::Ok => 0,
            ExitStatus::Failed => 1,
            ExitStatus::Usage => 2,
            ExitStatus::Partial => 3,
            ExitStatus::Refused => 4,
            ExitStatus::Interrupted => 130,
            ExitStatus::Terminated => 143,
        }
    }

    /// The status an exit code stands for; a code outside the table is a
    /// failure.
    pub const fn from_code(code: i32) -> Self {
        match code {
            0 => ExitStatus::Ok,
            2 => ExitStatus::Usage,
            3 => ExitStatus::Partial,
            4 => ExitStatus::Refused,
            130 => ExitStatus::Interrupted,
            143 => ExitStatus::Terminated,
            _ => ExitStatus::Failed,
        }
    }

    /// How bad this is among many connections' statuses (higher wins).
    ///
    /// Stopped (143, then 130) > failed (1) > refused (4) > partial (3) > ok.
    /// A connection's usage error (2: its `[[connections]]` table is wrong,
    /// or it has no archive to verify) ranks as a failure of that
    /// connection, and the whole is 1, not 2: 2 promises that nothing was
    /// done because the command line itself was wrong, which is false once
    /// the other connections have run.
    const fn rank(self) -> u8 {
        match self {
            ExitStatus::Ok => 0,
            ExitStatus::Partial => 1,
            ExitStatus::Refused => 2,
            ExitStatus::Failed | ExitStatus::Usage => 3,
            ExitStatus::Interrupted => 4,
            ExitStatus::Terminated => 5,
        }
    }

    /// The exit status of a command over many connections, from each
    /// one's: the worst by [`rank`](Self::rank), a usage error counted as
    /// a failure; `Ok` when there are none.
    pub fn worst(statuses: impl IntoIterator<Item = ExitStatus>) -> ExitStatus {
        statuses
            .into_iter()
            .map(|status| match status {
                ExitStatus::Usage => ExitStatus::Failed,
                status => status,
            })
            .max_by_key(|status| status.rank())
            .unwrap_or(ExitStatus::Ok)
    }
}

/// A status is written as its code (`"exit_code": 3` in every `--json`).
impl serde::Serialize for ExitStatus {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i32(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::ExitStatus::{self, *};

    const ALL: [ExitStatus; 7] = [Ok, Failed, Usage, Partial, Refused, Interrupted, Terminated];

    #[test]
    fn codes_are_the_readmes() {
        let codes: Vec<i32> = ALL.iter().map(|status| status.code()).collect();
        assert_eq!(codes, [0, 1, 2, 3, 4, 130, 143]);
        for status in ALL {
            assert_eq!(ExitStatus::from_code(status.code()), status);
        }
        assert_eq!(ExitStatus::from_code(101), Failed);
    }

    #[test]
    fn the_worst_of_many_wins() {
        let worst = |statuses: &[ExitStatus]| ExitStatus::worst(statuses.iter().copied());
        assert_eq!(worst(&[]), Ok);
        assert_eq!(worst(&[Ok, Ok]), Ok);
        assert_eq!(worst(&[Ok, Partial, Ok]), Partial);
        assert_eq!(worst(&[Partial, Refused, Ok]), Refused);
        assert_eq!(worst(&[Refused, Failed, Partial]), Failed);
        assert_eq!(worst(&[Failed, Interrupted]), Interrupted);
        assert_eq!(worst(&[Interrupted, Terminated, Ok]), Terminated);
    }

    /// A connection's usage error is that connection's failure: it beats
    /// refused and partial, and the whole says 1, never 2.
    #[test]
    fn a_usage_error_among_many_is_a_failure() {
        let worst = |statuses: &[ExitStatus]| ExitStatus::worst(statuses.iter().copied());
        assert_eq!(worst(&[Ok, Usage]), Failed);
        assert_eq!(worst(&[Usage]), Failed);
        assert_eq!(worst(&[Partial, Usage, Refused]), Failed);
        assert_eq!(worst(&[Usage, Terminated]), Terminated);
    }

    /// The process's code from the connections' codes.
    #[test]
    fn the_worst_exit_code_wins() {
        let worst = |codes: &[i32]| {
            ExitStatus::worst(codes.iter().map(|code| ExitStatus::from_code(*code))).code()
        };
        assert_eq!(worst(&[]), 0);
        assert_eq!(worst(&[0, 0]), 0);
        assert_eq!(worst(&[0, 3, 0]), 3);
        assert_eq!(worst(&[3, 4, 0]), 4);
        assert_eq!(worst(&[4, 1, 3]), 1);
        assert_eq!(worst(&[0, 2]), 1);
        assert_eq!(worst(&[3, 2]), 1);
    }
}
