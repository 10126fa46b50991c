//! The inventory: what a business declares in `custos.toml` about the personal data it
//! collects, why, on which legal basis, for how long, and who may use it.
//!
//! Parsing reports every problem at once, each with its line and its path in the file, so a
//! reviewer fixes an inventory in one pass. A valid [`Inventory`] is valid by construction.
//!
//! The model lives here; `period` reads periods and retention rules, `raw` is the file's
//! shape as serde reads it, and `check` turns that into an [`Inventory`] with one function
//! per section (`purposes` holds processors, purposes, sites and roles; `collections` the
//! collections and their fields; `rights` the `[rights]` section).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::rights::{Calendar, ProfileId};

mod backup;
mod breach;
mod check;
mod checker;
mod collections;
mod mail;
mod period;
mod portal;
mod purposes;
mod raw;
mod rights;
mod root_key;
#[cfg(test)]
mod testing;
mod tls;

pub use backup::{BACKUP_IDENTITY_FILE, BackupConfig, ERASURE_JOURNAL_FILE};
pub use breach::{BreachConfig, WebhookConfig};
pub use mail::{
    CredentialVars, DEFAULT_MAIL_DIR, MailConfig, MailTransport, SmtpConfig, SmtpSecurity,
    is_loopback,
};
pub use period::{Anchor, ParsePeriodError, ParseRetentionError, Period, PeriodUnit, Retention};
pub use portal::PortalConfig;
pub use root_key::{DEFAULT_TOKEN_LABEL, PinSource, RootKeyConfig, TokenConfig};
pub use tls::{TlsConfig, TlsVersion};

/// The example inventory `custos init` writes: an online shop.
pub const EXAMPLE: &str = include_str!("../../example/custos.toml");

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
    /// How data-subject requests are answered: `[rights]`, defaults when absent.
    pub rights: Rights,
    /// Who mail is from and how it goes out: `[mail]`, else files in `mail/` of the data
    /// directory from the organization's contact. Never serialised: it is how this
    /// installation runs, not what it declares.
    #[serde(skip)]
    pub mail: MailConfig,
    /// How the portal runs: `[portal]`. Never serialised, like `mail`.
    #[serde(skip)]
    pub portal: PortalConfig,
    /// How the server answers HTTPS: `[tls]`; none, plain HTTP. Never serialised, like
    /// `mail`.
    #[serde(skip)]
    pub tls: Option<TlsConfig>,
    /// How alerts are raised and whom they reach: `[breach]`, defaults when absent. Never
    /// serialised, like `mail`.
    #[serde(skip)]
    pub breach: BreachConfig,
    /// Where alerts are posted: `[[webhooks]]`. Never serialised, like `mail`.
    #[serde(skip)]
    pub webhooks: Vec<WebhookConfig>,
    /// Whom backups are encrypted to and where the erasure journal is: `[backup]`, defaults
    /// when absent. Never serialised, like `mail`.
    #[serde(skip)]
    pub backup: BackupConfig,
    /// Where the root key versions are held: `[root_key]`, the key file when absent. Never
    /// serialised, like `mail`.
    #[serde(skip)]
    pub root_key: RootKeyConfig,
}

/// `[rights]`: which regulation profile a subject's requests fall under, and the calendar
/// their deadlines are counted on (see [`crate::rights`]).
#[derive(Debug, Clone, Serialize)]
pub struct Rights {
    /// The profile of a subject no rule places: GDPR unless the inventory says otherwise.
    pub default_profile: ProfileId,
    /// The country field a subject's jurisdiction is read from, when declared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country_field: Option<FieldRef>,
    /// The text field holding a subject's region (ISO 3166-2, such as `US-CA`), when
    /// declared; a request may also give the region.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region_field: Option<FieldRef>,
    /// The rules that place a subject under a profile, in file order.
    pub jurisdictions: Vec<Jurisdiction>,
    /// The UTC offset dates are taken at, and the holidays business days skip.
    pub calendar: Calendar,
}

impl Default for Rights {
    /// What an inventory without `[rights]` gets: everyone under GDPR, on a UTC calendar
    /// with no holidays.
    fn default() -> Self {
        Rights {
            default_profile: ProfileId::Gdpr,
            country_field: None,
            region_field: None,
            jurisdictions: Vec::new(),
            calendar: Calendar::default(),
        }
    }
}

/// A declared field, named `collection.field` in the inventory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldRef {
    /// The collection.
    pub collection: String,
    /// The field in it.
    pub field: String,
}

/// A `[[rights.jurisdictions]]` rule: subjects in these countries or regions fall under
/// this profile. No country or region is listed by two rules.
#[derive(Debug, Clone, Serialize)]
pub struct Jurisdiction {
    /// The profile.
    pub profile: ProfileId,
    /// ISO 3166-1 alpha-2 codes.
    pub countries: Vec<String>,
    /// ISO 3166-2 codes (`US-CA`); a rule naming a subject's region wins over one naming
    /// their country.
    pub regions: Vec<String>,
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

/// What the holder of a role may do: an API key's, or an operator's in the console.
#[derive(Debug, Clone, Serialize)]
pub struct Role {
    /// The role's identifier.
    pub id: String,
    /// The purposes the role may read for.
    pub purposes: Vec<String>,
    /// Whether the role may create, change and delete records.
    pub may_write: bool,
    /// The duties of privacy staff the role may carry out, beyond reading and writing.
    pub may: BTreeSet<Permission>,
}

/// A duty of privacy staff that a role may be given (`may = [...]` in `[[roles]]`); what
/// each lets its holder do is [`crate::principal::authorize`]'s to say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// See the request queue and any request.
    ReadRequests,
    /// Move requests on (verify, approve, extend, reject, complete) and carry them out:
    /// erasing the subject, recording their choices, exporting their data.
    HandleRequests,
    /// Read the audit trail and verify the log.
    ReadAudit,
    /// See counts across subjects: consent per purpose, requests per week.
    ReadReports,
    /// Report on and run retention.
    RunRetention,
    /// Place and release legal holds.
    ManageHolds,
    /// Create, list and revoke API keys.
    ManageApiKeys,
    /// Add, list, disable operators and reset their second factor.
    ManageOperators,
    /// Respond to breaches: plant canaries, acknowledge alerts, open and handle incidents,
    /// compute a blast radius and contain it (revoke keys, disable operators).
    HandleIncidents,
}

impl Permission {
    /// Every permission, in the order the docs list them.
    pub const ALL: [Permission; 9] = [
        Permission::ReadRequests,
        Permission::HandleRequests,
        Permission::ReadAudit,
        Permission::ReadReports,
        Permission::RunRetention,
        Permission::ManageHolds,
        Permission::ManageApiKeys,
        Permission::ManageOperators,
        Permission::HandleIncidents,
    ];

    /// Its name in `custos.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::ReadRequests => "read_requests",
            Permission::HandleRequests => "handle_requests",
            Permission::ReadAudit => "read_audit",
            Permission::ReadReports => "read_reports",
            Permission::RunRetention => "run_retention",
            Permission::ManageHolds => "manage_holds",
            Permission::ManageApiKeys => "manage_api_keys",
            Permission::ManageOperators => "manage_operators",
            Permission::HandleIncidents => "handle_incidents",
        }
    }

    /// The permission named `name` in `custos.toml`.
    pub fn parse(name: &str) -> Option<Permission> {
        Permission::ALL.into_iter().find(|p| p.as_str() == name)
    }
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

impl Inventory {
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
}
