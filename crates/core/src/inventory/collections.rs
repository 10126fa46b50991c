//! Checking `[collections.*]` and their fields: types, purposes, retention, and what an
//! anonymised record may keep.

use std::collections::{BTreeMap, BTreeSet};

use toml::Spanned;

use super::checker::Checker;
use super::raw::{RawCollection, RawField};
use super::{
    Collection, DEFAULT_TEXT_LENGTH, FieldDecl, FieldType, LegalBasis, MAX_TEXT_LENGTH, OnExpiry,
    Purpose, Retention, is_identifier,
};

/// What a collection passes down to the checks of its fields.
struct Parent<'a> {
    retention: Option<Retention>,
    on_expiry: Option<OnExpiry>,
    purposes: &'a [Purpose],
    purpose_ids: &'a BTreeSet<String>,
}

/// `[collections.*]`: the valid collections, by name.
pub(super) fn collections(
    c: &mut Checker<'_>,
    raw: BTreeMap<String, Spanned<RawCollection>>,
    purposes: &[Purpose],
    purpose_ids: &BTreeSet<String>,
) -> BTreeMap<String, Collection> {
    let mut collections = BTreeMap::new();
    for (name, coll) in raw {
        let line = c.line(&coll);
        let path = format!("collections.{name}");
        if !is_identifier(&name) {
            c.report(
                line,
                &path,
                "the collection name must be lower snake_case (a-z, 0-9, _), starting with a letter",
            );
        }
        let coll = coll.into_inner();
        let retention = collection_retention(c, line, &path, &coll);
        let on_expiry = on_expiry(c, line, &path, coll.on_expiry.as_deref());
        if coll.fields.is_empty() {
            c.report(line, &path, "the collection declares no fields");
        }
        let parent = Parent {
            retention,
            on_expiry,
            purposes,
            purpose_ids,
        };
        let mut fields = BTreeMap::new();
        for (fname, f) in coll.fields {
            let line = c.line(&f);
            let fpath = format!("{path}.fields.{fname}");
            if !is_identifier(&fname) {
                c.report(
                    line,
                    &fpath,
                    "the field name must be lower snake_case (a-z, 0-9, _), starting with a letter",
                );
            }
            if let Some(decl) = field(c, line, &fpath, f.into_inner(), &parent) {
                fields.insert(fname, decl);
            }
        }
        if let (Some(retention), Some(on_expiry)) = (retention, on_expiry) {
            collections.insert(
                name,
                Collection {
                    retention,
                    on_expiry,
                    fields,
                },
            );
        }
    }
    collections
}

/// A collection's `retention`. Without one, every field must have its own, and each field
/// without is named; only when all have one is the collection's absence the problem.
fn collection_retention(
    c: &mut Checker<'_>,
    line: Option<usize>,
    path: &str,
    coll: &RawCollection,
) -> Option<Retention> {
    let Some(r) = coll.retention.as_deref() else {
        let mut bare = false;
        for (fname, f) in &coll.fields {
            if f.get_ref().retention.is_none() {
                bare = true;
                c.report(
                    c.line(f),
                    format!("{path}.fields.{fname}.retention"),
                    "the field has no retention: give it one, or give its collection one",
                );
            }
        }
        if !bare {
            c.report(
                line,
                format!("{path}.retention"),
                "the collection has no retention: say how long its records are kept",
            );
        }
        return None;
    };
    r.parse::<Retention>()
        .map_err(|e| c.report(line, format!("{path}.retention"), e.to_string()))
        .ok()
}

/// A collection's `on_expiry`, `delete` unless it says otherwise.
fn on_expiry(
    c: &mut Checker<'_>,
    line: Option<usize>,
    path: &str,
    raw: Option<&str>,
) -> Option<OnExpiry> {
    match raw {
        None | Some("delete") => Some(OnExpiry::Delete),
        Some("anonymise") => Some(OnExpiry::Anonymise),
        Some(other) => {
            c.report(
                line,
                format!("{path}.on_expiry"),
                format!(
                    "{other:?} is not understood: write \"delete\" (the default) or \"anonymise\""
                ),
            );
            None
        }
    }
}

/// One field, once its name is checked.
fn field(
    c: &mut Checker<'_>,
    line: Option<usize>,
    fpath: &str,
    f: RawField,
    parent: &Parent<'_>,
) -> Option<FieldDecl> {
    let ty = field_type(c, line, fpath, f.ty.as_deref());
    if f.purposes.is_empty() {
        c.report(
            line,
            format!("{fpath}.purposes"),
            "the field has no purpose: personal data is collected only for a declared purpose",
        );
    }
    for p in f
        .purposes
        .iter()
        .filter(|p| !parent.purpose_ids.contains(*p))
    {
        c.report(
            line,
            format!("{fpath}.purposes"),
            format!("unknown purpose {p:?}"),
        );
    }
    let max_length = text_options(c, line, fpath, ty, &f);
    let retention = field_retention(c, line, fpath, &f, parent);
    if f.keep_when_anonymised {
        keep_when_anonymised(c, line, fpath, ty, parent.on_expiry);
    }
    Some(FieldDecl {
        ty: ty?,
        category: f.category.unwrap_or_else(|| "personal".into()),
        purposes: f.purposes,
        searchable: f.searchable,
        required: f.required,
        max_length,
        retention,
        keep_when_anonymised: f.keep_when_anonymised,
    })
}

/// A field's `type`, which must be present and known.
fn field_type(
    c: &mut Checker<'_>,
    line: Option<usize>,
    fpath: &str,
    raw: Option<&str>,
) -> Option<FieldType> {
    let Some(t) = raw else {
        c.report(line, format!("{fpath}.type"), "the field has no type");
        return None;
    };
    t.parse::<FieldType>()
        .map_err(|()| {
            c.report(
                line,
                format!("{fpath}.type"),
                format!("{t:?} is not a field type: choose text, email, phone, date, country, postal_address, number or bool"),
            )
        })
        .ok()
}

/// `searchable` and `max_length`, which only some types take; the length limit to use.
fn text_options(
    c: &mut Checker<'_>,
    line: Option<usize>,
    fpath: &str,
    ty: Option<FieldType>,
    f: &RawField,
) -> usize {
    if let Some(t) = ty {
        if f.searchable && !t.indexable() {
            c.report(
                line,
                format!("{fpath}.searchable"),
                format!("a {} field cannot be searchable", t.as_str()),
            );
        }
        if f.max_length.is_some() && t != FieldType::Text {
            c.report(
                line,
                format!("{fpath}.max_length"),
                "max_length applies to text fields only",
            );
        }
    }
    match f.max_length {
        None => DEFAULT_TEXT_LENGTH,
        Some(n) if (1..=MAX_TEXT_LENGTH as i64).contains(&n) => n as usize,
        Some(_) => {
            c.report(
                line,
                format!("{fpath}.max_length"),
                format!("max_length must be between 1 and {MAX_TEXT_LENGTH}"),
            );
            DEFAULT_TEXT_LENGTH
        }
    }
}

/// A field's own `retention`; "until consent withdrawn" (its own or its collection's) needs a
/// consent-based purpose to be withdrawn from.
fn field_retention(
    c: &mut Checker<'_>,
    line: Option<usize>,
    fpath: &str,
    f: &RawField,
    parent: &Parent<'_>,
) -> Option<Retention> {
    let own = f.retention.as_deref().and_then(|r| {
        r.parse::<Retention>()
            .map_err(|e| c.report(line, format!("{fpath}.retention"), e.to_string()))
            .ok()
    });
    let until_withdrawn = own
        .or(parent.retention)
        .is_some_and(|r| r == Retention::UntilConsentWithdrawn);
    let serves_consent = f.purposes.iter().any(|p| {
        parent
            .purposes
            .iter()
            .any(|d| d.id == *p && d.legal_basis == LegalBasis::Consent)
    });
    if until_withdrawn && !serves_consent {
        c.report(
            line,
            format!("{fpath}.retention"),
            "\"until consent withdrawn\" needs the field to serve a purpose whose legal basis is consent",
        );
    }
    own
}

/// `keep_when_anonymised = true`: only in a collection that anonymises, only for a value that
/// identifies no one.
fn keep_when_anonymised(
    c: &mut Checker<'_>,
    line: Option<usize>,
    fpath: &str,
    ty: Option<FieldType>,
    on_expiry: Option<OnExpiry>,
) {
    if on_expiry != Some(OnExpiry::Anonymise) {
        c.report(
            line,
            format!("{fpath}.keep_when_anonymised"),
            "only a collection with on_expiry = \"anonymise\" keeps fields when it anonymises",
        );
    }
    if let Some(t) = ty
        && !matches!(t, FieldType::Country | FieldType::Bool | FieldType::Number)
    {
        c.report(
            line,
            format!("{fpath}.keep_when_anonymised"),
            "only a country, a number or a bool can be kept in an anonymised record: other values can identify a person",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check, problems_after};
    use super::super::{EXAMPLE, Inventory, OnExpiry};

    #[test]
    fn only_what_identifies_no_one_is_kept_when_anonymised() {
        check(
            "retention = \"3y after last_activity\"",
            "retention = \"3y after last_activity\"\non_expiry = \"forget\"",
            &["collections.customers.on_expiry: \"forget\" is not understood"],
        );
        check(
            "type = \"date\"\ncategory = \"demographic\"",
            "type = \"date\"\ncategory = \"demographic\"\nkeep_when_anonymised = true",
            &[
                "fields.birth_date.keep_when_anonymised: only a collection with on_expiry = \"anonymise\"",
                "fields.birth_date.keep_when_anonymised: only a country, a number or a bool",
            ],
        );
        let ok = EXAMPLE
            .replacen(
                "retention = \"3y after last_activity\"",
                "retention = \"3y after last_activity\"\non_expiry = \"anonymise\"",
                1,
            )
            .replacen(
                "type = \"country\"\ncategory = \"demographic\"",
                "type = \"country\"\ncategory = \"demographic\"\nkeep_when_anonymised = true",
                1,
            );
        let inv = Inventory::from_toml(&ok).unwrap();
        assert_eq!(inv.collections["customers"].on_expiry, OnExpiry::Anonymise);
        assert!(inv.collections["customers"].fields["country"].keep_when_anonymised);
    }

    #[test]
    fn every_field_has_a_retention() {
        // Without the collection's, each field without its own is named.
        let got = problems_after("retention = \"3y after last_activity\"\n", "");
        assert_eq!(got.len(), 7, "{got:#?}");
        assert!(
            got.iter()
                .all(|p| p.contains(".retention: the field has no retention")),
            "{got:#?}"
        );
        assert!(
            !got.iter().any(|p| p.contains("fields.notes")),
            "notes has its own"
        );
        check(
            "category = \"commercial\"\npurposes = [\"support\", \"marketing\"]",
            "category = \"commercial\"\npurposes = [\"support\"]\nretention = \"until consent withdrawn\"",
            &[
                "fields.vip.retention: \"until consent withdrawn\" needs the field to serve a purpose whose legal basis is consent",
            ],
        );
        let mut ok = EXAMPLE.replacen(
            "category = \"commercial\"\npurposes = [\"support\", \"marketing\"]",
            "category = \"commercial\"\npurposes = [\"support\", \"marketing\"]\nretention = \"until consent withdrawn\"",
            1,
        );
        assert!(Inventory::from_toml(&ok).is_ok());
        ok = ok.replacen("retention = \"2y\"", "retention = \"7y after created\"", 1);
        let inv = Inventory::from_toml(&ok).unwrap();
        assert_eq!(
            inv.collections["customers"].fields["notes"]
                .retention
                .unwrap()
                .to_string(),
            "7y after created"
        );
    }
}
