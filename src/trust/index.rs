//! The trust store's keys and the three ways a verify finds them (by public key, by signer
//! serial, by region), changed only through [`KeyIndex::insert`] so that they cannot disagree.

use std::collections::HashMap;
use std::sync::OnceLock;

use super::key::{TrustedCertificate, TrustedKey};
use crate::error::ConfigError;
use crate::ids::{Region, SerialNumber, significant_bytes};
use crate::input::Format;

/// Where a certificate is: its key's position and its own within the key.
#[derive(Clone, Copy, Debug)]
struct CertificateAt {
    format: Format,
    key: usize,
    certificate: usize,
}

#[derive(Clone, Debug, Default)]
pub(super) struct KeyIndex {
    keys: Vec<TrustedKey>,
    by_spki: HashMap<(Format, Vec<u8>), usize>,
    /// Keyed by serial alone (formats share serials rarely) so that a look-up borrows the
    /// blob's bytes instead of building a key.
    by_signer: HashMap<SerialNumber, Vec<CertificateAt>>,
    /// Key positions, in the order they were trusted for the region.
    by_region: HashMap<(Format, Region), Vec<usize>>,
}

/// A key to trust unless the index has it already.
pub(super) struct NewKey {
    pub(super) format: Format,
    pub(super) spki: Vec<u8>,
    /// Whether to parse it before trusting it (else on first use).
    pub(super) parse_now: bool,
}

impl KeyIndex {
    pub(super) fn keys(&self) -> &[TrustedKey] {
        &self.keys
    }

    /// The keys, to replace their parsed material (nothing an index is built from).
    pub(super) fn keys_mut(&mut self) -> impl Iterator<Item = &mut TrustedKey> {
        self.keys.iter_mut()
    }

    /// The key and certificate for `format` whose serial (leading zeros ignored) is this.
    pub(super) fn signer(
        &self,
        format: Format,
        serial: &[u8],
    ) -> Option<(&TrustedKey, &TrustedCertificate)> {
        let at = self.signer_at(format, serial)?;
        let key = self.keys.get(at.key)?;
        Some((key, key.certificates.get(at.certificate)?))
    }

    pub(super) fn for_region<'a>(
        &'a self,
        format: Format,
        region: &Region,
    ) -> impl Iterator<Item = &'a TrustedKey> + use<'a> {
        self.by_region
            .get(&(format, region.clone()))
            .into_iter()
            .flatten()
            .filter_map(|&index| self.keys.get(index))
    }

    fn signer_at(&self, format: Format, serial: &[u8]) -> Option<CertificateAt> {
        self.by_signer
            .get(significant_bytes(serial))?
            .iter()
            .find(|at| at.format == format)
            .copied()
    }

    /// Trusts `certificate`, which publishes `key`: a certificate already trusted (same
    /// format, serial, issuer and key) gains the regions; a new one joins its key, which is
    /// added (and parsed, if asked) when the index does not have it yet. Nothing changes when
    /// it fails.
    ///
    /// # Errors
    /// [`ConfigError::ConflictingCertificate`] for another certificate with the certificate's
    /// format and serial; [`ConfigError::BadCertificate`] when the new key does not parse.
    pub(super) fn insert(
        &mut self,
        key: NewKey,
        certificate: TrustedCertificate,
    ) -> Result<(), ConfigError> {
        let format = key.format;
        if let Some(at) = self.signer_at(format, certificate.serial.as_bytes()) {
            return self.add_regions_to(at, &key.spki, certificate);
        }
        let key_index = match self.by_spki.get(&(format, key.spki.clone())) {
            Some(&index) => index,
            None => self.push_key(key)?,
        };
        let trusted = self
            .keys
            .get_mut(key_index)
            .ok_or(ConfigError::BadCertificate {
                reason: "trust store index out of date",
            })?;
        let at = CertificateAt {
            format,
            key: key_index,
            certificate: trusted.certificates.len(),
        };
        let (serial, regions) = (certificate.serial.clone(), certificate.regions.clone());
        trusted.certificates.push(certificate);
        self.by_signer.entry(serial).or_default().push(at);
        self.add_key_regions(key_index, &regions);
        Ok(())
    }

    /// The same certificate again: its regions are added; anything else with its serial is a
    /// conflict, never merged silently.
    fn add_regions_to(
        &mut self,
        at: CertificateAt,
        spki: &[u8],
        certificate: TrustedCertificate,
    ) -> Result<(), ConfigError> {
        let conflict = || ConfigError::ConflictingCertificate {
            serial: certificate.serial.clone(),
        };
        let key = self.keys.get_mut(at.key).ok_or_else(conflict)?;
        if key.spki != spki {
            return Err(conflict());
        }
        let existing = key
            .certificates
            .get_mut(at.certificate)
            .filter(|existing| existing.issuer == certificate.issuer)
            .ok_or_else(conflict)?;
        for region in &certificate.regions {
            if !existing.regions.contains(region) {
                existing.regions.push(region.clone());
            }
        }
        self.add_key_regions(at.key, &certificate.regions);
        Ok(())
    }

    fn push_key(&mut self, new: NewKey) -> Result<usize, ConfigError> {
        let key = TrustedKey {
            format: new.format,
            spki: new.spki,
            regions: Vec::new(),
            certificates: Vec::new(),
            material: OnceLock::new(),
        };
        if new.parse_now {
            key.parsed().map_err(Clone::clone)?;
        }
        let index = self.keys.len();
        self.by_spki.insert((key.format, key.spki.clone()), index);
        self.keys.push(key);
        Ok(index)
    }

    fn add_key_regions(&mut self, key_index: usize, regions: &[Region]) {
        let Some(key) = self.keys.get_mut(key_index) else {
            return;
        };
        for region in regions {
            if !key.regions.contains(region) {
                key.regions.push(region.clone());
                self.by_region
                    .entry((key.format, region.clone()))
                    .or_default()
                    .push(key_index);
            }
        }
    }

    /// Replaces the first key's public key bytes, for tests of keys that fail to parse or
    /// conflict (no public certificate has such a key).
    #[cfg(test)]
    pub(super) fn corrupt_first_spki(&mut self) {
        if let Some(key) = self.keys.first_mut() {
            key.spki = vec![0x30, 0x00];
        }
    }
}
