//! `custos canary`, `custos alert` and `custos breach`: plant canaries, see and acknowledge
//! alerts, open and handle incidents with their clocks, compute a blast radius, contain.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use custos_core::breach::IncidentStatus;
use custos_core::breach::clock::{describe_left as left, parse_instant};
use custos_core::ids::{AlertId, IncidentId};
use custos_core::time::format_time_ms;
use custos_vault::{
    BlastQuery, IncidentChange, IncidentView, OpenIncident, Paths, Principal, Vault,
};

#[derive(Subcommand)]
pub(crate) enum CanaryCommand {
    /// Plant canary records: synthetic customers no legitimate caller ever touches. Any read,
    /// search hit or export of one raises an alert; their record ids are printed for drills.
    Plant {
        /// How many (1 to 1000).
        n: usize,
        /// The collection; the inventory's first when not given.
        #[arg(long)]
        collection: Option<String>,
    },
    /// List the canaries planted.
    List,
}

#[derive(Subcommand)]
pub(crate) enum AlertCommand {
    /// List alerts, newest first.
    List {
        /// Only the ones not acknowledged.
        #[arg(long)]
        open: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Acknowledge an alert: staff have seen it.
    Ack {
        /// The alert's id.
        id: AlertId,
    },
}

#[derive(Subcommand)]
pub(crate) enum BreachCommand {
    /// Open an incident; its clocks (GDPR Art. 33: 72 hours to the authority) run from the
    /// time of awareness.
    Open {
        /// A short title.
        #[arg(long)]
        title: String,
        /// When the organization became aware: RFC 3339, or a local time in `[breach]`
        /// time_zone (2026-03-28T09:30); now when not given.
        #[arg(long)]
        aware_at: Option<String>,
        /// What is known.
        #[arg(long, default_value = "")]
        facts: String,
        /// The API key it is about.
        #[arg(long)]
        api_key: Option<String>,
        /// The operator it is about, by address.
        #[arg(long)]
        operator: Option<String>,
        /// The start of the window its blast radius covers (RFC 3339 or local time).
        #[arg(long)]
        from: Option<String>,
        /// The end of that window, excluded.
        #[arg(long)]
        to: Option<String>,
        /// An alert it is opened from (repeat for more).
        #[arg(long = "alert")]
        alerts: Vec<AlertId>,
    },
    /// Draft the incident's notices: to the supervisory authority (every item GDPR
    /// Art. 33(3) asks) and to the affected subjects (Art. 34; California's § 1798.82
    /// headings for its residents). Nothing is sent.
    Notices {
        /// The incident's id.
        id: IncidentId,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Approve and send the subjects' notices through the outbox, once the decision says to
    /// notify subjects.
    Notify {
        /// The incident's id.
        id: IncidentId,
    },
    /// The register of every incident, notified or not (GDPR Art. 33(5)).
    Register {
        /// json or csv.
        #[arg(long, default_value = "json")]
        format: String,
        /// Write to this file (mode 0600) instead of standard output.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// List incidents with their clocks, the nearest deadline first.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one incident: facts, clocks, steps, decision.
    Show {
        /// The incident's id.
        id: IncidentId,
    },
    /// Change an incident: facts, effects, remedial action, a step, its status.
    Update {
        /// The incident's id.
        id: IncidentId,
        /// The facts as now known.
        #[arg(long)]
        facts: Option<String>,
        /// Its effects and likely consequences.
        #[arg(long)]
        effects: Option<String>,
        /// The remedial action taken or proposed.
        #[arg(long)]
        remedial: Option<String>,
        /// A step taken, in words.
        #[arg(long)]
        step: Option<String>,
        /// open, contained or closed.
        #[arg(long)]
        status: Option<String>,
    },
    /// Record the decision whether to notify, with its reasons (GDPR Art. 33(5)).
    Decide {
        /// The incident's id.
        id: IncidentId,
        /// Whether the supervisory authority is notified: yes or no.
        #[arg(long)]
        notify_authority: String,
        /// Whether the subjects are notified: yes or no.
        #[arg(long)]
        notify_subjects: String,
        /// Why.
        #[arg(long)]
        reasons: String,
    },
    /// Contain an incident: revoke the API key and disable the operator it names.
    Contain {
        /// The incident's id.
        id: IncidentId,
    },
    /// Which subjects' data a key or an operator (or anyone, in a window) read: subjects,
    /// records, fields and categories per collection, jurisdictions.
    BlastRadius {
        /// The API key's name.
        #[arg(long)]
        api_key: Option<String>,
        /// The operator's address.
        #[arg(long)]
        operator: Option<String>,
        /// From (RFC 3339 or local time).
        #[arg(long)]
        from: Option<String>,
        /// To, excluded.
        #[arg(long)]
        to: Option<String>,
        /// Print JSON (with every subject id).
        #[arg(long)]
        json: bool,
    },
}

async fn open(paths: &Paths) -> Result<Vault> {
    Vault::open(paths)
        .await
        .with_context(|| format!("opening the vault in {}", paths.dir.display()))
}

pub(crate) async fn canary(paths: &Paths, command: CanaryCommand) -> Result<ExitCode> {
    let vault = open(paths).await?;
    let p = Principal::Cli;
    match command {
        CanaryCommand::Plant { n, collection } => {
            let collection = match collection {
                Some(c) => c,
                None => vault
                    .inventory()
                    .collections
                    .keys()
                    .next()
                    .cloned()
                    .context("the inventory declares no collection")?,
            };
            let planted = vault.plant_canaries(&p, &collection, n).await?;
            eprintln!(
                "planted {} canaries in {collection}; any read of one raises an alert. Their record ids:",
                planted.len()
            );
            for c in planted {
                println!("{}", c.record_id);
            }
        }
        CanaryCommand::List => {
            println!("{:<38} {:<38} collection", "record", "subject");
            for c in vault.canaries(&p).await? {
                println!("{:<38} {:<38} {}", c.record_id, c.subject_id, c.collection);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn alert(paths: &Paths, command: AlertCommand) -> Result<ExitCode> {
    let vault = open(paths).await?;
    let p = Principal::Cli;
    match command {
        AlertCommand::List { open, json } => {
            let list = vault.alerts(&p, open).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
                return Ok(ExitCode::SUCCESS);
            }
            for a in &list {
                let state = a
                    .acknowledged_at
                    .as_deref()
                    .map_or("open".to_owned(), |t| format!("acknowledged {t}"));
                println!(
                    "{} {} {} [{}] {state}",
                    a.alert.raised_at,
                    a.alert.id,
                    a.alert.kind.as_str(),
                    a.alert.actor
                );
                println!("    {}", a.alert.summary);
            }
            if list.is_empty() {
                eprintln!("no alerts");
            }
        }
        AlertCommand::Ack { id } => {
            vault.acknowledge_alert(&p, id).await?;
            eprintln!("acknowledged alert {id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn yes_no(field: &str, s: &str) -> Result<bool> {
    match s {
        "yes" | "true" => Ok(true),
        "no" | "false" => Ok(false),
        _ => bail!("--{field}: write yes or no"),
    }
}

fn print_incident(i: &IncidentView) {
    let x = &i.incident;
    println!("{}  {}  [{}]", x.id, x.title, x.status.as_str());
    println!(
        "  aware at {}; opened {} by {}",
        i.aware_at,
        format_time_ms(x.opened_at_ms),
        x.opened_by
    );
    for c in &i.clocks {
        let d = &c.deadline;
        let when = match (&d.due_local, c.left_ms) {
            (Some(due), Some(l)) => format!("due {due} ({})", left(l)),
            _ => "without undue delay".to_owned(),
        };
        println!(
            "  {:<24} to {:<16} {when}  {}",
            d.duty.cite,
            format!("{:?}", d.duty.to).to_lowercase(),
            d.duty.when
        );
    }
}

pub(crate) async fn breach(paths: &Paths, command: BreachCommand) -> Result<ExitCode> {
    let vault = open(paths).await?;
    let p = Principal::Cli;
    let tz = vault.inventory().breach.time_zone;
    let instant =
        |field: &str, s: &str| parse_instant(s, tz).with_context(|| format!("--{field} {s:?}"));
    match command {
        BreachCommand::Open {
            title,
            aware_at,
            facts,
            api_key,
            operator,
            from,
            to,
            alerts,
        } => {
            let aware_at_ms = aware_at
                .as_deref()
                .map(|s| instant("aware-at", s))
                .transpose()?;
            let from_ms = from.as_deref().map(|s| instant("from", s)).transpose()?;
            let to_ms = to.as_deref().map(|s| instant("to", s)).transpose()?;
            let o = OpenIncident {
                title,
                aware_at_ms,
                facts,
                api_key,
                operator,
                from_ms,
                to_ms,
                alerts,
            };
            let view = vault.open_incident(&p, o).await?;
            eprintln!("opened incident {}", view.incident.id);
            print_incident(&view);
            println!("{}", view.incident.id);
        }
        BreachCommand::List { json } => {
            let mut list = vault.incidents(&p).await?;
            list.sort_by_key(|i| {
                (
                    i.incident.status == IncidentStatus::Closed,
                    i.authority_clock()
                        .and_then(|c| c.deadline.due_ms)
                        .unwrap_or(i64::MAX),
                )
            });
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if list.is_empty() {
                eprintln!("no incidents");
            } else {
                for i in &list {
                    print_incident(i);
                }
            }
        }
        BreachCommand::Show { id } => {
            let i = vault.incident(&p, id).await?;
            print_incident(&i);
            let x = &i.incident;
            for (name, text) in [
                ("facts", &x.facts),
                ("effects", &x.effects),
                ("remedial action", &x.remedial),
            ] {
                if !text.is_empty() {
                    println!("  {name}: {text}");
                }
            }
            if let Some(d) = &x.decision {
                println!(
                    "  decision ({} by {}): notify the authority: {}; notify subjects: {}; because {}",
                    format_time_ms(d.at_ms),
                    d.by,
                    if d.notify_authority { "yes" } else { "no" },
                    if d.notify_subjects { "yes" } else { "no" },
                    d.reasons
                );
            }
            for s in &x.steps {
                println!("  {} {}: {}", format_time_ms(s.at_ms), s.by, s.what);
            }
        }
        BreachCommand::Update {
            id,
            facts,
            effects,
            remedial,
            step,
            status,
        } => {
            let status = status
                .map(|s| {
                    IncidentStatus::parse(&s)
                        .with_context(|| format!("--status {s:?}: write open, contained or closed"))
                })
                .transpose()?;
            let view = vault
                .update_incident(
                    &p,
                    id,
                    IncidentChange {
                        facts,
                        effects,
                        remedial,
                        status,
                        decision: None,
                        step,
                        notified: Vec::new(),
                    },
                )
                .await?;
            eprintln!("updated incident {id}");
            print_incident(&view);
        }
        BreachCommand::Decide {
            id,
            notify_authority,
            notify_subjects,
            reasons,
        } => {
            let decision = (
                yes_no("notify-authority", &notify_authority)?,
                yes_no("notify-subjects", &notify_subjects)?,
                reasons,
            );
            vault
                .update_incident(
                    &p,
                    id,
                    IncidentChange {
                        decision: Some(decision),
                        ..IncidentChange::default()
                    },
                )
                .await?;
            eprintln!("recorded the decision on incident {id}");
        }
        BreachCommand::Notices { id, json } => {
            let n = vault.notices(&p, id).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&n)?);
                return Ok(ExitCode::SUCCESS);
            }
            println!("{}", n.authority.text);
            if !n.authority.missing.is_empty() {
                eprintln!(
                    "still to write before it is sent: {}",
                    n.authority.missing.join(", ")
                );
            }
            for (variant, count) in &n.subjects {
                eprintln!("{count} subjects would get the {}", variant.words());
            }
            for s in &n.samples {
                println!(
                    "--- to a subject ({:?}) ---\nSubject: {}\n\n{}",
                    s.variant, s.subject, s.text
                );
            }
        }
        BreachCommand::Notify { id } => {
            let sent = vault.send_notices(&p, id).await?;
            eprintln!(
                "queued {} notices; {} subjects have no address on file",
                sent.queued, sent.without_address
            );
        }
        BreachCommand::Register { format, out } => {
            let list: Vec<_> = vault
                .incidents(&p)
                .await?
                .into_iter()
                .map(|v| v.incident)
                .collect();
            let text = match format.as_str() {
                "json" => serde_json::to_string_pretty(&list)?,
                "csv" => custos_core::breach::incident::register_csv(&list),
                other => bail!("--format {other:?}: write json or csv"),
            };
            match out {
                Some(path) => {
                    crate::subjects::write_private(&path, text.as_bytes())?;
                    eprintln!(
                        "wrote the register of {} incidents to {}",
                        list.len(),
                        path.display()
                    );
                }
                None => print!("{text}"),
            }
        }
        BreachCommand::Contain { id } => {
            let done = vault.contain_incident(&p, id).await?;
            for k in &done.revoked_keys {
                eprintln!("revoked API key {k}");
            }
            for o in &done.disabled_operators {
                eprintln!("disabled operator {o}");
            }
            for n in &done.next {
                eprintln!("next: {n}");
            }
        }
        BreachCommand::BlastRadius {
            api_key,
            operator,
            from,
            to,
            json,
        } => {
            let q = BlastQuery {
                api_key,
                operator,
                from_ms: from.as_deref().map(|s| instant("from", s)).transpose()?,
                to_ms: to.as_deref().map(|s| instant("to", s)).transpose()?,
            };
            let r = vault.blast_radius(&p, &q).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "{} subjects, {} records, {} reads{}",
                r.subjects.len(),
                r.records,
                r.reads,
                match (&r.first, &r.last) {
                    (Some(f), Some(l)) => format!(" from {f} to {l}"),
                    _ => String::new(),
                }
            );
            for (c, x) in &r.collections {
                println!(
                    "  {c}: {} subjects, {} records; fields {}; categories {}",
                    x.subjects,
                    x.records,
                    x.fields.iter().cloned().collect::<Vec<_>>().join(", "),
                    x.categories.iter().cloned().collect::<Vec<_>>().join(", ")
                );
            }
            for (profile, n) in &r.jurisdictions {
                println!("  under {profile}: {n} subjects");
            }
            if r.canary_reads > 0 {
                println!(
                    "  and {} reads of canary records (not counted above)",
                    r.canary_reads
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
