//! The request machine, cell by cell, and the dates and rules around it.

use chrono::DateTime;

use super::*;

const HOUR: i64 = 3_600_000;

fn ms(rfc3339: &str) -> i64 {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .timestamp_millis()
}

fn reason(s: &str) -> Reason {
    Reason::parse(s).unwrap()
}

fn transition(name: &str) -> Transition {
    match name {
        "acknowledge" => Transition::Acknowledge,
        "verify" => Transition::Verify,
        "approve" => Transition::Approve,
        "extend" => Transition::Extend(reason("the request covers ten years of orders")),
        "reject" => Transition::Reject(reason("we could not verify your identity")),
        "complete" => Transition::Complete,
        _ => panic!("no transition {name}"),
    }
}

fn new(profile: ProfileId, kind: RequestKind, at: i64) -> Result<Request, NewRequestError> {
    Request::new(
        RequestId::untimed(),
        SubjectId::untimed(),
        kind,
        Channel::Email,
        profile,
        at,
        &Calendar::default(),
    )
}

/// A request brought to `status` by the shortest path from receipt on 1 June 2027, an hour a
/// step.
fn in_status(profile: ProfileId, kind: RequestKind, status: RequestStatus) -> Request {
    let path: &[&str] = match status {
        RequestStatus::Received => &[],
        RequestStatus::Verifying => &["verify"],
        RequestStatus::InProgress => &["verify", "approve"],
        RequestStatus::Extended => &["verify", "approve", "extend"],
        RequestStatus::Completed => &["verify", "approve", "complete"],
        RequestStatus::Rejected => &["reject"],
    };
    let mut r = new(profile, kind, ms("2027-06-01T09:00:00Z")).unwrap();
    for (i, step) in path.iter().enumerate() {
        let at = r.received_at + (i as i64 + 1) * HOUR;
        r = r.apply(transition(step), at, &Calendar::default()).unwrap();
    }
    assert_eq!(r.status, status);
    r
}

/// The machine, as the module documentation draws it: a status is where a transition leads,
/// anything else the rule that refuses it.
const MACHINE: &str = "
    status       acknowledge     verify             approve           extend            reject          complete
    received     received        verifying          not_verified      not_approved      rejected        not_approved
    verifying    verifying       already_verifying  in_progress       not_approved      rejected        not_approved
    in_progress  in_progress     already_approved   already_approved  extended          rejected        completed
    extended     extended        already_approved   already_approved  already_extended  rejected        completed
    completed    request_closed  request_closed     request_closed    request_closed    request_closed  request_closed
    rejected     request_closed  request_closed     request_closed    request_closed    request_closed  request_closed
";

/// An opt-out of sale or sharing under CCPA: approved without verification, never extended.
const OPT_OUT: &str = "
    status       acknowledge     verify             approve           extend                 reject          complete
    received     received        verifying          in_progress       not_approved           rejected        not_approved
    verifying    verifying       already_verifying  in_progress       not_approved           rejected        not_approved
    in_progress  in_progress     already_approved   already_approved  extension_not_allowed  rejected        completed
    completed    request_closed  request_closed     request_closed    request_closed         request_closed  request_closed
    rejected     request_closed  request_closed     request_closed    request_closed         request_closed  request_closed
";

/// `name` on a `kind` request under `profile` in `status`, an hour after its last change,
/// leads to `expect`: a status, or the rule that refuses it.
fn check(profile: ProfileId, kind: RequestKind, status: RequestStatus, name: &str, expect: &str) {
    let r = in_status(profile, kind, status);
    let at = r.last_change() + HOUR;
    let got = match r.apply(transition(name), at, &Calendar::default()) {
        Ok(next) => next.status.as_str(),
        Err(e) => e.rule(),
    };
    assert_eq!(got, expect, "{profile} {kind}: {status} --{name}-->");
}

/// Every cell of `table` for a `kind` request under `profile`; the number of cells.
fn run(table: &str, profile: ProfileId, kind: RequestKind) -> usize {
    let mut lines = table
        .lines()
        .map(str::split_whitespace)
        .filter_map(|mut w| {
            let first = w.next()?;
            Some((first, w.collect::<Vec<_>>()))
        });
    let (_, transitions) = lines.next().unwrap();
    let mut cells = 0;
    for (status, expected) in lines {
        assert_eq!(expected.len(), transitions.len(), "{status}");
        for (name, expect) in transitions.iter().zip(expected) {
            check(profile, kind, status.parse().unwrap(), name, expect);
            cells += 1;
        }
    }
    cells
}

#[test]
fn every_transition_from_every_status() {
    use ProfileId::{Ccpa, Gdpr, UkGdpr};
    use RequestKind::{Access, Erasure, Objection, OptOutSaleSharing, Rectification};
    for (profile, kind) in [
        (Gdpr, Access),
        (Gdpr, Objection),
        (UkGdpr, Erasure),
        (Ccpa, Access),
        (Ccpa, Rectification),
    ] {
        assert_eq!(run(MACHINE, profile, kind), 36);
    }
    assert_eq!(run(OPT_OUT, Ccpa, OptOutSaleSharing), 30);
}

#[test]
fn a_profile_refuses_kinds_it_does_not_know() {
    use ProfileId::{Ccpa, Gdpr, UkGdpr};
    use RequestKind::{Objection, OptOutSaleSharing, Portability, Restriction};
    let at = ms("2027-06-01T09:00:00Z");
    for (profile, kind) in [
        (Gdpr, OptOutSaleSharing),
        (UkGdpr, OptOutSaleSharing),
        (Ccpa, Restriction),
        (Ccpa, Objection),
        (Ccpa, Portability),
    ] {
        let e = new(profile, kind, at).unwrap_err();
        assert_eq!(e.rule(), "kind_not_offered", "{profile} {kind}");
        assert_eq!(
            e.to_string(),
            format!("the {profile} profile has no {kind} requests")
        );
    }
    for profile in [Gdpr, UkGdpr, Ccpa] {
        for kind in profile.profile().kinds {
            assert!(new(profile, *kind, at).is_ok(), "{profile} {kind}");
        }
    }
    let e = new(Gdpr, RequestKind::Access, i64::MAX).unwrap_err();
    assert_eq!(e.rule(), "date_out_of_range");
}

#[test]
fn transitions_record_their_dates_deadlines_and_reasons() {
    let utc = Calendar::default();
    let received = ms("2027-01-31T10:00:00Z");
    let r = new(ProfileId::Gdpr, RequestKind::Access, received).unwrap();
    assert_eq!(r.due_at, ms("2027-02-28T23:59:59.999Z"));
    assert_eq!(r.acknowledge_by, None);
    let r = r.apply(Transition::Verify, received + HOUR, &utc).unwrap();
    assert_eq!(r.verified_at, None);
    let r = r
        .apply(Transition::Approve, received + 2 * HOUR, &utc)
        .unwrap();
    assert_eq!(r.verified_at, Some(received + 2 * HOUR));
    let r = r.apply(transition("extend"), r.due_at, &utc).unwrap();
    assert_eq!(r.extended_to, Some(ms("2027-04-28T23:59:59.999Z")));
    assert_eq!(r.deadline(), ms("2027-04-28T23:59:59.999Z"));
    assert_eq!(
        r.extension_reason.as_ref().unwrap().as_str(),
        "the request covers ten years of orders"
    );
    let done = r
        .apply(Transition::Complete, ms("2027-04-01T12:00:00Z"), &utc)
        .unwrap();
    assert_eq!(done.closed_at, Some(ms("2027-04-01T12:00:00Z")));

    // CCPA: confirmed within 10 business days, 45 days and 45 more.
    let received = ms("2027-06-04T22:45:00Z");
    let r = new(ProfileId::Ccpa, RequestKind::Erasure, received).unwrap();
    assert_eq!(r.acknowledge_by, Some(ms("2027-06-18T23:59:59.999Z")));
    assert_eq!(r.due_at, ms("2027-07-19T23:59:59.999Z"));
    let r = r
        .apply(Transition::Acknowledge, received + HOUR, &utc)
        .unwrap();
    assert_eq!(
        (r.status, r.acknowledged_at),
        (RequestStatus::Received, Some(received + HOUR))
    );
    let e = r
        .apply(Transition::Acknowledge, received + 2 * HOUR, &utc)
        .unwrap_err();
    assert_eq!(e.rule(), "already_acknowledged");
    let r = r
        .apply(transition("reject"), received + 2 * HOUR, &utc)
        .unwrap();
    assert_eq!(
        r.rejection_reason.as_ref().unwrap().as_str(),
        "we could not verify your identity"
    );
    assert_eq!(r.closed_at, Some(received + 2 * HOUR));
}

#[test]
fn an_extension_is_decided_by_the_original_due_date() {
    let utc = Calendar::default();
    let r = in_status(
        ProfileId::Ccpa,
        RequestKind::Access,
        RequestStatus::InProgress,
    );
    assert!(r.apply(transition("extend"), r.due_at, &utc).is_ok());
    let e = r
        .apply(transition("extend"), r.due_at + 1, &utc)
        .unwrap_err();
    assert_eq!(e.rule(), "extension_too_late");
    assert_eq!(
        e.to_string(),
        "the request was due on 2027-07-16: an extension must be noticed to the subject by then"
    );
    let twice = in_status(
        ProfileId::Ccpa,
        RequestKind::Access,
        RequestStatus::Extended,
    );
    let e = twice
        .apply(transition("extend"), twice.received_at + 9 * HOUR, &utc)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "the request was extended already: the ccpa profile allows one extension"
    );
    let opt_out = in_status(
        ProfileId::Ccpa,
        RequestKind::OptOutSaleSharing,
        RequestStatus::InProgress,
    );
    let e = opt_out
        .apply(transition("extend"), opt_out.received_at + 9 * HOUR, &utc)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "the ccpa profile allows no extension of opt_out_sale_sharing requests"
    );
}

#[test]
fn a_transition_is_dated_after_the_last_change() {
    let utc = Calendar::default();
    let r = in_status(
        ProfileId::Gdpr,
        RequestKind::Access,
        RequestStatus::InProgress,
    );
    let last = r.verified_at.unwrap();
    assert_eq!(
        r.apply(Transition::Complete, last - 1, &utc)
            .unwrap_err()
            .rule(),
        "out_of_order"
    );
    assert!(r.apply(Transition::Complete, last, &utc).is_ok());
    let r = new(ProfileId::Gdpr, RequestKind::Access, 1_000).unwrap();
    assert_eq!(
        r.apply(Transition::Verify, 999, &utc).unwrap_err().rule(),
        "out_of_order"
    );
}

#[test]
fn overdue_and_days_left() {
    let utc = Calendar::default();
    // Received Monday 1 March 2027 under CCPA: due 15 April, confirm by 15 March.
    let r = new(
        ProfileId::Ccpa,
        RequestKind::Access,
        ms("2027-03-01T10:00:00Z"),
    )
    .unwrap();
    let rows = [
        ("2027-03-01T10:00:00Z", false, Some(45), false),
        ("2027-03-15T23:59:59.999Z", false, Some(31), false),
        ("2027-03-16T00:00:00Z", false, Some(30), true),
        ("2027-04-15T23:59:59.999Z", false, Some(0), true),
        ("2027-04-16T00:00:00Z", true, Some(-1), true),
    ];
    for (at, overdue, days_left, ack_overdue) in rows {
        let at = ms(at);
        assert_eq!(r.is_overdue(at), overdue, "{at}");
        assert_eq!(r.days_left(at, &utc), days_left, "{at}");
        assert_eq!(r.is_acknowledgement_overdue(at), ack_overdue, "{at}");
    }
    let done = in_status(
        ProfileId::Ccpa,
        RequestKind::Access,
        RequestStatus::Completed,
    );
    assert!(!done.is_overdue(i64::MAX) && !done.is_acknowledgement_overdue(i64::MAX));
    assert_eq!(done.days_left(done.received_at, &utc), None);
    assert_eq!(r.days_left(i64::MAX, &utc), None);
}

#[test]
fn a_closed_request_is_kept_24_months_after_it_closed() {
    let open = in_status(
        ProfileId::Gdpr,
        RequestKind::Access,
        RequestStatus::InProgress,
    );
    assert_eq!(open.kept_until(), None, "an open request is kept");
    for status in [RequestStatus::Completed, RequestStatus::Rejected] {
        let mut r = in_status(ProfileId::Ccpa, RequestKind::Erasure, status);
        r.closed_at = Some(ms("2027-06-01T12:00:00Z"));
        assert_eq!(r.kept_until(), Some(ms("2029-06-01T12:00:00Z")), "{status}");
        // The end of February, a leap year before: 24 calendar months, never fewer.
        r.closed_at = Some(ms("2028-02-29T08:00:00Z"));
        assert_eq!(r.kept_until(), Some(ms("2030-02-28T08:00:00Z")), "{status}");
    }
}

#[test]
fn reasons_are_said_and_not_shown_in_debug() {
    assert_eq!(Reason::parse("  "), Err(ParseReasonError::Empty));
    assert_eq!(Reason::parse(""), Err(ParseReasonError::Empty));
    let long = "x".repeat(MAX_REASON_LENGTH + 1);
    assert_eq!(Reason::parse(&long), Err(ParseReasonError::TooLong));
    assert!(Reason::parse(&long[1..]).is_ok());
    let r = reason("  Jane Doe's ID does not match  ");
    assert_eq!(r.as_str(), "Jane Doe's ID does not match");
    assert_eq!(format!("{r:?}"), "Reason([28 characters])");
    let t = Transition::Reject(r);
    assert!(!format!("{t:?}").contains("Jane"));
}

#[test]
fn requests_and_transitions_in_json() {
    let t: Transition = serde_json::from_str(r#"{"transition": "verify"}"#).unwrap();
    assert_eq!(t, Transition::Verify);
    let t: Transition =
        serde_json::from_str(r#"{"transition": "extend", "reason": "many requests"}"#).unwrap();
    assert_eq!(t, Transition::Extend(reason("many requests")));
    for bad in [
        r#"{"transition": "extend", "reason": " "}"#,
        r#"{"transition": "reject"}"#,
        r#"{"transition": "close"}"#,
    ] {
        assert!(serde_json::from_str::<Transition>(bad).is_err(), "{bad}");
    }
    let r = in_status(
        ProfileId::Ccpa,
        RequestKind::OptOutSaleSharing,
        RequestStatus::Rejected,
    );
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["kind"], "opt_out_sale_sharing");
    assert_eq!(json["status"], "rejected");
    assert_eq!(json["channel"], "email");
    assert_eq!(json["profile"], "ccpa");
    assert_eq!(serde_json::from_value::<Request>(json).unwrap(), r);
    let e = "fax".parse::<Channel>().unwrap_err().to_string();
    assert_eq!(
        e,
        "unknown channel: choose portal, email, phone, letter or api"
    );
    let e = Request::new(
        RequestId::untimed(),
        SubjectId::untimed(),
        RequestKind::Access,
        Channel::Portal,
        ProfileId::Gdpr,
        0,
        &Calendar::default(),
    )
    .unwrap()
    .apply(Transition::Approve, 1, &Calendar::default())
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "access requests are approved only once their subject is verified: verify first"
    );
    let e = "done".parse::<RequestStatus>().unwrap_err().to_string();
    assert_eq!(
        e,
        "unknown request status: choose received, verifying, in_progress, extended, completed or rejected"
    );
}
