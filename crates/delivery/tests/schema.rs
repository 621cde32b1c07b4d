//! The DS schema holds nothing that identifies a person (DESIGN.md, "The system"): no
//! column for a name, an e-mail, a user or device id, a credential, a certificate, an IP
//! address or a KeyPackage in the clear. This test reads every migration of both engines.

use std::path::Path;

/// Words that must not name a column (compared with each `_`-separated part, and with the
/// whole name).
const FORBIDDEN: &[&str] = &[
    "name",
    "username",
    "email",
    "mail",
    "user",
    "device",
    "credential",
    "credentials",
    "certificate",
    "cert",
    "ip",
    "addr",
    "address",
    "identity",
    "phone",
    "keypackage",
    "kp",
    "account",
    "login",
    "token",
    "handle",
];

/// Names of the columns declared in a migration (`CREATE TABLE` bodies and
/// `ALTER TABLE … ADD [COLUMN]`).
fn columns(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let lower = sql.to_lowercase();
    let mut in_table = false;
    for line in lower.lines() {
        let line = line.split("--").next().unwrap_or("").trim();
        if line.starts_with("create table") {
            in_table = true;
            continue;
        }
        if let Some(rest) = line.strip_prefix("alter table") {
            if let Some(pos) = rest.find(" add ") {
                let after = rest[pos + 5..].trim_start();
                let after = after.strip_prefix("column ").unwrap_or(after);
                if let Some(col) = after.split_whitespace().next() {
                    out.push(col.to_string());
                }
            }
            continue;
        }
        if in_table {
            if line.starts_with(')') {
                in_table = false;
                continue;
            }
            let first = line.split_whitespace().next().unwrap_or("");
            if first.is_empty()
                || ["primary", "unique", "foreign", "constraint", "check"].contains(&first)
            {
                continue;
            }
            out.push(first.trim_matches(|c| c == '"' || c == ',').to_string());
        }
    }
    out
}

/// The forbidden columns among `cols`.
fn offending(cols: &[String]) -> Vec<String> {
    cols.iter()
        .filter(|c| {
            let parts: Vec<&str> = c.split('_').collect();
            let joined = parts.concat();
            FORBIDDEN
                .iter()
                .any(|f| parts.contains(f) || joined.contains("keypackage"))
        })
        .cloned()
        .collect()
}

#[test]
fn no_identifying_column_in_any_migration() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut seen = 0;
    for engine in ["sqlite", "postgres"] {
        let dir = root.join(engine);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .expect("migrations dir")
            .flatten()
            .collect();
        files.sort_by_key(|f| f.path());
        assert!(!files.is_empty(), "no migration in {}", dir.display());
        for f in files {
            let sql = std::fs::read_to_string(f.path()).expect("read");
            let cols = columns(&sql);
            seen += cols.len();
            let bad = offending(&cols);
            assert!(
                bad.is_empty(),
                "{}: identifying columns {bad:?}",
                f.path().display()
            );
        }
    }
    assert!(seen > 20, "the column parser found only {seen} columns");
}

#[test]
fn the_check_catches_identifying_columns() {
    let sql = "CREATE TABLE t (\n  id BLOB PRIMARY KEY,\n  user_id BLOB,\n  display_name TEXT,\n  client_ip TEXT,\n  key_package BLOB,\n  sealed BLOB\n);\nALTER TABLE t ADD COLUMN email TEXT;\n";
    let cols = columns(sql);
    assert_eq!(
        cols,
        [
            "id",
            "user_id",
            "display_name",
            "client_ip",
            "key_package",
            "sealed",
            "email"
        ]
    );
    assert_eq!(
        offending(&cols),
        [
            "user_id",
            "display_name",
            "client_ip",
            "key_package",
            "email"
        ]
    );
}
