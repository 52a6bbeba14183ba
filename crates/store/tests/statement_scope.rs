//! Every SQL statement the store issues stays within one practice (issue 18), except the ones
//! listed in [`EXCEPTIONS`], each with its reason. ARCHITECTURE.md ("Citus") refers to this list.
//!
//! The statements are read from the store's sources, not from a run, so a statement no test
//! exercises is checked too. A statement starts at a string literal that starts with a SQL verb
//! (`SELECT`, `INSERT`, `UPDATE`, `DELETE`, `WITH`, …) and goes on with the literals of the same
//! function that continue it (those that start with a space, `)`, `,` or `{} `, as the pieces
//! of `concat!`, `format!` and the statement builders do); the column-list macros
//! (`notification_columns!()`) and `{CONSTANT}` column lists are expanded. Comments and
//! `#[cfg(test)]` modules are left out.
//!
//! A statement is scoped when it
//! - compares `practice_id` with a parameter (`practice_id = $1`, `= {p}`, a `VALUES` row's
//!   `v.column1` in the batch updates, which group their rows by practice, or a correlated
//!   subquery's outer `x.practice_id`), once for every reference to a table (so a subquery
//!   needs its own), or
//! - is an `INSERT` whose columns include `practice_id` (the batch inserts group their rows by
//!   practice), or
//! - reads or writes the `practices` table by its `id` (the practice itself).
//!
//! This is a reading of the text, not a SQL parser: it counts, it does not match each
//! comparison to its table. Review new statements with that in mind.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The statements that are not scoped by one practice, by a piece of their text, and why.
/// Each must match at least one statement (a stale entry fails the test).
const EXCEPTIONS: &[(&str, &str)] = &[
    (
        "FROM sqlite_master WHERE type = 'table'",
        "the benchmark's row count (store::admin::table_rows) on its own throw-away database: \
         the list of tables",
    ),
    (
        "FROM pg_tables WHERE schemaname = current_schema()",
        "the benchmark's row count on its throw-away PostgreSQL database: the list of tables",
    ),
    (
        "SELECT count(*) FROM \"{}\"",
        "the benchmark's row count: every row of each table of its throw-away database",
    ),
    (
        "FROM practice_due WHERE next_due_at <= $1",
        "the summary scan: workers find the practices with due work (issue 18), then claim \
         inside one practice at a time",
    ),
    (
        "SELECT MAX(version) AS newest FROM _sqlx_migrations",
        "the worker's check, each round, that no newer version of Rappel migrated the database \
         (Store::newer_schema): sqlx's table of applied migrations, which holds no practice's \
         data (on Citus a local table of the coordinator)",
    ),
    (
        "INSERT INTO _sqlx_migrations (version, description",
        "tests only (the store's `test-support` feature, Store::record_newer_migration): the \
         migration a newer version would have recorded, in sqlx's table of migrations",
    ),
    (
        "DELETE FROM _sqlx_migrations WHERE version = $1",
        "tests only (`test-support`, Store::forget_migration): that record removed again",
    ),
    (
        "SELECT MIN(next_due_at) AS t FROM practice_due",
        "the summary scan's other half: when the worker must look again (its sleep)",
    ),
    (
        "FROM practices ORDER BY id",
        "the list of practices (tenants): the operator's CLI, the worker's hourly retention and \
         the scheduled tasks go through it practice by practice",
    ),
    (
        "AS found FROM ({sql})",
        "SQLite's wrapper of a many-ids lookup (batch.rs, `Lookup::statement`): the rows of \
         `{sql}`, the lookup's own statement (`… WHERE practice_id = ? AND …`, checked on its \
         own), as one JSON text",
    ),
    (
        "FROM json_each($1) AS minute",
        "SQLite only (one node, never Citus): the last rowid of a due minute, where a new \
         notification row goes in the table (placement.rs); a seek in the table's own b-tree",
    ),
    (
        "notification_writes",
        "SQLite only (one node, never Citus): each write connection's scratch table of the batch \
         updates of notifications (batch.rs, `SQLITE_SCRATCH`), created as the connection opens; \
         it holds the rows of one write of one practice, and the UPDATE that reads them is \
         scoped",
    ),
    (
        "FROM webhook_endpoints ORDER BY practice_id",
        "the practices with an outbound webhook (one row per practice at most): webhook \
         delivery then claims inside each practice",
    ),
    (
        "FROM lookup_routes WHERE kind = $1 AND lookup_key = $2",
        "the routing table (issue 18): a document or appointment link's token hash, a \
         sign-in's login or a session cookie's token hash names the practice; every query \
         after it is scoped by that practice",
    ),
    (
        "INSERT INTO lookup_routes",
        "the routing table is keyed by the looked-up value, unique across practices (a login \
         taken in one practice is taken everywhere)",
    ),
    (
        "DELETE FROM lookup_routes WHERE expires_at <= $1",
        "the routing table's housekeeping: the routes of expired sessions",
    ),
    (
        "FROM sms_last_sent WHERE number_hash = $1",
        "an incoming SMS names only the number it comes from: the last send to that number's \
         hash finds the practice",
    ),
    (
        "INSERT INTO sms_last_sent",
        "one row per number across practices (its key is the number's hash): the newest send \
         replaces the row, whichever practice made it",
    ),
    (
        "AS status, channel, COUNT(*) AS n FROM notifications GROUP BY",
        "`/metrics`: counts across practices for the operator",
    ),
    (
        "PRAGMA",
        "SQLite connection settings and transaction control",
    ),
    (
        "CROSS JOIN LATERAL ({inner} OFFSET 0) AS found",
        "`select_in`'s PostgreSQL wrapper around a lookup reads no table itself: its ids come \
         from an array parameter, and `{inner}` is the lookup's head with its scope \
         (SELECT_IN_SCOPES, which the scan adds to every head)",
    ),
    ("BEGIN READ ONLY", "PostgreSQL's transaction control"),
    ("BEGIN IMMEDIATE", "SQLite's transaction control"),
    ("BEGIN DEFERRED", "SQLite's transaction control"),
    ("pg_notify", "PostgreSQL's wake-up of the workers (no data)"),
    (
        "DATABASE",
        "throw-away PostgreSQL databases for tests and benchmarks (`admin`)",
    ),
];

/// What `select_in` (the batch reads) puts after each `Lookup`'s head: on PostgreSQL (inside the
/// `LATERAL` sub-select of its wrapper, an exception above) and on SQLite. The scan adds the
/// first to every lookup's head; both compare `practice_id` with a parameter.
const SELECT_IN_SCOPES: [&str; 2] = [
    "{} WHERE practice_id = $1 AND {} = lookup.lookup_id",
    "{} WHERE practice_id = ? AND {} IN ({})",
];

const VERBS: &[&str] = &[
    "SELECT ", "INSERT ", "UPDATE ", "DELETE ", "WITH ", "CREATE ", "DROP ", "PRAGMA ", "BEGIN",
    "LISTEN ", "NOTIFY ", "ALTER ",
];

fn store_sources() -> Vec<(PathBuf, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = Vec::new();
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                let shipped = match text.find("#[cfg(test)]") {
                    Some(i) => text[..i].to_string(),
                    None => text,
                };
                found.push((path, shipped));
            }
        }
    }
    found.sort();
    found
}

/// A piece of a source file: a string literal's value, a macro call, or the start of a function.
#[derive(Debug)]
enum Token {
    Str(String),
    Macro(String),
    Fn,
    /// `head:`, the field of the batch reads' `Lookup` whose statement `select_in` completes.
    HeadField,
}

/// The string literals, `name!(` macro calls and `fn` keywords of Rust code, in order; comments
/// are skipped and escapes decoded (a `\` at the end of a line eats the next line's indent).
fn tokens(code: &str) -> Vec<Token> {
    let chars: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            i += 2;
            while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                i += 1;
            }
            i += 2;
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && !ident_before(&chars, i) {
            let mut hashes = 0;
            let mut j = i + 1;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                i += 1;
                continue;
            }
            j += 1;
            let start = j;
            loop {
                if chars[j] == '"' && (0..hashes).all(|h| chars.get(j + 1 + h) == Some(&'#')) {
                    break;
                }
                j += 1;
            }
            out.push(Token::Str(chars[start..j].iter().collect()));
            i = j + 1 + hashes;
        } else if c == '"' {
            let mut value = String::new();
            let mut j = i + 1;
            while chars[j] != '"' {
                if chars[j] == '\\' {
                    j += 1;
                    match chars[j] {
                        'n' => value.push('\n'),
                        't' => value.push('\t'),
                        '\n' => {
                            while chars[j + 1].is_whitespace() {
                                j += 1;
                            }
                        }
                        other => value.push(other),
                    }
                } else {
                    value.push(chars[j]);
                }
                j += 1;
            }
            out.push(Token::Str(value));
            i = j + 1;
        } else if c == '\'' {
            // A char literal ('"', '\'', 'x') or a lifetime ('a), which has no closing quote.
            if next == Some('\\') {
                let mut j = i + 2;
                while chars[j] != '\'' {
                    j += 1;
                }
                i = j + 1;
            } else if chars.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
            }
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let colon = chars[i..]
                .iter()
                .position(|c| !c.is_whitespace())
                .map(|k| i + k);
            if word == "fn" && !ident_before(&chars, start) {
                out.push(Token::Fn);
            } else if word == "head"
                && colon.is_some_and(|k| chars[k] == ':' && chars.get(k + 1) != Some(&':'))
            {
                out.push(Token::HeadField);
            } else if chars.get(i) == Some(&'!') && chars.get(i + 1) == Some(&'(') {
                out.push(Token::Macro(word));
            }
        } else {
            i += 1;
        }
    }
    out
}

fn ident_before(chars: &[char], i: usize) -> bool {
    i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')
}

/// `macro_rules! name { () => { "text" }; }` column lists, and `const NAME: &str = "text";`.
fn definitions(
    sources: &[(PathBuf, String)],
) -> (HashMap<String, String>, HashMap<String, String>) {
    let mut macros = HashMap::new();
    let mut consts = HashMap::new();
    for (_, code) in sources {
        let mut rest = code.as_str();
        while let Some(at) = rest.find("macro_rules! ") {
            rest = &rest[at + "macro_rules! ".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let body_end = rest.find("\n}").unwrap_or(rest.len());
            let text: String = tokens(&rest[..body_end])
                .into_iter()
                .filter_map(|t| match t {
                    Token::Str(s) => Some(s),
                    _ => None,
                })
                .collect();
            macros.insert(name, text);
        }
        for line_start in code.match_indices("const ").map(|(i, _)| i) {
            let rest = &code[line_start + "const ".len()..];
            let Some((name, after)) = rest.split_once(": &str =") else {
                continue;
            };
            if !name.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
                continue;
            }
            let end = after.find(";\n").unwrap_or(after.len());
            let text: String = tokens(&after[..end])
                .into_iter()
                .filter_map(|t| match t {
                    Token::Str(s) => Some(s),
                    _ => None,
                })
                .collect();
            consts.insert(name.to_string(), text);
        }
    }
    (macros, consts)
}

/// Every statement of the store's sources, with the file it is in, whitespace collapsed.
fn statements() -> Vec<(String, String)> {
    let sources = store_sources();
    let (macros, consts) = definitions(&sources);
    let mut found = Vec::new();
    for (path, code) in &sources {
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        let mut current: Option<String> = None;
        let mut lookup = false;
        let mut finish = |current: &mut Option<String>| {
            if let Some(sql) = current.take() {
                let mut sql = sql;
                for (name, text) in &consts {
                    sql = sql.replace(&format!("{{{name}}}"), text);
                }
                let sql = sql.split_whitespace().collect::<Vec<_>>().join(" ");
                found.push((file.clone(), sql));
            }
        };
        for token in tokens(code) {
            match token {
                Token::Fn => finish(&mut current),
                Token::HeadField => lookup = true,
                Token::Macro(name) => {
                    if let (Some(sql), Some(text)) = (current.as_mut(), macros.get(&name)) {
                        sql.push(' ');
                        sql.push_str(text);
                    }
                }
                Token::Str(text) => {
                    let trimmed = text.trim_start();
                    if VERBS.iter().any(|v| trimmed.starts_with(v))
                        || trimmed.starts_with("(SELECT ") && current.is_none()
                    {
                        finish(&mut current);
                        current = Some(text);
                        if std::mem::take(&mut lookup) {
                            // `select_in` puts its own scope after every lookup's head (checked
                            // by `the_scan_sees_the_claim_and_its_scope`).
                            let sql = current.as_mut().unwrap();
                            sql.push(' ');
                            sql.push_str(SELECT_IN_SCOPES[0]);
                        }
                    } else if let Some(sql) = current.as_mut()
                        && (text.starts_with(char::is_whitespace)
                            || text.starts_with(')')
                            || text.starts_with(',')
                            || text.starts_with("{} "))
                    {
                        sql.push_str(&text);
                    }
                }
            }
        }
        finish(&mut current);
    }
    found
}

fn is_scoped(sql: &str) -> bool {
    if sql.starts_with("INSERT INTO practices ") {
        return true;
    }
    if let Some(rest) = sql.strip_prefix("INSERT INTO ") {
        let columns = rest
            .split_once('(')
            .and_then(|(_, after)| after.split_once(')'))
            .map_or("", |(columns, _)| columns);
        // An upsert whose conflict target leaves the practice out may overwrite another
        // practice's row.
        let conflict_scoped = sql.split_once("ON CONFLICT (").is_none_or(|(_, target)| {
            target
                .split(')')
                .next()
                .unwrap_or("")
                .contains("practice_id")
        });
        if columns.split(',').any(|c| c.trim() == "practice_id") && conflict_scoped {
            return true;
        }
    }
    // Every table the statement reads or writes needs its own scope: at least as many
    // `practice_id = …` comparisons as references to the practices' tables (a subquery has its
    // own), or `id = $…` for the `practices` table itself.
    let words: Vec<&str> = sql
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')' || c == ',')
        .filter(|w| !w.is_empty())
        .collect();
    let tables = tables();
    let mut references = 0;
    let mut practices = 0;
    for pair in words.windows(2) {
        if matches!(pair[0], "FROM" | "JOIN" | "UPDATE") {
            if pair[1] == "practices" {
                practices += 1;
            } else if pair[1].starts_with('{') || tables.iter().any(|t| t == pair[1]) {
                // `{table}`: a name the code fills in, one of the practices' tables.
                references += 1;
            }
        }
    }
    let scopes = words
        .windows(3)
        .filter(|w| {
            w[0].ends_with("practice_id")
                && w[1] == "="
                && (w[2].starts_with('$')
                    || w[2] == "?"
                    || w[2].starts_with('{')
                    || w[2] == "v.column1"
                    || w[2].ends_with(".practice_id"))
        })
        .count();
    let by_id = words
        .windows(3)
        .any(|w| w[0] == "id" && w[1] == "=" && w[2].starts_with('$'));
    references + practices > 0 && scopes >= references && (practices == 0 || by_id)
}

/// The tables the migrations create.
fn tables() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/postgres");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("CREATE TABLE ") {
                names.push(rest.split_whitespace().next().unwrap().to_string());
            }
        }
    }
    names
}

#[test]
fn every_statement_is_scoped_by_practice_or_a_documented_exception() {
    let statements = statements();
    assert!(
        statements.len() > 100,
        "the scan found only {} statements: is it still reading the store?",
        statements.len()
    );
    let mut unscoped = Vec::new();
    let mut used = vec![false; EXCEPTIONS.len()];
    for (file, sql) in &statements {
        if is_scoped(sql) {
            continue;
        }
        match EXCEPTIONS.iter().position(|(piece, _)| sql.contains(piece)) {
            Some(i) => {
                used[i] = true;
                if std::env::var_os("RAPPEL_SHOW_EXCEPTIONS").is_some() {
                    println!("{file}: {sql}\n  -> {}", EXCEPTIONS[i].1);
                }
            }
            None => unscoped.push(format!("{file}: {sql}")),
        }
    }
    assert!(
        unscoped.is_empty(),
        "statements neither scoped by practice_id nor listed in EXCEPTIONS:\n{}",
        unscoped.join("\n")
    );
    let stale: Vec<&str> = EXCEPTIONS
        .iter()
        .zip(&used)
        .filter(|(_, used)| !**used)
        .map(|((piece, _), _)| *piece)
        .collect();
    assert!(
        stale.is_empty(),
        "exceptions that match no statement: {stale:?}"
    );
}

#[test]
fn the_scan_sees_the_claim_and_its_scope() {
    let statements = statements();
    let claims: Vec<&String> = statements
        .iter()
        .map(|(_, sql)| sql)
        .filter(|sql| sql.contains("FOR UPDATE SKIP LOCKED"))
        .collect();
    assert!(!claims.is_empty(), "the claim statements are found");
    for claim in claims {
        assert!(is_scoped(claim), "{claim}");
    }
    for scope in SELECT_IN_SCOPES {
        assert!(
            store_sources()
                .iter()
                .any(|(_, code)| code.contains(&format!("\"{scope}\""))),
            "`select_in` scopes every lookup by practice: {scope}"
        );
    }
    // The column-list macro is expanded: an insert of notifications is seen with its columns.
    assert!(
        statements
            .iter()
            .any(|(_, sql)| sql.starts_with("INSERT INTO notifications ( practice_id, key,")),
        "{statements:#?}"
    );
}
