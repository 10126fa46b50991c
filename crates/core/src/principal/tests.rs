//! What each caller may do, under the example inventory and edits of it.

use super::*;
use crate::inventory::EXAMPLE;

fn inv() -> Inventory {
    Inventory::from_toml(EXAMPLE).unwrap()
}

/// Every act, with a fixed subject where the act names one.
fn acts<'a>(inv: &'a Inventory, subject: SubjectId) -> Vec<(&'static str, Act<'a>)> {
    let mut acts = vec![
        ("write", Act::WriteRecords),
        ("rectify", Act::Rectify { subject }),
        ("choice", Act::RecordChoice { subject }),
        (
            "ledger",
            Act::ReadLedger {
                subject: Some(subject),
            },
        ),
        ("site_token", Act::MintSiteToken),
        ("audit", Act::ReadAudit),
        ("retention", Act::RunRetention),
        ("holds", Act::ManageHolds),
        ("apikeys", Act::ManageApiKeys),
        ("operators", Act::ManageOperators),
        ("reports", Act::ReadReports),
        ("erase", Act::EraseSubject { subject }),
        (
            "certificate",
            Act::ReadErasures {
                subject: Some(subject),
            },
        ),
        ("erasures", Act::ReadErasures { subject: None }),
        ("file_request", Act::FileRequest { subject }),
        (
            "read_requests",
            Act::ReadRequests {
                subject: Some(subject),
            },
        ),
        ("all_requests", Act::ReadRequests { subject: None }),
        ("handle_requests", Act::HandleRequests),
        ("export", Act::ExportSubject { subject }),
    ];
    for p in &inv.purposes {
        let name: &'static str = Box::leak(format!("read:{}", p.id).into_boxed_str());
        acts.push((
            name,
            Act::Read {
                purpose: p,
                subject: Some(subject),
            },
        ));
    }
    acts
}

fn allowed(p: &Principal, inv: &Inventory, subject: SubjectId) -> Vec<&'static str> {
    acts(inv, subject)
        .into_iter()
        .filter(|(_, a)| authorize(p, a, inv).is_ok())
        .map(|(n, _)| n)
        .collect()
}

fn check(p: Principal, expect: &[&str]) {
    let inv = inv();
    let s = SubjectId::random();
    assert_eq!(allowed(&p, &inv, s), expect, "{p}");
}

#[test]
fn what_each_caller_may_do_in_the_example() {
    let everything = [
        "write",
        "rectify",
        "choice",
        "ledger",
        "site_token",
        "audit",
        "retention",
        "holds",
        "apikeys",
        "operators",
        "reports",
        "erase",
        "certificate",
        "erasures",
        "file_request",
        "read_requests",
        "all_requests",
        "handle_requests",
        "export",
        "read:billing",
        "read:support",
        "read:marketing",
        "read:analytics",
        "read:advertising",
    ];
    check(Principal::Cli, &everything);
    check(Principal::api_key("root", "admin"), &everything);
    check(
        Principal::api_key("helpdesk", "support_agent"),
        &["read:support"],
    );
    check(
        Principal::api_key("billing", "billing_service"),
        &["read:billing"],
    );
    check(Principal::api_key("m", "marketer"), &["read:marketing"]);
    check(
        Principal::Operator {
            id: "op".into(),
            role: "support_agent".into(),
        },
        &["read:support"],
    );
    check(Principal::System(Job::Retention), &["retention"]);
}

#[test]
fn operator_roles_do_the_duties_they_are_given() {
    let op = |role: &str| Principal::Operator {
        id: "op".into(),
        role: role.into(),
    };
    check(
        op("privacy_officer"),
        &[
            "choice",
            "ledger",
            "audit",
            "retention",
            "holds",
            "operators",
            "reports",
            "erase",
            "certificate",
            "erasures",
            "read_requests",
            "all_requests",
            "handle_requests",
            "export",
        ],
    );
    check(
        op("support"),
        &[
            "certificate",
            "erasures",
            "read_requests",
            "all_requests",
            "read:support",
        ],
    );
    check(
        op("auditor"),
        &[
            "audit",
            "reports",
            "certificate",
            "erasures",
            "read_requests",
            "all_requests",
        ],
    );
    let inv = inv();
    let e = authorize(&op("support"), &Act::HandleRequests, &inv).unwrap_err();
    assert_eq!(
        e.message(),
        "role \"support\" may not handle data-subject requests: it needs handle_requests"
    );
    let e = authorize(&op("auditor"), &Act::ManageOperators, &inv).unwrap_err();
    assert_eq!(
        e.message(),
        "role \"auditor\" may not manage operators: it needs manage_operators"
    );
}

#[test]
fn managing_operators_or_keys_gives_no_more_than_one_holds() {
    let inv = inv();
    let officer = Principal::Operator {
        id: "op".into(),
        role: "privacy_officer".into(),
    };
    assert!(may_grant(&officer, "auditor", &inv).is_ok());
    assert!(may_grant(&officer, "privacy_officer", &inv).is_ok());
    assert_eq!(
        may_grant(&officer, "admin", &inv).unwrap_err().message(),
        "role \"privacy_officer\" may not give the admin role: only admin may"
    );
    assert_eq!(
        may_grant(&officer, "support", &inv).unwrap_err().message(),
        "role \"privacy_officer\" may not give role \"support\", which may do more than it: purpose support"
    );
    for p in [Principal::Cli, Principal::api_key("root", "admin")] {
        assert!(may_grant(&p, "admin", &inv).is_ok());
    }
    assert!(
        may_grant(
            &Principal::Customer {
                subject: SubjectId::random()
            },
            "auditor",
            &inv
        )
        .is_err()
    );
}

#[test]
fn an_unknown_permission_is_named_with_the_known_ones() {
    let e = Inventory::from_toml(&EXAMPLE.replacen(
        "may = [\"read_requests\"]",
        "may = [\"read_requests\", \"approve_everything\"]",
        1,
    ))
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("roles[4] (support).may: unknown permission \"approve_everything\": one of read_requests, handle_requests"),
        "{e}"
    );
}

#[test]
fn a_role_that_may_write_files_and_reads_requests_but_does_not_handle_them() {
    let inv = Inventory::from_toml(&EXAMPLE.replacen(
        "id = \"support_agent\"\npurposes = [\"support\"]",
        "id = \"support_agent\"\npurposes = [\"support\"]\nmay_write = true",
        1,
    ))
    .unwrap();
    let s = SubjectId::random();
    let agent = Principal::api_key("helpdesk", "support_agent");
    assert_eq!(
        allowed(&agent, &inv, s),
        [
            "write",
            "rectify",
            "choice",
            "ledger",
            "site_token",
            "file_request",
            "read_requests",
            "all_requests",
            "read:support"
        ]
    );
    let e = authorize(&agent, &Act::HandleRequests, &inv).unwrap_err();
    assert_eq!(
        e.message(),
        "role \"support_agent\" may not handle data-subject requests: it needs handle_requests"
    );
    let without = Principal::api_key("m", "marketer");
    let e = authorize(&without, &Act::FileRequest { subject: s }, &inv).unwrap_err();
    assert_eq!(
        e.message(),
        "role \"marketer\" may not file data-subject requests: it needs may_write"
    );
}

#[test]
fn a_customer_acts_on_their_own_subject_only() {
    let inv = inv();
    let me = SubjectId::random();
    let other = SubjectId::random();
    let p = Principal::Customer { subject: me };
    assert_eq!(
        allowed(&p, &inv, me),
        [
            "rectify",
            "choice",
            "ledger",
            "certificate",
            "file_request",
            "read_requests",
            "export"
        ]
    );
    assert!(allowed(&p, &inv, other).is_empty());
    for act in [
        Act::RecordChoice { subject: other },
        Act::ExportSubject { subject: other },
    ] {
        let e = authorize(&p, &act, &inv).unwrap_err();
        assert_eq!(e.message(), "a customer may act on their own data only");
    }
    // Without a subject named up front, a customer is refused: nothing can be checked.
    assert!(authorize(&p, &Act::ReadLedger { subject: None }, &inv).is_err());
    assert!(authorize(&p, &Act::ReadRequests { subject: None }, &inv).is_err());
    let e = authorize(&p, &Act::FileRequest { subject: other }, &inv).unwrap_err();
    assert_eq!(e.message(), "a customer may act on their own data only");
    let e = authorize(&p, &Act::HandleRequests, &inv).unwrap_err();
    assert_eq!(
        e.message(),
        "a customer may not handle data-subject requests here"
    );
}

#[test]
fn only_admin_the_cli_and_the_subject_export_a_subject() {
    let inv = Inventory::from_toml(&EXAMPLE.replacen(
        "id = \"support_agent\"\npurposes = [\"support\"]",
        "id = \"support_agent\"\npurposes = [\"support\"]\nmay_write = true",
        1,
    ))
    .unwrap();
    let s = SubjectId::random();
    let export = Act::ExportSubject { subject: s };
    // A role that writes records still may not hand a customer's whole file out.
    let writer = Principal::api_key("helpdesk", "support_agent");
    assert_eq!(
        authorize(&writer, &export, &inv).unwrap_err().message(),
        "role \"support_agent\" may not export a subject's data: it needs handle_requests"
    );
    assert!(authorize(&Principal::api_key("root", "admin"), &export, &inv).is_ok());
    assert!(authorize(&Principal::Cli, &export, &inv).is_ok());
    assert!(authorize(&Principal::Customer { subject: s }, &export, &inv).is_ok());
    assert!(authorize(&Principal::System(Job::Retention), &export, &inv).is_err());
}

#[test]
fn refusals_name_the_role_and_the_act() {
    let inv = inv();
    let billing = inv.purpose("billing").unwrap();
    let agent = Principal::api_key("helpdesk", "support_agent");
    for (act, says) in [
        (
            Act::Read {
                purpose: billing,
                subject: None,
            },
            "role \"support_agent\" may not use purpose \"billing\"",
        ),
        (
            Act::WriteRecords,
            "role \"support_agent\" may not write records",
        ),
        (
            Act::ReadAudit,
            "role \"support_agent\" may not read audit entries: it needs read_audit",
        ),
        (
            Act::RunRetention,
            "role \"support_agent\" may not run retention: it needs run_retention",
        ),
        (
            Act::ExportSubject {
                subject: SubjectId::random(),
            },
            "role \"support_agent\" may not export a subject's data: it needs handle_requests",
        ),
    ] {
        assert_eq!(authorize(&agent, &act, &inv).unwrap_err().message(), says);
    }
    let gone = Principal::api_key("old", "intern");
    assert_eq!(
        authorize(&gone, &Act::WriteRecords, &inv)
            .unwrap_err()
            .message(),
        "role \"intern\" is no longer declared in the inventory"
    );
}

#[test]
fn actors_as_audit_entries_write_them() {
    let s = SubjectId::random();
    assert_eq!(Principal::api_key("app", "admin").actor(), "apikey:app");
    assert_eq!(Principal::Cli.actor(), "cli");
    assert_eq!(Principal::System(Job::Retention).actor(), "retention");
    assert_eq!(
        Principal::Customer { subject: s }.actor(),
        format!("customer:{s}")
    );
}
