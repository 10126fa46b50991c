//! `custos operator`: the people who run Custos. Adds an operator with a role and prints
//! their one-time setup link; lists, disables, unlocks, and resets an operator's second
//! factor.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Subcommand;
use custos_core::time::format_time_ms;
use custos_vault::{NewOperator, Paths, Principal, Vault};

#[derive(Subcommand)]
pub(crate) enum OperatorCommand {
    /// Add an operator with a role and print their one-time setup link (valid 24 hours),
    /// with which they choose a password and enrol an authenticator app.
    Add {
        /// Their email address.
        email: String,
        /// Their role: admin or a role from the inventory (privacy_officer, support,
        /// auditor in the example).
        #[arg(long)]
        role: String,
        /// The address the console is reached at, for the link.
        #[arg(
            long,
            env = "CUSTOS_PUBLIC_URL",
            default_value = "http://127.0.0.1:8080"
        )]
        url: String,
    },
    /// List operators: address, role, status (invited, active, disabled), added, locked.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Disable an operator: they can no longer sign in, and every session of theirs ends at
    /// once, on every server.
    Disable {
        /// Their email address.
        email: String,
    },
    /// Lift the lock failed logins placed on an operator, and clear the count.
    Unlock {
        /// Their email address.
        email: String,
    },
    /// Remove an operator's password, authenticator and recovery codes, end their sessions,
    /// and print a new setup link with which they set up again (also re-enables a disabled
    /// operator).
    ResetMfa {
        /// Their email address.
        email: String,
        /// The address the console is reached at, for the link.
        #[arg(
            long,
            env = "CUSTOS_PUBLIC_URL",
            default_value = "http://127.0.0.1:8080"
        )]
        url: String,
    },
}

/// The setup link of `new` at the console reached at `base`.
pub(crate) fn setup_link(base: &str, new: &NewOperator) -> String {
    format!(
        "{}/console/setup?token={}",
        base.trim_end_matches('/'),
        new.setup_token.expose_secret()
    )
}

pub(crate) async fn run(paths: &Paths, command: OperatorCommand) -> Result<ExitCode> {
    let vault = Vault::open(paths)
        .await
        .with_context(|| format!("opening the vault in {}", paths.dir.display()))?;
    let p = Principal::Cli;
    match command {
        OperatorCommand::Add { email, role, url } => {
            let new = vault.add_operator(&p, &email, &role).await?;
            eprintln!(
                "added operator {} with role {role}; their setup link, valid until {}, is shown once, here:",
                new.id,
                format_time_ms(new.expires_ms)
            );
            println!("{}", setup_link(&url, &new));
        }
        OperatorCommand::List { json } => {
            let list = vault.operators(&p).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                println!(
                    "{:<32} {:<18} {:<9} {:<24} locked until",
                    "email", "role", "status", "added"
                );
                for o in &list {
                    let locked = o.locked_until_ms.map_or_else(|| "-".into(), format_time_ms);
                    println!(
                        "{:<32} {:<18} {:<9} {:<24} {locked}",
                        o.email,
                        o.role,
                        o.status,
                        format_time_ms(o.created_ms)
                    );
                }
            }
        }
        OperatorCommand::Disable { email } => {
            let o = vault.disable_operator(&p, &email).await?;
            eprintln!(
                "disabled operator {} ({}); their sessions ended",
                o.email, o.id
            );
        }
        OperatorCommand::Unlock { email } => {
            let o = vault.unlock_operator(&p, &email).await?;
            eprintln!("unlocked operator {} ({})", o.email, o.id);
        }
        OperatorCommand::ResetMfa { email, url } => {
            let new = vault.reset_operator_mfa(&p, &email).await?;
            eprintln!(
                "reset operator {}: password, authenticator and recovery codes removed, sessions ended; \
                 their new setup link, valid until {}, is shown once, here:",
                new.id,
                format_time_ms(new.expires_ms)
            );
            println!("{}", setup_link(&url, &new));
        }
    }
    Ok(ExitCode::SUCCESS)
}
