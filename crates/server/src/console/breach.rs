//! Breach response in the console: open alerts (acknowledge, or open an incident from one),
//! the incidents with the clock of the authority's 72 hours, and an incident's page (facts,
//! every clock, the blast radius, the steps taken, containment, the decision, the drafted
//! notices and their approval). The rules are the vault's; a role without
//! `handle_incidents` is refused there.

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use custos_core::breach::IncidentStatus;
use custos_core::breach::clock::{describe_left as left, parse_instant};
use custos_core::ids::{AlertId, IncidentId};
use custos_core::principal::{Act, authorize};
use custos_core::time::format_time_ms;
use custos_vault::{ClockView, IncidentChange, IncidentView, OpenIncident, VaultError};
use serde::Deserialize;

use super::frame;
use super::pages::{Frame, StepRow};
use super::web::{Answer, Staff};
use crate::state::AppState;

/// One alert in the list.
pub(super) struct AlertRow {
    pub(super) id: String,
    pub(super) kind: String,
    pub(super) raised: String,
    pub(super) actor: String,
    pub(super) summary: String,
    pub(super) suspended: bool,
}

/// One incident in the list.
pub(super) struct IncidentRow {
    pub(super) id: String,
    pub(super) title: String,
    pub(super) status: String,
    pub(super) aware: String,
    pub(super) clock: String,
    pub(super) overdue: bool,
}

#[derive(Template)]
#[template(path = "console/breach.html")]
pub(super) struct BreachPage {
    pub(super) frame: Frame,
    pub(super) alerts: Option<Vec<AlertRow>>,
    pub(super) incidents: Option<Vec<IncidentRow>>,
    pub(super) time_zone: String,
}

/// One clock on an incident's page.
pub(super) struct ClockRow {
    pub(super) cite: String,
    pub(super) to: String,
    pub(super) due: String,
    pub(super) left: String,
    pub(super) overdue: bool,
    pub(super) when: String,
}

#[derive(Template)]
#[template(path = "console/incident.html")]
pub(super) struct IncidentPage {
    pub(super) frame: Frame,
    pub(super) id: String,
    pub(super) title: String,
    pub(super) status: String,
    pub(super) aware: String,
    pub(super) about: String,
    pub(super) facts: String,
    pub(super) effects: String,
    pub(super) remedial: String,
    pub(super) clocks: Vec<ClockRow>,
    pub(super) radius: Option<String>,
    pub(super) exposure: Vec<(String, String)>,
    pub(super) decision: Option<String>,
    pub(super) authority_draft: Option<String>,
    pub(super) steps: Vec<StepRow>,
    pub(super) closed: bool,
}

fn clock_text(c: Option<&ClockView>) -> (String, bool) {
    match c.and_then(|c| Some((c.deadline.due_local.clone()?, c.left_ms?, c.overdue))) {
        Some((due, l, overdue)) => (format!("authority by {due} ({})", left(l)), overdue),
        None => ("no fixed deadline".to_owned(), false),
    }
}

fn not_found() -> Answer {
    Answer::message(
        StatusCode::NOT_FOUND,
        "Not found",
        "There is no such incident or alert.",
    )
}

/// `GET /console/breach`.
pub(super) async fn page(State(state): State<AppState>, staff: Staff) -> Answer {
    let p = staff.session.principal();
    let inv = state.vault.inventory();
    let alerts = if authorize(&p, &Act::ReadAlerts, inv).is_ok() {
        match state.vault.alerts(&p, true).await {
            Ok(list) => Some(
                list.into_iter()
                    .map(|a| AlertRow {
                        id: a.alert.id.to_string(),
                        kind: a.alert.kind.as_str().replace('_', " "),
                        raised: a.alert.raised_at,
                        actor: a.alert.actor,
                        summary: a.alert.summary,
                        suspended: a.alert.suspended,
                    })
                    .collect(),
            ),
            Err(e) => return e.into(),
        }
    } else {
        None
    };
    let incidents = if authorize(&p, &Act::HandleIncidents, inv).is_ok() {
        match state.vault.incidents(&p).await {
            Ok(list) => Some(
                list.iter()
                    .map(|v| {
                        let (clock, overdue) = clock_text(v.authority_clock());
                        IncidentRow {
                            id: v.incident.id.to_string(),
                            title: v.incident.title.clone(),
                            status: v.incident.status.as_str().to_owned(),
                            aware: v.aware_at.clone(),
                            clock,
                            overdue,
                        }
                    })
                    .collect(),
            ),
            Err(e) => return e.into(),
        }
    } else {
        None
    };
    if alerts.is_none() && incidents.is_none() {
        return VaultError::Forbidden(format!(
            "role {:?} may not read alerts or handle incidents: it needs read_audit or handle_incidents",
            staff.session.role
        ))
        .into();
    }
    Answer::ok(&BreachPage {
        frame: frame(&state, &staff),
        alerts,
        incidents,
        time_zone: inv.breach.time_zone.name().to_owned(),
    })
}

#[derive(Deserialize)]
pub(super) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /console/breach/alerts/{id}/acknowledge`.
pub(super) async fn acknowledge(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Answer {
    if let Err(refused) = staff.check_csrf(&state, &form.csrf) {
        return refused;
    }
    let Ok(id) = id.parse::<AlertId>() else {
        return not_found();
    };
    match state
        .vault
        .acknowledge_alert(&staff.session.principal(), id)
        .await
    {
        Ok(_) => Answer::SeeOther("/console/breach".into()),
        Err(e) => e.into(),
    }
}

#[derive(Deserialize)]
pub(super) struct OpenForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    aware_at: String,
    #[serde(default)]
    facts: String,
    #[serde(default)]
    api_key: String,
    #[serde(default)]
    operator: String,
    #[serde(default)]
    alert: String,
}

fn given(s: &str) -> Option<String> {
    Some(s.trim().to_owned()).filter(|s| !s.is_empty())
}

fn refused(what: &str) -> Answer {
    Answer::message(StatusCode::BAD_REQUEST, "Nothing was changed", what)
}

/// `POST /console/breach/incidents`: opens an incident (from an alert, when one is named).
pub(super) async fn open(
    State(state): State<AppState>,
    staff: Staff,
    Form(form): Form<OpenForm>,
) -> Answer {
    if let Err(refused) = staff.check_csrf(&state, &form.csrf) {
        return refused;
    }
    let tz = state.vault.inventory().breach.time_zone;
    let aware_at_ms = match given(&form.aware_at)
        .map(|s| parse_instant(&s, tz))
        .transpose()
    {
        Ok(t) => t,
        Err(e) => return refused(&format!("The time of awareness {e}.")),
    };
    let mut alerts = Vec::new();
    let mut api_key = given(&form.api_key);
    let operator = given(&form.operator);
    if let Some(a) = given(&form.alert) {
        let Ok(id) = a.parse::<AlertId>() else {
            return not_found();
        };
        alerts.push(id);
        // An incident opened from an alert is about whom the alert is about.
        if let Ok(v) = state.vault.alert(&staff.session.principal(), id).await
            && let Some(k) = v.alert.actor.strip_prefix("apikey:")
        {
            api_key.get_or_insert_with(|| k.to_owned());
        }
    }
    let o = OpenIncident {
        title: form.title.trim().to_owned(),
        aware_at_ms,
        facts: form.facts,
        api_key,
        operator,
        from_ms: None,
        to_ms: None,
        alerts,
    };
    match state
        .vault
        .open_incident(&staff.session.principal(), o)
        .await
    {
        Ok(v) => Answer::SeeOther(format!("/console/breach/incidents/{}", v.incident.id)),
        Err(e) => e.into(),
    }
}

fn parse_incident(id: &str) -> Result<IncidentId, Answer> {
    id.parse().map_err(|_| not_found())
}

/// `GET /console/breach/incidents/{id}`.
pub(super) async fn incident(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Answer {
    let id = match parse_incident(&id) {
        Ok(id) => id,
        Err(a) => return a,
    };
    let p = staff.session.principal();
    let v: IncidentView = match state.vault.incident(&p, id).await {
        Ok(v) => v,
        Err(e) => return e.into(),
    };
    let i = &v.incident;
    // The blast radius and the authority's draft need a caller or a window.
    let named =
        i.api_key.is_some() || i.operator.is_some() || i.from_ms.is_some() || i.to_ms.is_some();
    let (radius, exposure, authority_draft) = if named {
        match state.vault.notices(&p, id).await {
            Ok(n) => {
                let counts: Vec<(String, String)> = n
                    .subjects
                    .iter()
                    .map(|(v, c)| (v.words().to_owned(), c.to_string()))
                    .collect();
                let reach = format!(
                    "{} data subjects and {} records were read.",
                    n.subjects_exposed, n.records_exposed
                );
                (Some(reach), counts, Some(n.authority.text))
            }
            Err(e) => (
                Some(format!("The blast radius could not be computed: {e}")),
                Vec::new(),
                None,
            ),
        }
    } else {
        (None, Vec::new(), None)
    };
    let about = match (&i.api_key, &i.operator) {
        (Some(k), _) => format!("API key {k}"),
        (None, Some(o)) => format!("operator {o}"),
        _ => "no caller named".to_owned(),
    };
    Answer::ok(&IncidentPage {
        frame: frame(&state, &staff),
        id: i.id.to_string(),
        title: i.title.clone(),
        status: i.status.as_str().to_owned(),
        aware: v.aware_at.clone(),
        about,
        facts: i.facts.clone(),
        effects: i.effects.clone(),
        remedial: i.remedial.clone(),
        clocks: v
            .clocks
            .iter()
            .map(|c| ClockRow {
                cite: c.deadline.duty.cite.to_owned(),
                to: format!("{:?}", c.deadline.duty.to)
                    .to_lowercase()
                    .replace("attorneygeneral", "attorney general"),
                due: c
                    .deadline
                    .due_local
                    .clone()
                    .unwrap_or_else(|| "without undue delay".into()),
                left: c.left_ms.map(left).unwrap_or_default(),
                overdue: c.overdue,
                when: c.deadline.duty.when.to_owned(),
            })
            .collect(),
        radius,
        exposure,
        decision: i.decision.as_ref().map(|d| {
            format!(
                "Notify the authority: {}; notify subjects: {}. Because: {} ({} by {})",
                if d.notify_authority { "yes" } else { "no" },
                if d.notify_subjects { "yes" } else { "no" },
                d.reasons,
                format_time_ms(d.at_ms),
                d.by
            )
        }),
        authority_draft,
        steps: i
            .steps
            .iter()
            .map(|s| StepRow {
                at: format_time_ms(s.at_ms),
                by: s.by.clone(),
                what: s.what.clone(),
            })
            .collect(),
        closed: i.status == IncidentStatus::Closed,
    })
}

#[derive(Deserialize)]
pub(super) struct ActForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    facts: Option<String>,
    #[serde(default)]
    effects: Option<String>,
    #[serde(default)]
    remedial: Option<String>,
    #[serde(default)]
    notify_authority: Option<String>,
    #[serde(default)]
    notify_subjects: Option<String>,
    #[serde(default)]
    reasons: String,
}

/// `POST /console/breach/incidents/{id}/{action}`: update, contain, decide, notify, close.
pub(super) async fn act(
    State(state): State<AppState>,
    staff: Staff,
    Path((id, action)): Path<(String, String)>,
    Form(form): Form<ActForm>,
) -> Answer {
    if let Err(refused) = staff.check_csrf(&state, &form.csrf) {
        return refused;
    }
    let id = match parse_incident(&id) {
        Ok(id) => id,
        Err(a) => return a,
    };
    let p = staff.session.principal();
    let v = &state.vault;
    let done = match action.as_str() {
        "update" => v
            .update_incident(
                &p,
                id,
                IncidentChange {
                    facts: form.facts,
                    effects: form.effects,
                    remedial: form.remedial,
                    ..IncidentChange::default()
                },
            )
            .await
            .map(drop),
        "contain" => v.contain_incident(&p, id).await.map(drop),
        "decide" => {
            let yes = |s: &Option<String>| s.as_deref() == Some("yes");
            v.update_incident(
                &p,
                id,
                IncidentChange {
                    decision: Some((
                        yes(&form.notify_authority),
                        yes(&form.notify_subjects),
                        form.reasons,
                    )),
                    ..IncidentChange::default()
                },
            )
            .await
            .map(drop)
        }
        "notify" => v.send_notices(&p, id).await.map(drop),
        "close" => v
            .update_incident(
                &p,
                id,
                IncidentChange {
                    status: Some(IncidentStatus::Closed),
                    ..IncidentChange::default()
                },
            )
            .await
            .map(drop),
        _ => {
            return Answer::message(
                StatusCode::NOT_FOUND,
                "No such action",
                "An incident is updated, contained, decided, notified or closed.",
            );
        }
    };
    match done {
        Ok(()) => Answer::SeeOther(format!("/console/breach/incidents/{id}")),
        Err(e) => e.into(),
    }
}
