//! `custos`: flags and glue over the vault and the server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use custos_core::inventory::Inventory;
use custos_vault::Location;
use custos_vault::{DEMO_CUSTOMERS, FixedClock, Paths, Principal, Vault};

mod backup;
mod breach;
mod demo;
mod init;
mod keys;
mod operators;
mod receipts;
mod reports;
mod requests;
mod subjects;
mod tls;

use init::init;

#[derive(Parser)]
#[command(
    name = "custos",
    version,
    about = "Customer-data protection: a privacy vault, a consent ledger and a privacy-operations desk"
)]
struct Cli {
    /// The data directory: custos.toml, root.key and the embedded database.
    #[arg(
        long,
        global = true,
        env = "CUSTOS_DATA_DIR",
        default_value = "./custos-data"
    )]
    data_dir: PathBuf,
    /// The database, when not custos.db in the data directory (nor custos.toml's `database`):
    /// sqlite://PATH or postgres://USER@HOST:PORT/DATABASE.
    #[arg(
        long,
        global = true,
        env = "CUSTOS_DATABASE_URL",
        hide_env_values = true
    )]
    database: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a data directory: an example custos.toml, a new root key (mode 0600), an empty database.
    Init {
        /// Also make a self-signed development certificate for NAME (tls/cert.pem, tls/key.pem
        /// with mode 0600) and turn on [tls] in custos.toml. On an existing data directory,
        /// only this is done.
        #[arg(long, value_name = "NAME")]
        tls_self_signed: Option<String>,
    },
    /// Apply the database schema migrations this binary has and the database lacks.
    Migrate,
    /// Serve the HTTP API.
    Serve {
        /// The address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Initialise an empty data directory, load synthetic customers, and print an admin key
        /// and example requests.
        #[arg(long)]
        demo: bool,
        /// How many synthetic customers --demo loads into an empty data directory.
        #[arg(long, default_value_t = DEMO_CUSTOMERS, requires = "demo")]
        demo_records: usize,
        /// Seconds between retention sweeps (0: no sweep in this server; run
        /// `custos retention run` from a scheduler instead).
        #[arg(long, default_value_t = 3600)]
        retention_interval: u64,
        /// Serve HTTPS with this PEM certificate chain (with --tls-key), instead of what
        /// custos.toml's [tls] names. SIGHUP reloads the files.
        #[arg(long, value_name = "PEM", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The PEM private key of --tls-cert.
        #[arg(long, value_name = "PEM", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
    },
    /// Delete what the inventory's retention rules say must go, and report what is due.
    Retention {
        #[command(subcommand)]
        command: RetentionCommand,
    },
    /// The request desk: data-subject requests by deadline, and moving them on.
    Requests {
        #[command(subcommand)]
        command: requests::RequestsCommand,
    },
    /// The people who run Custos: operator accounts for the console, with roles and a
    /// second factor.
    Operator {
        #[command(subcommand)]
        command: operators::OperatorCommand,
    },
    /// Canary records: synthetic customers whose only reader is an intruder.
    Canary {
        #[command(subcommand)]
        command: breach::CanaryCommand,
    },
    /// Alerts raised by canaries and unusual access.
    Alert {
        #[command(subcommand)]
        command: breach::AlertCommand,
    },
    /// Breach response: incidents with their clocks, blast radius, containment, the
    /// register.
    Breach {
        #[command(subcommand)]
        command: breach::BreachCommand,
    },
    /// Records a regulator asks for, generated from the inventory and the configuration.
    Report {
        #[command(subcommand)]
        command: reports::ReportCommand,
    },
    /// Backups: create an encrypted, signed snapshot, verify one, restore one.
    Backup {
        #[command(subcommand)]
        command: backup::BackupCommand,
    },
    /// Root key versions: rotate, see what each wraps, retire.
    Keys {
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
    /// Manage API keys.
    Apikey {
        #[command(subcommand)]
        command: ApikeyCommand,
    },
    /// Work with the audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Move the vault between databases.
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
    /// Work with inventories.
    Inventory {
        #[command(subcommand)]
        command: InventoryCommand,
    },
    /// Work with consent receipts (`receipt verify` is the same check).
    Consent {
        #[command(subcommand)]
        command: ConsentCommand,
    },
    /// Check signed documents from Custos: consent receipts and erasure certificates.
    Receipt {
        #[command(subcommand)]
        command: ReceiptCommand,
    },
    /// The erasure list: subjects erased, which a restore must re-apply.
    Erasures {
        #[command(subcommand)]
        command: ErasuresCommand,
    },
    /// Answer a data subject's rights: the export of everything held about them.
    Subject {
        #[command(subcommand)]
        command: SubjectCommand,
    },
}

#[derive(Subcommand)]
enum ErasuresCommand {
    /// Every subject erased and when, oldest first (no personal value).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum SubjectCommand {
    /// Write everything held about a subject to a file only you can read (mode 0600): every
    /// record decrypted, why each value is held, how long, who receives it and where it came
    /// from, the consent history, and who read the data. Audited as subject.export.
    Export {
        /// The subject id.
        id: String,
        /// The file to write: a zip (README.txt, export.json, a CSV per collection) when it
        /// ends in .zip, JSON otherwise.
        #[arg(long)]
        out: PathBuf,
        /// The format, whatever the file's name says.
        #[arg(long, value_parser = ["json", "zip"])]
        format: Option<String>,
    },
}

#[derive(Subcommand)]
enum ReceiptCommand {
    /// Check a signed document offline, without the server or the data directory: its
    /// signature, its signed tree head, its entry's inclusion in the audit log, and that any
    /// readable copy in the file is exactly what is signed. Says "ok" only against a key you
    /// trust; exits 1 when a check fails, 3 when valid but signed by a key not verified.
    Verify {
        /// The file: the JSON from GET /v1/consents/{id}/receipt or
        /// /v1/subjects/{id}/erasure-certificate, or its bare JWS.
        file: PathBuf,
        /// The log's Ed25519 public key you trust: 64 hex digits, or a file holding them (as
        /// written by `custos audit public-key > log.pub`, or fetched from
        /// GET /.well-known/custos-log-key).
        #[arg(long, env = "CUSTOS_LOG_PUBLIC_KEY")]
        public_key: Option<String>,
    },
}

#[derive(Subcommand)]
enum RetentionCommand {
    /// Delete every record and field whose retention has run out (except under a legal hold),
    /// each deletion an audit entry; print what was done per collection.
    Run {
        /// Count what would be deleted; delete nothing.
        #[arg(long)]
        dry_run: bool,
        /// Apply retention as of this date (YYYY-MM-DD, midnight UTC) or instant (RFC 3339)
        /// instead of now. A future date deletes what will be due by then: each deletion's
        /// audit entry, stamped with the real time, names the date it was computed for.
        #[arg(long)]
        as_of: Option<String>,
    },
    /// Per collection: records overdue, due in the next 30 days, and held, and why.
    Report {
        /// As of this date or instant instead of now.
        #[arg(long)]
        as_of: Option<String>,
    },
}

#[derive(Subcommand)]
enum ConsentCommand {
    /// Check a consent receipt offline: the same as `custos receipt verify`.
    VerifyReceipt {
        /// The receipt: the JSON from GET /v1/consents/{id}/receipt, or its bare JWS.
        file: PathBuf,
        /// The log's Ed25519 public key you trust: 64 hex digits, or a file holding them.
        #[arg(long, env = "CUSTOS_LOG_PUBLIC_KEY")]
        public_key: Option<String>,
    },
}

#[derive(Subcommand)]
enum ApikeyCommand {
    /// Create a key; prints the key alone on standard output, once.
    Create {
        /// A unique name for the key.
        #[arg(long)]
        name: String,
        /// The role it holds: admin or a role from the inventory.
        #[arg(long)]
        role: String,
    },
    /// List keys (names, roles, dates; never the keys).
    List,
    /// Revoke a key by name.
    Revoke {
        /// The key's name.
        name: String,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Recompute the Merkle tree over every entry and check every signed head.
    Verify,
    /// Print the log's Ed25519 public key (hex): pin it to verify receipts offline.
    PublicKey,
}

#[derive(Subcommand)]
enum DbCommand {
    /// Copy the whole vault (records as ciphertext, keys wrapped, the audit log with its root)
    /// into another database, then check counts and the audit root on both sides. Stop the
    /// servers first. Safe to run again after an interruption.
    Copy {
        /// The target: postgres://USER@HOST:PORT/DATABASE or sqlite://PATH.
        #[arg(long)]
        to: String,
    },
}

#[derive(Subcommand)]
enum InventoryCommand {
    /// Print every problem in an inventory, with its line.
    Check {
        /// The inventory file.
        file: PathBuf,
    },
    /// Tell what changes from one inventory to another, and which changes need customers'
    /// fresh consent before they apply (no one's consent to a new purpose is assumed).
    Diff {
        /// The inventory in force.
        old: PathBuf,
        /// The proposed inventory.
        new: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CUSTOS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

async fn run(cli: Cli) -> Result<ExitCode> {
    let dir = cli.data_dir;
    let mut paths = Paths::in_dir(&dir);
    if let Some(url) = &cli.database {
        let location = Location::parse(url).context("--database (CUSTOS_DATABASE_URL)")?;
        paths = paths.with_database(location);
    }
    match cli.command {
        Command::Init { tls_self_signed } => init(&paths, tls_self_signed.as_deref()).await,
        Command::Migrate => {
            let (location, v) = custos_vault::migrate(&paths).await?;
            if v.found == v.supported {
                println!(
                    "{location}: schema is at version {}, nothing to do",
                    v.supported
                );
            } else {
                println!(
                    "{location}: schema migrated from version {} to {}",
                    v.found, v.supported
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve {
            listen,
            demo,
            demo_records,
            retention_interval,
            tls_cert,
            tls_key,
        } => {
            let sweep = (retention_interval > 0).then(|| Duration::from_secs(retention_interval));
            let tls = tls_cert.zip(tls_key);
            serve(&paths, listen, demo.then_some(demo_records), sweep, tls).await
        }
        Command::Retention { command } => {
            let (dry_run, as_of, report) = match command {
                RetentionCommand::Run { dry_run, as_of } => (dry_run, as_of, false),
                RetentionCommand::Report { as_of } => (true, as_of, true),
            };
            let clock: Arc<dyn custos_vault::Clock> = match as_of.as_deref() {
                Some(s) => Arc::new(FixedClock::parse("--as-of", s)?),
                None => Arc::new(custos_vault::SystemClock),
            };
            let (vault, _) = Vault::open_with_clock(&paths, clock)
                .await
                .with_context(|| format!("opening the vault in {}", paths.dir.display()))?;
            let r = vault.retention(&Principal::Cli, dry_run).await?;
            print_retention(&r, report);
            Ok(ExitCode::SUCCESS)
        }
        Command::Requests { command } => requests::run(&paths, command).await,
        Command::Operator { command } => operators::run(&paths, command).await,
        Command::Report { command } => reports::run(&paths, command).await,
        Command::Keys { command } => keys::run(&paths, command).await,
        Command::Backup { command } => backup::run(&paths, command).await,
        Command::Canary { command } => breach::canary(&paths, command).await,
        Command::Alert { command } => breach::alert(&paths, command).await,
        Command::Breach { command } => breach::breach(&paths, command).await,
        Command::Apikey { command } => {
            let vault = open(&paths).await?;
            match command {
                ApikeyCommand::Create { name, role } => {
                    let k = vault.create_api_key(&Principal::Cli, &name, &role).await?;
                    eprintln!(
                        "created API key {:?} with role {role}; it is shown once, here:",
                        k.name
                    );
                    println!("{}", k.secret.expose_secret());
                }
                ApikeyCommand::List => {
                    println!("{:<24} {:<20} {:<24} revoked", "name", "role", "created");
                    for k in vault.api_keys(&Principal::Cli).await? {
                        let revoked = k.revoked_ms.map_or_else(|| "-".to_owned(), time);
                        println!(
                            "{:<24} {:<20} {:<24} {revoked}",
                            k.name,
                            k.role,
                            time(k.created_ms)
                        );
                    }
                }
                ApikeyCommand::Revoke { name } => {
                    vault.revoke_api_key(&Principal::Cli, &name).await?;
                    eprintln!("revoked API key {name:?}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit {
            command: AuditCommand::Verify,
        } => {
            let vault = open(&paths).await?;
            match vault.verify_audit(&Principal::Cli).await? {
                Ok(r) => {
                    println!(
                        "ok: {} entries, root {}, {} signed heads checked",
                        r.size, r.root_hash, r.heads_checked
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(fault) => {
                    println!("FAILED: {fault}");
                    Ok(ExitCode::from(1))
                }
            }
        }
        Command::Db {
            command: DbCommand::Copy { to },
        } => {
            let to = Location::parse(&to).context("--to")?;
            let report = copy_with_progress(&paths, &to).await?;
            for (table, (rows, index)) in &report.tables {
                if *table == custos_vault::Table::AuditState {
                    continue;
                }
                let extra = if *table == custos_vault::Table::Records {
                    format!(" ({index} blind-index entries)")
                } else {
                    String::new()
                };
                println!("{:<14} {rows:>10}{extra}", table.name());
            }
            println!(
                "ok: copied to {to}; both sides hold {} audit entries with root {}",
                report.audit_size, report.root_hash
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Consent {
            command: ConsentCommand::VerifyReceipt { file, public_key },
        }
        | Command::Receipt {
            command: ReceiptCommand::Verify { file, public_key },
        } => receipts::verify(&file, public_key.as_deref()),
        Command::Erasures {
            command: ErasuresCommand::List { json },
        } => {
            let list = open(&paths).await?.erasures(&Principal::Cli).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                for e in &list {
                    println!("{}  {}", e.erased_at, e.subject_id);
                }
                eprintln!("{} subjects erased", list.len());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Subject {
            command: SubjectCommand::Export { id, out, format },
        } => subjects::export(&paths, &id, &out, format.as_deref()).await,
        Command::Audit {
            command: AuditCommand::PublicKey,
        } => {
            println!("{}", open(&paths).await?.log_public_key());
            Ok(ExitCode::SUCCESS)
        }
        Command::Inventory {
            command: InventoryCommand::Diff { old, new },
        } => {
            let read = |f: &PathBuf| -> Result<Inventory> {
                let text = std::fs::read_to_string(f)
                    .with_context(|| format!("reading {}", f.display()))?;
                Inventory::from_toml(&text).with_context(|| {
                    format!("{}: run custos inventory check on it first", f.display())
                })
            };
            let (old_inv, new_inv) = (read(&old)?, read(&new)?);
            let changes = custos_core::notice::diff(&old_inv, &new_inv);
            let (old_v, new_v) = (
                custos_core::notice::Notice::from_inventory(&old_inv).version,
                custos_core::notice::Notice::from_inventory(&new_inv).version,
            );
            if changes.is_empty() && old_v == new_v {
                println!("no change: the privacy notice stays version {old_v}");
                return Ok(ExitCode::SUCCESS);
            }
            for c in &changes {
                let tag = if c.fresh_consent {
                    "needs fresh consent"
                } else {
                    "notice update"
                };
                println!("{tag:<20} {}", c.what);
            }
            let fresh = changes.iter().filter(|c| c.fresh_consent).count();
            println!(
                "the privacy notice changes from version {old_v} to {new_v}; {fresh} change(s) need fresh consent"
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Inventory {
            command: InventoryCommand::Check { file },
        } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            match Inventory::from_toml(&text) {
                Ok(inv) => {
                    let fields: usize = inv.collections.values().map(|c| c.fields.len()).sum();
                    println!(
                        "{}: ok ({} purposes, {} roles, {} collections, {fields} fields)",
                        file.display(),
                        inv.purposes.len(),
                        inv.roles.len(),
                        inv.collections.len()
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    for p in &e.problems {
                        println!("{}: {p}", file.display());
                    }
                    eprintln!("{} problem(s) found", e.problems.len());
                    Ok(ExitCode::from(1))
                }
            }
        }
    }
}

async fn copy_with_progress(paths: &Paths, to: &Location) -> Result<custos_vault::CopyReport> {
    let style = indicatif::ProgressStyle::with_template(
        "{msg:>14} [{bar:40}] {pos}/{len} {per_sec} eta {eta}",
    )?
    .progress_chars("=> ");
    let mut bar: Option<(custos_vault::Table, indicatif::ProgressBar)> = None;
    let report = custos_vault::copy_database(paths, to, |p| {
        if bar.as_ref().is_none_or(|(t, _)| *t != p.table) {
            if let Some((_, b)) = bar.take() {
                b.finish();
            }
            let b = indicatif::ProgressBar::new(p.total).with_style(style.clone());
            b.set_message(p.table.name());
            bar = Some((p.table, b));
        }
        if let Some((_, b)) = &bar {
            b.set_length(p.total.max(p.done));
            b.set_position(p.done);
        }
    })
    .await;
    if let Some((_, b)) = bar {
        b.finish();
    }
    report.with_context(|| format!("copying the vault to {to}"))
}

fn time(ms: i64) -> String {
    custos_core::time::format_time_ms(ms)
}

async fn open(paths: &Paths) -> Result<Arc<Vault>> {
    let vault = Vault::open(paths)
        .await
        .with_context(|| format!("opening the vault in {}", paths.dir.display()))?;
    Ok(Arc::new(vault))
}

fn print_retention(r: &custos_vault::RetentionReport, report: bool) {
    let mode = match (report, r.dry_run) {
        (true, _) => "report",
        (false, true) => "dry run: nothing deleted",
        (false, false) => "run",
    };
    println!("retention as of {} ({mode})", r.as_of);
    for (name, c) in &r.collections {
        if report {
            println!(
                "{name}: {} records; {} overdue, {} due in the next 30 days, {} held",
                c.records,
                c.overdue,
                c.due_soon,
                c.held.len()
            );
        } else {
            let (delete, erase) = if r.dry_run {
                ("would delete", "would erase")
            } else {
                ("deleted", "erased")
            };
            let anonymise = if r.dry_run {
                "would anonymise"
            } else {
                "anonymised"
            };
            println!(
                "{name}: {} records; {delete} {} records, {anonymise} {}, {erase} {} fields of others; {} held",
                c.records,
                c.deleted,
                c.anonymised,
                c.fields_erased,
                c.held.len()
            );
        }
        for (why, n) in &c.why {
            println!("  due: {n} x {why}");
        }
        for h in &c.held {
            println!(
                "  held: {} since {} by {}: {}{}",
                h.record_id,
                h.placed_at,
                h.placed_by,
                h.reason,
                h.due
                    .as_ref()
                    .map(|d| format!(" (due {d})"))
                    .unwrap_or_default()
            );
        }
    }
    if r.requests_deleted > 0 || !report {
        let verb = if r.dry_run { "would delete" } else { "deleted" };
        println!(
            "requests: {verb} {} records of requests closed more than 24 months ago",
            r.requests_deleted
        );
    }
    if r.retried_later > 0 {
        println!(
            "{} removals lost a race with a concurrent change; the next run takes them",
            r.retried_later
        );
    }
}

async fn serve(
    paths: &Paths,
    listen: SocketAddr,
    demo: Option<usize>,
    retention: Option<Duration>,
    tls_flags: Option<(PathBuf, PathBuf)>,
) -> Result<ExitCode> {
    let fresh = !paths.root_key.exists();
    if demo.is_some() && fresh {
        custos_vault::init(paths).await?;
        eprintln!(
            "initialised {} with the example inventory",
            paths.dir.display()
        );
    }
    let vault = open(paths).await?;
    let journaled = vault.sync_erasure_journal().await?;
    if journaled > 0 {
        eprintln!("erasure journal: {journaled} erasures made elsewhere journaled");
    }
    let mail = custos_vault::Transport::from_config(&vault.inventory().mail, &paths.dir)?;
    let tls = tls::load(paths, vault.inventory().tls.as_ref(), tls_flags)?;
    let socket = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    let addr = socket.local_addr()?;
    let listener = match tls {
        Some(tls) => {
            tokio::spawn(tls::reload_on_hangup(tls.clone(), tls::hangups()?));
            eprintln!(
                "tls: {} (TLS {} and later; SIGHUP reloads it)",
                tls.files().cert.display(),
                tls.files().min_version.as_str()
            );
            custos_server::Listener::Https(socket, tls)
        }
        None => custos_server::Listener::Http(socket),
    };
    let base = match listener.scheme() {
        custos_server::Scheme::Http => format!("http://{addr}"),
        custos_server::Scheme::Https => format!("https://{addr}"),
    };
    if let Some(n) = demo {
        if fresh {
            eprintln!("loading {n} synthetic customers...");
            vault.load_demo(n).await?;
        }
        demo::print_demo(&vault, &base, &mail).await?;
    }
    eprintln!("mail: {mail}");
    eprintln!("custos listening on {base}");
    custos_server::serve(vault, listener, retention, mail, shutdown()).await?;
    eprintln!("custos stopped");
    Ok(ExitCode::SUCCESS)
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
