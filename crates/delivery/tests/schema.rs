//! The DS schema holds nothing that identifies a person (DESIGN.md, "The system"): no
//! column for a name, an e-mail, a user or device id, a credential, a certificate, an IP
//! address or a KeyPackage in the clear; and no column of a type that could hold text or an
//! address at all. This test reads every migration of both engines with a small SQL
//! tokenizer (columns on the `CREATE TABLE` line itself, several per line, quoted names,
//! `ALTER TABLE … ADD / RENAME / ALTER … TYPE`), refuses any statement it does not
//! understand, and checks that it saw every column the real engines create.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Words that must not appear in a column or table name: compared with each `_`-separated
/// part (short, ambiguous words) ...
const FORBIDDEN_PARTS: &[&str] = &[
    "ip", "kp", "cn", "dn", "uid", "sub", "mail", "token", "handle", "who", "owner",
];
/// ... or looked for anywhere in the name (distinctive words).
const FORBIDDEN_ANYWHERE: &[&str] = &[
    "name",
    "email",
    "user",
    "device",
    "credential",
    "certificate",
    "cert",
    "x509",
    "address",
    "addr",
    "phone",
    "identity",
    "account",
    "login",
    "keypackage",
    "key_package",
    "person",
    "member",
];

/// Column types that hold opaque bytes or numbers only. Anything else (text, JSON, UUID,
/// `INET`, no type at all in SQLite...) could hold a name or an address, and fails.
const ALLOWED_TYPES: &[&str] = &[
    "BLOB",
    "BYTEA",
    "INTEGER",
    "BIGINT",
    "SMALLINT",
    "BIGSERIAL",
    "BOOLEAN",
];

/// A token of SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    /// A keyword or identifier, lower-cased (quoted identifiers keep their case).
    Word(String),
    /// A string literal.
    Str,
    /// A number.
    Num,
    /// Punctuation.
    Punct(char),
}

/// The statements of a migration, comments removed, split at `;` outside quotes.
fn statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '-' if chars.peek() == Some(&'-') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
                cur.push(' ');
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut prev = ' ';
                for c in chars.by_ref() {
                    if prev == '*' && c == '/' {
                        break;
                    }
                    prev = c;
                }
                cur.push(' ');
            }
            '\'' | '"' => {
                cur.push(c);
                for d in chars.by_ref() {
                    cur.push(d);
                    if d == c {
                        break;
                    }
                }
            }
            ';' => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The tokens of one statement.
fn tokens(stmt: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut chars = stmt.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '"' || c == '`' {
            chars.next();
            let word: String = chars.by_ref().take_while(|&d| d != c).collect();
            out.push(Tok::Word(word));
        } else if c == '\'' {
            chars.next();
            for d in chars.by_ref() {
                if d == '\'' {
                    break;
                }
            }
            out.push(Tok::Str);
        } else if c.is_ascii_digit() {
            while chars
                .peek()
                .is_some_and(|d| d.is_ascii_alphanumeric() || *d == '.')
            {
                chars.next();
            }
            out.push(Tok::Num);
        } else if c.is_alphanumeric() || c == '_' {
            let mut word = String::new();
            while let Some(&d) = chars.peek() {
                if d.is_alphanumeric() || d == '_' || d == '$' {
                    word.push(d.to_ascii_lowercase());
                    chars.next();
                } else {
                    break;
                }
            }
            out.push(Tok::Word(word));
        } else {
            out.push(Tok::Punct(c));
            chars.next();
        }
    }
    out
}

fn is_word(t: Option<&Tok>, w: &str) -> bool {
    matches!(t, Some(Tok::Word(x)) if x == w)
}

/// One declared column.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Column {
    table: String,
    name: String,
    /// Upper-case, arguments included (`VARCHAR(255)`); empty if none was given.
    ty: String,
}

/// What the migrations of one engine declare.
#[derive(Debug, Default)]
struct Schema {
    /// Every column ever declared (added, renamed to, or retyped), in order.
    declared: Vec<Column>,
    /// The tables after the last migration: table → column → type.
    tables: BTreeMap<String, BTreeMap<String, String>>,
}

/// Words that end a column's type in its definition.
const AFTER_TYPE: &[&str] = &[
    "constraint",
    "not",
    "null",
    "primary",
    "references",
    "default",
    "unique",
    "check",
    "collate",
    "generated",
    "as",
    "autoincrement",
];

/// Words that start a table constraint rather than a column.
const TABLE_CONSTRAINTS: &[&str] = &[
    "constraint",
    "primary",
    "unique",
    "foreign",
    "check",
    "exclude",
    "like",
];

/// Splits `toks` at commas outside parentheses.
fn split_top(toks: &[Tok]) -> Vec<&[Tok]> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, t) in toks.iter().enumerate() {
        match t {
            Tok::Punct('(') => depth += 1,
            Tok::Punct(')') => depth -= 1,
            Tok::Punct(',') if depth == 0 => {
                parts.push(&toks[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&toks[start..]);
    parts.into_iter().filter(|p| !p.is_empty()).collect()
}

/// A column definition `name type [constraints]`: its name and type.
fn column_def(def: &[Tok]) -> Result<(String, String), String> {
    let Some(Tok::Word(name)) = def.first() else {
        return Err(format!("not a column definition: {def:?}"));
    };
    let mut ty = String::new();
    let mut depth = 0;
    for t in &def[1..] {
        match t {
            Tok::Word(w) if depth == 0 && AFTER_TYPE.contains(&w.as_str()) => break,
            Tok::Word(w) => {
                if !ty.is_empty() && depth == 0 {
                    ty.push(' ');
                }
                ty.push_str(&w.to_uppercase());
            }
            Tok::Num => ty.push('N'),
            Tok::Punct(c @ ('(' | ')' | ',')) => {
                depth += if *c == '(' {
                    1
                } else if *c == ')' {
                    -1
                } else {
                    0
                };
                ty.push(*c);
            }
            other => return Err(format!("unexpected {other:?} in the type of {name}")),
        }
    }
    Ok((name.clone(), ty))
}

impl Schema {
    fn add(&mut self, table: &str, name: &str, ty: &str) {
        self.declared.push(Column {
            table: table.into(),
            name: name.into(),
            ty: ty.into(),
        });
        self.tables
            .entry(table.into())
            .or_default()
            .insert(name.into(), ty.into());
    }

    /// Reads one migration; an error names a statement this parser does not understand.
    fn read(&mut self, sql: &str) -> Result<(), String> {
        for stmt in statements(sql) {
            let toks = tokens(&stmt);
            self.statement(&toks)
                .map_err(|e| format!("{e}\n  in: {stmt}"))?;
        }
        Ok(())
    }

    fn statement(&mut self, toks: &[Tok]) -> Result<(), String> {
        let mut i = 0;
        let word = |i: usize| match toks.get(i) {
            Some(Tok::Word(w)) => Some(w.as_str()),
            _ => None,
        };
        match word(0) {
            Some("create") => {
                i += 1;
                while matches!(word(i), Some("temp" | "temporary" | "unlogged")) {
                    i += 1;
                }
                match word(i) {
                    Some("table") => {}
                    Some("index" | "unique") => return Ok(()),
                    other => return Err(format!("unsupported CREATE {other:?}")),
                }
                i += 1;
                if is_word(toks.get(i), "if") {
                    i += 3;
                }
                let table = word(i).ok_or("table name")?.to_string();
                i += 1;
                if toks.get(i) != Some(&Tok::Punct('(')) {
                    return Err("CREATE TABLE without a column list".into());
                }
                // The body: up to the matching parenthesis.
                let mut depth = 0;
                let mut end = None;
                for (j, t) in toks.iter().enumerate().skip(i) {
                    match t {
                        Tok::Punct('(') => depth += 1,
                        Tok::Punct(')') => {
                            depth -= 1;
                            if depth == 0 {
                                end = Some(j);
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                let end = end.ok_or("unbalanced parentheses")?;
                self.tables.entry(table.clone()).or_default();
                for def in split_top(&toks[i + 1..end]) {
                    if matches!(def.first(), Some(Tok::Word(w)) if TABLE_CONSTRAINTS.contains(&w.as_str()))
                    {
                        continue;
                    }
                    let (name, ty) = column_def(def)?;
                    self.add(&table, &name, &ty);
                }
                Ok(())
            }
            Some("alter") if is_word(toks.get(1), "table") => {
                i = 2;
                if is_word(toks.get(i), "if") {
                    i += 2;
                }
                if is_word(toks.get(i), "only") {
                    i += 1;
                }
                let mut table = word(i).ok_or("table name")?.to_string();
                for action in split_top(&toks[i + 1..]) {
                    table = self.alter(&table, action)?;
                }
                Ok(())
            }
            Some("drop") if matches!(word(1), Some("index" | "table")) => {
                if is_word(toks.get(1), "table") {
                    let mut j = 2;
                    if is_word(toks.get(j), "if") {
                        j += 2;
                    }
                    if let Some(t) = word(j) {
                        self.tables.remove(t);
                    }
                }
                Ok(())
            }
            Some("insert" | "update" | "delete" | "select") => Ok(()),
            other => Err(format!("unsupported statement {other:?}")),
        }
    }

    /// One action of an `ALTER TABLE`; returns the table's (possibly new) name.
    fn alter(&mut self, table: &str, a: &[Tok]) -> Result<String, String> {
        let word = |i: usize| match a.get(i) {
            Some(Tok::Word(w)) => Some(w.as_str()),
            _ => None,
        };
        let mut i = 1;
        match word(0) {
            Some("add") => {
                if matches!(word(1), Some(w) if TABLE_CONSTRAINTS.contains(&w)) {
                    return Ok(table.into());
                }
                if is_word(a.get(i), "column") {
                    i += 1;
                }
                if is_word(a.get(i), "if") {
                    i += 3;
                }
                let (name, ty) = column_def(&a[i..])?;
                self.add(table, &name, &ty);
            }
            Some("drop") => {
                if matches!(word(1), Some("constraint")) {
                    return Ok(table.into());
                }
                if is_word(a.get(i), "column") {
                    i += 1;
                }
                if is_word(a.get(i), "if") {
                    i += 2;
                }
                let col = word(i).ok_or("column name")?;
                let cols = self.tables.get_mut(table).ok_or("unknown table")?;
                cols.remove(col).ok_or(format!("no column {col}"))?;
            }
            Some("rename") => {
                if is_word(a.get(1), "to") {
                    let new = word(2).ok_or("table name")?.to_string();
                    let cols = self.tables.remove(table).ok_or("unknown table")?;
                    for (c, ty) in &cols {
                        self.declared.push(Column {
                            table: new.clone(),
                            name: c.clone(),
                            ty: ty.clone(),
                        });
                    }
                    self.tables.insert(new.clone(), cols);
                    return Ok(new);
                }
                if is_word(a.get(i), "column") {
                    i += 1;
                }
                let (old, new) = (word(i).ok_or("column")?, word(i + 2).ok_or("column")?);
                let cols = self.tables.get_mut(table).ok_or("unknown table")?;
                let ty = cols.remove(old).ok_or(format!("no column {old}"))?;
                self.add(table, new, &ty);
            }
            Some("alter") => {
                if is_word(a.get(i), "column") {
                    i += 1;
                }
                let col = word(i).ok_or("column")?.to_string();
                let rest = &a[i + 1..];
                let at = rest
                    .iter()
                    .position(|t| matches!(t, Tok::Word(w) if w == "type"));
                // Without TYPE (SET/DROP DEFAULT, SET/DROP NOT NULL): no new type.
                if let Some(at) = at {
                    let mut def = vec![Tok::Word(col.clone())];
                    def.extend(
                        rest[at + 1..]
                            .iter()
                            .take_while(|t| !matches!(t, Tok::Word(w) if w == "using"))
                            .cloned(),
                    );
                    let (_, ty) = column_def(&def)?;
                    self.add(table, &col, &ty);
                }
            }
            other => return Err(format!("unsupported ALTER TABLE action {other:?}")),
        }
        Ok(table.into())
    }
}

/// Why a column or table name looks identifying, if it does.
fn identifying(name: &str) -> Option<&'static str> {
    let lower = name.to_lowercase();
    // A KeyPackage may be stored only sealed.
    let parts: Vec<&str> = lower.split('_').collect();
    let sealed = parts.first() == Some(&"sealed");
    for w in FORBIDDEN_ANYWHERE {
        let kp = *w == "key_package" || *w == "keypackage";
        if lower.contains(w) && !(sealed && kp) {
            return Some(w);
        }
    }
    FORBIDDEN_PARTS.iter().find(|w| parts.contains(w)).copied()
}

/// The identifying columns (and tables) of a schema.
fn offending(schema: &Schema) -> Vec<String> {
    let mut bad = Vec::new();
    for c in &schema.declared {
        if let Some(w) = identifying(&c.name) {
            bad.push(format!("{}.{} ({w})", c.table, c.name));
        }
        if let Some(w) = identifying(&c.table) {
            bad.push(format!("table {} ({w})", c.table));
        }
        if !ALLOWED_TYPES.contains(&c.ty.as_str()) {
            bad.push(format!("{}.{}: type {:?}", c.table, c.name, c.ty));
        }
    }
    bad.dedup();
    bad
}

fn migrations_dir(engine: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(engine)
}

/// Reads every migration of an engine, in order.
fn schema_of(engine: &str) -> Schema {
    let dir = migrations_dir(engine);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("migrations dir")
        .flatten()
        .map(|f| f.path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no migration in {}", dir.display());
    let mut schema = Schema::default();
    for f in files {
        let sql = std::fs::read_to_string(&f).expect("read");
        schema
            .read(&sql)
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
    }
    schema
}

#[test]
fn no_identifying_column_in_any_migration() {
    for engine in ["sqlite", "postgres"] {
        let schema = schema_of(engine);
        assert!(
            schema.declared.len() > 30,
            "{engine}: the parser found only {} columns",
            schema.declared.len()
        );
        let bad = offending(&schema);
        assert!(bad.is_empty(), "{engine}: identifying columns {bad:?}");
    }
}

#[test]
fn both_engines_declare_the_same_columns() {
    let (s, p) = (schema_of("sqlite"), schema_of("postgres"));
    let names = |s: &Schema| -> BTreeMap<String, Vec<String>> {
        s.tables
            .iter()
            .map(|(t, cols)| (t.clone(), cols.keys().cloned().collect()))
            .collect()
    };
    assert_eq!(names(&s), names(&p));
}

#[test]
fn the_check_catches_identifying_columns() {
    let sql = r#"
        CREATE TABLE t (id BLOB PRIMARY KEY, user_id BLOB, "Display_Name" BLOB,
            client_ip BLOB, key_package BLOB, sealed BLOB, note TEXT, at INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (id), CHECK (at >= 0));
        /* a comment; with a semicolon */
        CREATE TABLE IF NOT EXISTS devices (x BIGINT, y VARCHAR(255) NOT NULL); -- ; too
        ALTER TABLE t ADD COLUMN email BYTEA, ADD kp BYTEA;
        ALTER TABLE t ADD COLUMN IF NOT EXISTS peer INET;
        ALTER TABLE t RENAME COLUMN sealed TO cert_der;
        ALTER TABLE t ALTER COLUMN at TYPE TEXT;
        ALTER TABLE t ADD CONSTRAINT c UNIQUE (id);
        CREATE INDEX i ON t (user_id);
    "#;
    let mut s = Schema::default();
    s.read(sql).expect("parse");
    let cols: Vec<String> = s
        .declared
        .iter()
        .map(|c| format!("{}.{}:{}", c.table, c.name, c.ty))
        .collect();
    assert_eq!(
        cols,
        [
            "t.id:BLOB",
            "t.user_id:BLOB",
            "t.Display_Name:BLOB",
            "t.client_ip:BLOB",
            "t.key_package:BLOB",
            "t.sealed:BLOB",
            "t.note:TEXT",
            "t.at:INTEGER",
            "devices.x:BIGINT",
            "devices.y:VARCHAR(N)",
            "t.email:BYTEA",
            "t.kp:BYTEA",
            "t.peer:INET",
            "t.cert_der:BLOB",
            "t.at:TEXT",
        ]
    );
    assert_eq!(
        offending(&s),
        [
            "t.user_id (user)",
            "t.Display_Name (name)",
            "t.client_ip (ip)",
            "t.key_package (key_package)",
            "t.note: type \"TEXT\"",
            "table devices (device)",
            "devices.y: type \"VARCHAR(N)\"",
            "t.email (email)",
            "t.kp (kp)",
            "t.peer: type \"INET\"",
            "t.cert_der (cert)",
            "t.at: type \"TEXT\"",
        ]
    );
    // A sealed KeyPackage may be stored; a statement the parser does not know fails.
    assert_eq!(identifying("sealed_key_packages"), None);
    assert!(Schema::default().read("CREATE VIEW v AS SELECT 1").is_err());
    assert!(
        Schema::default()
            .read("CREATE TABLE c AS SELECT * FROM t")
            .is_err()
    );
    assert!(Schema::default().read("CREATE TABLE t (a)").is_ok());
    let mut typeless = Schema::default();
    typeless.read("CREATE TABLE t (a)").expect("parse");
    assert_eq!(offending(&typeless), ["t.a: type \"\""]);
}

/// Rust code of a source file, comments removed.
fn code(path: &Path) -> String {
    std::fs::read_to_string(path)
        .expect("read")
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("src").flatten() {
        let p = e.path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// KeyPackages are stored sealed (RFC 9750 §5.1 pools; DESIGN.md): one opaque blob column
/// per KeyPackage, which the DS never parses — the only module of the DS that decodes MLS
/// (`src/mls.rs`, framing headers of group messages) has no KeyPackage code, and the pool
/// handlers do not call it.
#[test]
fn sealed_key_packages_are_opaque_blobs_the_ds_never_parses() {
    for (engine, blob) in [("sqlite", "BLOB"), ("postgres", "BYTEA")] {
        let schema = schema_of(engine);
        let kp_tables: Vec<&String> = schema
            .tables
            .keys()
            .filter(|t| t.contains("key_package") || t.contains("keypackage"))
            .collect();
        assert_eq!(kp_tables, ["sealed_key_packages"], "{engine}");
        let cols = &schema.tables["sealed_key_packages"];
        assert_eq!(
            cols.get("sealed").map(String::as_str),
            Some(blob),
            "{engine}"
        );
        for (name, ty) in cols {
            assert!(
                ty != blob || name == "sealed" || name.ends_with("_id"),
                "{engine}: sealed_key_packages.{name} is another blob"
            );
        }
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mls_users: Vec<String> = files
        .iter()
        .filter(|f| code(f).contains("conclave_mls"))
        .map(|f| f.strip_prefix(&src).expect("in src").display().to_string())
        .collect();
    assert_eq!(
        mls_users,
        ["mls.rs"],
        "only src/mls.rs may use conclave-mls"
    );
    let mls = code(&src.join("mls.rs")).to_lowercase();
    assert!(
        !mls.contains("keypackage") && !mls.contains("key_package"),
        "src/mls.rs handles KeyPackages"
    );
    let pool = code(&src.join("http/pool.rs"));
    assert!(
        !pool.contains("mls::") && !pool.contains("crate::mls"),
        "the pool handlers call the MLS decoder"
    );
}

/// Type families, to compare the parser's types with what an engine reports.
fn family(ty: &str) -> &'static str {
    match ty.to_uppercase().as_str() {
        "BLOB" | "BYTEA" => "bytes",
        "INTEGER" | "BIGINT" | "SMALLINT" | "BIGSERIAL" | "INT8" | "INT4" | "INT2" => "integer",
        "BOOLEAN" | "BOOL" => "boolean",
        _ => "other",
    }
}

/// Table → column → type family.
type Catalog = BTreeMap<String, BTreeMap<String, &'static str>>;

fn families(schema: &Schema) -> Catalog {
    schema
        .tables
        .iter()
        .map(|(t, cols)| {
            (
                t.clone(),
                cols.iter().map(|(c, ty)| (c.clone(), family(ty))).collect(),
            )
        })
        .collect()
}

/// The parser sees exactly the columns SQLite creates from the migrations.
#[tokio::test]
async fn the_parser_sees_every_column_sqlite_creates() {
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect("sqlite::memory:")
        .await
        .expect("sqlite");
    sqlx::migrate!("./migrations/sqlite")
        .run(&mut conn)
        .await
        .expect("migrate");
    let tables: Vec<(String,)> = sqlx::query_as(
        "SELECT name FROM sqlite_master WHERE type = 'table' \
         AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations'",
    )
    .fetch_all(&mut conn)
    .await
    .expect("tables");
    let mut catalog = Catalog::new();
    for (t,) in tables {
        let cols: Vec<(String, String)> =
            sqlx::query_as("SELECT name, type FROM pragma_table_info($1)")
                .bind(&t)
                .fetch_all(&mut conn)
                .await
                .expect("columns");
        catalog.insert(
            t,
            cols.into_iter().map(|(c, ty)| (c, family(&ty))).collect(),
        );
    }
    assert_eq!(families(&schema_of("sqlite")), catalog);
}

/// The parser sees exactly the columns PostgreSQL creates from the migrations.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_parser_sees_every_column_postgres_creates() {
    use sqlx::Connection;
    let db = support::Db::new(support::Engine::Postgres).await;
    let url = db.postgres_url().expect("url");
    conclave_ds::store::postgres::PostgresStore::open(&url, 1)
        .await
        .expect("migrate");
    let mut conn = sqlx::PgConnection::connect(&url).await.expect("pg");
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT table_name::TEXT, column_name::TEXT, udt_name::TEXT FROM information_schema.columns \
         WHERE table_schema = 'public' AND table_name <> '_sqlx_migrations'",
    )
    .fetch_all(&mut conn)
    .await
    .expect("columns");
    let mut catalog = Catalog::new();
    for (t, c, ty) in rows {
        catalog.entry(t).or_default().insert(c, family(&ty));
    }
    assert_eq!(families(&schema_of("postgres")), catalog);
}
