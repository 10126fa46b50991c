//! Checking `[rights]`: the default profile, the calendar (UTC offset and holidays), the
//! fields a subject's jurisdiction is read from, and the `[[rights.jurisdictions]]` rules.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{FixedOffset, NaiveDate};
use toml::Spanned;

use super::checker::Checker;
use super::raw::{RawCollection, RawJurisdiction, RawRights};
use super::{Collection, FieldRef, FieldType, Jurisdiction, Rights};
use crate::countries;
use crate::rights::{Calendar, ProfileId, choices, parse_date, parse_utc_offset};

/// Every `(collection, field)` the file declares, valid or not: a reference to one that has
/// problems of its own is not a second problem.
pub(super) fn declared_fields(
    raw: &BTreeMap<String, Spanned<RawCollection>>,
) -> BTreeSet<(String, String)> {
    raw.iter()
        .flat_map(|(c, coll)| {
            coll.get_ref()
                .fields
                .keys()
                .map(move |f| (c.clone(), f.clone()))
        })
        .collect()
}

/// The fields a `[rights]` reference may name.
struct Fields<'a> {
    collections: &'a BTreeMap<String, Collection>,
    declared: &'a BTreeSet<(String, String)>,
}

/// `[rights]`, or its defaults when the file has none.
pub(super) fn rights(
    c: &mut Checker<'_>,
    raw: Option<Spanned<RawRights>>,
    collections: &BTreeMap<String, Collection>,
    declared: &BTreeSet<(String, String)>,
) -> Rights {
    let Some(raw) = raw else {
        return Rights::default();
    };
    let r = raw.into_inner();
    let defaults = Rights::default();
    let default_profile = r
        .default_profile
        .and_then(|p| {
            let line = c.line(&p);
            profile(c, line, "rights.default_profile", p.get_ref())
        })
        .unwrap_or(defaults.default_profile);
    let offset = r
        .utc_offset
        .and_then(|o| utc_offset(c, o))
        .unwrap_or(defaults.calendar.offset());
    let holidays = holidays(c, r.holidays);
    let fields = Fields {
        collections,
        declared,
    };
    let country_field = r.country_field.and_then(|f| {
        let read = "a subject's country is read from a country field";
        field_ref(
            c,
            f,
            "rights.country_field",
            (FieldType::Country, read),
            &fields,
        )
    });
    let region_field = r.region_field.and_then(|f| {
        let read = "a subject's region (ISO 3166-2, such as \"US-CA\") is read from a text field";
        field_ref(
            c,
            f,
            "rights.region_field",
            (FieldType::Text, read),
            &fields,
        )
    });
    Rights {
        default_profile,
        country_field,
        region_field,
        jurisdictions: jurisdictions(c, r.jurisdictions),
        calendar: Calendar::new(offset, holidays),
    }
}

/// A profile's name, which must be a built-in one.
fn profile(c: &mut Checker<'_>, line: Option<usize>, path: &str, name: &str) -> Option<ProfileId> {
    name.parse::<ProfileId>()
        .map_err(|e| {
            c.report(
                line,
                path,
                format!("{name:?} is not a profile: choose {}", choices(e.allowed)),
            )
        })
        .ok()
}

/// `utc_offset`: `+HH:MM` or `-HH:MM`.
fn utc_offset(c: &mut Checker<'_>, raw: Spanned<String>) -> Option<FixedOffset> {
    let offset = parse_utc_offset(raw.get_ref());
    if offset.is_none() {
        c.report(
            c.line(&raw),
            "rights.utc_offset",
            format!(
                "{:?} is not a UTC offset: write +HH:MM or -HH:MM, such as \"+01:00\"",
                raw.get_ref()
            ),
        );
    }
    offset
}

/// `holidays`: dates written `YYYY-MM-DD`, each reported on its own line.
fn holidays(c: &mut Checker<'_>, raw: Vec<Spanned<String>>) -> Vec<NaiveDate> {
    let mut dates = Vec::new();
    for (i, h) in raw.iter().enumerate() {
        match parse_date(h.get_ref()) {
            Some(d) => dates.push(d),
            None => c.report(
                c.line(h),
                format!("rights.holidays[{i}]"),
                format!(
                    "{:?} is not a date: write YYYY-MM-DD, such as \"2026-12-25\"",
                    h.get_ref()
                ),
            ),
        }
    }
    dates
}

/// A `collection.field` reference to a declared field of type `want`; `read` says why, when
/// the type is wrong.
fn field_ref(
    c: &mut Checker<'_>,
    raw: Spanned<String>,
    path: &str,
    (want, read): (FieldType, &str),
    fields: &Fields<'_>,
) -> Option<FieldRef> {
    let line = c.line(&raw);
    let name = raw.get_ref();
    let Some((collection, field)) = name.split_once('.') else {
        c.report(
            line,
            path,
            format!(
                "{name:?} is not a field: write collection.field, such as \"customers.country\""
            ),
        );
        return None;
    };
    let decl = fields
        .collections
        .get(collection)
        .and_then(|coll| coll.fields.get(field));
    match decl {
        Some(d) if d.ty == want => Some(FieldRef {
            collection: collection.to_owned(),
            field: field.to_owned(),
        }),
        Some(d) => {
            c.report(
                line,
                path,
                format!("{name} is a {} field: {read}", d.ty.as_str()),
            );
            None
        }
        None if fields
            .declared
            .contains(&(collection.to_owned(), field.to_owned())) =>
        {
            None
        }
        None => {
            c.report(
                line,
                path,
                format!(
                    "unknown field {name:?}: declare it under [collections.{collection}.fields.{field}]"
                ),
            );
            None
        }
    }
}

/// `[[rights.jurisdictions]]`: each a known profile and some valid codes, and no code placed
/// by two rules.
fn jurisdictions(c: &mut Checker<'_>, raw: Vec<Spanned<RawJurisdiction>>) -> Vec<Jurisdiction> {
    let mut rules = Vec::new();
    let mut placed: BTreeMap<String, usize> = BTreeMap::new();
    for (i, j) in raw.into_iter().enumerate() {
        let line = c.line(&j);
        let j = j.into_inner();
        let path = match &j.profile {
            Some(p) => format!("rights.jurisdictions[{i}] ({p})"),
            None => format!("rights.jurisdictions[{i}]"),
        };
        let profile = match j.profile.as_deref() {
            Some(p) => profile(c, line, &format!("{path}.profile"), p),
            None => {
                c.report(
                    line,
                    format!("{path}.profile"),
                    format!(
                        "the rule names no profile: choose {}",
                        choices(ProfileId::NAMES)
                    ),
                );
                None
            }
        };
        if j.countries.is_empty() && j.regions.is_empty() {
            c.report(
                line,
                &path,
                "the rule lists no countries and no regions, so it places no one",
            );
        }
        for code in &j.countries {
            if !countries::is_alpha2(code) {
                c.report(
                    line,
                    format!("{path}.countries"),
                    format!("{code:?} is not an ISO 3166-1 alpha-2 country code"),
                );
            }
            place(
                c,
                (line, &format!("{path}.countries")),
                code,
                i,
                &mut placed,
            );
        }
        for code in &j.regions {
            if !countries::is_region(code) {
                c.report(
                    line,
                    format!("{path}.regions"),
                    format!("{code:?} is not an ISO 3166-2 region: write the country's code, a hyphen and the subdivision's, such as \"US-CA\""),
                );
            }
            place(c, (line, &format!("{path}.regions")), code, i, &mut placed);
        }
        if let Some(profile) = profile {
            rules.push(Jurisdiction {
                profile,
                countries: j.countries,
                regions: j.regions,
            });
        }
    }
    rules
}

/// Notes that rule `i` places `code`, reporting a code some rule placed already.
fn place(
    c: &mut Checker<'_>,
    (line, path): (Option<usize>, &str),
    code: &str,
    i: usize,
    placed: &mut BTreeMap<String, usize>,
) {
    match placed.get(code) {
        None => {
            placed.insert(code.to_owned(), i);
        }
        Some(&k) if k == i => c.report(line, path, format!("{code:?} is listed twice")),
        Some(&k) => c.report(
            line,
            path,
            format!("{code:?} is placed already, by rights.jurisdictions[{k}]"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check, problems_after};
    use super::super::{EXAMPLE, Inventory};
    use super::*;

    #[test]
    fn the_examples_rights_are_read() {
        let inv = Inventory::from_toml(EXAMPLE).unwrap();
        let r = &inv.rights;
        assert_eq!(r.default_profile, ProfileId::Gdpr);
        assert_eq!(
            r.country_field,
            Some(FieldRef {
                collection: "customers".into(),
                field: "country".into()
            })
        );
        assert_eq!(r.region_field, None);
        assert_eq!(r.calendar.offset().local_minus_utc(), 0);
        assert_eq!(r.calendar.holidays().count(), 16);
        let christmas = parse_date("2026-12-25").unwrap();
        assert!(!r.calendar.is_business_day(christmas));
        let profiles: Vec<_> = r.jurisdictions.iter().map(|j| j.profile).collect();
        assert_eq!(
            profiles,
            [ProfileId::Gdpr, ProfileId::UkGdpr, ProfileId::Ccpa]
        );
        let served = serde_json::to_value(&inv).unwrap();
        assert_eq!(served["rights"]["default_profile"], "gdpr");
        assert_eq!(served["rights"]["calendar"]["utc_offset"], "+00:00");
        assert_eq!(served["rights"]["calendar"]["holidays"][0], "2026-01-01");
    }

    #[test]
    fn without_a_rights_section_everyone_is_under_gdpr() {
        let cut = EXAMPLE.find("# Data-subject rights").unwrap();
        let inv = Inventory::from_toml(&EXAMPLE[..cut]).unwrap();
        assert_eq!(inv.rights.default_profile, ProfileId::Gdpr);
        assert!(inv.rights.jurisdictions.is_empty() && inv.rights.country_field.is_none());
        assert_eq!(inv.rights.calendar, Calendar::default());
        let inv = Inventory::from_toml(&format!("{}[rights]\n", &EXAMPLE[..cut])).unwrap();
        assert_eq!(inv.rights.default_profile, ProfileId::Gdpr);
    }

    #[test]
    fn each_rights_setting_problem_is_named_with_its_place() {
        let rows: &[(&str, &str, &[&str])] = &[
            (
                "default_profile = \"gdpr\"",
                "default_profile = \"gdrp\"",
                &[
                    "rights.default_profile: \"gdrp\" is not a profile: choose gdpr, uk_gdpr or ccpa",
                ],
            ),
            (
                "utc_offset = \"+00:00\"",
                "utc_offset = \"CET\"",
                &["rights.utc_offset: \"CET\" is not a UTC offset"],
            ),
            (
                "\"2026-12-25\", \"2026-12-28\"",
                "\"2026-12-25\", \"2026-12-32\", \"28/12/2026\"",
                &[
                    "rights.holidays[7]: \"2026-12-32\" is not a date: write YYYY-MM-DD",
                    "rights.holidays[8]: \"28/12/2026\" is not a date",
                ],
            ),
            (
                "country_field = \"customers.country\"",
                "country_field = \"customers.land\"",
                &[
                    "rights.country_field: unknown field \"customers.land\": declare it under [collections.customers.fields.land]",
                ],
            ),
            (
                "country_field = \"customers.country\"",
                "country_field = \"shoppers.country\"",
                &["rights.country_field: unknown field \"shoppers.country\""],
            ),
            (
                "country_field = \"customers.country\"",
                "country_field = \"country\"",
                &["rights.country_field: \"country\" is not a field: write collection.field"],
            ),
            (
                "country_field = \"customers.country\"",
                "country_field = \"customers.name\"",
                &[
                    "rights.country_field: customers.name is a text field: a subject's country is read from a country field",
                ],
            ),
            (
                "# region_field = \"customers.state\"",
                "region_field = \"customers.country\"",
                &[
                    "rights.region_field: customers.country is a country field: a subject's region (ISO 3166-2, such as \"US-CA\") is read from a text field",
                ],
            ),
        ];
        for (from, to, expect) in rows {
            check(from, to, expect);
        }
    }

    #[test]
    fn each_jurisdiction_problem_is_named_with_its_place() {
        let rows: &[(&str, &str, &[&str])] = &[
            (
                "profile = \"uk_gdpr\"",
                "profile = \"uk\"",
                &["rights.jurisdictions[1] (uk).profile: \"uk\" is not a profile"],
            ),
            (
                "profile = \"uk_gdpr\"\n",
                "",
                &[
                    "rights.jurisdictions[1].profile: the rule names no profile: choose gdpr, uk_gdpr or ccpa",
                ],
            ),
            (
                "countries = [\"GB\"]",
                "countries = [\"UK\", \"FR\"]",
                &[
                    "rights.jurisdictions[1] (uk_gdpr).countries: \"UK\" is not an ISO 3166-1 alpha-2 country code",
                    "rights.jurisdictions[1] (uk_gdpr).countries: \"FR\" is placed already, by rights.jurisdictions[0]",
                ],
            ),
            (
                "countries = [\"GB\"]",
                "countries = [\"GB\", \"GB\"]",
                &["rights.jurisdictions[1] (uk_gdpr).countries: \"GB\" is listed twice"],
            ),
            (
                "countries = [\"GB\"]",
                "countries = []",
                &["rights.jurisdictions[1] (uk_gdpr): the rule lists no countries and no regions"],
            ),
            (
                "regions = [\"US-CA\"]",
                "regions = [\"CA\", \"US-california\", \"GB-SCT\"]",
                &[
                    "rights.jurisdictions[2] (ccpa).regions: \"CA\" is not an ISO 3166-2 region",
                    "rights.jurisdictions[2] (ccpa).regions: \"US-california\" is not an ISO 3166-2 region",
                ],
            ),
        ];
        for (from, to, expect) in rows {
            check(from, to, expect);
        }
    }

    #[test]
    fn rights_problems_carry_their_own_lines() {
        let got = problems_after(
            "\"2027-12-27\", \"2027-12-28\"",
            "\"2027-12-27\", \"2027-12-29x\"",
        );
        let line = EXAMPLE
            .lines()
            .position(|l| l.contains("\"2027-12-27\""))
            .unwrap()
            + 1;
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got[0].starts_with(&format!("line {line}: rights.holidays[15]: ")),
            "{got:?}"
        );
        let got = problems_after("profile = \"ccpa\"", "profile = \"cpra\"");
        let line = EXAMPLE
            .lines()
            .position(|l| l == "profile = \"ccpa\"")
            .unwrap()
            + 1;
        // A rule's problem is on its table's line: the header just above the key.
        assert!(
            got[0].starts_with(&format!("line {}: ", line - 1)),
            "{got:?}"
        );
    }

    #[test]
    fn a_field_with_problems_of_its_own_is_not_unknown() {
        // The country field loses its type: one problem, on the field, none on the reference.
        check(
            "type = \"country\"",
            "type = \"nation\"",
            &["collections.customers.fields.country.type: \"nation\" is not a field type"],
        );
    }
}
