//! Records a regulator asks for, generated from the inventory and the configuration: the
//! record of processing activities (`core::ropa`), a DPIA worksheet (`core::dpia`) and the
//! access and accountability report for a period (`core::accountability`).

use std::collections::HashMap;

use custos_core::accountability::{AccountabilityReport, RequestFacts, Tally};
use custos_core::audit::{Action, AuditEntry, Outcome};
use custos_core::dpia::{self, Dpia};
use custos_core::principal::Act;
use custos_core::ropa::{self, Measures, Ropa};
use custos_core::time::format_time_ms;
use custos_store::{QueuedAudit, RequestQuery};

use crate::{Principal, Vault, VaultError};

impl Vault {
    /// The record of processing activities (GDPR Art. 30(1)). `tls` is the oldest TLS
    /// version Custos serves with, when it serves TLS itself.
    ///
    /// # Errors
    /// `Forbidden` without `read_reports`.
    pub fn ropa(&self, p: &Principal, tls: Option<&str>) -> Result<Ropa, VaultError> {
        self.authorize(p, &Act::ReadReports)?;
        let measures = Measures {
            tls: tls.map(str::to_owned),
            database: self.store.kind().to_owned(),
        };
        Ok(ropa::build(&self.inventory, &measures))
    }

    /// A DPIA worksheet (GDPR Art. 35) for `purpose`, prefilled from the inventory and the
    /// record of processing activities.
    ///
    /// # Errors
    /// `Forbidden` without `read_reports`; `Invalid` for a purpose the inventory does not
    /// declare.
    pub fn dpia(
        &self,
        p: &Principal,
        purpose: &str,
        tls: Option<&str>,
    ) -> Result<Dpia, VaultError> {
        let r = self.ropa(p, tls)?;
        dpia::worksheet(&self.inventory, &r, purpose).ok_or_else(|| {
            VaultError::invalid(
                "purpose",
                "unknown_purpose",
                "is not a purpose the inventory declares",
            )
        })
    }
}

impl Vault {
    /// The access and accountability report for `from_ms..to_ms`: the period's audit
    /// entries (through the log's time index), the requests received in it, and the roles
    /// of the keys and operators that read. Counts only. Audited as an `audit.read`.
    ///
    /// # Errors
    /// `Forbidden` without `read_reports`; `Invalid` for an empty period.
    pub async fn accountability(
        &self,
        p: &Principal,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<AccountabilityReport, VaultError> {
        self.authorize(p, &Act::ReadReports)?;
        if to_ms <= from_ms {
            return Err(VaultError::invalid(
                "to",
                "period",
                "the period ends before it begins",
            ));
        }
        while self.sequence_audit().await? > 0 {}
        let (from, to) = (format_time_ms(from_ms), format_time_ms(to_ms));
        let keys: HashMap<String, String> = self
            .store
            .api_keys()
            .await?
            .into_iter()
            .map(|k| (format!("apikey:{}", k.name), k.role))
            .collect();
        let operators: HashMap<String, String> = self
            .store
            .operators()
            .await?
            .into_iter()
            .map(|o| (format!("operator:{}", o.id), o.role))
            .collect();
        let role_of = |actor: &str| -> String {
            keys.get(actor)
                .or_else(|| operators.get(actor))
                .cloned()
                .unwrap_or_else(|| actor.split(':').next().unwrap_or(actor).to_owned())
        };
        // Canaries are no one's data: reads of them are alerts, not processing.
        let canaries: std::collections::HashSet<_> = self
            .store
            .canaries()
            .await?
            .into_iter()
            .map(|c| c.subject_id)
            .collect();
        let mut tally = Tally::new(from.clone(), to.clone(), &role_of);
        for l in self.store.leaves_by(None, Some(&from), Some(&to)).await? {
            if let Ok(e) = AuditEntry::from_bytes(&l.entry)
                && !(custos_core::breach::blast::is_read(&e)
                    && e.subject_id.is_some_and(|s| canaries.contains(&s)))
            {
                tally.entry(&e);
            }
        }
        let mut facts = Vec::new();
        for row in self
            .store
            .requests(&RequestQuery {
                limit: 1_000_000,
                ..RequestQuery::default()
            })
            .await?
        {
            if row.received_ms < from_ms || row.received_ms >= to_ms {
                continue;
            }
            let body = crate::requests::stored::decode(&row)?;
            facts.push(RequestFacts {
                kind: row.kind,
                profile: body.request.profile,
                status: row.status,
                received_ms: row.received_ms,
                due_ms: row.due_ms,
                closed_ms: row.closed_ms,
            });
        }
        let mut e = AuditEntry::new(p.actor(), Action::AuditRead, Outcome::Ok);
        e.detail = Some(format!("accountability report {from} to {to}"));
        self.store
            .append_audit(vec![QueuedAudit {
                subject_id: None,
                entry: e.to_bytes(),
            }])
            .await?;
        Ok(tally.finish(&facts, to_ms.min(self.now_ms())))
    }
}
