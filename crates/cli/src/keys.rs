//! `custos keys`: root key versions, customers' data keys and the blind-index key.
//! `rotate-root` wraps every key again under a new version (resuming a rotation that was
//! stopped), `status` shows what each version still wraps, `retire` removes a version that
//! wraps nothing, `rotate-subjects` gives customers new data keys and seals their data again
//! under them, and `rotate-index` indexes every searchable field again under a new key.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Subcommand;
use custos_core::inventory::Period;
use custos_vault::{
    IndexStatus, Paths, Principal, REINDEX_BATCH, REKEY_BATCH, ROTATION_BATCH, Vault,
};

#[derive(Subcommand)]
pub(crate) enum KeysCommand {
    /// Add a root key version to the key file and wrap every subject's data key and the
    /// vault's own keys under it, in batches, while servers serve. Run it again to resume a
    /// rotation that was stopped or killed.
    RotateRoot {
        /// Keys wrapped again per transaction.
        #[arg(long, default_value_t = ROTATION_BATCH)]
        batch: usize,
    },
    /// Each root key version, whether the key file holds it, and how many keys it wraps.
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove a root key version from the key file: refused while it wraps any key.
    Retire {
        /// The version.
        version: u32,
    },
    /// Give customers new data keys and seal again, under the new key, their records'
    /// fields, their requests' reasons and the mail queued to them, while servers serve. Run
    /// it again to resume a rotation that was stopped or killed.
    RotateSubjects {
        /// Only customers whose data key is older than this (30d, 13m, 1y); every customer's
        /// without it.
        #[arg(long)]
        older_than: Option<Period>,
        /// Customers read per page.
        #[arg(long, default_value_t = REKEY_BATCH)]
        batch: usize,
    },
    /// Give the blind index a new key: index every record's searchable fields again under
    /// it while servers serve (searches look up both keys meanwhile), then delete the old key
    /// and its entries. Run it again to resume a rotation that was stopped or killed.
    RotateIndex {
        /// Records indexed again per transaction.
        #[arg(long, default_value_t = REINDEX_BATCH)]
        batch: usize,
    },
}

pub(crate) async fn run(paths: &Paths, command: KeysCommand) -> Result<ExitCode> {
    let vault = Vault::open(paths)
        .await
        .with_context(|| format!("opening the vault in {}", paths.dir.display()))?;
    match command {
        KeysCommand::RotateRoot { batch } => rotate(&vault, batch).await,
        KeysCommand::Status { json } => status(&vault, json).await,
        KeysCommand::RotateSubjects { older_than, batch } => {
            rotate_subjects(&vault, older_than, batch).await
        }
        KeysCommand::RotateIndex { batch } => rotate_index(&vault, batch).await,
        KeysCommand::Retire { version } => {
            let flushed = vault.retire_root(&Principal::Cli, version).await?;
            println!(
                "root key version {version} retired: removed from {}",
                vault.root_key_holder()
            );
            if !flushed {
                println!(
                    "the database may still keep old copies of the keys it wrapped: on SQLite a \
                     reader held the write-ahead log (run `custos keys retire {version}` again \
                     when the servers are idle); on PostgreSQL until VACUUM reuses the space \
                     (see docs/keys-and-backups.md)"
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn rotate(vault: &Vault, batch: usize) -> Result<ExitCode> {
    let bar = indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template(
            "{msg} [{bar:40}] {pos}/{len} keys {per_sec} eta {eta}",
        )?
        .progress_chars("=> "),
    );
    let report = vault
        .rotate_root(&Principal::Cli, batch, |p| {
            bar.set_message(format!("to version {}", p.target));
            bar.set_length(p.total);
            bar.set_position(p.done);
        })
        .await;
    bar.finish_and_clear();
    let r = report.context("rotating the root key (run it again to resume)")?;
    println!(
        "root key version {}: every key is wrapped by it ({} wrapped again{}, {:.1} s); \
         `custos keys status` shows the old versions, `custos keys retire N` removes them",
        r.target,
        r.rewrapped,
        if r.resumed {
            format!(", {} in all since the rotation began", r.done)
        } else {
            String::new()
        },
        r.seconds
    );
    Ok(ExitCode::SUCCESS)
}

async fn rotate_subjects(
    vault: &Vault,
    older_than: Option<Period>,
    batch: usize,
) -> Result<ExitCode> {
    let bar = indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template(
            "customers' data keys [{bar:40}] {pos}/{len} {per_sec} eta {eta}",
        )?
        .progress_chars("=> "),
    );
    let report = vault
        .rotate_subjects(&Principal::Cli, older_than, batch, |p| {
            bar.set_length(p.total);
            bar.set_position(p.done);
        })
        .await;
    bar.finish_and_clear();
    let r = report.context("rotating customers' data keys (run it again to resume)")?;
    let made = match r.older_than_days {
        0 => "before the rotation began".to_owned(),
        d => format!("more than {d} days before the rotation began"),
    };
    match r.done {
        0 => println!("customers' data keys: none was made {made}; nothing to replace"),
        _ => println!(
            "customers' data keys: {} given a new key{}, and what each old key sealed is \
             sealed again under the new one; no key made {made} remains ({:.1} s)",
            r.rekeyed,
            if r.resumed {
                format!(", {} in all since the rotation began", r.done)
            } else {
                String::new()
            },
            r.seconds
        ),
    }
    if !r.flushed {
        println!(
            "the database may still keep old copies of what the old keys sealed: on SQLite a \
             reader held the write-ahead log, which keeps them until it is written over; on \
             PostgreSQL until VACUUM reuses the space (see docs/keys-and-backups.md)"
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn rotate_index(vault: &Vault, batch: usize) -> Result<ExitCode> {
    let bar = indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template(
            "{msg} [{bar:40}] {pos}/{len} records {per_sec} eta {eta}",
        )?
        .progress_chars("=> "),
    );
    let report = vault
        .rotate_index(&Principal::Cli, batch, |p| {
            bar.set_message(format!("blind-index key {}", p.version));
            bar.set_length(p.total);
            bar.set_position(p.done);
        })
        .await;
    bar.finish_and_clear();
    let r = report.context("rotating the blind-index key (run it again to resume)")?;
    println!(
        "blind-index key {}: every record is indexed under it ({} indexed again{}), the old key \
         is deleted, and {} old entries with it ({:.1} s)",
        r.version,
        r.reindexed,
        if r.resumed {
            format!(", {} in all since the rotation began", r.done)
        } else {
            String::new()
        },
        r.dropped,
        r.seconds
    );
    if r.unindexable > 0 {
        println!(
            "{} fields hold a value that no longer passes its field's rules and were not \
             indexed again: searches no longer find them (the log names each record and field)",
            r.unindexable
        );
    }
    if !r.flushed {
        println!(
            "the database may still keep old copies of the deleted entries: on SQLite a reader \
             held the write-ahead log, which keeps them until it is written over; on PostgreSQL \
             until VACUUM reuses the space (see docs/keys-and-backups.md)"
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The blind index's keys as `keys status --json` shows them.
fn index_json(s: &IndexStatus) -> serde_json::Value {
    let time = |ms: Option<i64>| ms.map(custos_core::time::format_time_ms);
    serde_json::json!({
        "versions": s.versions,
        "current": s.versions.first(),
        "next": s.versions.get(1),
        "entries": s.entries.iter().map(|(v, n)| serde_json::json!({"version": v, "entries": n})).collect::<Vec<_>>(),
        "rotation": s.rotation.as_ref().map(|r| serde_json::json!({
            "target": r.target,
            "done": r.done,
            "total": r.total,
            "started": time(Some(r.started_ms)),
            "finished": time(r.finished_ms),
        })),
    })
}

/// The blind index's keys as `keys status` prints them.
fn print_index(s: &IndexStatus) {
    let entries = |v: u32| {
        s.entries
            .iter()
            .find(|(e, _)| *e == v)
            .map_or(0, |(_, n)| *n)
    };
    match s.versions.as_slice() {
        [current, next] => println!(
            "blind-index keys {current} and {next}: a rotation is under way, {} of {} records \
             indexed under {next} (run `custos keys rotate-index` to resume)",
            s.rotation.as_ref().map_or(0, |r| r.done),
            s.rotation.as_ref().map_or(0, |r| r.total),
        ),
        [current] => println!(
            "blind-index key {current}: {} entries{}{}",
            entries(*current),
            match &s.rotation {
                Some(r) => match r.finished_ms {
                    Some(ms) => format!(
                        ", made by the rotation finished {}",
                        custos_core::time::format_time_ms(ms)
                    ),
                    None => ", made by a rotation stopped before it was marked finished \
                             (run `custos keys rotate-index`)"
                        .to_owned(),
                },
                None => String::new(),
            },
            match s
                .entries
                .iter()
                .filter(|(v, _)| v < current)
                .map(|(_, n)| n)
                .sum::<u64>()
            {
                0 => String::new(),
                old => format!(
                    ", and {old} entries of older keys still to delete (run `custos keys rotate-index` to finish)"
                ),
            }
        ),
        _ => println!("blind-index key: none yet"),
    }
}

async fn status(vault: &Vault, json: bool) -> Result<ExitCode> {
    let s = vault.key_status(&Principal::Cli).await?;
    let time = |ms: Option<i64>| ms.map(custos_core::time::format_time_ms);
    if json {
        let versions: Vec<_> = s
            .versions
            .iter()
            .map(|v| {
                serde_json::json!({
                    "version": v.version,
                    "held": v.held,
                    "token_label": v.token_key.as_ref().map(|(l, _)| l),
                    "never_left_token": v.token_key.as_ref().map(|(_, n)| n),
                    // The name before tokens could hold versions; kept for scripts.
                    "in_file": v.held,
                    "newest": v.newest,
                    "wraps": v.wraps,
                    "created": time(v.created_ms),
                    "retired": time(v.retired_ms),
                })
            })
            .collect();
        let rotation = s.rotation.as_ref().map(|r| {
            serde_json::json!({
                "target": r.target,
                "done": r.done,
                "total": r.total,
                "started": time(Some(r.started_ms)),
                "finished": time(r.finished_ms),
            })
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "held_in": s.holder,
                "versions": versions,
                "rotation": rotation,
                "index": index_json(&s.index),
            }))?
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!("root key versions held in {}", s.holder);
    println!(
        "{:>7}  {:>10}  {:<8}  {:<26}  state",
        "version", "wraps", "held", "created"
    );
    for v in &s.versions {
        let state = match (v.retired_ms, v.newest) {
            (Some(ms), _) => format!("retired {}", custos_core::time::format_time_ms(ms)),
            (None, true) => "newest: wraps new keys".to_owned(),
            (None, false) if v.wraps > 0 => "old: rotate to move its keys".to_owned(),
            (None, false) => "old: wraps nothing, may be retired".to_owned(),
        };
        println!(
            "{:>7}  {:>10}  {:<8}  {:<26}  {state}",
            v.version,
            v.wraps,
            if v.held { "yes" } else { "no" },
            time(v.created_ms).unwrap_or_else(|| "with the vault".into()),
        );
    }
    for v in &s.versions {
        if let Some((label, never_left)) = &v.token_key {
            println!(
                "version {} is {label} in the token: {}",
                v.version,
                if *never_left {
                    "generated there, sensitive, never extractable"
                } else {
                    "NOT reported as generated there and never extractable: its bytes may exist outside the token"
                }
            );
        }
    }
    match &s.rotation {
        Some(r) if r.finished_ms.is_none() => println!(
            "rotation to version {} not finished: {} of {} keys wrapped again (run `custos keys rotate-root` to resume)",
            r.target, r.done, r.total
        ),
        Some(r) => println!(
            "last rotation: to version {}, {} keys, finished {}",
            r.target,
            r.done,
            time(r.finished_ms).unwrap_or_default()
        ),
        None => println!("no root key rotation yet"),
    }
    print_index(&s.index);
    Ok(ExitCode::SUCCESS)
}
