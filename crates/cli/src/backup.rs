//! `custos backup`: `create` writes an encrypted, signed snapshot of the vault; `verify` checks
//! one without restoring it; `restore` puts one into an empty database and erases again every
//! subject erased since.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use custos_vault::{BackupProgress, Paths};

#[derive(Subcommand)]
pub(crate) enum BackupCommand {
    /// Write a consistent snapshot of the vault, signed and encrypted to `[backup] recipient`,
    /// while the servers serve. The file must not exist.
    Create {
        /// The backup file to write.
        file: PathBuf,
        /// Encrypt to this age recipient instead of `[backup] recipient`.
        #[arg(long)]
        recipient: Option<String>,
    },
    /// Decrypt a backup in a stream and check its manifest, signature and audit log, without
    /// restoring it.
    Verify {
        /// The backup file.
        file: PathBuf,
        /// The age identity file that opens it, instead of `[backup] identity`.
        #[arg(long)]
        identity: Option<PathBuf>,
    },
    /// Restore a backup into the vault's database, which must be empty, then erase again
    /// every subject the erasure journal lists.
    Restore {
        /// The backup file.
        file: PathBuf,
        /// The age identity file that opens it, instead of `[backup] identity`.
        #[arg(long)]
        identity: Option<PathBuf>,
        /// Replace what the database holds (its erasure list is kept and applied); asks
        /// for confirmation unless `--yes`.
        #[arg(long)]
        force: bool,
        /// With `--force`: do not ask.
        #[arg(long, requires = "force")]
        yes: bool,
        /// Restore although the erasure journal is missing or lacks erasures the backup
        /// holds: erasures made after the backup then come back until made again.
        #[arg(long)]
        without_journal: bool,
    },
}

pub(crate) async fn run(paths: &Paths, command: BackupCommand) -> Result<ExitCode> {
    match command {
        BackupCommand::Create { file, recipient } => {
            let bar = bytes_bar("snapshot")?;
            let b = bar.clone();
            let r = custos_vault::create_backup(paths, &file, recipient.as_deref(), move |p| {
                show(&b, p)
            })
            .await;
            bar.finish_and_clear();
            let r = r.context("making the backup")?;
            let m = &r.manifest;
            println!(
                "backup {} written: {} bytes ({} of snapshot at {:.1} MB/s), {} records, {} audit entries, signed head {}",
                r.file.display(),
                r.bytes,
                m.payload_bytes,
                m.payload_bytes as f64 / 1e6 / r.seconds.max(1e-6),
                rows(m, "records"),
                m.audit_size,
                m.signed_head
                    .as_ref()
                    .map_or("none".to_owned(), |h| format!(
                        "{} at {}",
                        h.root_hash, h.size
                    )),
            );
            Ok(ExitCode::SUCCESS)
        }
        BackupCommand::Verify { file, identity } => {
            let bar = bytes_bar("decrypting")?;
            let b = bar.clone();
            let r = custos_vault::verify_backup(paths, &file, identity.as_deref(), move |p| {
                show(&b, p)
            })
            .await;
            bar.finish_and_clear();
            let r = r.with_context(|| format!("verifying {}", file.display()))?;
            let m = &r.manifest;
            println!(
                "backup {} verifies: made {} from {} (schema {}), signed by this vault; {} records, \
                 {} subjects, {} erasures; audit log of {} entries verified, root {}",
                file.display(),
                m.created_at,
                m.source,
                m.schema_version,
                rows(m, "records"),
                rows(m, "subjects"),
                rows(m, "erasures"),
                r.audit.size,
                r.audit.root_hash
            );
            Ok(ExitCode::SUCCESS)
        }
        BackupCommand::Restore {
            file,
            identity,
            force,
            yes,
            without_journal,
        } => {
            if force && !yes {
                confirm(paths)?;
            }
            let bar = bytes_bar("decrypting")?;
            let (b, t) = (bar.clone(), bar.clone());
            let r = custos_vault::restore_backup(
                paths,
                &file,
                identity.as_deref(),
                force,
                without_journal,
                move |p| show(&b, p),
                move |p| {
                    t.set_message(format!("restoring {}", p.table.name()));
                    t.set_length(p.total.max(1));
                    t.set_position(p.done);
                },
            )
            .await;
            bar.finish_and_clear();
            let r = r.with_context(|| format!("restoring {}", file.display()))?;
            println!(
                "restored the backup of {} into {}: {} records, {} subjects; audit log of {} entries verified",
                r.manifest.created_at,
                r.database,
                r.tables
                    .iter()
                    .find(|(t, _)| t.name() == "records")
                    .map_or(0, |(_, n)| n.0),
                r.tables
                    .iter()
                    .find(|(t, _)| t.name() == "subjects")
                    .map_or(0, |(_, n)| n.0),
                r.audit.size
            );
            println!(
                "erasure list re-applied: {} subjects erased again (erased after the backup was made); \
                 {} already erased in the backup, {} not in it; {} listed by the erasure journal{}",
                r.erased_again,
                r.already_erased,
                r.not_in_backup,
                r.journaled,
                if force {
                    format!(", {} by the replaced database", r.carried_forward)
                } else {
                    String::new()
                }
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn rows(m: &custos_core::backup::Manifest, table: &str) -> u64 {
    m.tables
        .iter()
        .find(|t| t.table == table)
        .map_or(0, |t| t.rows)
}

fn bytes_bar(what: &str) -> Result<indicatif::ProgressBar> {
    let bar = indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template(
            "{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )?
        .progress_chars("=> "),
    );
    bar.set_message(what.to_owned());
    Ok(bar)
}

fn show(bar: &indicatif::ProgressBar, p: BackupProgress) {
    bar.set_length(p.total);
    bar.set_position(p.done);
}

/// Asks before a `--force` restore replaces a database.
fn confirm(paths: &Paths) -> Result<()> {
    eprintln!(
        "this replaces every row of the database of {} with the backup (its erasure list is \
         kept and applied). Type replace to go on:",
        paths.dir.display()
    );
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    if line.trim() != "replace" {
        bail!("not confirmed: nothing was changed");
    }
    Ok(())
}
