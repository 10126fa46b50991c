//! `custos report`: records a regulator asks for, generated from the inventory and the
//! configuration. `report ropa` is the record of processing activities (GDPR Art. 30(1));
//! `report dpia PURPOSE` a DPIA worksheet (Art. 35) prefilled for one purpose.

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
    /// The access and accountability report for a period: reads per purpose and role,
    /// requests by kind with days taken and deadlines met (and the CCPA § 7102 metrics),
    /// consents given and withdrawn, retention, alerts and incidents.
    Audit {
        /// The period's start: RFC 3339, or a local date (YYYY-MM-DD) or time in `[breach]`
        /// `time_zone`.
        #[arg(long)]
        from: String,
        /// Its end, excluded; now when not given.
        #[arg(long)]
        to: Option<String>,
        /// json (the default) or html (printable, with a chart).
        #[arg(long, default_value = "json")]
        format: String,
        /// Write it to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// A data protection impact assessment worksheet (GDPR Art. 35) for one purpose,
    /// prefilled from the inventory: the data, recipients, retention and measures, then the
    /// questions a person must still answer.
    Dpia {
        /// The purpose's id.
        purpose: String,
        /// md (Markdown, the default) or json.
        #[arg(long, default_value = "md")]
        format: String,
        /// Write it to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

pub(crate) async fn run(paths: &Paths, command: ReportCommand) -> Result<ExitCode> {
    let vault = Vault::open(paths)
        .await
        .with_context(|| format!("opening the vault in {}", paths.dir.display()))?;
    let (format, out, purpose) = match command {
        ReportCommand::Ropa { format, out } => (format, out, None),
        ReportCommand::Dpia {
            purpose,
            format,
            out,
        } => (format, out, Some(purpose)),
        ReportCommand::Audit {
            from,
            to,
            format,
            out,
        } => {
            let from_ms = instant(&vault, "from", &from)?;
            let to_ms = match to {
                Some(t) => instant(&vault, "to", &t)?,
                None => std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as i64),
            };
            let r = vault
                .accountability(&Principal::Cli, from_ms, to_ms)
                .await?;
            let text = match format.as_str() {
                "json" => serde_json::to_string_pretty(&r)? + "\n",
                "html" => {
                    custos_server::accountability_html(&r, &vault.inventory().organization.name)
                }
                other => bail!("--format: {other:?} is not json or html"),
            };
            return write_out(out, &text, "the accountability report");
        }
    };
    // TLS as custos.toml configures it (`serve --tls-cert` given at start is not known here).
    let tls = vault
        .inventory()
        .tls
        .as_ref()
        .map(|t| t.min_version.as_str());
    if let Some(purpose) = purpose {
        let d = vault.dpia(&Principal::Cli, &purpose, tls)?;
        let text = match format.as_str() {
            "md" => d.to_markdown(),
            "json" => serde_json::to_string_pretty(&d)? + "\n",
            other => bail!("--format: {other:?} is not md or json"),
        };
        return write_out(out, &text, "the DPIA worksheet");
    }
    let r = vault.ropa(&Principal::Cli, tls)?;
    let text = match format.as_str() {
        "json" => serde_json::to_string_pretty(&r)? + "\n",
        "html" => custos_server::ropa_html(&r),
        "csv" => r.to_csv(),
        other => bail!("--format: {other:?} is not json, html or csv"),
    };
    write_out(out, &text, "the record of processing activities")
}

/// An instant: RFC 3339, or a local date or time in `[breach] time_zone` (a date from
/// its midnight).
fn instant(vault: &Vault, field: &str, s: &str) -> Result<i64> {
    let s = if s.len() == 10 {
        format!("{s}T00:00")
    } else {
        s.to_owned()
    };
    custos_core::breach::clock::parse_instant(&s, vault.inventory().breach.time_zone)
        .with_context(|| format!("--{field} {s:?}"))
}

fn write_out(out: Option<PathBuf>, text: &str, what: &str) -> Result<ExitCode> {
    match out {
        Some(file) => {
            std::fs::write(&file, text).with_context(|| format!("writing {}", file.display()))?;
            eprintln!("wrote {what} to {}", file.display());
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}
