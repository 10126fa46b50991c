//! The inventory file's shape, as serde reads it: every key optional where a missing one is a
//! problem to report, and spans kept so that a problem names its line.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawInventory {
    pub(super) database: Option<Spanned<String>>,
    pub(super) organization: Option<Spanned<RawOrganization>>,
    #[serde(default)]
    pub(super) purposes: Vec<Spanned<RawPurpose>>,
    #[serde(default)]
    pub(super) processors: Vec<Spanned<RawProcessor>>,
    #[serde(default)]
    pub(super) roles: Vec<Spanned<RawRole>>,
    #[serde(default)]
    pub(super) collections: BTreeMap<String, Spanned<RawCollection>>,
    #[serde(default)]
    pub(super) sites: Vec<Spanned<RawSite>>,
    pub(super) rights: Option<Spanned<RawRights>>,
    pub(super) mail: Option<Spanned<RawMail>>,
    pub(super) portal: Option<Spanned<super::portal::RawPortal>>,
    pub(super) tls: Option<Spanned<super::tls::RawTls>>,
    pub(super) breach: Option<Spanned<super::breach::RawBreach>>,
    pub(super) backup: Option<Spanned<super::backup::RawBackup>>,
    pub(super) root_key: Option<Spanned<super::root_key::RawRootKey>>,
    #[serde(default)]
    pub(super) webhooks: Vec<Spanned<super::breach::RawWebhook>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOrganization {
    pub(super) name: Option<String>,
    pub(super) contact: Option<String>,
    pub(super) default_region: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPurpose {
    pub(super) id: String,
    pub(super) description: Option<String>,
    pub(super) legal_basis: Option<String>,
    #[serde(default)]
    pub(super) recipients: Vec<String>,
    pub(super) consent_lapses_after: Option<String>,
    #[serde(default)]
    pub(super) sale_or_sharing: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSite {
    pub(super) id: String,
    #[serde(default)]
    pub(super) origins: Vec<String>,
    #[serde(default)]
    pub(super) purposes: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProcessor {
    pub(super) id: String,
    pub(super) name: Option<String>,
    pub(super) country: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRole {
    pub(super) id: String,
    #[serde(default)]
    pub(super) purposes: Vec<String>,
    #[serde(default)]
    pub(super) may_write: bool,
    #[serde(default)]
    pub(super) may: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCollection {
    pub(super) retention: Option<String>,
    pub(super) on_expiry: Option<String>,
    #[serde(default)]
    pub(super) fields: BTreeMap<String, Spanned<RawField>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawField {
    #[serde(rename = "type")]
    pub(super) ty: Option<String>,
    pub(super) category: Option<String>,
    #[serde(default)]
    pub(super) purposes: Vec<String>,
    #[serde(default)]
    pub(super) searchable: bool,
    #[serde(default)]
    pub(super) required: bool,
    pub(super) max_length: Option<i64>,
    pub(super) retention: Option<String>,
    #[serde(default)]
    pub(super) keep_when_anonymised: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRights {
    pub(super) default_profile: Option<Spanned<String>>,
    pub(super) utc_offset: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) holidays: Vec<Spanned<String>>,
    pub(super) country_field: Option<Spanned<String>>,
    pub(super) region_field: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) jurisdictions: Vec<Spanned<RawJurisdiction>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawJurisdiction {
    pub(super) profile: Option<String>,
    #[serde(default)]
    pub(super) countries: Vec<String>,
    #[serde(default)]
    pub(super) regions: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMail {
    pub(super) from: Option<Spanned<String>>,
    pub(super) transport: Option<Spanned<String>>,
    pub(super) host: Option<Spanned<String>>,
    pub(super) port: Option<Spanned<i64>>,
    pub(super) security: Option<Spanned<String>>,
    pub(super) username_env: Option<Spanned<String>>,
    pub(super) password_env: Option<Spanned<String>>,
    pub(super) dir: Option<Spanned<String>>,
}
