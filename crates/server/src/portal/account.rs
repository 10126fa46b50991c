//! The customer's data: everything held, why, how long and who receives it, who read it
//! (the home page), and correcting a value.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use custos_core::ids::RecordId;
use custos_core::inventory::FieldType;
use custos_core::personal::PersonalValue;
use custos_vault::{Correction, FieldExport, Read, SubjectExport, VaultError};
use serde::Deserialize;
use serde_json::Value;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::frame;
use super::pages::{
    CollectionView, CorrectPage, FieldView, Home, PurposeLine, ReadView, RecordView,
};
use super::web::{Page, Signed};
use crate::state::AppState;

/// `snake_case` in words: `birth_date` is "Birth date".
pub(super) fn words(name: &str) -> String {
    let s = name.replace(['_', '.'], " ");
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// A value as a person reads it.
fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "Yes".into(),
        Value::Bool(false) => "No".into(),
        Value::Number(n) => n.to_string(),
        Value::Null => String::new(),
        Value::Array(a) => a.iter().map(shown).collect::<Vec<_>>().join(", "),
        Value::Object(m) => m
            .values()
            .map(shown)
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// The date part of an RFC 3339 instant.
pub(super) fn day(t: &str) -> String {
    t.get(..10).unwrap_or(t).to_owned()
}

/// The types a single text box can correct; a postal address or a yes/no is corrected by
/// writing to the business, and so is an email address (it may be the one the customer signs
/// in with: changing it needs proof of the new one, which the portal does not ask yet).
fn input_type(ty: FieldType) -> Option<&'static str> {
    match ty {
        FieldType::Text | FieldType::Country => Some("text"),
        FieldType::Phone => Some("tel"),
        FieldType::Date => Some("date"),
        FieldType::Number => Some("number"),
        _ => None,
    }
}

fn field_view(
    state: &AppState,
    collection: &str,
    record: RecordId,
    name: &str,
    f: &FieldExport,
) -> FieldView {
    let decl = state
        .vault
        .inventory()
        .collection(collection)
        .and_then(|c| c.fields.get(name));
    let correctable = decl.and_then(|d| input_type(d.ty)).is_some();
    let retention = match &f.retention.kept_until {
        Some(t) => format!("{}, until {}", f.retention.rule, day(t)),
        None => f.retention.rule.clone(),
    };
    FieldView {
        label: words(name),
        value: shown(f.value.expose_secret()),
        category: f.category.clone().unwrap_or_else(|| "other".into()),
        purposes: f
            .purposes
            .iter()
            .map(|p| PurposeLine {
                description: p.description.clone(),
                basis: p.legal_basis_explained.clone(),
            })
            .collect(),
        retention,
        recipients: f
            .recipients
            .iter()
            .map(|r| format!("{} ({}), for {}", r.name, r.country, r.purpose))
            .collect(),
        correct_url: correctable.then(|| {
            format!("/portal/correct?collection={collection}&record={record}&field={name}")
        }),
    }
}

fn read_view(r: &Read) -> ReadView {
    ReadView {
        at: r.at.replace('T', " ").trim_end_matches('Z').to_owned(),
        by: r.by.in_words.clone(),
        purpose: r
            .purpose_description
            .clone()
            .or_else(|| r.purpose.clone())
            .unwrap_or_default(),
        fields: r.fields.join(", "),
    }
}

fn collections(state: &AppState, export: &SubjectExport) -> Vec<CollectionView> {
    export
        .collections
        .iter()
        .filter(|c| !c.records.is_empty())
        .map(|c| CollectionView {
            title: words(&c.collection),
            records: c
                .records
                .iter()
                .map(|r| RecordView {
                    created: day(&r.created),
                    updated: day(&r.updated),
                    held: r.legal_hold,
                    fields: r
                        .fields
                        .iter()
                        .map(|(n, f)| field_view(state, &c.collection, r.record_id, n, f))
                        .collect(),
                })
                .collect(),
        })
        .collect()
}

#[derive(Deserialize)]
pub(super) struct Done {
    pub(super) done: Option<String>,
}

/// What a `?done=` key says; anything else says nothing (no text from the URL is shown).
pub(super) fn done_message(key: Option<&str>) -> Option<String> {
    Some(
        match key? {
            "corrected" => "Your correction is saved.",
            "choice" => "Your choice is recorded.",
            "erasure" => "Your request for erasure is received. Follow it here: once it is done, its certificate is here to download.",
            _ => return None,
        }
        .to_owned(),
    )
}

/// `GET /portal`: everything held about the signed-in customer.
pub(super) async fn home(
    State(state): State<AppState>,
    signed: Signed,
    Query(q): Query<Done>,
) -> Page {
    let s = &signed.session;
    let export = match state.vault.view_own(&s.principal()).await {
        Ok(e) => Some(e),
        // Erased while signed in: nothing is held any more.
        Err(VaultError::NotFound(_)) => None,
        Err(e) => return e.into(),
    };
    Page::ok(&Home {
        frame: frame(&state, &signed),
        done: done_message(q.done.as_deref()),
        collections: export
            .as_ref()
            .map(|e| collections(&state, e))
            .unwrap_or_default(),
        reads: export
            .as_ref()
            .map(|e| e.reads.iter().map(read_view).collect())
            .unwrap_or_default(),
    })
}

#[derive(Deserialize)]
pub(super) struct Which {
    #[serde(default)]
    collection: String,
    #[serde(default)]
    record: String,
    #[serde(default)]
    field: String,
}

/// The correction form; the value typed is wiped when the form is dropped.
#[derive(Deserialize, Zeroize, ZeroizeOnDrop)]
pub(super) struct CorrectForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    collection: String,
    #[serde(default)]
    record: String,
    #[serde(default)]
    field: String,
    #[serde(default)]
    value: String,
}

fn not_yours() -> Page {
    Page::from(VaultError::NotFound("record"))
}

/// The current value of one field of the customer's record, from their own export.
fn current(
    export: &SubjectExport,
    collection: &str,
    record: RecordId,
    field: &str,
) -> Option<String> {
    export
        .collections
        .iter()
        .filter(|c| c.collection == collection)
        .flat_map(|c| &c.records)
        .find(|r| r.record_id == record)
        .and_then(|r| r.fields.get(field))
        .map(|f| shown(f.value.expose_secret()))
}

/// `GET /portal/correct?collection=&record=&field=`: the form correcting one value of the
/// customer's own record; another's record is not found.
pub(super) async fn correct_page(
    State(state): State<AppState>,
    signed: Signed,
    Query(w): Query<Which>,
) -> Page {
    let Ok(record) = w.record.parse::<RecordId>() else {
        return not_yours();
    };
    let Some(ty) = state
        .vault
        .inventory()
        .collection(&w.collection)
        .and_then(|c| c.fields.get(&w.field))
        .and_then(|d| input_type(d.ty))
    else {
        return not_yours();
    };
    let s = &signed.session;
    let export = match state.vault.view_own(&s.principal()).await {
        Ok(e) => e,
        Err(e) => return e.into(),
    };
    let Some(value) = current(&export, &w.collection, record, &w.field) else {
        return not_yours();
    };
    Page::ok(&CorrectPage {
        frame: frame(&state, &signed),
        label: words(&w.field),
        collection: w.collection,
        record: record.to_string(),
        field: w.field,
        value,
        input_type: ty,
        error: None,
    })
}

/// `POST /portal/correct`: saves a correction, validated as the API validates a change; a
/// bad value is shown again with the rule it breaks, and nothing is changed.
pub(super) async fn correct(
    State(state): State<AppState>,
    signed: Signed,
    Form(form): Form<CorrectForm>,
) -> Page {
    if let Err(p) = signed.check_csrf(&state, &form.csrf) {
        return p;
    }
    let Ok(record) = form.record.parse::<RecordId>() else {
        return not_yours();
    };
    let Some(decl) = state
        .vault
        .inventory()
        .collection(&form.collection)
        .and_then(|c| c.fields.get(&form.field))
    else {
        return not_yours();
    };
    let Some(ty) = input_type(decl.ty) else {
        return not_yours();
    };
    let typed = form.value.trim();
    let value = match (decl.ty, typed.parse::<f64>()) {
        (FieldType::Number, Ok(n)) => serde_json::Number::from_f64(n)
            .map_or_else(|| Value::String(typed.to_owned()), Value::Number),
        (_, _) if typed.is_empty() => Value::Null,
        _ => Value::String(typed.to_owned()),
    };
    let c = Correction {
        collection: form.collection.clone(),
        record,
        field: form.field.clone(),
        value: PersonalValue::new(value),
    };
    match state.vault.rectify(&signed.session.principal(), c).await {
        Ok(_) => Page::SeeOther("/portal?done=corrected".into()),
        Err(VaultError::Invalid { message, .. }) => Page::render(
            StatusCode::BAD_REQUEST,
            &CorrectPage {
                frame: frame(&state, &signed),
                label: words(&form.field),
                collection: form.collection.clone(),
                record: record.to_string(),
                field: form.field.clone(),
                value: String::new(),
                input_type: ty,
                error: Some(format!("Nothing was changed: {message}.")),
            },
        ),
        Err(e) => e.into(),
    }
}
