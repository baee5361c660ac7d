//! Units that cross the crate as plain integers — byte sizes and
//! epoch-millisecond times — and how each is stored in SQLite. They live
//! here, not in `store`, because the API's models, the transfers, the
//! archive and the reports all carry them; the database is one boundary
//! of several.
//!
//! Boundary rules (SQLite's INTEGER is an i64):
//! - A [`ByteSize`] is a u64. Written, one above `i64::MAX` is an error
//!   (`ToSqlConversionFailure`), never clamped: no real file is that
//!   large, and a clamped size would be a false one. Read, a negative one
//!   is an error (`IntegralValueOutOfRange`, naming the column), never
//!   clamped to 0: only this type writes sizes, so a negative one means
//!   the row was damaged or written by something else, and an invented
//!   size would hand wrong figures to `verify` and `--prune`.
//! - An [`EpochMillis`] is the API's unit, an i64 on both sides: every
//!   value is a time (before 1970 included), so nothing is checked. The
//!   type is there so a time cannot be passed where a size or an id is
//!   wanted.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

/// A number of bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct ByteSize(pub u64);

/// Milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct EpochMillis(pub i64);

/// A [`ByteSize`] that SQLite's INTEGER cannot hold.
#[derive(Debug, thiserror::Error)]
#[error("a size of {0} bytes is more than the database can hold (at most i64::MAX)")]
pub struct SizeTooLarge(pub u64);

/// An i64 that is not a [`ByteSize`].
#[derive(Debug, thiserror::Error)]
#[error("a size cannot be negative ({0} bytes)")]
pub struct NegativeSize(pub i64);

impl From<u64> for ByteSize {
    fn from(bytes: u64) -> Self {
        ByteSize(bytes)
    }
}

impl From<ByteSize> for u64 {
    fn from(size: ByteSize) -> Self {
        size.0
    }
}

/// For callers that hold sizes as i64 today (the API's `sizeBytes`).
impl TryFrom<i64> for ByteSize {
    type Error = NegativeSize;

    fn try_from(bytes: i64) -> Result<Self, NegativeSize> {
        u64::try_from(bytes)
            .map(ByteSize)
            .map_err(|_| NegativeSize(bytes))
    }
}

impl ToSql for ByteSize {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        let stored = i64::try_from(self.0)
            .map_err(|_| rusqlite::Error::ToSqlConversionFailure(Box::new(SizeTooLarge(self.0))))?;
        Ok(ToSqlOutput::from(stored))
    }
}

impl FromSql for ByteSize {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let stored = i64::column_result(value)?;
        ByteSize::try_from(stored).map_err(|_| FromSqlError::OutOfRange(stored))
    }
}

impl From<i64> for EpochMillis {
    fn from(millis: i64) -> Self {
        EpochMillis(millis)
    }
}

impl From<EpochMillis> for i64 {
    fn from(time: EpochMillis) -> Self {
        time.0
    }
}

impl ToSql for EpochMillis {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.0))
    }
}

impl FromSql for EpochMillis {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        i64::column_result(value).map(EpochMillis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::{Connection, params};

    fn database() -> Connection {
        let connection = Connection::open_in_memory().unwrap();
        connection
            .execute_batch("CREATE TABLE t (value INTEGER) STRICT")
            .unwrap();
        connection
    }

    fn read<T: FromSql>(connection: &Connection) -> rusqlite::Result<T> {
        connection.query_row("SELECT value FROM t", [], |row| row.get(0))
    }

    #[test]
    fn sizes_round_trip_up_to_the_largest_integer() {
        let connection = database();
        for bytes in [0, 1, 1 << 40, i64::MAX.unsigned_abs()] {
            connection.execute("DELETE FROM t", []).unwrap();
            connection
                .execute("INSERT INTO t VALUES (?1)", [ByteSize(bytes)])
                .unwrap();
            assert_eq!(read::<ByteSize>(&connection).unwrap(), ByteSize(bytes));
        }
        connection.execute("DELETE FROM t", []).unwrap();
        connection
            .execute("INSERT INTO t VALUES (NULL)", [])
            .unwrap();
        assert_eq!(read::<Option<ByteSize>>(&connection).unwrap(), None);
    }

    #[test]
    fn a_size_larger_than_the_database_holds_is_refused_not_clamped() {
        let connection = database();
        let too_large = i64::MAX.unsigned_abs() + 1;
        let error = connection
            .execute("INSERT INTO t VALUES (?1)", [ByteSize(too_large)])
            .unwrap_err();
        assert!(
            matches!(error, rusqlite::Error::ToSqlConversionFailure(_)),
            "{error:?}"
        );
        assert!(
            error.to_string().contains(&too_large.to_string()),
            "{error}"
        );
        let error = connection
            .execute("INSERT INTO t VALUES (?1)", [ByteSize(u64::MAX)])
            .unwrap_err();
        assert!(matches!(error, rusqlite::Error::ToSqlConversionFailure(_)));
        let rows: i64 = connection
            .query_row("SELECT count(*) FROM t", [], |row| row.get(0))
            .unwrap();
        assert_eq!(rows, 0, "nothing was written");
    }

    #[test]
    fn a_negative_size_in_the_database_is_an_error_not_a_number() {
        let connection = database();
        connection.execute("INSERT INTO t VALUES (-5)", []).unwrap();
        let error = read::<ByteSize>(&connection).unwrap_err();
        assert!(
            matches!(error, rusqlite::Error::IntegralValueOutOfRange(0, -5)),
            "{error:?}"
        );
        assert!(read::<Option<ByteSize>>(&connection).is_err());
        assert!(ByteSize::try_from(-1_i64).is_err());
        assert_eq!(ByteSize::try_from(7_i64).unwrap(), ByteSize(7));
    }

    #[test]
    fn times_are_any_integer() {
        let connection = database();
        for millis in [i64::MIN, -1, 0, 1_767_225_600_000, i64::MAX] {
            connection.execute("DELETE FROM t", []).unwrap();
            connection
                .execute("INSERT INTO t VALUES (?1)", params![EpochMillis(millis)])
                .unwrap();
            assert_eq!(
                read::<EpochMillis>(&connection).unwrap(),
                EpochMillis(millis)
            );
        }
    }

    #[test]
    fn they_serialise_as_plain_numbers() {
        assert_eq!(serde_json::to_string(&ByteSize(12)).unwrap(), "12");
        assert_eq!(serde_json::to_string(&EpochMillis(-3)).unwrap(), "-3");
    }
}
