//! `custos init`: a new data directory, and a development certificate on request.

use anyhow::Result;
use custos_vault::Paths;
use std::process::ExitCode;

/// Initialises the data directory, printing what it made; with `tls_self_signed`, also a
/// self-signed certificate for that name (then an existing data directory is kept).
pub(crate) async fn init(paths: &Paths, tls_self_signed: Option<&str>) -> Result<ExitCode> {
    if tls_self_signed.is_none() || !paths.root_key.exists() {
        let r = custos_vault::init(paths).await?;
        let (inv, wrote) = r.inventory;
        eprintln!("initialised {}", paths.dir.display());
        eprintln!(
            "  inventory  {}{}",
            inv.display(),
            if wrote {
                " (example: edit it to declare what you collect)"
            } else {
                " (kept)"
            }
        );
        match &r.root_key {
            custos_vault::RootKeySource::File(path) => eprintln!(
                "  root key   {} (mode 0600: back it up; without it the data cannot be read)",
                path.display()
            ),
            custos_vault::RootKeySource::Env(name) => {
                eprintln!("  root key   read from the environment variable {name} ([root_key] env)")
            }
            custos_vault::RootKeySource::Token {
                token,
                label,
                created,
            } => eprintln!(
                "  root key   {label} in {token}, {} (it never leaves the token: back the token up as its maker says)",
                if *created {
                    "generated now"
                } else {
                    "found there"
                }
            ),
        }
        eprintln!("  database   {}", r.database);
        if let Some((identity, recipient)) = &r.backup {
            eprintln!(
                "  backups    encrypted to {recipient} ([backup] in the inventory); {} opens them \
                 (mode 0600: move it off this machine, see docs/keys-and-backups.md)",
                identity.display()
            );
        }
    } else {
        eprintln!("{} exists: kept as it is", paths.dir.display());
    }
    if let Some(name) = tls_self_signed {
        let r = custos_vault::self_signed_tls(paths, name)?;
        eprintln!(
            "  certificate {} (self-signed for {}, valid {} days: for development only)",
            r.cert.display(),
            r.names.join(", "),
            custos_vault::SELF_SIGNED_DAYS
        );
        eprintln!("  key         {} (mode 0600)", r.key.display());
        if r.enabled {
            eprintln!(
                "  [tls]       added to {}: custos serve now answers HTTPS only",
                paths.inventory.display()
            );
        } else {
            eprintln!(
                "  [tls]       {} has one already, kept: point it at the new files to use them",
                paths.inventory.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
