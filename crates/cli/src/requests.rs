//! `custos requests`: the request desk from the command line. Lists data-subject requests by
//! deadline with their days left, shows one with its history, and moves one on.

use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};
use clap::Subcommand;
use custos_core::ids::RequestId;
use custos_core::inventory::Period;
use custos_core::rights::{Reason, RequestKind, RequestStatus, Transition};
use custos_core::time::format_time_ms;
use custos_vault::{Paths, Principal, ReasonView, RequestFilter, RequestView, Vault, VaultError};

#[derive(Subcommand)]
pub(crate) enum RequestsCommand {
    /// List requests in deadline order: id, kind, status, subject, due date and days left.
    List {
        /// Only open requests due within this period (7d, 2w, 1m), overdue ones included.
        #[arg(long)]
        due_within: Option<String>,
        /// Only open requests past their deadline.
        #[arg(long)]
        overdue: bool,
        /// Only requests in this status (received, verifying, in_progress, extended,
        /// completed, rejected).
        #[arg(long)]
        status: Option<String>,
        /// Only requests of this kind (access, erasure, ...).
        #[arg(long)]
        kind: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one request: its deadlines, reasons and history.
    Show {
        /// The request id.
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Confirm receipt of a request to its subject.
    Acknowledge {
        /// The request id.
        id: String,
    },
    /// Start checking the subject's identity.
    Verify {
        /// The request id.
        id: String,
    },
    /// Approve a request: the subject is verified and the work starts. A restriction, an
    /// objection or an opt-out of sale or sharing is carried out at once and completed.
    Approve {
        /// The request id.
        id: String,
    },
    /// Extend a request's deadline as its profile allows, once.
    Extend {
        /// The request id.
        id: String,
        /// Why, in words the subject is told.
        #[arg(long)]
        reason: String,
    },
    /// Reject a request.
    Reject {
        /// The request id.
        id: String,
        /// Why, in words the subject is told.
        #[arg(long)]
        reason: String,
    },
    /// Complete a request: it is answered.
    Complete {
        /// The request id.
        id: String,
    },
}

/// Runs one `custos requests` command against the vault at `paths`.
///
/// # Errors
/// When the vault cannot be opened, an argument is malformed, or the vault refuses.
pub(crate) async fn run(paths: &Paths, command: RequestsCommand) -> Result<ExitCode> {
    let vault = Vault::open(paths)
        .await
        .with_context(|| format!("opening the vault in {}", paths.dir.display()))?;
    let cli = Principal::Cli;
    let (id, transition) = match command {
        RequestsCommand::List {
            due_within,
            overdue,
            status,
            kind,
            json,
        } => {
            let filter = RequestFilter {
                due_within: due_within
                    .map(|d| d.parse::<Period>().context("--due-within"))
                    .transpose()?,
                overdue,
                status: status
                    .map(|s| s.parse::<RequestStatus>().context("--status"))
                    .transpose()?,
                kind: kind
                    .map(|k| k.parse::<RequestKind>().context("--kind"))
                    .transpose()?,
                ..RequestFilter::default()
            };
            let list = vault.requests(&cli, filter).await.map_err(refusal)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                print_table(&list);
            }
            return Ok(ExitCode::SUCCESS);
        }
        RequestsCommand::Show { id, json } => {
            let v = vault
                .request(&cli, request_id(&id)?)
                .await
                .map_err(refusal)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print_request(&v);
            }
            return Ok(ExitCode::SUCCESS);
        }
        RequestsCommand::Acknowledge { id } => (id, Transition::Acknowledge),
        RequestsCommand::Verify { id } => (id, Transition::Verify),
        RequestsCommand::Approve { id } => (id, Transition::Approve),
        RequestsCommand::Extend { id, reason } => (id, Transition::Extend(reason_arg(&reason)?)),
        RequestsCommand::Reject { id, reason } => (id, Transition::Reject(reason_arg(&reason)?)),
        RequestsCommand::Complete { id } => (id, Transition::Complete),
    };
    let name = transition.name();
    let v = vault
        .transition(&cli, request_id(&id)?, transition)
        .await
        .map_err(refusal)?;
    println!(
        "{name}: request {} is {} ({})",
        v.id,
        v.status,
        days_left(&v)
    );
    Ok(ExitCode::SUCCESS)
}

fn request_id(s: &str) -> Result<RequestId> {
    s.trim()
        .parse()
        .map_err(|_| anyhow!("the request id {s:?} is not a UUID"))
}

fn reason_arg(s: &str) -> Result<Reason> {
    Reason::parse(s).context("--reason")
}

/// The vault's refusal as the user reads it: a refused transition names its rule.
fn refusal(e: VaultError) -> anyhow::Error {
    match e {
        VaultError::TransitionRefused { rule, message } => anyhow!("{message} (rule: {rule})"),
        e => anyhow::Error::new(e),
    }
}

/// Days left as the table says them: a number, `N overdue` once past, `closed`.
fn days_left(v: &RequestView) -> String {
    match v.days_left {
        None => "closed".to_owned(),
        Some(d) if v.overdue => format!("{d} overdue"),
        Some(0) => "0: due today".to_owned(),
        Some(d) => format!("{d} days left"),
    }
}

/// An aligned table of requests, in the order given (deadline order).
fn print_table(list: &[RequestView]) {
    let header = ["id", "kind", "status", "subject", "due", "days left"];
    let rows: Vec<[String; 6]> = list
        .iter()
        .map(|v| {
            [
                v.id.to_string(),
                v.kind.to_string(),
                v.status.to_string(),
                v.subject_id.to_string(),
                v.due_date.clone(),
                match v.days_left {
                    None => "-".to_owned(),
                    Some(d) if v.overdue => format!("{d} overdue"),
                    Some(d) => d.to_string(),
                },
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 6]| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header);
    for row in &rows {
        line(row.each_ref().map(String::as_str));
    }
    if list.is_empty() {
        println!("(no requests)");
    }
}

fn reason(r: Option<&ReasonView>) -> Option<String> {
    r.map(|r| match r {
        ReasonView::Given(r) => r.as_str().to_owned(),
        ReasonView::Erased => "(erased with the subject's key)".to_owned(),
    })
}

fn print_request(v: &RequestView) {
    let time = |t: Option<i64>| t.map_or_else(|| "-".to_owned(), format_time_ms);
    println!("request      {}", v.id);
    println!("subject      {}", v.subject_id);
    println!(
        "kind         {} (by {}, under {})",
        v.kind, v.channel, v.profile
    );
    println!("status       {}", v.status);
    println!("received     {}", format_time_ms(v.received_at));
    if v.acknowledge_by.is_some() || v.acknowledged_at.is_some() {
        let late = if v.acknowledgement_overdue {
            ", overdue"
        } else {
            ""
        };
        println!(
            "acknowledge  by {}; done {}{late}",
            time(v.acknowledge_by),
            time(v.acknowledged_at)
        );
    }
    println!("verified     {}", time(v.verified_at));
    println!("due          {} ({})", v.due_date, days_left(v));
    if let Some(to) = v.extended_to {
        println!(
            "extended to  {} (first due {})",
            format_time_ms(to),
            format_time_ms(v.due_at)
        );
    }
    if let Some(r) = reason(v.extension_reason.as_ref()) {
        println!("extended     because {r}");
    }
    if let Some(r) = reason(v.rejection_reason.as_ref()) {
        println!("rejected     because {r}");
    }
    if !v.purposes.is_empty() {
        println!("purposes     {}", v.purposes.join(", "));
    }
    println!("closed       {}", time(v.closed_at));
    if let Some(until) = v.kept_until {
        println!("kept until   {}", format_time_ms(until));
    }
    println!("history");
    for s in &v.history {
        let detail = s
            .detail
            .as_deref()
            .map(|d| format!("  ({d})"))
            .unwrap_or_default();
        println!(
            "  {}  {:<11}  {:<11}  by {}{detail}",
            format_time_ms(s.at_ms),
            s.transition,
            s.status.as_str(),
            s.by
        );
    }
}
