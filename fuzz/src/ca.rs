//! The `ca` target's properties: CSRs and certificates presented for renewal are
//! attacker-supplied DER that `ec2-iid-ca` parses before anything else is known about the
//! sender.

use std::sync::OnceLock;

use ec2_iid::ids::InstanceState;
use ec2_iid::{InstanceFacts, JoinOutcome};
use ec2_iid_ca::{Csr, Issued, Issuer, KeyPolicy, Presented, Profile};
use sha2::Digest as _;

use crate::{FIXTURE_DER, now, test_ca_verifier};

/// The P-384 intermediate of ec2-iid-ca's test fixtures (NOT a real CA).
const CA_CHAIN: &str = include_str!("../../ec2-iid-ca/tests/data/ca/intermediate-chain.pem");
const CA_KEY: &str = include_str!("../../ec2-iid-ca/tests/data/ca/intermediate.key");
/// A P-256 CSR of the fixtures.
const CSR_PEM: &str = include_str!("../../ec2-iid-ca/tests/data/p256.csr");

struct Ca {
    issuer: Issuer,
    profile: Profile,
    outcome: JoinOutcome,
    csr: Csr,
    /// A certificate issued for the fixture's instance: what mode 2 mutates.
    issued: Issued,
}

fn ca() -> &'static Ca {
    static CA: OnceLock<Ca> = OnceLock::new();
    CA.get_or_init(|| {
        let issuer = Issuer::from_pem(CA_CHAIN, CA_KEY).expect("fixture CA");
        let profile = Profile::builder("example.org")
            .dns_san(true)
            .build()
            .expect("profile");
        let pending = test_ca_verifier()
            .verify(FIXTURE_DER, now())
            .expect("fixture verifies");
        let doc = pending.document();
        let mut facts = InstanceFacts::new(doc.instance_id.as_str(), InstanceState::Running);
        facts.owner_id = Some(doc.account_id.to_string());
        let outcome = pending.check_facts(Some(&facts)).expect("fixture joins");
        let csr = Csr::from_pem(CSR_PEM).expect("fixture CSR");
        let issued = issuer
            .issue(&outcome, &csr, &profile, now(), [7; 16])
            .expect("fixture certificate");
        Ca {
            issuer,
            profile,
            outcome,
            csr,
            issued,
        }
    })
}

/// A mode byte, then:
/// * 0: a CSR (DER, and PEM if the bytes are text): an accepted one's requester is the SHA-256
///   of its key, and the certificate issued for it is one this CA then accepts for renewal,
///   with the instance's identity;
/// * 1: a certificate presented for renewal (DER): an accepted one renews into a certificate
///   with the same identity;
/// * 2: `(position as two bytes, xor)` triples applied to a certificate this CA issued: whatever is accepted
///   still says exactly what the CA signed (no identity, serial or validity can be forged).
pub fn check_ca(data: &[u8]) {
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => check_csr(rest),
        1 => {
            if let Ok(presented) = ca().issuer.check_presented(rest, now()) {
                renews_to_the_same_identity(&presented);
            }
        }
        _ => check_mutated_certificate(rest),
    }
}

fn check_csr(data: &[u8]) {
    let ca = ca();
    let mut accepted = Vec::new();
    accepted.extend(Csr::from_der_with(data, KeyPolicy::AllowRsa));
    if let Ok(text) = core::str::from_utf8(data) {
        accepted.extend(Csr::from_pem_with(text, KeyPolicy::AllowRsa));
        // The default policy accepts a subset of what AllowRsa accepts.
        if let Ok(modern) = Csr::from_pem(text) {
            assert!(Csr::from_pem_with(text, KeyPolicy::AllowRsa).is_ok_and(|csr| csr == modern));
        }
    }
    for csr in accepted {
        let digest: [u8; 32] = sha2::Sha256::digest(csr.public_key_der()).into();
        assert_eq!(csr.requester(), digest);
        let issued = ca
            .issuer
            .issue(&ca.outcome, &csr, &ca.profile, now(), [9; 16])
            .expect("an accepted CSR gets a certificate");
        let presented = ca
            .issuer
            .check_presented(&issued.certificate_der, now())
            .expect("this CA's certificate is accepted for renewal");
        assert_eq!(presented.host_id(), ca.outcome.host_id());
        assert_eq!(presented.spiffe_id(), issued.spiffe_id);
        assert_eq!(presented.serial(), issued.serial);
    }
}

fn renews_to_the_same_identity(presented: &Presented) {
    let ca = ca();
    let renewed = match ca
        .issuer
        .renew(presented, &ca.csr, &ca.profile, now(), [3; 16])
    {
        Ok(renewed) => renewed,
        // A certificate of this CA from another trust domain (none is issued here).
        Err(e) => return assert_eq!(e.kind(), "cert_other_trust_domain", "{e}"),
    };
    let again = ca
        .issuer
        .check_presented(&renewed.certificate_der, now())
        .expect("a renewed certificate renews");
    assert_eq!(again.host_id(), presented.host_id());
    assert_eq!(again.spiffe_id(), presented.spiffe_id());
    assert_eq!(again.dns_name(), presented.dns_name());
}

fn check_mutated_certificate(pairs: &[u8]) {
    let ca = ca();
    let mut der = ca.issued.certificate_der.clone();
    let len = der.len();
    for triple in pairs.chunks_exact(3) {
        if let [high, low, xor] = triple
            && let Some(byte) = der.get_mut(usize::from(u16::from_be_bytes([*high, *low])) % len)
        {
            *byte ^= xor;
        }
    }
    let Ok(presented) = ca.issuer.check_presented(&der, now()) else {
        return;
    };
    let original = ca
        .issuer
        .check_presented(&ca.issued.certificate_der, now())
        .expect("the issued certificate is accepted");
    assert_eq!(
        presented, original,
        "a mutated certificate says something else"
    );
    renews_to_the_same_identity(&presented);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_mode_reaches_its_accepting_path() {
        // Mode 0 with the fixture CSR, mode 1 with the issued certificate, mode 2 unchanged.
        let mut csr = vec![0];
        csr.extend_from_slice(CSR_PEM.as_bytes());
        check_ca(&csr);
        let mut cert = vec![1];
        cert.extend_from_slice(&ca().issued.certificate_der);
        check_ca(&cert);
        check_ca(&[2]);
        assert!(ca().issuer.check_presented(&cert[1..], now()).is_ok());
    }
}
