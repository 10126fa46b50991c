//! An export as the subject receives it: the JSON document, or a zip holding a README in
//! plain words, the JSON, and one CSV file per collection (RFC 4180, with cells that a
//! spreadsheet would run as formulas made inert).

use std::fmt;
use std::io::{Cursor, Write};

use chrono::{Datelike, Timelike};
use serde_json::Value;
use zeroize::Zeroizing;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use super::{CollectionExport, SubjectExport};
use crate::VaultError;

/// How an export is rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExportFormat {
    /// One JSON document.
    Json,
    /// A zip: `README.txt`, `export.json`, one `<collection>.csv` per collection.
    Zip,
}

impl ExportFormat {
    /// The format named `json` or `zip`.
    ///
    /// # Errors
    /// `BadRequest` naming `field` for any other name.
    pub fn parse(field: &str, s: &str) -> Result<ExportFormat, VaultError> {
        match s {
            "json" => Ok(ExportFormat::Json),
            "zip" => Ok(ExportFormat::Zip),
            _ => Err(VaultError::bad_request(
                field,
                "the export format is json or zip",
            )),
        }
    }

    /// Its media type.
    pub fn media_type(self) -> &'static str {
        match self {
            ExportFormat::Json => "application/json",
            ExportFormat::Zip => "application/zip",
        }
    }

    /// Its file name extension.
    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Json => "json",
            ExportFormat::Zip => "zip",
        }
    }
}

/// A rendered export: personal data, so it has no `Debug` beyond its length and is wiped
/// when dropped. Read it with [`ExportBytes::expose_secret`], to send or to write, never to
/// log.
pub struct ExportBytes(Zeroizing<Vec<u8>>);

impl ExportBytes {
    /// The bytes.
    pub fn expose_secret(&self) -> &[u8] {
        &self.0
    }

    /// How many bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for ExportBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ExportBytes([redacted], {} bytes)", self.0.len())
    }
}

impl SubjectExport {
    /// The export rendered as `format`.
    ///
    /// # Errors
    /// `Internal` when the zip cannot be written (it is built in memory, so only a bug can
    /// make it fail).
    pub fn render(&self, format: ExportFormat) -> Result<ExportBytes, VaultError> {
        match format {
            ExportFormat::Json => Ok(ExportBytes(self.json())),
            ExportFormat::Zip => self.zip().map(ExportBytes),
        }
    }

    fn json(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(serde_json::to_vec_pretty(self).expect("an export serialises"))
    }

    fn zip(&self) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let fail = |e: zip::result::ZipError| VaultError::Internal(format!("writing a zip: {e}"));
        let io = |e: std::io::Error| VaultError::Internal(format!("writing a zip: {e}"));
        let t = chrono::DateTime::parse_from_rfc3339(&self.generated_at)
            .map(|t| t.to_utc())
            .unwrap_or_default();
        let when = zip::DateTime::from_date_and_time(
            u16::try_from(t.year()).unwrap_or(1980),
            t.month() as u8,
            t.day() as u8,
            t.hour() as u8,
            t.minute() as u8,
            t.second() as u8,
        )
        .unwrap_or_default();
        let options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .last_modified_time(when)
            .unix_permissions(0o600);
        let mut files: Vec<(String, Zeroizing<Vec<u8>>)> = vec![
            (
                "README.txt".to_owned(),
                Zeroizing::new(self.readme().into_bytes()),
            ),
            ("export.json".to_owned(), self.json()),
        ];
        for c in &self.collections {
            files.push((format!("{}.csv", c.collection), csv(c)));
        }
        // The archive is sized a little over its contents; deflate only makes it smaller.
        let room = files.iter().map(|(_, b)| b.len() + 128).sum::<usize>() + 1024;
        let mut out = Zeroizing::new(Vec::with_capacity(room));
        {
            let mut w = ZipWriter::new(Cursor::new(&mut *out));
            for (name, bytes) in &files {
                w.start_file(name.as_str(), options).map_err(fail)?;
                w.write_all(bytes).map_err(io)?;
            }
            w.finish().map_err(fail)?;
        }
        Ok(out)
    }

    /// The README: what each file is, how to read it, whom to ask, and the subject's rights.
    fn readme(&self) -> String {
        let org = &self.controller.name;
        let contact = &self.controller.contact;
        let day = self.generated_at.get(..10).unwrap_or(&self.generated_at);
        let time = self.generated_at.get(11..16).unwrap_or("");
        let mut r = String::new();
        let title = format!("Your personal data held by {org}");
        r.push_str(&format!(
            "{title}\n{}\n\n",
            "=".repeat(title.chars().count())
        ));
        r.push_str(&wrap(&format!(
            "This archive is a copy of all the personal data {org} keeps about you in Custos, \
             its customer-data vault, made on {day} at {time} UTC. It answers your right of \
             access (GDPR Art. 15), your right to data portability (GDPR Art. 20) and your \
             right to know (CCPA). Your reference is {}: quote it when you write to {org}.",
            self.subject_id
        )));
        r.push_str("What is in it\n-------------\n\n");
        r.push_str("README.txt\n");
        r.push_str(&indent("This file."));
        for c in &self.collections {
            r.push_str(&format!("{}.csv\n", c.collection));
            let n = c.records.len();
            r.push_str(&indent(&format!(
                "Your records in \"{}\": {n} record{}, one a row.",
                c.collection,
                if n == 1 { "" } else { "s" }
            )));
        }
        r.push_str("export.json\n");
        r.push_str(&indent(&format!(
            "Everything, in one file a computer can read, to keep or to take to another \
             service. Beside every value it says why {org} holds it (each purpose, its legal \
             basis explained in plain words), how long it is kept, who receives it and in \
             which country, and who stored it and when. It also holds your consent history \
             ({} choice{}, oldest first), every read of your data ({} read{}: when, by which \
             application key and role, for which purpose, which fields were shown and which \
             were withheld), and everything else done with your data ({} entr{}). Each read \
             and act names its place in {org}'s tamper-evident audit log (audit_index).",
            self.consent_history.len(),
            plural(self.consent_history.len()),
            self.reads.len(),
            plural(self.reads.len()),
            self.activity.len(),
            if self.activity.len() == 1 { "y" } else { "ies" },
        )));
        r.push_str("How to read the CSV files\n-------------------------\n\n");
        r.push_str(&wrap(
            "Open them in a spreadsheet (LibreOffice Calc, Microsoft Excel, Google Sheets, \
             Numbers) or a text editor. They are UTF-8 text; the first row names the columns: \
             record_id, created and updated (dates and times in UTC), then one column for each \
             kind of data. An empty cell means no value is held there. A cell holding a comma, \
             a double quote or a line break is in double quotes, and a double quote inside it \
             is written twice. An address is on one line, its parts separated by commas. A \
             value that begins with =, +, -, @ or a tab is written with an apostrophe (') in \
             front, so that a spreadsheet shows it as text and never runs it as a formula: the \
             apostrophe is not part of your data (phone numbers begin with +).",
        ));
        r.push_str("Whom to contact\n---------------\n\n");
        r.push_str(&wrap(&format!(
            "{org}, at {contact}: about anything in this archive, to correct or delete data, or \
             to use any of the rights below."
        )));
        r.push_str("Your rights\n-----------\n\n");
        for right in &self.your_rights {
            r.push_str(&format!("{} ({})\n", right.right, right.article));
            r.push_str(&indent(&right.how));
        }
        r
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Words wrapped at 78 columns, a blank line after.
fn wrap(text: &str) -> String {
    wrap_at(text, 78)
}

/// Words wrapped at `width` columns, a blank line after.
fn wrap_at(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            out.push_str(&line);
            out.push('\n');
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    out.push_str(&line);
    out.push_str("\n\n");
    out
}

/// Words wrapped to fit 78 columns under a four-space indent, a blank line after.
fn indent(text: &str) -> String {
    wrap_at(text, 74)
        .lines()
        .map(|l| {
            if l.is_empty() {
                "\n".to_owned()
            } else {
                format!("    {l}\n")
            }
        })
        .collect()
}

/// A collection's records as CSV (RFC 4180: CRLF line ends, quoted where needed), with a
/// byte-order mark so spreadsheets read it as UTF-8.
fn csv(c: &CollectionExport) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(String::from("\u{feff}"));
    let header = ["record_id", "created", "updated"]
        .into_iter()
        .chain(c.fields.iter().map(String::as_str));
    row(&mut out, header.map(|h| cell(h, false)));
    for r in &c.records {
        let id = r.record_id.to_string();
        let fixed = [id.as_str(), &r.created, &r.updated].map(|s| cell(s, false));
        let values = c.fields.iter().map(|f| match r.fields.get(f) {
            Some(v) => value_cell(v.value.expose_secret()),
            None => Zeroizing::new(String::new()),
        });
        row(&mut out, fixed.into_iter().chain(values));
    }
    Zeroizing::new(std::mem::take(&mut *out).into_bytes())
}

fn row(out: &mut String, cells: impl Iterator<Item = Zeroizing<String>>) {
    for (i, c) in cells.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&c);
    }
    out.push_str("\r\n");
}

/// One value as a cell: text as it is, an address on one line, numbers and yes/no as JSON
/// writes them. A number is never taken for a formula; anything else is neutralised.
fn value_cell(v: &Value) -> Zeroizing<String> {
    match v {
        Value::Null => Zeroizing::new(String::new()),
        Value::Bool(b) => cell(if *b { "true" } else { "false" }, false),
        Value::Number(n) => cell(&n.to_string(), false),
        Value::String(s) => cell(s, true),
        Value::Object(_) | Value::Array(_) => cell(&flatten(v), true),
    }
}

/// A structured value on one line: an address's lines, then locality, region, postal code
/// and country, separated by commas; anything else as its parts in order.
fn flatten(v: &Value) -> Zeroizing<String> {
    let mut parts: Vec<String> = Vec::new();
    let mut push = |v: &Value| match v {
        Value::String(s) if !s.is_empty() => parts.push(s.clone()),
        Value::Null | Value::String(_) => {}
        other => parts.push(flatten(other).to_string()),
    };
    match v {
        Value::Array(items) => items.iter().for_each(&mut push),
        Value::Object(m) => {
            let known = ["lines", "locality", "region", "postal_code", "country"];
            for k in known {
                match m.get(k) {
                    Some(Value::Array(lines)) => lines.iter().for_each(&mut push),
                    Some(x) => push(x),
                    None => {}
                }
            }
            m.iter()
                .filter(|(k, _)| !known.contains(&k.as_str()))
                .for_each(|(_, x)| push(x));
        }
        other => push(other),
    }
    let s = Zeroizing::new(parts.join(", "));
    parts.iter_mut().for_each(zeroize::Zeroize::zeroize);
    s
}

/// A CSV cell: a value that a spreadsheet would take for a formula (`=`, `+`, `-`, `@`, tab,
/// carriage return first) gets a `'` in front when `neutralise`; then it is quoted when it
/// holds a comma, a quote or a line break, with quotes doubled.
fn cell(s: &str, neutralise: bool) -> Zeroizing<String> {
    let mut c = Zeroizing::new(String::with_capacity(s.len() + 3));
    let formula = neutralise && s.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quote = s.contains([',', '"', '\r', '\n']);
    if quote {
        c.push('"');
    }
    if formula {
        c.push('\'');
    }
    for ch in s.chars() {
        if ch == '"' {
            c.push('"');
        }
        c.push(ch);
    }
    if quote {
        c.push('"');
    }
    c
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn check(v: Value, expect: &str) {
        assert_eq!(value_cell(&v).as_str(), expect, "{v}");
    }

    #[test]
    fn cells_are_quoted_as_rfc_4180_says_and_formulas_are_made_inert() {
        check(json!("Ada Lovelace"), "Ada Lovelace");
        check(json!("Lovelace, Ada"), "\"Lovelace, Ada\"");
        check(json!("say \"hi\""), "\"say \"\"hi\"\"\"");
        check(json!("two\nlines"), "\"two\nlines\"");
        check(
            json!("=HYPERLINK(\"http://x\")"),
            "\"'=HYPERLINK(\"\"http://x\"\")\"",
        );
        check(json!("=1+1"), "'=1+1");
        check(json!("+442079460000"), "'+442079460000");
        check(json!("-2"), "'-2");
        check(json!("@SUM(A1)"), "'@SUM(A1)");
        check(json!("\tx"), "'\tx");
        check(json!(-2.5), "-2.5");
        check(json!(true), "true");
        check(json!(null), "");
        check(
            json!({"lines": ["1 Example Street", "Flat 2"], "locality": "London",
                   "postal_code": "SW1A 1AA", "country": "GB"}),
            "\"1 Example Street, Flat 2, London, SW1A 1AA, GB\"",
        );
        check(json!({"lines": ["=cmd"], "country": "GB"}), "\"'=cmd, GB\"");
    }

    #[test]
    fn the_readme_wraps_its_words() {
        let w = wrap(&"word ".repeat(40));
        assert!(w.lines().all(|l| l.chars().count() <= 78), "{w}");
        assert!(w.ends_with("\n\n"));
        let i = indent(&"word ".repeat(40));
        assert!(
            i.lines()
                .all(|l| l.is_empty() || (l.starts_with("    ") && l.chars().count() <= 78)),
            "{i}"
        );
    }

    #[test]
    fn formats_parse_by_name_and_refuse_others_naming_the_field() {
        assert_eq!(
            ExportFormat::parse("format", "zip").unwrap(),
            ExportFormat::Zip
        );
        assert_eq!(
            ExportFormat::parse("format", "json").unwrap().media_type(),
            "application/json"
        );
        match ExportFormat::parse("format", "xml") {
            Err(VaultError::BadRequest { field, .. }) => {
                assert_eq!(field.as_deref(), Some("format"))
            }
            other => panic!("{other:?}"),
        }
    }
}
