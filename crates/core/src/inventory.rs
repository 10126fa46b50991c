//! The inventory: what a business declares in `custos.toml` about the personal data it
//! collects, why, on which legal basis, for how long, and who may use it.
//!
//! Parsing reports every problem at once, each with its line and its path in the file, so a
//! reviewer fixes an inventory in one pass. A valid [`Inventory`] is valid by construction.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::countries;

/// The example inventory `custos init` writes: an online shop.
pub const EXAMPLE: &str = include_str!("../example/custos.toml");

/// The built-in role that may write and may read for any declared purpose.
pub const ADMIN_ROLE: &str = "admin";

/// The longest text value a field may declare.
pub const MAX_TEXT_LENGTH: usize = 65_536;
/// The text length limit when a field declares none.
pub const DEFAULT_TEXT_LENGTH: usize = 1_000;

/// A validated inventory.
#[derive(Debug, Clone, Serialize)]
pub struct Inventory {
    /// Where the vault's data lives (`sqlite://PATH`, `postgres://...`), when not the
    /// embedded default. Never serialised: a URL may hold a password.
    #[serde(skip)]
    pub database: Option<String>,
    /// Who the controller is.
    pub organization: Organization,
    /// The declared purposes, in file order.
    pub purposes: Vec<Purpose>,
    /// The processors data may be shared with.
    pub processors: Vec<Processor>,
    /// The roles API keys can hold, besides the built-in `admin`.
    pub roles: Vec<Role>,
    /// The collections, by name.
    pub collections: BTreeMap<String, Collection>,
    /// The websites that record consent through the public endpoint.
    pub sites: Vec<Site>,
}

/// The controller.
#[derive(Debug, Clone, Serialize)]
pub struct Organization {
    /// The controller's name.
    pub name: String,
    /// How customers reach the controller about their data.
    pub contact: String,
    /// The region phone numbers without a country code are read in (ISO 3166-1 alpha-2).
    pub default_region: String,
}

/// A reason for processing personal data.
#[derive(Debug, Clone, Serialize)]
pub struct Purpose {
    /// The purpose's identifier, as used in `?purpose=`.
    pub id: String,
    /// What the purpose means, in words a customer understands.
    pub description: String,
    /// The GDPR Art. 6 legal basis.
    pub legal_basis: LegalBasis,
    /// Processors that receive data for this purpose.
    pub recipients: Vec<String>,
    /// For a consent-based purpose, how long a grant holds before the customer must be asked
    /// again; lapsed consent counts as none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consent_lapses_after: Option<Period>,
    /// Whether the purpose sells or shares personal data (CCPA/CPRA): a Global Privacy
    /// Control signal opts the customer out of it.
    pub sale_or_sharing: bool,
}

/// A website whose consent banner records choices through the public endpoint.
#[derive(Debug, Clone, Serialize)]
pub struct Site {
    /// The site's identifier, part of its publishable key.
    pub id: String,
    /// The origins (`https://shop.example`) its pages are served from: the only ones the
    /// public endpoint answers for it.
    pub origins: Vec<String>,
    /// The consent-based purposes its banner may record choices for.
    pub purposes: Vec<String>,
}

/// The GDPR Art. 6(1) legal bases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LegalBasis {
    /// Art. 6(1)(a).
    Consent,
    /// Art. 6(1)(b).
    Contract,
    /// Art. 6(1)(c).
    LegalObligation,
    /// Art. 6(1)(d).
    VitalInterests,
    /// Art. 6(1)(e).
    PublicTask,
    /// Art. 6(1)(f).
    LegitimateInterests,
}

impl LegalBasis {
    const ALL: [(&'static str, LegalBasis); 6] = [
        ("consent", LegalBasis::Consent),
        ("contract", LegalBasis::Contract),
        ("legal_obligation", LegalBasis::LegalObligation),
        ("vital_interests", LegalBasis::VitalInterests),
        ("public_task", LegalBasis::PublicTask),
        ("legitimate_interests", LegalBasis::LegitimateInterests),
    ];

    /// The basis's name as written in the inventory.
    pub fn as_str(&self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, b)| b == self)
            .map(|(s, _)| *s)
            .expect("every basis is listed")
    }
}

impl FromStr for LegalBasis {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        Self::ALL
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, b)| *b)
            .ok_or(())
    }
}

/// A recipient of personal data.
#[derive(Debug, Clone, Serialize)]
pub struct Processor {
    /// Its identifier, as named in a purpose's `recipients`.
    pub id: String,
    /// Its legal name.
    pub name: String,
    /// Where it processes the data (ISO 3166-1 alpha-2).
    pub country: String,
}

/// What an API key's holder may do.
#[derive(Debug, Clone, Serialize)]
pub struct Role {
    /// The role's identifier.
    pub id: String,
    /// The purposes the role may read for.
    pub purposes: Vec<String>,
    /// Whether the role may create, change and delete records.
    pub may_write: bool,
}

/// What happens to a record whose retention has run out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnExpiry {
    /// It is deleted.
    Delete,
    /// Its fields marked `keep_when_anonymised` (values that cannot identify anyone: a
    /// country, a number, a yes/no) are kept in a new record of no one, with a new id; the
    /// rest is deleted with the original.
    Anonymise,
}

/// A kind of record, with its declared fields.
#[derive(Debug, Clone, Serialize)]
pub struct Collection {
    /// How long a record is kept.
    pub retention: Retention,
    /// What happens to it then.
    pub on_expiry: OnExpiry,
    /// The declared fields, by name.
    pub fields: BTreeMap<String, FieldDecl>,
}

/// One declared personal field.
#[derive(Debug, Clone, Serialize)]
pub struct FieldDecl {
    /// The value's type.
    #[serde(rename = "type")]
    pub ty: FieldType,
    /// The category of personal data (contact, identity, financial, ...).
    pub category: String,
    /// The purposes the field is collected for.
    pub purposes: Vec<String>,
    /// Whether a blind index allows exact lookup by this field.
    pub searchable: bool,
    /// Whether every record must carry this field.
    pub required: bool,
    /// The longest accepted text, in characters (text fields).
    pub max_length: usize,
    /// The field's own retention, when shorter than its collection's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention: Option<Retention>,
    /// Whether the value stays in the anonymised record when the record expires (collections
    /// with `on_expiry = "anonymise"`; types that cannot identify anyone only).
    pub keep_when_anonymised: bool,
}

impl FieldDecl {
    /// Whether the field is declared for `purpose`.
    pub fn serves(&self, purpose: &str) -> bool {
        self.purposes.iter().any(|p| p == purpose)
    }
}

/// The value types a field can declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// Free text with a length limit.
    Text,
    /// An email address (RFC 5321 syntax).
    Email,
    /// A phone number, stored as E.164.
    Phone,
    /// A calendar date, ISO 8601 `YYYY-MM-DD`.
    Date,
    /// An ISO 3166-1 alpha-2 country code.
    Country,
    /// A structured postal address.
    PostalAddress,
    /// A finite number.
    Number,
    /// True or false.
    Bool,
}

impl FieldType {
    const ALL: [(&'static str, FieldType); 8] = [
        ("text", FieldType::Text),
        ("email", FieldType::Email),
        ("phone", FieldType::Phone),
        ("date", FieldType::Date),
        ("country", FieldType::Country),
        ("postal_address", FieldType::PostalAddress),
        ("number", FieldType::Number),
        ("bool", FieldType::Bool),
    ];

    /// The type's name as written in the inventory.
    pub fn as_str(&self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, t)| t == self)
            .map(|(s, _)| *s)
            .expect("every type is listed")
    }

    /// Whether a blind index over this type makes sense: not for booleans (two values, so an
    /// index would reveal the value) nor structured addresses.
    pub fn indexable(&self) -> bool {
        !matches!(self, FieldType::Bool | FieldType::PostalAddress)
    }
}

impl FromStr for FieldType {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        Self::ALL
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, t)| *t)
            .ok_or(())
    }
}

/// A length of time in calendar units, as written in the inventory: `"30d"`, `"6w"`, `"13m"`,
/// `"2y"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    /// How many units.
    pub amount: u32,
    /// Which unit.
    pub unit: PeriodUnit,
}

impl Period {
    /// The instant this period after `ms` (milliseconds since the epoch, UTC). Months and
    /// years are calendar months and years; a day that the target month lacks becomes its last
    /// day (31 January + 1 month = 28 or 29 February). `None` past the calendar's range.
    pub fn after(&self, ms: i64) -> Option<i64> {
        use chrono::{Days, Months};
        let t = chrono::DateTime::from_timestamp_millis(ms)?;
        let t = match self.unit {
            PeriodUnit::Days => t.checked_add_days(Days::new(u64::from(self.amount)))?,
            PeriodUnit::Weeks => t.checked_add_days(Days::new(7 * u64::from(self.amount)))?,
            PeriodUnit::Months => t.checked_add_months(Months::new(self.amount))?,
            PeriodUnit::Years => t.checked_add_months(Months::new(self.amount.checked_mul(12)?))?,
        };
        Some(t.timestamp_millis())
    }
}

/// A period that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "period {0:?} is not understood: write a number and a unit, d (days), w (weeks), m (months) \
     or y (years), such as \"30d\" or \"13m\""
)]
pub struct ParsePeriodError(String);

impl FromStr for Period {
    type Err = ParsePeriodError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParsePeriodError(s.to_owned());
        let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
        let (digits, unit) = s.split_at(split);
        let amount: u32 = digits.parse().map_err(|_| err())?;
        let unit = match unit {
            "d" => PeriodUnit::Days,
            "w" => PeriodUnit::Weeks,
            "m" => PeriodUnit::Months,
            "y" => PeriodUnit::Years,
            _ => return Err(err()),
        };
        if amount == 0 || amount > 100 * 366 {
            return Err(err());
        }
        Ok(Period { amount, unit })
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let u = match self.unit {
            PeriodUnit::Days => "d",
            PeriodUnit::Weeks => "w",
            PeriodUnit::Months => "m",
            PeriodUnit::Years => "y",
        };
        write!(f, "{}{u}", self.amount)
    }
}

impl Serialize for Period {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// How long data is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    /// A period counted from an event.
    Period {
        /// How long.
        period: Period,
        /// From which event.
        anchor: Anchor,
    },
    /// Until the subject withdraws consent for the field's consent-based purposes.
    UntilConsentWithdrawn,
}

/// The unit of a period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeriodUnit {
    /// Days.
    Days,
    /// Weeks.
    Weeks,
    /// Calendar months.
    Months,
    /// Calendar years.
    Years,
}

/// The event a retention period runs from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    /// When the record was created.
    Created,
    /// When the record was last changed.
    Updated,
    /// The subject's last activity.
    LastActivity,
}

/// A retention string that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "retention {0:?} is not understood: write a period such as \"30d\", \"6m\", \"2y\", optionally \
     followed by \"after created\", \"after updated\" or \"after last_activity\", or \"until consent withdrawn\""
)]
pub struct ParseRetentionError(String);

impl FromStr for Retention {
    type Err = ParseRetentionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseRetentionError(s.to_owned());
        let words: Vec<&str> = s.split_whitespace().collect();
        if words == ["until", "consent", "withdrawn"] {
            return Ok(Retention::UntilConsentWithdrawn);
        }
        let (period, anchor) = match words.as_slice() {
            [p] => (*p, Anchor::Created),
            [p, "after", a] => (
                *p,
                match *a {
                    "created" => Anchor::Created,
                    "updated" => Anchor::Updated,
                    "last_activity" => Anchor::LastActivity,
                    _ => return Err(err()),
                },
            ),
            _ => return Err(err()),
        };
        let period = period.parse::<Period>().map_err(|_| err())?;
        Ok(Retention::Period { period, anchor })
    }
}

impl fmt::Display for Retention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Retention::UntilConsentWithdrawn => f.write_str("until consent withdrawn"),
            Retention::Period { period, anchor } => {
                let a = match anchor {
                    Anchor::Created => "created",
                    Anchor::Updated => "updated",
                    Anchor::LastActivity => "last_activity",
                };
                write!(f, "{period} after {a}")
            }
        }
    }
}

impl Serialize for Retention {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One thing wrong with an inventory, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The 1-based line the problem is on, where known.
    pub line: Option<usize>,
    /// The dotted path in the file (`collections.customers.fields.email.type`).
    pub path: String,
    /// What is wrong, and what is expected.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "line {l}: {}: {}", self.path, self.message),
            None => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

/// Every problem found in an inventory.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct InventoryError {
    /// The problems, in file order.
    pub problems: Vec<Problem>,
}

impl fmt::Display for InventoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(
            f,
            "the inventory has {n} problem{}",
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInventory {
    database: Option<Spanned<String>>,
    organization: Option<Spanned<RawOrganization>>,
    #[serde(default)]
    purposes: Vec<Spanned<RawPurpose>>,
    #[serde(default)]
    processors: Vec<Spanned<RawProcessor>>,
    #[serde(default)]
    roles: Vec<Spanned<RawRole>>,
    #[serde(default)]
    collections: BTreeMap<String, Spanned<RawCollection>>,
    #[serde(default)]
    sites: Vec<Spanned<RawSite>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOrganization {
    name: Option<String>,
    contact: Option<String>,
    default_region: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPurpose {
    id: String,
    description: Option<String>,
    legal_basis: Option<String>,
    #[serde(default)]
    recipients: Vec<String>,
    consent_lapses_after: Option<String>,
    #[serde(default)]
    sale_or_sharing: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSite {
    id: String,
    #[serde(default)]
    origins: Vec<String>,
    #[serde(default)]
    purposes: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProcessor {
    id: String,
    name: Option<String>,
    country: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRole {
    id: String,
    #[serde(default)]
    purposes: Vec<String>,
    #[serde(default)]
    may_write: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCollection {
    retention: Option<String>,
    on_expiry: Option<String>,
    #[serde(default)]
    fields: BTreeMap<String, Spanned<RawField>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawField {
    #[serde(rename = "type")]
    ty: Option<String>,
    category: Option<String>,
    #[serde(default)]
    purposes: Vec<String>,
    #[serde(default)]
    searchable: bool,
    #[serde(default)]
    required: bool,
    max_length: Option<i64>,
    retention: Option<String>,
    #[serde(default)]
    keep_when_anonymised: bool,
}

/// Whether `s` is a web origin: `http` or `https`, a host, an optional port, nothing else.
pub fn is_origin(s: &str) -> bool {
    let Some(rest) = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
    else {
        return false;
    };
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (rest, None),
    };
    !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        && port.is_none_or(|p| p.parse::<u16>().is_ok_and(|n| n > 0))
}

/// Whether `s` is a lower snake_case identifier: what ids and names must be.
pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('a'..='z'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
        && s.len() <= 64
}

struct Checker<'a> {
    text: &'a str,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn line_of(&self, span: std::ops::Range<usize>) -> usize {
        self.text[..span.start.min(self.text.len())]
            .matches('\n')
            .count()
            + 1
    }

    fn report(&mut self, line: Option<usize>, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            line,
            path: path.into(),
            message: message.into(),
        });
    }
}

impl Inventory {
    /// Parses and checks an inventory.
    ///
    /// # Errors
    /// An [`InventoryError`] listing every problem found, each with its line and path.
    pub fn from_toml(text: &str) -> Result<Inventory, InventoryError> {
        let raw: RawInventory = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            InventoryError {
                problems: vec![Problem {
                    line,
                    path: "custos.toml".into(),
                    message: e.message().trim().to_owned(),
                }],
            }
        })?;
        let mut c = Checker {
            text,
            problems: Vec::new(),
        };

        let database = raw.database.and_then(|d| {
            let line = Some(c.line_of(d.span()));
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
        });

        let organization = match raw.organization {
            None => {
                c.report(
                    None,
                    "organization",
                    "the [organization] table is missing: name the controller and a contact",
                );
                None
            }
            Some(o) => {
                let line = Some(c.line_of(o.span()));
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
                match (name, contact) {
                    (Some(name), Some(contact)) => Some(Organization {
                        name,
                        contact,
                        default_region: region,
                    }),
                    _ => None,
                }
            }
        };

        let mut processors = Vec::new();
        let mut processor_ids = BTreeSet::new();
        for (i, p) in raw.processors.into_iter().enumerate() {
            let line = Some(c.line_of(p.span()));
            let p = p.into_inner();
            let path = format!("processors[{i}] ({})", p.id);
            if !is_identifier(&p.id) {
                c.report(
                    line,
                    &path,
                    "the id must be lower snake_case (a-z, 0-9, _), starting with a letter",
                );
            }
            if !processor_ids.insert(p.id.clone()) {
                c.report(line, &path, "a processor with this id is declared twice");
            }
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

        let mut purposes = Vec::new();
        let mut purpose_ids = BTreeSet::new();
        for (i, p) in raw.purposes.into_iter().enumerate() {
            let line = Some(c.line_of(p.span()));
            let p = p.into_inner();
            let path = format!("purposes[{i}] ({})", p.id);
            if !is_identifier(&p.id) {
                c.report(
                    line,
                    &path,
                    "the id must be lower snake_case (a-z, 0-9, _), starting with a letter",
                );
            }
            if !purpose_ids.insert(p.id.clone()) {
                c.report(line, &path, "a purpose with this id is declared twice");
            }
            let description = p.description.unwrap_or_default();
            if description.trim().is_empty() {
                c.report(
                    line,
                    format!("{path}.description"),
                    "the purpose has no description for the privacy notice",
                );
            }
            let basis = match p.legal_basis.as_deref() {
                None => {
                    c.report(line, format!("{path}.legal_basis"), "the purpose has no legal basis: choose consent, contract, legal_obligation, vital_interests, public_task or legitimate_interests");
                    None
                }
                Some(b) => match b.parse::<LegalBasis>() {
                    Ok(b) => Some(b),
                    Err(()) => {
                        c.report(line, format!("{path}.legal_basis"), format!("{b:?} is not a legal basis: choose consent, contract, legal_obligation, vital_interests, public_task or legitimate_interests"));
                        None
                    }
                },
            };
            for r in &p.recipients {
                if !processor_ids.contains(r) {
                    c.report(
                        line,
                        format!("{path}.recipients"),
                        format!("unknown processor {r:?}: declare it under [[processors]]"),
                    );
                }
            }
            let consent_lapses_after = match p.consent_lapses_after.as_deref() {
                None => None,
                Some(_) if basis.is_some_and(|b| b != LegalBasis::Consent) => {
                    c.report(
                        line,
                        format!("{path}.consent_lapses_after"),
                        "only a purpose whose legal basis is consent can have its consent lapse",
                    );
                    None
                }
                Some(s) => s
                    .parse::<Period>()
                    .map_err(|e| {
                        c.report(line, format!("{path}.consent_lapses_after"), e.to_string())
                    })
                    .ok(),
            };
            if p.sale_or_sharing && basis.is_some_and(|b| b != LegalBasis::Consent) {
                c.report(
                    line,
                    format!("{path}.sale_or_sharing"),
                    "a purpose that sells or shares data must rest on consent, so that an opt-out (GPC) can withdraw it",
                );
            }
            if let Some(legal_basis) = basis {
                purposes.push(Purpose {
                    id: p.id,
                    description,
                    legal_basis,
                    recipients: p.recipients,
                    consent_lapses_after,
                    sale_or_sharing: p.sale_or_sharing,
                });
            }
        }

        let mut sites = Vec::new();
        let mut site_ids = BTreeSet::new();
        for (i, site) in raw.sites.into_iter().enumerate() {
            let line = Some(c.line_of(site.span()));
            let site = site.into_inner();
            let path = format!("sites[{i}] ({})", site.id);
            if !is_identifier(&site.id) {
                c.report(
                    line,
                    &path,
                    "the id must be lower snake_case (a-z, 0-9, _), starting with a letter",
                );
            }
            if !site_ids.insert(site.id.clone()) {
                c.report(line, &path, "a site with this id is declared twice");
            }
            if site.origins.is_empty() {
                c.report(
                    line,
                    format!("{path}.origins"),
                    "the site has no origin: list where its pages are served from, such as \"https://shop.example\"",
                );
            }
            for o in &site.origins {
                if !is_origin(o) {
                    c.report(
                        line,
                        format!("{path}.origins"),
                        format!("{o:?} is not an origin: write scheme://host[:port], with no path, such as \"https://shop.example\""),
                    );
                }
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

        let mut roles = Vec::new();
        let mut role_ids = BTreeSet::new();
        for (i, r) in raw.roles.into_iter().enumerate() {
            let line = Some(c.line_of(r.span()));
            let r = r.into_inner();
            let path = format!("roles[{i}] ({})", r.id);
            if r.id == ADMIN_ROLE {
                c.report(line, &path, "admin is built in and cannot be redefined");
            } else if !is_identifier(&r.id) {
                c.report(
                    line,
                    &path,
                    "the id must be lower snake_case (a-z, 0-9, _), starting with a letter",
                );
            }
            if !role_ids.insert(r.id.clone()) {
                c.report(line, &path, "a role with this id is declared twice");
            }
            if r.purposes.is_empty() && !r.may_write {
                c.report(
                    line,
                    format!("{path}.purposes"),
                    "the role has no purpose and may not write, so it could do nothing",
                );
            }
            for p in &r.purposes {
                if !purpose_ids.contains(p) {
                    c.report(
                        line,
                        format!("{path}.purposes"),
                        format!("unknown purpose {p:?}"),
                    );
                }
            }
            roles.push(Role {
                id: r.id,
                purposes: r.purposes,
                may_write: r.may_write,
            });
        }

        let mut collections = BTreeMap::new();
        for (name, coll) in raw.collections {
            let line = Some(c.line_of(coll.span()));
            let coll = coll.into_inner();
            let path = format!("collections.{name}");
            if !is_identifier(&name) {
                c.report(line, &path, "the collection name must be lower snake_case (a-z, 0-9, _), starting with a letter");
            }
            let retention = match coll.retention.as_deref() {
                None => {
                    // Every field says how long it is kept: its own rule, else its collection's.
                    let mut bare = false;
                    for (fname, f) in &coll.fields {
                        if f.get_ref().retention.is_none() {
                            bare = true;
                            c.report(
                                Some(c.line_of(f.span())),
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
                    None
                }
                Some(r) => r
                    .parse::<Retention>()
                    .map_err(|e| c.report(line, format!("{path}.retention"), e.to_string()))
                    .ok(),
            };
            let on_expiry = match coll.on_expiry.as_deref() {
                None | Some("delete") => Some(OnExpiry::Delete),
                Some("anonymise") => Some(OnExpiry::Anonymise),
                Some(other) => {
                    c.report(
                        line,
                        format!("{path}.on_expiry"),
                        format!("{other:?} is not understood: write \"delete\" (the default) or \"anonymise\""),
                    );
                    None
                }
            };
            if coll.fields.is_empty() {
                c.report(line, &path, "the collection declares no fields");
            }
            let mut fields = BTreeMap::new();
            for (fname, f) in coll.fields {
                let line = Some(c.line_of(f.span()));
                let f = f.into_inner();
                let fpath = format!("{path}.fields.{fname}");
                if !is_identifier(&fname) {
                    c.report(line, &fpath, "the field name must be lower snake_case (a-z, 0-9, _), starting with a letter");
                }
                let ty = match f.ty.as_deref() {
                    None => {
                        c.report(line, format!("{fpath}.type"), "the field has no type");
                        None
                    }
                    Some(t) => match t.parse::<FieldType>() {
                        Ok(t) => Some(t),
                        Err(()) => {
                            c.report(line, format!("{fpath}.type"), format!("{t:?} is not a field type: choose text, email, phone, date, country, postal_address, number or bool"));
                            None
                        }
                    },
                };
                if f.purposes.is_empty() {
                    c.report(line, format!("{fpath}.purposes"), "the field has no purpose: personal data is collected only for a declared purpose");
                }
                for p in &f.purposes {
                    if !purpose_ids.contains(p) {
                        c.report(
                            line,
                            format!("{fpath}.purposes"),
                            format!("unknown purpose {p:?}"),
                        );
                    }
                }
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
                let max_length = match f.max_length {
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
                };
                let field_retention = f
                    .retention
                    .as_deref()
                    .map(|r| {
                        r.parse::<Retention>()
                            .map_err(|e| {
                                c.report(line, format!("{fpath}.retention"), e.to_string())
                            })
                            .ok()
                    })
                    .unwrap_or(None);
                let until_withdrawn = field_retention
                    .or(retention)
                    .is_some_and(|r| r == Retention::UntilConsentWithdrawn);
                if until_withdrawn
                    && !f.purposes.iter().any(|p| {
                        purposes
                            .iter()
                            .any(|d: &Purpose| d.id == *p && d.legal_basis == LegalBasis::Consent)
                    })
                {
                    c.report(
                        line,
                        format!("{fpath}.retention"),
                        "\"until consent withdrawn\" needs the field to serve a purpose whose legal basis is consent",
                    );
                }
                if f.keep_when_anonymised {
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
                if let Some(ty) = ty {
                    fields.insert(
                        fname,
                        FieldDecl {
                            ty,
                            category: f.category.unwrap_or_else(|| "personal".into()),
                            purposes: f.purposes,
                            searchable: f.searchable,
                            required: f.required,
                            max_length,
                            retention: field_retention,
                            keep_when_anonymised: f.keep_when_anonymised,
                        },
                    );
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

        match organization {
            Some(organization) if c.problems.is_empty() => Ok(Inventory {
                database,
                organization,
                purposes,
                processors,
                roles,
                collections,
                sites,
            }),
            _ => {
                c.problems.sort_by_key(|p| p.line.unwrap_or(0));
                Err(InventoryError {
                    problems: c.problems,
                })
            }
        }
    }

    /// A purpose by id.
    pub fn purpose(&self, id: &str) -> Option<&Purpose> {
        self.purposes.iter().find(|p| p.id == id)
    }

    /// A declared role by id (not the built-in admin).
    pub fn role(&self, id: &str) -> Option<&Role> {
        self.roles.iter().find(|r| r.id == id)
    }

    /// A collection by name.
    pub fn collection(&self, name: &str) -> Option<&Collection> {
        self.collections.get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_is_valid() {
        let inv = Inventory::from_toml(EXAMPLE).unwrap();
        let customers = inv.collection("customers").unwrap();
        for f in [
            "name",
            "email",
            "phone",
            "birth_date",
            "country",
            "address",
            "notes",
        ] {
            assert!(customers.fields.contains_key(f), "{f}");
        }
        let email = &customers.fields["email"];
        assert!(email.searchable && email.required && email.ty == FieldType::Email);
        assert_eq!(
            inv.purpose("marketing").unwrap().legal_basis,
            LegalBasis::Consent
        );
        assert_eq!(
            inv.purpose("support").unwrap().legal_basis,
            LegalBasis::LegitimateInterests
        );
        assert_eq!(inv.role("marketer").unwrap().purposes, ["marketing"]);
    }

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

    /// Replaces `from` in the example with `to`, and returns the messages of the problems.
    fn problems_after(from: &str, to: &str) -> Vec<String> {
        assert!(EXAMPLE.contains(from), "{from}");
        let text = EXAMPLE.replacen(from, to, 1);
        Inventory::from_toml(&text)
            .unwrap_err()
            .problems
            .iter()
            .map(|p| p.to_string())
            .collect()
    }

    fn check(from: &str, to: &str, expect: &[&str]) {
        let got = problems_after(from, to);
        assert_eq!(got.len(), expect.len(), "{got:#?}");
        for (g, e) in got.iter().zip(expect) {
            assert!(g.contains(e), "{g:?} should contain {e:?}");
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

    #[test]
    fn retention_strings() {
        let ok = [
            ("30d", "30d after created"),
            ("2y", "2y after created"),
            ("6m", "6m after created"),
            ("3y after last_activity", "3y after last_activity"),
            ("7y after created", "7y after created"),
            ("until consent withdrawn", "until consent withdrawn"),
        ];
        for (input, shown) in ok {
            assert_eq!(input.parse::<Retention>().unwrap().to_string(), shown);
        }
        for bad in [
            "",
            "0d",
            "30",
            "d",
            "3x",
            "3y after birth",
            "forever",
            "-1d",
            "3y after",
        ] {
            assert!(bad.parse::<Retention>().is_err(), "{bad:?}");
        }
    }
}
