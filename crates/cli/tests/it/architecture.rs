//! The architecture invariants of ARCHITECTURE.md that a manifest can show.

fn manifest(krate: &str) -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../");
    std::fs::read_to_string(format!("{path}{krate}/Cargo.toml")).unwrap()
}

fn dependencies(krate: &str) -> Vec<String> {
    let text = manifest(krate);
    let deps = text
        .split("[dependencies]")
        .nth(1)
        .unwrap()
        .split("\n[")
        .next()
        .unwrap()
        .to_owned();
    deps.lines()
        .filter_map(|l| l.split(['.', ' ', '=']).next())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn assert_none(krate: &str, forbidden: &[&str]) {
    let deps = dependencies(krate);
    assert!(!deps.is_empty(), "{krate} has dependencies to check");
    for f in forbidden {
        assert!(
            !deps.iter().any(|d| d == f),
            "{krate} must not depend on {f}: {deps:?}"
        );
    }
}

#[test]
fn core_does_no_io_and_knows_no_http_sql_or_async() {
    assert_none(
        "core",
        &[
            "tokio",
            "axum",
            "rusqlite",
            "tokio-postgres",
            "custos-store",
            "custos-vault",
            "custos-server",
            "reqwest",
        ],
    );
}

#[test]
fn store_knows_no_http_or_policy() {
    assert_none(
        "store",
        &["axum", "custos-vault", "custos-server", "utoipa"],
    );
}

#[test]
fn vault_knows_no_http() {
    assert_none("vault", &["axum", "custos-server", "utoipa", "rusqlite"]);
}

#[test]
fn server_knows_no_sql() {
    assert_none("server", &["rusqlite", "tokio-postgres", "custos-store"]);
}

#[test]
fn the_binary_holds_no_sql_and_no_crypto() {
    assert_none(
        "cli",
        &[
            "rusqlite",
            "aes-gcm",
            "hmac",
            "sha2",
            "ed25519-dalek",
            "custos-store",
        ],
    );
}
