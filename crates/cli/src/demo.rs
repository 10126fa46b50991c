//! What `custos serve --demo` prints once the server listens: an admin key, requests that
//! work when pasted, the portal's demo customer and the demo privacy officer's setup link.

use std::sync::Arc;

use anyhow::{Result, bail};
use custos_vault::{Principal, Vault, demo_customer};

use crate::operators;

pub(crate) async fn print_demo(
    vault: &Arc<Vault>,
    base: &str,
    mail: &custos_vault::Transport,
) -> Result<()> {
    let name = format!("demo-admin-{}", std::process::id());
    let key = vault
        .create_api_key(&Principal::Cli, &name, "admin")
        .await?;
    let key = key.secret.expose_secret();
    // Synthetic, made to be shown: the demo prints it for the curl commands to use.
    let email = demo_customer(0)["email"]
        .expose_secret()
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let found = vault
        .search(
            &Principal::Cli,
            "customers",
            Some("billing"),
            "email",
            &custos_core::personal::PersonalValue::text(email.clone()),
        )
        .await?;
    let Some(first) = found.first() else {
        bail!(
            "the demo customer {email} is not in this vault: use --demo with an empty data directory"
        );
    };
    println!();
    println!("Demo admin API key (shown once): {key}");
    println!();
    println!("Try:");
    println!("  # find a customer by email, for support");
    println!(
        "  curl -s -H 'Authorization: Bearer {key}' '{base}/v1/collections/customers/records?purpose=support&email={}'",
        email.to_uppercase()
    );
    println!(
        "  # read one record for billing: fields not declared for billing are withheld, with the reason"
    );
    println!(
        "  curl -s -H 'Authorization: Bearer {key}' '{base}/v1/collections/customers/records/{}?purpose=billing'",
        first.id
    );
    println!("  # store a new customer");
    println!(
        "  curl -s -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' -X POST {base}/v1/collections/customers/records -d '{{\"fields\":{{\"name\":\"Mary Somerville\",\"email\":\"mary@example.org\",\"phone\":\"+44 20 7946 0999\"}}}}'"
    );
    println!();
    println!("Privacy portal: {base}/portal");
    println!("  sign in as the demo customer {email}; the code arrives as mail, {mail}");
    println!();
    print_demo_operator(vault, base).await?;
    Ok(())
}

/// The demo's privacy officer: added with a setup link on a fresh demo; named with the way to
/// a new link when they exist already.
async fn print_demo_operator(vault: &Vault, base: &str) -> Result<()> {
    const OFFICER: &str = "privacy.officer@example.com";
    println!("Privacy console: {base}/console");
    match vault
        .add_operator(&Principal::Cli, OFFICER, "privacy_officer")
        .await
    {
        Ok(new) => {
            println!(
                "  set up the demo privacy officer {OFFICER} (valid 24 hours, once): {}",
                operators::setup_link(base, &new)
            );
            println!(
                "  choose a password, scan the QR code with an authenticator app (or use oathtool), then sign in"
            );
        }
        Err(custos_vault::VaultError::Conflict(_)) => println!(
            "  the demo privacy officer {OFFICER} exists; for a new setup link: custos operator reset-mfa {OFFICER} --url {base}"
        ),
        Err(e) => return Err(e.into()),
    }
    println!();
    Ok(())
}
