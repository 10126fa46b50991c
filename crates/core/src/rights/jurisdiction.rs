//! Which profile a subject's requests fall under, by the inventory's `[[rights.jurisdictions]]`
//! rules: a rule naming the subject's region wins over one naming their country, and a subject
//! no rule places falls under the default profile.

use super::profile::Profile;
use crate::inventory::Inventory;

/// The member states of the European Union and the other states of the European Economic
/// Area (Iceland, Liechtenstein, Norway), where the GDPR applies, by ISO 3166-1 alpha-2 code
/// (Greece is `GR`, though EU texts write `EL`). Territories of member states with a code of
/// their own (Åland `AX`; the outermost regions `GF`, `GP`, `MF`, `MQ`, `RE`, `YT`) are not
/// listed here: the example inventory adds them.
pub const EU_EEA: [&str; 30] = [
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IS",
    "IT", "LI", "LT", "LU", "LV", "MT", "NL", "NO", "PL", "PT", "RO", "SE", "SI", "SK",
];

/// The profile for a subject in `country` (ISO 3166-1 alpha-2) and `region` (ISO 3166-2, such
/// as `US-CA`), either of which may be unknown. Codes are compared without regard to case or
/// surrounding spaces; without a country, a region's own country (`US` for `US-CA`) is used.
/// A request may name another profile: this is only the default the inventory's rules give.
pub fn jurisdiction(
    inventory: &Inventory,
    country: Option<&str>,
    region: Option<&str>,
) -> &'static Profile {
    let rights = &inventory.rights;
    let region = region.map(|r| r.trim().to_ascii_uppercase());
    let country = country
        .map(|c| c.trim().to_ascii_uppercase())
        .or_else(|| Some(region.as_deref()?.split_once('-')?.0.to_owned()));
    let by_region = region.as_deref().and_then(|r| {
        rights
            .jurisdictions
            .iter()
            .find(|j| j.regions.iter().any(|x| x == r))
    });
    let by_country = || {
        let c = country.as_deref()?;
        rights
            .jurisdictions
            .iter()
            .find(|j| j.countries.iter().any(|x| x == c))
    };
    by_region
        .or_else(by_country)
        .map_or(rights.default_profile, |j| j.profile)
        .profile()
}

#[cfg(test)]
mod tests {
    use super::super::profile::ProfileId;
    use super::*;
    use crate::countries;
    use crate::inventory::EXAMPLE;

    /// A subject in `country` and `region` falls, under the example inventory, under `expect`.
    fn check(
        inventory: &Inventory,
        country: Option<&str>,
        region: Option<&str>,
        expect: ProfileId,
    ) {
        let got = jurisdiction(inventory, country, region).id;
        assert_eq!(got, expect, "country {country:?}, region {region:?}");
    }

    #[test]
    fn the_example_places_each_subject() {
        use ProfileId::{Ccpa, Gdpr, UkGdpr};
        let inv = Inventory::from_toml(EXAMPLE).unwrap();
        let rows = [
            (Some("FR"), None, Gdpr),
            (Some("NO"), None, Gdpr),
            (Some("RE"), None, Gdpr),
            (Some("GB"), None, UkGdpr),
            (Some("gb "), None, UkGdpr),
            (Some("US"), Some("US-CA"), Ccpa),
            (Some("US"), Some("us-ca"), Ccpa),
            (None, Some("US-CA"), Ccpa),
            // No rule for the rest of the US, Switzerland or an unknown country: the default.
            (Some("US"), Some("US-NY"), Gdpr),
            (Some("US"), None, Gdpr),
            (Some("CH"), None, Gdpr),
            (None, None, Gdpr),
            // A region wins over a country: a Californian with a French country field.
            (Some("FR"), Some("US-CA"), Ccpa),
        ];
        for (country, region, expect) in rows {
            check(&inv, country, region, expect);
        }
        let uk_default = Inventory::from_toml(&EXAMPLE.replacen(
            "default_profile = \"gdpr\"",
            "default_profile = \"uk_gdpr\"",
            1,
        ))
        .unwrap();
        check(&uk_default, Some("CH"), None, UkGdpr);
    }

    #[test]
    fn the_example_lists_the_whole_eu_and_eea() {
        assert!(EU_EEA.windows(2).all(|w| w[0] < w[1]));
        assert!(EU_EEA.iter().all(|c| countries::is_alpha2(c)));
        let inv = Inventory::from_toml(EXAMPLE).unwrap();
        let gdpr = inv
            .rights
            .jurisdictions
            .iter()
            .find(|j| j.profile == ProfileId::Gdpr)
            .unwrap();
        for c in EU_EEA
            .iter()
            .chain(&["AX", "GF", "GP", "MF", "MQ", "RE", "YT"])
        {
            assert!(gdpr.countries.iter().any(|x| x == c), "{c}");
        }
        assert_eq!(gdpr.countries.len(), 37, "{:?}", gdpr.countries);
    }
}
