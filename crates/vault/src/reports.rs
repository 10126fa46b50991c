//! Records a regulator asks for, generated from the inventory and the configuration: the
//! record of processing activities (`core::ropa`).

use custos_core::principal::Act;
use custos_core::ropa::{self, Measures, Ropa};

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
}
