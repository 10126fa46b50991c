//! Checking `[[processors]]`, `[[purposes]]`, `[[sites]]` and `[[roles]]`: who receives
//! data, why it is processed, and who may use it for what.

use std::collections::BTreeSet;

use toml::Spanned;

use super::checker::{Checker, IDENTIFIER_RULE};
use super::raw::{RawProcessor, RawPurpose, RawRole, RawSite};
use super::{
    ADMIN_ROLE, LegalBasis, Period, Permission, Processor, Purpose, Role, Site, is_identifier,
    is_origin,
};
use crate::countries;

/// The legal bases, as a problem's message lists them.
const LEGAL_BASES: &str =
    "consent, contract, legal_obligation, vital_interests, public_task or legitimate_interests";

/// `[[processors]]`: every one is kept, so that later sections can name it even when it has
/// problems of its own.
pub(super) fn processors(c: &mut Checker<'_>, raw: Vec<Spanned<RawProcessor>>) -> Vec<Processor> {
    let mut processors = Vec::new();
    let mut ids = BTreeSet::new();
    for (i, p) in raw.into_iter().enumerate() {
        let line = c.line(&p);
        let p = p.into_inner();
        let path = format!("processors[{i}] ({})", p.id);
        c.id(line, &path, &p.id, &mut ids, "processor");
        let country = p.country.unwrap_or_default();
        if !countries::is_alpha2(&country) {
            c.report(
                line,
                format!("{path}.country"),
                "the processor's country must be an ISO 3166-1 alpha-2 code",
            );
        }
        let name = p.name.unwrap_or_default();
        if name.trim().is_empty() {
            c.report(
                line,
                format!("{path}.name"),
                "the processor's name is missing",
            );
        }
        processors.push(Processor {
            id: p.id,
            name,
            country,
        });
    }
    processors
}

/// `[[purposes]]`: the valid purposes, and the ids of all declared ones (a purpose with a
/// problem is still declared, so naming it elsewhere is not a second problem).
pub(super) fn purposes(
    c: &mut Checker<'_>,
    raw: Vec<Spanned<RawPurpose>>,
    processors: &[Processor],
) -> (Vec<Purpose>, BTreeSet<String>) {
    let mut purposes = Vec::new();
    let mut ids = BTreeSet::new();
    for (i, p) in raw.into_iter().enumerate() {
        let line = c.line(&p);
        let p = p.into_inner();
        let path = format!("purposes[{i}] ({})", p.id);
        c.id(line, &path, &p.id, &mut ids, "purpose");
        if let Some(purpose) = purpose(c, line, &path, p, processors) {
            purposes.push(purpose);
        }
    }
    (purposes, ids)
}

/// One purpose, once its id is checked.
fn purpose(
    c: &mut Checker<'_>,
    line: Option<usize>,
    path: &str,
    p: RawPurpose,
    processors: &[Processor],
) -> Option<Purpose> {
    let description = p.description.unwrap_or_default();
    if description.trim().is_empty() {
        c.report(
            line,
            format!("{path}.description"),
            "the purpose has no description for the privacy notice",
        );
    }
    let basis = legal_basis(c, line, path, p.legal_basis.as_deref());
    for r in &p.recipients {
        if !processors.iter().any(|d| d.id == *r) {
            c.report(
                line,
                format!("{path}.recipients"),
                format!("unknown processor {r:?}: declare it under [[processors]]"),
            );
        }
    }
    let not_consent = basis.is_some_and(|b| b != LegalBasis::Consent);
    let consent_lapses_after = match p.consent_lapses_after.as_deref() {
        None => None,
        Some(_) if not_consent => {
            c.report(
                line,
                format!("{path}.consent_lapses_after"),
                "only a purpose whose legal basis is consent can have its consent lapse",
            );
            None
        }
        Some(s) => s
            .parse::<Period>()
            .map_err(|e| c.report(line, format!("{path}.consent_lapses_after"), e.to_string()))
            .ok(),
    };
    if p.sale_or_sharing && not_consent {
        c.report(
            line,
            format!("{path}.sale_or_sharing"),
            "a purpose that sells or shares data must rest on consent, so that an opt-out (GPC) can withdraw it",
        );
    }
    Some(Purpose {
        id: p.id,
        description,
        legal_basis: basis?,
        recipients: p.recipients,
        consent_lapses_after,
        sale_or_sharing: p.sale_or_sharing,
    })
}

/// A purpose's `legal_basis`, which must be present and one of the six.
fn legal_basis(
    c: &mut Checker<'_>,
    line: Option<usize>,
    path: &str,
    raw: Option<&str>,
) -> Option<LegalBasis> {
    let path = format!("{path}.legal_basis");
    match raw {
        None => {
            c.report(
                line,
                path,
                format!("the purpose has no legal basis: choose {LEGAL_BASES}"),
            );
            None
        }
        Some(b) => b
            .parse::<LegalBasis>()
            .map_err(|()| {
                c.report(
                    line,
                    path,
                    format!("{b:?} is not a legal basis: choose {LEGAL_BASES}"),
                )
            })
            .ok(),
    }
}

/// `[[sites]]`: origins, and purposes that rest on consent.
pub(super) fn sites(
    c: &mut Checker<'_>,
    raw: Vec<Spanned<RawSite>>,
    purposes: &[Purpose],
    purpose_ids: &BTreeSet<String>,
) -> Vec<Site> {
    let mut sites = Vec::new();
    let mut ids = BTreeSet::new();
    for (i, site) in raw.into_iter().enumerate() {
        let line = c.line(&site);
        let site = site.into_inner();
        let path = format!("sites[{i}] ({})", site.id);
        c.id(line, &path, &site.id, &mut ids, "site");
        if site.origins.is_empty() {
            c.report(
                line,
                format!("{path}.origins"),
                "the site has no origin: list where its pages are served from, such as \"https://shop.example\"",
            );
        }
        for o in site.origins.iter().filter(|o| !is_origin(o)) {
            c.report(
                line,
                format!("{path}.origins"),
                format!("{o:?} is not an origin: write scheme://host[:port], with no path, such as \"https://shop.example\""),
            );
        }
        for p in &site.purposes {
            match purposes.iter().find(|d| d.id == *p) {
                None if !purpose_ids.contains(p) => c.report(
                    line,
                    format!("{path}.purposes"),
                    format!("unknown purpose {p:?}"),
                ),
                Some(d) if d.legal_basis != LegalBasis::Consent => c.report(
                    line,
                    format!("{path}.purposes"),
                    format!("purpose {p:?} does not rest on consent, so a banner cannot record consent to it"),
                ),
                _ => {}
            }
        }
        sites.push(Site {
            id: site.id,
            origins: site.origins,
            purposes: site.purposes,
        });
    }
    sites
}

/// `[[roles]]`: never `admin`, and each able to do something.
pub(super) fn roles(
    c: &mut Checker<'_>,
    raw: Vec<Spanned<RawRole>>,
    purpose_ids: &BTreeSet<String>,
) -> Vec<Role> {
    let mut roles = Vec::new();
    let mut ids = BTreeSet::new();
    for (i, r) in raw.into_iter().enumerate() {
        let line = c.line(&r);
        let r = r.into_inner();
        let path = format!("roles[{i}] ({})", r.id);
        if r.id == ADMIN_ROLE {
            c.report(line, &path, "admin is built in and cannot be redefined");
        } else if !is_identifier(&r.id) {
            c.report(line, &path, IDENTIFIER_RULE);
        }
        if !ids.insert(r.id.clone()) {
            c.report(line, &path, "a role with this id is declared twice");
        }
        let mut may = BTreeSet::new();
        for name in &r.may {
            match Permission::parse(name) {
                Some(p) => {
                    may.insert(p);
                }
                None => c.report(
                    line,
                    format!("{path}.may"),
                    format!(
                        "unknown permission {name:?}: one of {}",
                        Permission::ALL.map(Permission::as_str).join(", ")
                    ),
                ),
            }
        }
        if r.purposes.is_empty() && !r.may_write && r.may.is_empty() {
            c.report(
                line,
                format!("{path}.purposes"),
                "the role has no purpose, no permission and may not write, so it could do nothing",
            );
        }
        for p in r.purposes.iter().filter(|p| !purpose_ids.contains(*p)) {
            c.report(
                line,
                format!("{path}.purposes"),
                format!("unknown purpose {p:?}"),
            );
        }
        roles.push(Role {
            id: r.id,
            purposes: r.purposes,
            may_write: r.may_write,
            may,
        });
    }
    roles
}

#[cfg(test)]
mod tests {
    use super::super::is_origin;
    use super::super::testing::check;

    #[test]
    fn sites_and_sale_or_sharing_are_checked() {
        check(
            "origins = [\"https://shop.example\", \"http://localhost:8000\"]",
            "origins = [\"https://shop.example/consent\", \"ftp://x\"]",
            &[
                "sites[0] (shop).origins: \"https://shop.example/consent\" is not an origin",
                "sites[0] (shop).origins: \"ftp://x\" is not an origin",
            ],
        );
        check(
            "purposes = [\"marketing\", \"analytics\", \"advertising\"]",
            "purposes = [\"billing\", \"newsletter\"]",
            &[
                "sites[0] (shop).purposes: purpose \"billing\" does not rest on consent",
                "sites[0] (shop).purposes: unknown purpose \"newsletter\"",
            ],
        );
        check(
            "legal_basis = \"contract\"\nrecipients = [\"payments\"]",
            "legal_basis = \"contract\"\nrecipients = [\"payments\"]\nsale_or_sharing = true",
            &[
                "purposes[0] (billing).sale_or_sharing: a purpose that sells or shares data must rest on consent",
            ],
        );
        assert!(is_origin("https://shop.example:8443") && !is_origin("https://"));
    }
}
