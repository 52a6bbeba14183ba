//! Conversions between Rust values and the column types `sqlx::Any` can carry on both backends
//! (i64, String and NULL): instants as epoch milliseconds, booleans as 0/1, structures as JSON;
//! the audit copy of a sent message packed in a BLOB or BYTEA ([`pack_json`]).
//!
//! Everything read back goes through [`Cols`], so a row that does not decode becomes
//! [`StoreError::Corrupt`] naming the table and the column instead of a panic or a bare sqlx
//! error.

use jiff::Timestamp;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sqlx::Row;
use sqlx::any::{Any, AnyArguments, AnyRow};
use sqlx::query::Query;

use crate::StoreError;

pub(super) fn ms(t: Timestamp) -> i64 {
    t.as_millisecond()
}

pub(super) fn opt_ms(t: Option<Timestamp>) -> Option<i64> {
    t.map(ms)
}

pub(super) fn flag(b: bool) -> i64 {
    i64::from(b)
}

/// Serializes a value for a JSON text column. The domain types always serialize; an error here
/// would mean a type that cannot be represented as JSON, reported against the table it was for.
pub(super) fn to_json<T: Serialize + ?Sized>(
    table: &'static str,
    value: &T,
) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt {
        table,
        reason: format!("cannot encode as JSON: {e}"),
    })
}

/// The first byte of a packed JSON value: LZ4 (block format, the uncompressed length first as
/// a little-endian u32). A byte that JSON text can never start with. Written by the versions of
/// issue 18's sessions 14 and 15; still read.
const PACKED_LZ4: u8 = 1;

/// The first byte of a JSON value packed with LZ4 against [`AUDIT_DICTIONARY_1`]: the same
/// block format, whose matches may also point into the dictionary.
const PACKED_LZ4_DICTIONARY_1: u8 = 2;

/// What the audit copy of a message usually repeats: the default French texts, an SMS copy and
/// the default email frame as serde_json writes them (issue 18, session 16). LZ4 finds in it the
/// HTML frame, its styles and the phrases that make most of a copy, so an email's copy of
/// 2,046 bytes packs to about 215 (1,140 without it), an SMS's of 215 to about 90.
///
/// **Never edit this file**: every copy packed with it is read with it. Another dictionary is
/// another file and another first byte; `the_audit_dictionary_never_changes` pins its digest.
static AUDIT_DICTIONARY_1: &[u8] = include_bytes!("audit_dictionary_1.json");

/// The largest JSON value a packed one may unpack to: a corrupt length cannot make a read
/// allocate more than this.
const PACKED_MAX: usize = 16 << 20;

/// A JSON value packed for a BLOB (SQLite) or BYTEA (PostgreSQL) column: its text compressed
/// with LZ4 against [`AUDIT_DICTIONARY_1`].
///
/// Used for the audit copy of each sent message (`notifications.rendered`, issue 18): the write
/// of outcomes costs in proportion to the bytes it writes (on SQLite a WAL page for each page it
/// changes), and an email's copy (about 2 kB of HTML and text) packs to about a tenth.
/// PostgreSQL packed it itself (LZ4 without a dictionary, migration 0017) until migration 0019.
pub(super) fn pack_json(json: &str) -> Vec<u8> {
    let mut packed = Vec::with_capacity(json.len() / 4 + 8);
    packed.push(PACKED_LZ4_DICTIONARY_1);
    packed.extend(lz4_flex::block::compress_prepend_size_with_dict(
        json.as_bytes(),
        AUDIT_DICTIONARY_1,
    ));
    packed
}

/// The JSON text of a value packed by [`pack_json`] (or by an earlier version, without the
/// dictionary).
fn unpack_json(packed: &[u8]) -> Result<String, String> {
    let (dictionary, body) = match packed.split_first() {
        Some((&PACKED_LZ4, body)) => (None, body),
        Some((&PACKED_LZ4_DICTIONARY_1, body)) => (Some(AUDIT_DICTIONARY_1), body),
        // The bytes of a JSON text (a copy PostgreSQL kept as text before migration 0019): a
        // JSON text starts with `{`, `[`, `"`, a digit, a letter or blank space.
        Some((&first, _)) if first >= b'\t' => {
            return String::from_utf8(packed.to_vec()).map_err(|e| e.to_string());
        }
        _ => {
            return Err(format!(
                "unknown packing {:?}",
                packed.first().copied().unwrap_or_default()
            ));
        }
    };
    let length = body
        .get(..4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .ok_or("packed value shorter than its length")?;
    if length > PACKED_MAX {
        return Err(format!("packed value of {length} bytes, over the limit"));
    }
    let bytes = match dictionary {
        None => lz4_flex::block::decompress_size_prepended(body),
        Some(dictionary) => lz4_flex::block::decompress_size_prepended_with_dict(body, dictionary),
    }
    .map_err(|e| e.to_string())?;
    String::from_utf8(bytes).map_err(|e| e.to_string())
}

/// Escapes `%`, `_` and `\` for a `LIKE … ESCAPE '\'` pattern.
pub(super) fn like_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// One bound parameter of a query whose text is assembled at run time.
#[derive(Clone, Debug)]
pub(super) enum Arg {
    Int(i64),
    OptInt(Option<i64>),
    Text(String),
    OptText(Option<String>),
    /// A BLOB (SQLite) or BYTEA (PostgreSQL): the packed audit copy of a sent message
    /// ([`pack_json`]).
    OptBlob(Option<Vec<u8>>),
}

/// Binds each argument in order.
///
/// The texts and blobs are bound borrowed: `sqlx::Any` copies an owned `String` or `Vec<u8>` it
/// is given (its `Encode` clones it), and a borrowed one goes to the driver as it is (straight
/// into PostgreSQL's message; SQLite's worker takes its own copy either way). A batch of 500
/// outcomes binds 500 audit copies and a batch of 1,000 bookings some 75,000 texts.
pub(super) fn bind_all<'q>(
    mut query: Query<'q, Any, AnyArguments<'q>>,
    args: &'q [Arg],
) -> Query<'q, Any, AnyArguments<'q>> {
    for arg in args {
        query = match arg {
            Arg::Int(v) => query.bind(*v),
            Arg::OptInt(v) => query.bind(*v),
            Arg::Text(v) => query.bind(v.as_str()),
            Arg::OptText(v) => query.bind(v.as_deref()),
            Arg::OptBlob(v) => query.bind(v.as_deref()),
        };
    }
    query
}

/// A query text with `$N` placeholders numbered as arguments are pushed.
#[derive(Default)]
pub(super) struct SqlBuilder {
    pub text: String,
    pub args: Vec<Arg>,
}

impl SqlBuilder {
    pub fn new(text: &str) -> SqlBuilder {
        SqlBuilder {
            text: text.to_string(),
            args: Vec::new(),
        }
    }

    /// Records the argument and returns its placeholder.
    pub fn arg(&mut self, arg: Arg) -> String {
        self.args.push(arg);
        format!("${}", self.args.len())
    }

    pub fn push(&mut self, text: &str) {
        self.text.push_str(text);
    }
}

/// Typed access to the columns of one row, every failure reported as corruption of `table`.
pub(super) struct Cols<'r> {
    source: Source<'r>,
    table: &'static str,
}

/// Where a row's values are: a row of the database, or one element of a JSON array of rows
/// ([`json_rows`]).
enum Source<'r> {
    Row(&'r AnyRow),
    Json {
        names: &'r [&'r str],
        values: &'r [Value],
    },
}

/// The columns stored packed ([`pack_json`]; a BLOB on SQLite, BYTEA on PostgreSQL): only the
/// audit copy.
const PACKED_COLUMNS: [&str; 1] = ["rendered"];

/// SQLite: `column` as an argument of the `json_array(…)` of [`json_rows`]: itself, or for a
/// packed column the expression that a JSON array can hold.
pub(super) fn json_element(column: &str) -> String {
    if PACKED_COLUMNS.contains(&column) {
        format!(
            "CASE WHEN typeof({column}) = 'blob' THEN json_array(hex({column})) ELSE {column} END"
        )
    } else {
        column.to_string()
    }
}

/// SQLite: the rows of a `json_group_array(json_array(…))` column, each an array of values in
/// the order of `names`, for [`Cols::json_row`]. A JSON array cannot hold a BLOB, so a column
/// packed as one ([`pack_json`]) goes in as `CASE WHEN typeof(c) = 'blob' THEN
/// json_array(hex(c)) ELSE c END`: a one-element array of its hex digits, text as text, NULL as
/// `null` ([`Cols::opt_packed_json`] reads all three). Fetching a few hundred rows as one JSON text
/// costs a quarter of fetching them as rows through `sqlx::Any`, which converts every value of
/// every row (ARCHITECTURE.md, "Rows as one JSON text").
pub(super) fn json_rows(
    text: &str,
    names: &[&str],
    table: &'static str,
) -> Result<Vec<Vec<Value>>, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt { table, reason };
    let rows: Vec<Vec<Value>> =
        serde_json::from_str(text).map_err(|e| corrupt(format!("rows as JSON: {e}")))?;
    if let Some(row) = rows.iter().find(|row| row.len() != names.len()) {
        return Err(corrupt(format!(
            "a row as JSON has {} values for {} columns",
            row.len(),
            names.len()
        )));
    }
    Ok(rows)
}

impl<'r> Cols<'r> {
    pub fn new(row: &'r AnyRow, table: &'static str) -> Cols<'r> {
        Cols {
            source: Source::Row(row),
            table,
        }
    }

    /// One row of [`json_rows`], its values in the order of `names`.
    pub fn json_row(names: &'r [&'r str], values: &'r [Value], table: &'static str) -> Cols<'r> {
        Cols {
            source: Source::Json { names, values },
            table,
        }
    }

    /// A JSON row's value of `column`.
    fn value(
        &self,
        names: &[&str],
        values: &'r [Value],
        column: &str,
    ) -> Result<&'r Value, StoreError> {
        names
            .iter()
            .position(|name| *name == column)
            .and_then(|i| values.get(i))
            .ok_or_else(|| self.corrupt(column, "no such column"))
    }

    /// A JSON row's value of `column` as `T`, `None` for `null`.
    fn json_value<T>(
        &self,
        column: &str,
        read: impl Fn(&'r Value) -> Option<T>,
        expected: &str,
    ) -> Result<Option<T>, StoreError> {
        let Source::Json { names, values } = self.source else {
            unreachable!("a JSON row")
        };
        match self.value(names, values, column)? {
            Value::Null => Ok(None),
            value => read(value)
                .map(Some)
                .ok_or_else(|| self.corrupt(column, format!("{value} is not {expected}"))),
        }
    }

    pub fn corrupt(&self, column: &str, reason: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt {
            table: self.table,
            reason: format!("column `{column}`: {reason}"),
        }
    }

    pub fn text(&self, column: &str) -> Result<String, StoreError> {
        self.opt_text(column)?
            .ok_or_else(|| self.corrupt(column, "NULL where a text is expected"))
    }

    pub fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError> {
        match self.source {
            Source::Row(row) => row
                .try_get::<Option<String>, _>(column)
                .map_err(|e| self.corrupt(column, e)),
            Source::Json { .. } => {
                self.json_value(column, |v| v.as_str().map(str::to_owned), "a text")
            }
        }
    }

    pub fn int(&self, column: &str) -> Result<i64, StoreError> {
        self.opt_int(column)?
            .ok_or_else(|| self.corrupt(column, "NULL where an integer is expected"))
    }

    pub fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError> {
        match self.source {
            Source::Row(row) => row
                .try_get::<Option<i64>, _>(column)
                .map_err(|e| self.corrupt(column, e)),
            Source::Json { .. } => self.json_value(column, Value::as_i64, "an integer"),
        }
    }

    pub fn flag(&self, column: &str) -> Result<bool, StoreError> {
        match self.int(column)? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(self.corrupt(column, format!("{other} is not a 0/1 flag"))),
        }
    }

    pub fn ts(&self, column: &str) -> Result<Timestamp, StoreError> {
        let ms = self.int(column)?;
        Timestamp::from_millisecond(ms).map_err(|e| self.corrupt(column, e))
    }

    pub fn opt_ts(&self, column: &str) -> Result<Option<Timestamp>, StoreError> {
        match self.opt_int(column)? {
            None => Ok(None),
            Some(ms) => Timestamp::from_millisecond(ms)
                .map(Some)
                .map_err(|e| self.corrupt(column, e)),
        }
    }

    pub fn json<T: DeserializeOwned>(&self, column: &str) -> Result<T, StoreError> {
        let text = self.text(column)?;
        serde_json::from_str(&text).map_err(|e| self.corrupt(column, e))
    }

    /// A column holding JSON either as text or packed ([`pack_json`]: SQLite's BLOB,
    /// PostgreSQL's BYTEA, which may also hold the bytes of a JSON text).
    pub fn opt_packed_json<T: DeserializeOwned>(
        &self,
        column: &str,
    ) -> Result<Option<T>, StoreError> {
        use sqlx::ValueRef;
        use sqlx::any::AnyTypeInfoKind;
        let text = match self.source {
            Source::Row(row) => {
                let raw = row
                    .try_get_raw(column)
                    .map_err(|e| self.corrupt(column, e))?;
                if raw.is_null() {
                    return Ok(None);
                }
                if raw.type_info().kind() == AnyTypeInfoKind::Blob {
                    let packed = row
                        .try_get::<Vec<u8>, _>(column)
                        .map_err(|e| self.corrupt(column, e))?;
                    unpack_json(&packed).map_err(|e| self.corrupt(column, e))?
                } else {
                    self.text(column)?
                }
            }
            // `["<hex>"]` for a packed copy, else text or null (`json_rows`).
            Source::Json { .. } => {
                let element = self.json_value(column, Some, "JSON")?;
                match element {
                    None => return Ok(None),
                    Some(Value::String(text)) => text.clone(),
                    Some(Value::Array(hex)) => {
                        let packed = match hex.as_slice() {
                            [Value::String(digits)] => {
                                hex::decode(digits).map_err(|e| self.corrupt(column, e))?
                            }
                            _ => return Err(self.corrupt(column, "not a packed copy's hex digits")),
                        };
                        unpack_json(&packed).map_err(|e| self.corrupt(column, e))?
                    }
                    Some(other) => {
                        return Err(self.corrupt(column, format!("{other} is not a packed copy")));
                    }
                }
            }
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| self.corrupt(column, e))
    }

    /// A TEXT column holding one of an enum's names.
    pub fn parse<T>(
        &self,
        column: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<T, StoreError> {
        let text = self.text(column)?;
        parse(&text).ok_or_else(|| self.corrupt(column, format!("unknown value `{text}`")))
    }

    pub fn opt_parse<T>(
        &self,
        column: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<Option<T>, StoreError> {
        match self.opt_text(column)? {
            None => Ok(None),
            Some(text) => parse(&text)
                .map(Some)
                .ok_or_else(|| self.corrupt(column, format!("unknown value `{text}`"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    use super::*;

    #[test]
    fn the_audit_dictionary_never_changes() {
        // Copies packed with it are read with it, for as long as they are kept (13 months by
        // default): a change would make them unreadable. A new dictionary is a new file and a
        // new first byte.
        assert_eq!(
            hex::encode(Sha256::digest(AUDIT_DICTIONARY_1)),
            "73858728f7b58df683dbed0efff6a7e2e376a9717a2f7b436637cd0236faef7d"
        );
    }

    #[test]
    fn a_copy_packs_against_the_dictionary_and_copies_of_earlier_versions_still_read() {
        let copy = serde_json::json!({
            "subject": "Rappel de votre rendez-vous — Cabinet Lefèvre",
            "text": "Bonjour Paul Girard,\n\nNous vous rappelons votre rendez-vous : jeudi 7 \
                     janvier 2027 à 11h00 avec Dr Lefèvre.\n\nCabinet Lefèvre\n",
            "to": "paul.girard@example.com",
        })
        .to_string();
        let packed = pack_json(&copy);
        assert_eq!(packed[0], PACKED_LZ4_DICTIONARY_1);
        assert_eq!(unpack_json(&packed).unwrap(), copy);
        // Without the dictionary (sessions 14 and 15): longer, and still read.
        let mut earlier = vec![PACKED_LZ4];
        earlier.extend(lz4_flex::block::compress_prepend_size(copy.as_bytes()));
        assert_eq!(unpack_json(&earlier).unwrap(), copy);
        assert!(
            packed.len() * 3 < earlier.len() * 2,
            "{} bytes with the dictionary, {} without",
            packed.len(),
            earlier.len()
        );
        // The dictionary's first byte is what makes it read: without it the copy is lost.
        let mut unmarked = packed.clone();
        unmarked[0] = PACKED_LZ4;
        assert_ne!(unpack_json(&unmarked).ok().as_ref(), Some(&copy));
        assert!(unpack_json(&[3, 0, 0, 0, 0]).is_err());
        // PostgreSQL's copies of before migration 0019: the bytes of their JSON text.
        assert_eq!(unpack_json(copy.as_bytes()).unwrap(), copy);
    }
}
