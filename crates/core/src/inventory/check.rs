//! From the file's raw shape to a valid [`Inventory`]: one function per section, each
//! reporting its problems to a `Checker` and returning what it could make of the section.

use toml::Spanned;

use super::backup as backup_section;
use super::breach as breach_section;
use super::checker::{Checker, line_in};
use super::raw::{RawInventory, RawOrganization};
use super::{
    Inventory, InventoryError, Organization, Problem, collections, mail, portal, purposes, rights,
    tls,
};
use crate::countries;

impl Inventory {
    /// Parses and checks an inventory.
    ///
    /// # Errors
    /// An [`InventoryError`] listing every problem found, each with its line and path.
    pub fn from_toml(text: &str) -> Result<Inventory, InventoryError> {
        let raw: RawInventory = toml::from_str(text).map_err(|e| {
            let at = e.span().map(|s| s.start);
            // The parser's message may quote the value; under [root_key] that value may be a
            // key or a PIN written where its place belongs, so it is not repeated.
            let message = match at.is_some_and(|at| in_root_key(text, at)) {
                true => "a value in [root_key] is not a quoted string: each names a place (a \
                         path or a variable's name), never a key or a PIN"
                    .to_owned(),
                false => e.message().trim().to_owned(),
            };
            InventoryError {
                problems: vec![Problem {
                    line: at.map(|at| line_in(text, at)),
                    path: "custos.toml".into(),
                    message,
                }],
            }
        })?;
        let mut c = Checker::new(text);
        let database = database(&mut c, raw.database);
        let organization = organization(&mut c, raw.organization);
        let processors = purposes::processors(&mut c, raw.processors);
        let (purposes, purpose_ids) = purposes::purposes(&mut c, raw.purposes, &processors);
        let sites = purposes::sites(&mut c, raw.sites, &purposes, &purpose_ids);
        let roles = purposes::roles(&mut c, raw.roles, &purpose_ids);
        let declared = rights::declared_fields(&raw.collections);
        let collections =
            collections::collections(&mut c, raw.collections, &purposes, &purpose_ids);
        let rights = rights::rights(&mut c, raw.rights, &collections, &declared);
        let mail = mail::mail(&mut c, raw.mail, organization.as_ref());
        let portal = portal::portal(&mut c, raw.portal);
        let tls = tls::tls(&mut c, raw.tls);
        let breach = breach_section::breach(
            &mut c,
            raw.breach,
            organization.as_ref().map(|o| o.contact.as_str()),
        );
        let webhooks = breach_section::webhooks(&mut c, raw.webhooks);
        let backup = backup_section::backup(&mut c, raw.backup);
        let root_key = super::root_key::root_key(&mut c, raw.root_key);
        match (organization, mail) {
            (Some(organization), Some(mail)) if c.is_clean() => Ok(Inventory {
                database,
                organization,
                purposes,
                processors,
                roles,
                collections,
                sites,
                rights,
                mail,
                portal,
                tls,
                breach,
                webhooks,
                backup,
                root_key,
            }),
            _ => Err(InventoryError {
                problems: c.into_problems(),
            }),
        }
    }
}

/// `database`: a URL of a scheme this binary understands.
fn database(c: &mut Checker<'_>, raw: Option<Spanned<String>>) -> Option<String> {
    let d = raw?;
    let line = c.line(&d);
    let url = d.into_inner();
    if ["sqlite://", "sqlite:", "postgres://", "postgresql://"]
        .iter()
        .any(|p| url.starts_with(p) && url.len() > p.len())
    {
        Some(url)
    } else {
        c.report(
            line,
            "database",
            "the database is not a URL this binary understands: use sqlite://PATH or postgres://USER@HOST/DATABASE",
        );
        None
    }
}

/// `[organization]`: the controller's name and contact, and the default phone region.
fn organization(
    c: &mut Checker<'_>,
    raw: Option<Spanned<RawOrganization>>,
) -> Option<Organization> {
    let Some(o) = raw else {
        c.report(
            None,
            "organization",
            "the [organization] table is missing: name the controller and a contact",
        );
        return None;
    };
    let line = c.line(&o);
    let o = o.into_inner();
    let name = o.name.filter(|s| !s.trim().is_empty());
    let contact = o.contact.filter(|s| !s.trim().is_empty());
    if name.is_none() {
        c.report(
            line,
            "organization.name",
            "the controller's name is missing",
        );
    }
    if contact.is_none() {
        c.report(
            line,
            "organization.contact",
            "a contact for privacy questions is missing",
        );
    }
    let region = o.default_region.unwrap_or_else(|| "GB".into());
    if !countries::is_alpha2(&region) {
        c.report(
            line,
            "organization.default_region",
            format!("{region:?} is not an ISO 3166-1 alpha-2 country code"),
        );
    }
    Some(Organization {
        name: name?,
        contact: contact?,
        default_region: region,
    })
}

/// Whether byte `at` of the inventory is inside `[root_key]` or one of its tables.
fn in_root_key(text: &str, at: usize) -> bool {
    text[..at.min(text.len())]
        .lines()
        .rev()
        .map(str::trim_start)
        .find(|l| l.starts_with('['))
        .is_some_and(|header| header.starts_with("[root_key"))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check, problems_after};
    use super::super::{EXAMPLE, Inventory};

    #[test]
    fn the_database_is_named_by_a_url_we_understand() {
        let inv = Inventory::from_toml(&format!(
            "database = \"postgres://custos@db/custos\"\n{EXAMPLE}"
        ))
        .unwrap();
        assert_eq!(inv.database.as_deref(), Some("postgres://custos@db/custos"));
        // The inventory is served at /v1/inventory; the URL (which may hold a password) is not.
        let served = serde_json::to_string(&inv).unwrap();
        assert!(!served.contains("postgres"), "{served}");
        assert!(Inventory::from_toml(EXAMPLE).unwrap().database.is_none());
        for bad in ["mysql://db/x", "custos.db", "postgres://", ""] {
            let e = Inventory::from_toml(&format!("database = \"{bad}\"\n{EXAMPLE}"))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("line 1: database: the database is not a URL"),
                "{e}"
            );
        }
    }

    #[test]
    fn each_problem_is_named_with_its_place() {
        check(
            "purposes = [\"support\"]\nretention = \"2y\"",
            "purposes = []\nretention = \"2y\"",
            &["collections.customers.fields.notes.purposes: the field has no purpose"],
        );
        check(
            "legal_basis = \"legitimate_interests\"\n",
            "\n",
            &["purposes[1] (support).legal_basis: the purpose has no legal basis"],
        );
        check(
            "legal_basis = \"contract\"",
            "legal_basis = \"contrat\"",
            &["\"contrat\" is not a legal basis"],
        );
        check(
            "type = \"phone\"",
            "type = \"phonenumber\"",
            &["fields.phone.type: \"phonenumber\" is not a field type"],
        );
        check(
            "retention = \"3y after last_activity\"",
            "retention = \"3 years\"",
            &["collections.customers.retention: retention \"3 years\" is not understood"],
        );
        check(
            "id = \"marketer\"\npurposes = [\"marketing\"]",
            "id = \"marketer\"\npurposes = [\"adverts\"]",
            &["roles[2] (marketer).purposes: unknown purpose \"adverts\""],
        );
    }

    #[test]
    fn problems_carry_line_numbers() {
        let got = problems_after("type = \"date\"", "type = \"datum\"");
        let line = EXAMPLE
            .lines()
            .position(|l| l.contains("[collections.customers.fields.birth_date]"))
            .unwrap()
            + 1;
        assert!(
            got[0].starts_with(&format!("line {line}: ")),
            "{got:?} vs line {line}"
        );
    }

    #[test]
    fn several_problems_are_all_reported() {
        let text = r#"
[organization]
name = "X"
contact = "privacy@x.example"

[[purposes]]
id = "billing"
description = "Invoices"

[[roles]]
id = "admin"
purposes = ["billing"]

[[roles]]
id = "clerk"
purposes = ["shipping"]

[collections.orders]
retention = "forever"

[collections.orders.fields.total]
type = "money"
purposes = ["billing"]

[collections.orders.fields.flag]
type = "bool"
searchable = true
purposes = []
"#;
        let e = Inventory::from_toml(text).unwrap_err();
        let msgs: Vec<String> = e.problems.iter().map(|p| p.to_string()).collect();
        let expect = [
            "purposes[0] (billing).legal_basis: the purpose has no legal basis",
            "roles[0] (admin): admin is built in",
            "roles[1] (clerk).purposes: unknown purpose \"shipping\"",
            "collections.orders.retention: retention \"forever\" is not understood",
            "collections.orders.fields.flag.purposes: the field has no purpose",
            "collections.orders.fields.flag.searchable: a bool field cannot be searchable",
            "collections.orders.fields.total.type: \"money\" is not a field type",
        ];
        for want in expect {
            assert!(
                msgs.iter().any(|m| m.contains(want)),
                "missing {want:?} in {msgs:#?}"
            );
        }
        assert_eq!(msgs.len(), expect.len(), "{msgs:#?}");
    }

    #[test]
    fn syntax_errors_and_unknown_keys_are_located() {
        let e =
            Inventory::from_toml("[organization]\nname = \"X\"\ncontakt = \"y\"\n").unwrap_err();
        assert_eq!(e.problems[0].line, Some(3), "{e}");
        assert!(e.problems[0].message.contains("contakt"), "{e}");
        let e = Inventory::from_toml("[organization\n").unwrap_err();
        assert_eq!(e.problems[0].line, Some(1));
    }
}
