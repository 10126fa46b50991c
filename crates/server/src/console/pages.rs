//! The console's pages as askama templates (`templates/console/`): each struct is what one
//! page shows, in plain strings, so the templates hold no logic beyond loops and conditions.
//! askama escapes every value it writes into HTML; the one value written unescaped is the
//! server's own SVG (charts, the QR code), marked `|safe` in its template.

use askama::Template;

/// What every page's frame shows: the business, the operator signed in (if any), and the
/// CSRF token of the page's forms.
pub(super) struct Frame {
    pub(super) org: String,
    pub(super) operator: Option<String>,
    pub(super) role: String,
    pub(super) csrf: String,
}

#[derive(Template)]
#[template(path = "console/message.html")]
pub(super) struct Message {
    pub(super) title: String,
    pub(super) text: String,
}

#[derive(Template)]
#[template(path = "console/signin.html")]
pub(super) struct SigninPage {
    pub(super) frame: Frame,
    pub(super) error: Option<String>,
}

#[derive(Template)]
#[template(path = "console/setup_password.html")]
pub(super) struct SetupPassword {
    pub(super) frame: Frame,
    pub(super) email: String,
    pub(super) token: String,
    pub(super) error: Option<(String, String)>,
}

#[derive(Template)]
#[template(path = "console/setup_authenticator.html")]
pub(super) struct SetupAuthenticator {
    pub(super) frame: Frame,
    pub(super) email: String,
    pub(super) token: String,
    pub(super) qr_svg: String,
    pub(super) uri: String,
    pub(super) secret: String,
    pub(super) error: Option<String>,
}

#[derive(Template)]
#[template(path = "console/setup_done.html")]
pub(super) struct SetupDone {
    pub(super) frame: Frame,
    pub(super) codes: Vec<String>,
}

/// One request in the queue.
pub(super) struct QueueRow {
    pub(super) id: String,
    pub(super) kind: String,
    pub(super) status: String,
    pub(super) jurisdiction: String,
    pub(super) due: String,
    pub(super) days_left: String,
    pub(super) overdue: bool,
}

#[derive(Template)]
#[template(path = "console/home.html")]
pub(super) struct Home {
    pub(super) frame: Frame,
    pub(super) queue: Vec<QueueRow>,
    pub(super) overdue: usize,
    pub(super) acknowledgements_overdue: usize,
    pub(super) opt_outs_open: usize,
    pub(super) chart: Option<String>,
    pub(super) chart_table: Vec<(String, u32, u32, u32)>,
    pub(super) chart_refused: Option<String>,
}

/// One step of a request's history.
pub(super) struct StepRow {
    pub(super) at: String,
    pub(super) by: String,
    pub(super) what: String,
}

#[derive(Template)]
#[template(path = "console/request.html")]
pub(super) struct RequestPage {
    pub(super) frame: Frame,
    pub(super) id: String,
    pub(super) kind: String,
    pub(super) status: String,
    pub(super) subject: String,
    pub(super) jurisdiction: String,
    pub(super) received: String,
    pub(super) due: String,
    pub(super) days_left: String,
    pub(super) overdue: bool,
    pub(super) reasons: Vec<(String, String)>,
    pub(super) history: Vec<StepRow>,
    pub(super) actions: Vec<(String, String, bool)>,
    pub(super) done: Option<String>,
}

/// One audit entry as the trail shows it.
pub(super) struct EntryRow {
    pub(super) index: u64,
    pub(super) time: String,
    pub(super) actor: String,
    pub(super) action: String,
    pub(super) outcome: String,
    pub(super) subject: String,
    pub(super) purpose: String,
    pub(super) detail: String,
}

#[derive(Template)]
#[template(path = "console/audit.html")]
pub(super) struct AuditPage {
    pub(super) frame: Frame,
    pub(super) subject: String,
    pub(super) actor: String,
    pub(super) purpose: String,
    pub(super) action: String,
    pub(super) from: String,
    pub(super) to: String,
    pub(super) entries: Vec<EntryRow>,
    pub(super) next: Option<String>,
    pub(super) size: u64,
    pub(super) head_root: String,
    pub(super) head_time: String,
    pub(super) verified: Option<(bool, String)>,
    pub(super) error: Option<String>,
}

/// One collection's retention.
pub(super) struct RetentionRow {
    pub(super) collection: String,
    pub(super) rule: String,
    pub(super) records: u64,
    pub(super) overdue: u64,
    pub(super) due_soon: u64,
    pub(super) held: usize,
}

/// One legal hold.
pub(super) struct HoldRow {
    pub(super) record: String,
    pub(super) collection: String,
    pub(super) reason: String,
    pub(super) placed_by: String,
    pub(super) placed_at: String,
    pub(super) due: String,
}

#[derive(Template)]
#[template(path = "console/retention.html")]
pub(super) struct RetentionPage {
    pub(super) frame: Frame,
    pub(super) at: String,
    pub(super) rows: Vec<RetentionRow>,
    pub(super) holds: Vec<HoldRow>,
}

/// One purpose's consent count.
pub(super) struct ConsentRow {
    pub(super) purpose: String,
    pub(super) basis: String,
    pub(super) what: String,
    pub(super) count: String,
}

#[derive(Template)]
#[template(path = "console/consent.html")]
pub(super) struct ConsentPage {
    pub(super) frame: Frame,
    pub(super) subjects: u64,
    pub(super) rows: Vec<ConsentRow>,
    pub(super) chart: String,
    pub(super) weeks: Vec<(String, u32)>,
    pub(super) gpc_withdrawals: u64,
    pub(super) gpc_subjects: u64,
}
