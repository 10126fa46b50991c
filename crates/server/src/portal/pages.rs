//! The portal's pages as askama templates (`templates/portal/`): each struct is what one page
//! shows, in plain strings, so the templates hold no logic beyond loops and conditions.
//! askama escapes every value it writes into HTML.

use askama::Template;

/// What every page's frame shows: the business's name and contact from the inventory, the
/// CSRF token of the page's forms (of the session, or of the sign-in under way), and whether
/// the visitor is signed in (then the navigation and the sign-out form show).
pub(super) struct Frame {
    pub(super) org: String,
    pub(super) contact: String,
    pub(super) csrf: String,
    pub(super) signed_in: bool,
}

#[derive(Template)]
#[template(path = "portal/message.html")]
pub(super) struct Message {
    pub(super) title: String,
    pub(super) text: String,
}

#[derive(Template)]
#[template(path = "portal/signin.html")]
pub(super) struct SigninPage {
    pub(super) frame: Frame,
    pub(super) error: Option<String>,
}

#[derive(Template)]
#[template(path = "portal/code.html")]
pub(super) struct CodePage {
    pub(super) frame: Frame,
    pub(super) minutes: i64,
    pub(super) error: Option<String>,
}

pub(super) struct PurposeLine {
    pub(super) description: String,
    pub(super) basis: String,
}

pub(super) struct FieldView {
    pub(super) label: String,
    pub(super) value: String,
    pub(super) category: String,
    pub(super) purposes: Vec<PurposeLine>,
    pub(super) retention: String,
    pub(super) recipients: Vec<String>,
    pub(super) correct_url: Option<String>,
}

pub(super) struct RecordView {
    pub(super) created: String,
    pub(super) updated: String,
    pub(super) held: bool,
    pub(super) fields: Vec<FieldView>,
}

pub(super) struct CollectionView {
    pub(super) title: String,
    pub(super) records: Vec<RecordView>,
}

pub(super) struct ReadView {
    pub(super) at: String,
    pub(super) by: String,
    pub(super) purpose: String,
    pub(super) fields: String,
}

#[derive(Template)]
#[template(path = "portal/home.html")]
pub(super) struct Home {
    pub(super) frame: Frame,
    pub(super) done: Option<String>,
    pub(super) collections: Vec<CollectionView>,
    pub(super) reads: Vec<ReadView>,
}

#[derive(Template)]
#[template(path = "portal/correct.html")]
pub(super) struct CorrectPage {
    pub(super) frame: Frame,
    pub(super) collection: String,
    pub(super) record: String,
    pub(super) field: String,
    pub(super) label: String,
    pub(super) value: String,
    pub(super) input_type: &'static str,
    pub(super) error: Option<String>,
}

pub(super) struct ConsentLine {
    pub(super) id: String,
    pub(super) description: String,
    pub(super) status: String,
    pub(super) given: bool,
}

pub(super) struct ObjectionLine {
    pub(super) id: String,
    pub(super) description: String,
    pub(super) objected: bool,
}

pub(super) struct EventLine {
    pub(super) at: String,
    pub(super) what: String,
    pub(super) receipt_url: String,
}

#[derive(Template)]
#[template(path = "portal/choices.html")]
pub(super) struct ChoicesPage {
    pub(super) frame: Frame,
    pub(super) done: Option<String>,
    pub(super) restricted: bool,
    pub(super) consents: Vec<ConsentLine>,
    pub(super) objections: Vec<ObjectionLine>,
    pub(super) sale_or_sharing: bool,
    pub(super) history: Vec<EventLine>,
}

#[derive(Template)]
#[template(path = "portal/erasure.html")]
pub(super) struct ErasurePage {
    pub(super) frame: Frame,
    pub(super) error: Option<String>,
}

pub(super) struct RequestLine {
    pub(super) kind: String,
    pub(super) status: String,
    pub(super) received: String,
    pub(super) due: String,
    pub(super) certificate: bool,
}

#[derive(Template)]
#[template(path = "portal/requests.html")]
pub(super) struct RequestsPage {
    pub(super) frame: Frame,
    pub(super) done: Option<String>,
    pub(super) requests: Vec<RequestLine>,
}
