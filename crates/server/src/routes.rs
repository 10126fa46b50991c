//! The API's resources, one module each. Every module's `routes()` registers its handlers
//! together with their OpenAPI descriptions, so the two cannot drift; a resource takes its
//! extractors from `extract` and its errors from `error`, and knows no other resource.

pub(crate) mod audit;
pub(crate) mod consents;
pub(crate) mod erasures;
pub(crate) mod holds;
pub(crate) mod notice;
pub(crate) mod public;
pub(crate) mod records;
pub(crate) mod reports;
pub(crate) mod requests;
pub(crate) mod subjects;
pub(crate) mod system;

#[cfg(test)]
mod tests {
    /// The modules `routes.rs` declares, with their source.
    const RESOURCES: [(&str, &str); 11] = [
        ("audit", include_str!("routes/audit.rs")),
        ("consents", include_str!("routes/consents.rs")),
        ("erasures", include_str!("routes/erasures.rs")),
        ("holds", include_str!("routes/holds.rs")),
        ("notice", include_str!("routes/notice.rs")),
        ("public", include_str!("routes/public.rs")),
        ("records", include_str!("routes/records.rs")),
        ("reports", include_str!("routes/reports.rs")),
        ("requests", include_str!("routes/requests.rs")),
        ("subjects", include_str!("routes/subjects.rs")),
        ("system", include_str!("routes/system.rs")),
    ];

    /// The files beneath the resources, which must name neither them nor the router.
    const BENEATH: [(&str, &str); 4] = [
        ("error", include_str!("error.rs")),
        ("extract", include_str!("extract.rs")),
        ("metrics", include_str!("metrics.rs")),
        ("state", include_str!("state.rs")),
    ];

    fn crate_paths(src: &str) -> impl Iterator<Item = &str> {
        src.lines().filter(|l| l.contains("crate::"))
    }

    #[test]
    fn every_resource_is_checked() {
        let declared: Vec<&str> = include_str!("routes.rs")
            .lines()
            .filter_map(|l| l.strip_prefix("pub(crate) mod "))
            .filter_map(|l| l.strip_suffix(';'))
            .collect();
        let checked: Vec<&str> = RESOURCES.iter().map(|(n, _)| *n).collect();
        assert_eq!(declared, checked);
    }

    #[test]
    fn a_resource_imports_only_extract_error_and_state() {
        for (name, src) in RESOURCES {
            for line in crate_paths(src) {
                let allowed = ["crate::error::", "crate::extract::", "crate::state::"]
                    .iter()
                    .any(|p| line.contains(p));
                assert!(allowed, "routes/{name}.rs names more than it may: {line}");
            }
        }
    }

    #[test]
    fn nothing_beneath_the_resources_imports_them_or_the_router() {
        for (name, src) in BENEATH {
            for line in crate_paths(src) {
                assert!(
                    !line.contains("crate::routes") && !line.contains("crate::router"),
                    "{name}.rs imports from above it: {line}"
                );
            }
        }
    }
}
