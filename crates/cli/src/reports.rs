//! `custos report`: records a regulator asks for, generated from the inventory and the
//! configuration. `report ropa` is the record of processing activities (GDPR Art. 30(1)).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use custos_vault::{Paths, Principal, Vault};

#[derive(Subcommand)]
pub(crate) enum ReportCommand {
    /// The record of processing activities (GDPR Art. 30(1)): controller and contact,
    /// purposes, categories of subjects and data, recipients and their countries, transfers
    /// outside the EEA, erasure time limits, and the security measures Custos applies.
    Ropa {
        /// json (the default), html (printable) or csv.
        #[arg(long, default_value = "json")]
        format: String,
        /// Write it to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

pub(crate) async fn run(paths: &Paths, command: ReportCommand) -> Result<ExitCode> {
    let ReportCommand::Ropa { format, out } = command;
    let vault = Vault::open(paths)
        .await
        .with_context(|| format!("opening the vault in {}", paths.dir.display()))?;
    // TLS as custos.toml configures it (`serve --tls-cert` given at start is not known here).
    let tls = vault
        .inventory()
        .tls
        .as_ref()
        .map(|t| t.min_version.as_str());
    let r = vault.ropa(&Principal::Cli, tls)?;
    let text = match format.as_str() {
        "json" => serde_json::to_string_pretty(&r)? + "\n",
        "html" => custos_server::ropa_html(&r),
        "csv" => r.to_csv(),
        other => bail!("--format: {other:?} is not json, html or csv"),
    };
    match out {
        Some(file) => {
            std::fs::write(&file, text).with_context(|| format!("writing {}", file.display()))?;
            eprintln!(
                "wrote the record of processing activities to {}",
                file.display()
            );
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}
