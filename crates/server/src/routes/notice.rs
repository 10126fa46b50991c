//! The privacy notice: JSON for programs, HTML for people. Both are generated from the
//! inventory; the HTML page is self-contained (no script, no external style, font or image).

use std::fmt::Write;

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use custos_core::notice::Notice;
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

/// The privacy notice as JSON (in the OpenAPI document) and as `/privacy` (not in it).
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(privacy_notice))
        .route("/privacy", axum::routing::get(privacy_page))
}

/// The privacy notice, generated from the inventory: who the controller is, what is collected
/// for which purpose on which legal basis, how long it is kept, who receives it where, and the
/// customer's rights. `version` is a digest of the content; consent events name it.
#[utoipa::path(
    get,
    path = "/v1/privacy-notice",
    security(()),
    responses((status = 200, description = "The notice as JSON", body = Object)),
    tag = "privacy"
)]
async fn privacy_notice(State(s): State<AppState>) -> Json<Value> {
    Json(serde_json::to_value(s.vault.notice()).unwrap_or(Value::Null))
}

/// The privacy notice as a readable HTML page.
async fn privacy_page(State(s): State<AppState>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // Nothing on the page may come from elsewhere.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'",
            ),
        ],
        render(s.vault.notice()),
    )
        .into_response()
}

/// Escapes text for HTML element content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn render(n: &Notice) -> String {
    let mut h = String::new();
    let name = esc(&n.controller.name);
    let contact = esc(&n.controller.contact);
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Privacy notice: {name}</title>\
         <style>body{{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#222}}\
         table{{border-collapse:collapse;width:100%}}td,th{{border-bottom:1px solid #ddd;padding:.3rem .5rem;text-align:left;vertical-align:top}}\
         .muted{{color:#666;font-size:.9rem}}</style></head><body>\
         <h1>How {name} uses your personal data</h1>\
         <p>{name} is responsible for your personal data (the controller). \
         Reach us about it at <strong>{contact}</strong>.</p>"
    );
    h.push_str("<h2>Why we use your data</h2>");
    for p in &n.purposes {
        let _ = write!(
            h,
            "<section><h3>{}</h3><p>{}</p><p><em>Legal basis:</em> {}.</p>",
            esc(&p.id),
            esc(&p.description),
            esc(&p.legal_basis_explained)
        );
        if let Some(l) = &p.consent_lapses_after {
            let _ = write!(
                h,
                "<p>We ask for your consent again after {}; until you renew it, we do not use your data for this.</p>",
                esc(l)
            );
        }
        let data: Vec<String> = p
            .data
            .iter()
            .map(|d| format!("{} ({})", esc(&d.field), esc(&d.category)))
            .collect();
        let _ = write!(h, "<p><em>Data used:</em> {}.</p>", data.join(", "));
        if p.recipients.is_empty() {
            h.push_str("<p><em>Shared with:</em> no one outside us.</p>");
        } else {
            let r: Vec<String> = p
                .recipients
                .iter()
                .map(|r| format!("{} (in {})", esc(&r.name), esc(&r.country)))
                .collect();
            let _ = write!(h, "<p><em>Shared with:</em> {}.</p>", r.join(", "));
        }
        h.push_str("</section>");
    }
    h.push_str("<h2>What we keep, and for how long</h2>");
    for c in &n.collections {
        let _ = write!(
            h,
            "<h3>{}</h3><p>A record is kept {}.</p><table><tr><th>Data</th><th>Category</th><th>Used for</th><th>Kept</th></tr>",
            esc(&c.collection),
            esc(&c.retention)
        );
        for f in &c.fields {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&f.field),
                esc(&f.category),
                esc(&f.purposes.join(", ")),
                esc(&f.retention)
            );
        }
        h.push_str("</table>");
    }
    h.push_str("<h2>Your rights</h2><ul>");
    for r in &n.rights {
        let _ = write!(
            h,
            "<li><strong>{}</strong> ({}): {}</li>",
            esc(&r.right),
            esc(&r.article),
            esc(&r.how)
        );
    }
    let _ = writeln!(
        h,
        "</ul><p class=\"muted\">Notice version {}. It is generated from what our systems \
         actually enforce, and changes when they do.</p></body></html>",
        esc(&n.version)
    );
    h
}

#[cfg(test)]
mod tests {
    use super::esc;

    #[test]
    fn markup_is_escaped() {
        assert_eq!(
            esc("<b>\"Tom & Jerry's\"</b>"),
            "&lt;b&gt;&quot;Tom &amp; Jerry&#39;s&quot;&lt;/b&gt;"
        );
    }
}
