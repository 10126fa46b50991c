//! Field values: validated and normalised at the door, per the type the inventory declares.
//!
//! Parse, don't validate: [`normalise`] turns a raw JSON value into its canonical form and,
//! for searchable fields, the normal form a blind index is computed over. Error messages name
//! the rule that failed and never echo the value, so they are safe in an error body or a log.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::countries;
use crate::inventory::{Collection, FieldDecl, FieldType};
use crate::personal::{PersonalFields, PersonalValue};
use crate::secret::Secret;

/// The longest email address accepted (RFC 5321 path limit less the angle brackets).
const MAX_EMAIL_LEN: usize = 254;
/// Address lines in a postal address, and their length.
const MAX_ADDRESS_LINES: usize = 4;
const MAX_ADDRESS_PART_LEN: usize = 200;

/// A value that breaks a field's rule. Carries no part of the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field {field}: {message}")]
pub struct FieldError {
    /// The field's name (for postal addresses, `address.locality` and so on).
    pub field: String,
    /// A stable machine name of the rule: `email`, `phone`, `required`, `undeclared_field`, ...
    pub rule: &'static str,
    /// What the rule expects.
    pub message: String,
}

/// What the rules for one value need beyond its declaration.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The region for phone numbers without a country code.
    pub default_region: &'a str,
}

/// A value in canonical form. Both parts are personal, and print as redacted.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalised {
    /// The canonical value, as stored (encrypted) and returned.
    pub value: PersonalValue,
    /// The form a blind index is computed over; equal for values that should find each other.
    pub index_form: Secret<String>,
}

impl Normalised {
    fn new(index_form: String, value: Value) -> Self {
        Self {
            value: PersonalValue::new(value),
            index_form: Secret::new(index_form),
        }
    }
}

/// `s`, when it is safe to repeat in an error: a lower snake_case identifier, as every name an
/// inventory declares is. Anything else a caller sent as a name could be a personal value.
pub fn echoable(s: &str) -> Option<&str> {
    crate::inventory::is_identifier(s).then_some(s)
}

/// The error for a name the inventory does not declare, found in `container` (the request's
/// `fields`, an address, the query). The name is repeated only when [`echoable`].
pub fn undeclared_field(name: &str, container: &str) -> FieldError {
    match echoable(name) {
        Some(n) => fail(
            n,
            "undeclared_field",
            "is not declared in the inventory for this collection",
        ),
        None => fail(
            container,
            "undeclared_field",
            "names a field that is not declared in the inventory, and could not be: names are lower snake_case",
        ),
    }
}

fn fail(field: &str, rule: &'static str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.to_owned(),
        rule,
        message: message.into(),
    }
}

/// Validates and normalises one value for its declared field.
///
/// # Errors
/// A [`FieldError`] naming the field and the rule the value breaks.
pub fn normalise(
    name: &str,
    decl: &FieldDecl,
    raw: &PersonalValue,
    ctx: Context<'_>,
) -> Result<Normalised, FieldError> {
    let raw = raw.expose_secret();
    let want_string = |what: &str| fail(name, "type", format!("must be a string holding {what}"));
    match decl.ty {
        FieldType::Text => {
            let s = raw.as_str().ok_or_else(|| want_string("text"))?;
            let s = text(name, s, decl.max_length)?;
            Ok(Normalised::new(s.to_lowercase(), Value::String(s)))
        }
        FieldType::Email => {
            let s = raw
                .as_str()
                .ok_or_else(|| want_string("an email address"))?;
            let e = email(s)
                .map_err(|why| fail(name, "email", format!("not a valid email address: {why}")))?;
            Ok(Normalised::new(e.to_lowercase(), Value::String(e)))
        }
        FieldType::Phone => {
            let s = raw.as_str().ok_or_else(|| want_string("a phone number"))?;
            let p = phone(s, ctx.default_region)
                .map_err(|why| fail(name, "phone", format!("not a valid phone number: {why}")))?;
            Ok(Normalised::new(p.clone(), Value::String(p)))
        }
        FieldType::Date => {
            let s = raw.as_str().ok_or_else(|| want_string("a date"))?;
            let d = date(s).ok_or_else(|| {
                fail(
                    name,
                    "date",
                    "must be a calendar date written YYYY-MM-DD (ISO 8601)",
                )
            })?;
            Ok(Normalised::new(d.clone(), Value::String(d)))
        }
        FieldType::Country => {
            let s = raw.as_str().ok_or_else(|| want_string("a country code"))?;
            let c = country(s).ok_or_else(|| {
                fail(
                    name,
                    "country",
                    "must be an ISO 3166-1 alpha-2 country code such as GB",
                )
            })?;
            Ok(Normalised::new(c.clone(), Value::String(c)))
        }
        FieldType::Number => {
            let n = raw
                .as_number()
                .filter(|n| n.as_f64().is_some_and(f64::is_finite));
            let n = n.ok_or_else(|| fail(name, "number", "must be a finite JSON number"))?;
            Ok(Normalised::new(n.to_string(), Value::Number(n.clone())))
        }
        FieldType::Bool => {
            let b = raw
                .as_bool()
                .ok_or_else(|| fail(name, "bool", "must be true or false"))?;
            Ok(Normalised::new(b.to_string(), Value::Bool(b)))
        }
        FieldType::PostalAddress => {
            let v = postal_address(name, raw)?;
            Ok(Normalised::new(String::new(), v))
        }
    }
}

fn text(name: &str, s: &str, max_len: usize) -> Result<String, FieldError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(fail(
            name,
            "text",
            "must not be empty: leave the field out instead",
        ));
    }
    let n = s.chars().count();
    if n > max_len {
        return Err(fail(
            name,
            "max_length",
            format!("is {n} characters long; the limit is {max_len}"),
        ));
    }
    if s.chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r'))
    {
        return Err(fail(name, "text", "must not contain control characters"));
    }
    Ok(s.to_owned())
}

/// Validates an email address (RFC 5321 syntax through `email_address`, plus our policy:
/// a domain of at least two labels, no domain literals) and returns it with the domain
/// lower-cased and IDNA-encoded. The local part is kept as written: RFC 5321 lets a server
/// treat it as case-sensitive.
///
/// # Errors
/// A short reason, without the value.
pub fn email(s: &str) -> Result<String, &'static str> {
    let s = s.trim();
    if s.len() > MAX_EMAIL_LEN {
        return Err("longer than 254 characters");
    }
    let options = email_address::Options {
        minimum_sub_domains: 2,
        allow_domain_literal: false,
        allow_display_text: false,
    };
    let parsed =
        email_address::EmailAddress::parse_with_options(s, options).map_err(|e| match e {
            email_address::Error::DomainTooFew => {
                "the domain must have at least two labels, as in example.com"
            }
            email_address::Error::UnsupportedDomainLiteral => {
                "domain literals such as [127.0.0.1] are not accepted"
            }
            email_address::Error::MissingSeparator => "it has no @",
            email_address::Error::LocalPartEmpty => "the part before @ is empty",
            email_address::Error::DomainEmpty => "the domain is empty",
            email_address::Error::LocalPartTooLong => {
                "the part before @ is longer than 64 characters"
            }
            email_address::Error::DomainTooLong | email_address::Error::SubDomainTooLong => {
                "the domain is too long"
            }
            _ => "it does not follow RFC 5321",
        })?;
    let domain = idna::domain_to_ascii(parsed.domain())
        .map_err(|_| "the domain is not a valid internationalised domain name")?;
    if !domain.contains('.') || domain.starts_with('.') || domain.ends_with('.') {
        return Err("the domain must have at least two labels, as in example.com");
    }
    let out = format!("{}@{}", parsed.local_part(), domain);
    if out.len() > MAX_EMAIL_LEN {
        return Err("longer than 254 characters once the domain is encoded");
    }
    Ok(out)
}

/// Parses a phone number in `default_region` unless it carries a country code, and returns
/// it in E.164 form.
///
/// # Errors
/// A short reason, without the value.
pub fn phone(s: &str, default_region: &str) -> Result<String, &'static str> {
    if s.len() > 64 {
        return Err("longer than 64 characters");
    }
    let region = default_region.parse::<phonenumber::country::Id>().ok();
    let n = phonenumber::parse(region, s).map_err(|_| "it cannot be read as a phone number")?;
    if !phonenumber::is_valid(&n) {
        return Err("no such number exists in its numbering plan");
    }
    Ok(n.format().mode(phonenumber::Mode::E164).to_string())
}

/// Checks an ISO 8601 calendar date `YYYY-MM-DD` and returns it.
pub fn date(s: &str) -> Option<String> {
    let s = s.trim();
    let b = s.as_bytes();
    let shape = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape {
        return None;
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .map(|_| s.to_owned())
}

/// Checks an ISO 3166-1 alpha-2 code, in either case, and returns it upper-cased.
pub fn country(s: &str) -> Option<String> {
    let c = s.trim().to_ascii_uppercase();
    countries::is_alpha2(&c).then_some(c)
}

fn postal_address(name: &str, raw: &Value) -> Result<Value, FieldError> {
    let obj = raw.as_object().ok_or_else(|| {
        fail(
            name,
            "postal_address",
            "must be an object with lines, locality, region, postal_code and country",
        )
    })?;
    let mut out = Map::new();
    for key in obj.keys() {
        if !matches!(
            key.as_str(),
            "lines" | "locality" | "region" | "postal_code" | "country"
        ) {
            let at = echoable(key).map_or_else(|| name.to_owned(), |k| format!("{name}.{k}"));
            return Err(fail(
                &at,
                "postal_address",
                "names a part that is not part of a postal address: use lines, locality, region, postal_code and country",
            ));
        }
    }
    let lines = obj.get("lines").and_then(Value::as_array).ok_or_else(|| {
        fail(
            &format!("{name}.lines"),
            "postal_address",
            "must be an array of 1 to 4 address lines",
        )
    })?;
    if lines.is_empty() || lines.len() > MAX_ADDRESS_LINES {
        return Err(fail(
            &format!("{name}.lines"),
            "postal_address",
            "must hold 1 to 4 address lines",
        ));
    }
    let mut clean = Vec::with_capacity(lines.len());
    for (i, l) in lines.iter().enumerate() {
        let p = format!("{name}.lines[{i}]");
        let s = l
            .as_str()
            .ok_or_else(|| fail(&p, "type", "must be a string"))?;
        clean.push(Value::String(text(&p, s, MAX_ADDRESS_PART_LEN)?));
    }
    out.insert("lines".into(), Value::Array(clean));
    for key in ["locality", "region", "postal_code"] {
        if let Some(v) = obj.get(key) {
            let p = format!("{name}.{key}");
            let s = v
                .as_str()
                .ok_or_else(|| fail(&p, "type", "must be a string"))?;
            out.insert(
                key.into(),
                Value::String(text(&p, s, MAX_ADDRESS_PART_LEN)?),
            );
        }
    }
    let p = format!("{name}.country");
    let c = obj.get("country").and_then(Value::as_str).and_then(country);
    let c = c.ok_or_else(|| {
        fail(
            &p,
            "country",
            "must be an ISO 3166-1 alpha-2 country code such as GB",
        )
    })?;
    out.insert("country".into(), Value::String(c));
    Ok(Value::Object(out))
}

/// Whether a record is being created (required fields must be present) or patched (only the
/// fields given change; `null` removes an optional field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A new record.
    Create,
    /// A partial update.
    Patch,
}

/// A record's fields after validation: `Some` to set, `None` to remove (patch only).
pub type Validated = BTreeMap<String, Option<Normalised>>;

/// Validates every field of a record body against its collection.
///
/// # Errors
/// The first [`FieldError`] in field-name order: an undeclared field, a missing required
/// field, a `null` where it is not allowed, or a value that breaks its type's rule.
pub fn validate_record(
    coll: &Collection,
    fields: &PersonalFields,
    mode: Mode,
    ctx: Context<'_>,
) -> Result<Validated, FieldError> {
    let mut out = BTreeMap::new();
    let mut names: Vec<&String> = fields.keys().collect();
    names.sort();
    for name in names {
        let Some(decl) = coll.fields.get(name) else {
            return Err(undeclared_field(name, "fields"));
        };
        let raw = &fields[name];
        if raw.is_null() {
            if mode == Mode::Create {
                return Err(fail(
                    name,
                    "null",
                    "must not be null: leave the field out instead",
                ));
            }
            if decl.required {
                return Err(fail(name, "required", "is required and cannot be removed"));
            }
            out.insert(name.clone(), None);
            continue;
        }
        out.insert(name.clone(), Some(normalise(name, decl, raw, ctx)?));
    }
    if mode == Mode::Create
        && let Some((name, _)) = coll
            .fields
            .iter()
            .find(|(n, d)| d.required && !fields.contains_key(*n))
    {
        return Err(fail(name, "required", "is required"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{EXAMPLE, Inventory};

    fn fields_of(body: Value) -> PersonalFields {
        match body {
            Value::Object(m) => crate::personal::fields_of(m),
            other => panic!("not an object: {other}"),
        }
    }

    const CORPUS: &str = include_str!("../testdata/fields.json");

    fn corpus() -> Value {
        serde_json::from_str(CORPUS).unwrap()
    }

    fn strings(v: &Value) -> Vec<(String, String)> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p[0].as_str().unwrap().to_owned(),
                    p[1].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn email_corpus() {
        let c = corpus();
        for (input, want) in strings(&c["email"]["valid"]) {
            assert_eq!(email(&input).as_deref(), Ok(want.as_str()), "{input:?}");
        }
        for (input, why) in strings(&c["email"]["invalid"]) {
            assert!(
                email(&input).is_err(),
                "{input:?} should be rejected ({why})"
            );
        }
    }

    #[test]
    fn phone_corpus() {
        let c = corpus();
        for case in c["phone"]["valid"].as_array().unwrap() {
            let (region, input, want) = (
                case[0].as_str().unwrap(),
                case[1].as_str().unwrap(),
                case[2].as_str().unwrap(),
            );
            assert_eq!(
                phone(input, region).as_deref(),
                Ok(want),
                "{input:?} in {region}"
            );
        }
        for case in c["phone"]["invalid"].as_array().unwrap() {
            let (region, input) = (case[0].as_str().unwrap(), case[1].as_str().unwrap());
            assert!(
                phone(input, region).is_err(),
                "{input:?} in {region} should be rejected"
            );
        }
    }

    #[test]
    fn the_issue_examples_find_each_other() {
        assert_eq!(
            email("Ada@Example.COM").unwrap().to_lowercase(),
            email("ada@example.com").unwrap()
        );
        assert_eq!(
            phone("+44 20 7946 0958", "GB"),
            phone("020 7946 0958", "GB")
        );
    }

    #[test]
    fn dates_and_countries() {
        for ok in ["2024-02-29", "1970-01-01", "0001-01-01", "9999-12-31"] {
            assert_eq!(date(ok).as_deref(), Some(ok));
        }
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "2024-1-01",
            "24-01-01",
            "2024/01/01",
            "20240101",
            "2024-01-01T00:00:00Z",
            "",
        ] {
            assert_eq!(date(bad), None, "{bad:?}");
        }
        assert_eq!(country("gb").as_deref(), Some("GB"));
        assert_eq!(country("UK"), None);
    }

    fn customers() -> Collection {
        Inventory::from_toml(EXAMPLE).unwrap().collections["customers"].clone()
    }

    const CTX: Context<'static> = Context {
        default_region: "GB",
    };

    fn check(body: Value, mode: Mode, expect: Result<(), (&str, &str)>) {
        let got = validate_record(&customers(), &fields_of(body.clone()), mode, CTX);
        match (got, expect) {
            (Ok(_), Ok(())) => {}
            (Err(e), Err((field, rule))) => {
                assert_eq!((e.field.as_str(), e.rule), (field, rule), "{body}");
            }
            (got, want) => panic!("{body}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn record_rules() {
        use serde_json::json;
        check(json!({"email": "a@b.example"}), Mode::Create, Ok(()));
        check(
            json!({"name": "Ada"}),
            Mode::Create,
            Err(("email", "required")),
        );
        check(
            json!({"email": "a@b.example", "ssn": "1"}),
            Mode::Create,
            Err(("ssn", "undeclared_field")),
        );
        check(
            json!({"email": "user@localhost"}),
            Mode::Create,
            Err(("email", "email")),
        );
        check(json!({"email": 42}), Mode::Create, Err(("email", "type")));
        check(
            json!({"email": "a@b.example", "phone": "12"}),
            Mode::Create,
            Err(("phone", "phone")),
        );
        check(
            json!({"email": "a@b.example", "notes": null}),
            Mode::Create,
            Err(("notes", "null")),
        );
        check(json!({"notes": null}), Mode::Patch, Ok(()));
        check(
            json!({"email": null}),
            Mode::Patch,
            Err(("email", "required")),
        );
        check(
            json!({"email": "a@b.example", "name": "x".repeat(201)}),
            Mode::Create,
            Err(("name", "max_length")),
        );
        check(
            json!({"email": "a@b.example", "name": "a\u{0}b"}),
            Mode::Create,
            Err(("name", "text")),
        );
        check(
            json!({"email": "a@b.example", "vip": "yes"}),
            Mode::Create,
            Err(("vip", "bool")),
        );
        check(
            json!({"email": "a@b.example", "birth_date": "1815-12-10"}),
            Mode::Create,
            Ok(()),
        );
        check(
            json!({"email": "a@b.example", "address": {"lines": ["1 Main St"], "country": "GB"}}),
            Mode::Create,
            Ok(()),
        );
        check(
            json!({"email": "a@b.example", "address": {"lines": [], "country": "GB"}}),
            Mode::Create,
            Err(("address.lines", "postal_address")),
        );
        check(
            json!({"email": "a@b.example", "address": {"lines": ["x"], "country": "XX"}}),
            Mode::Create,
            Err(("address.country", "country")),
        );
        check(
            json!({"email": "a@b.example", "address": {"lines": ["x"], "country": "GB", "gps": "1"}}),
            Mode::Create,
            Err(("address.gps", "postal_address")),
        );
        check(
            json!({"email": "a@b.example", "address": "1 Main St"}),
            Mode::Create,
            Err(("address", "postal_address")),
        );
    }

    #[test]
    fn names_that_could_be_values_are_not_echoed() {
        use serde_json::json;
        check(
            json!({"email": "a@b.example", "ada@example.com": "x"}),
            Mode::Create,
            Err(("fields", "undeclared_field")),
        );
        check(
            json!({"email": "a@b.example", "address": {"lines": ["x"], "country": "GB", "Ada Lovelace": "1"}}),
            Mode::Create,
            Err(("address", "postal_address")),
        );
        assert_eq!(echoable("ssn"), Some("ssn"));
        assert_eq!(echoable("Ada@Example.COM"), None);
    }

    #[test]
    fn errors_never_echo_the_value() {
        let canary = "canary-7f3a9c@nowhere";
        let body =
            serde_json::json!({"email": canary, "name": format!("{canary}{}", "x".repeat(300))});
        let e =
            validate_record(&customers(), &fields_of(body.clone()), Mode::Create, CTX).unwrap_err();
        assert!(!e.to_string().contains("canary"), "{e}");
    }
}
