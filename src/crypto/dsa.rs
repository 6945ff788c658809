//! Legacy signature primitives for `/pkcs7`: DSA with SHA-1, and RSA PKCS#1 v1.5 with SHA-1.
//!
//! Only reached when the caller opts in with
//! [`VerifyOptions::allow_legacy_dsa_sha1`](crate::VerifyOptions::allow_legacy_dsa_sha1),
//! which says why `/pkcs7` is refused by default. Input: a DER SubjectPublicKeyInfo from a
//! trusted certificate, a SHA-1 digest and the signature as transmitted. Output: whether the
//! signature verifies.
//! Verification is a public-data operation: nothing here handles a secret.

use crypto_bigint::{BoxedUint, Odd};
use rsa::pkcs8::DecodePublicKey as _;
use rsa::{Pkcs1v15Sign, PublicKey};
use sha1::Sha1;

use crate::cms::ber::{self, Reader, TAG_INTEGER, TAG_SEQUENCE};
use crate::cms::oids;
use crate::error::{ConfigError, Error};

use self::shamir::Bases;

mod shamir;

const TAG_BIT_STRING: u8 = 0x03;

/// Largest `p` accepted, in bytes (DSA's largest standard size, L = 3072).
const MAX_P_LEN: usize = 384;

/// Largest `q` accepted, in bytes (N = 256).
const MAX_Q_LEN: usize = 32;

/// A DSA public key (domain parameters `p`, `q`, `g` and public value `y`), prepared once.
///
/// Verification computes `g^u1 · y^u2 mod p` as one simultaneous exponentiation on
/// fixed-size limbs ([`shamir`]), variable-time on public data, instead of the `dsa` crate's
/// two constant-time exponentiations over the full width of `p`: an opted-in `/pkcs7`
/// signature must not cost a server many times an `/rsa2048` one.
#[derive(Clone, Debug)]
pub(crate) struct DsaVerifyingKey {
    /// The subgroup order, a prime.
    q: Odd<BoxedUint>,
    /// Bytes of `q` without leading zeros: the most either half of a signature may have.
    q_len: usize,
    /// `g`, `y` and `g·y` modulo `p`, prepared for the exponentiation.
    bases: Bases,
}

impl DsaVerifyingKey {
    /// Parses a DER SubjectPublicKeyInfo with algorithm `id-dsa`: `p`, `q`, `g` from the
    /// algorithm parameters, `y` from the BIT STRING.
    ///
    /// The `dsa` crate checks the sizes (1024/160, 2048/224, 2048/256, 3072/256), that `p`
    /// is odd, `1 < g < p`, and that `y` lies in the order-`q` subgroup.
    pub(crate) fn from_spki_der(spki: &[u8]) -> Result<Self, ConfigError> {
        let bad = |reason| ConfigError::BadCertificate { reason };
        let (p, q, g, y) = dsa_spki_parts(spki).ok_or(bad("not a DER DSA public key"))?;
        if p.len() > MAX_P_LEN || q.len() > MAX_Q_LEN {
            return Err(bad("DSA parameters larger than 3072/256 bits"));
        }
        let p = BoxedUint::from_be_slice_vartime(p);
        let q_len = q.len();
        let q = BoxedUint::from_be_slice_vartime(q);
        // g and y are reduced modulo p, so they share p's precision (the crate requires it).
        let within_p = |bytes: &[u8]| {
            BoxedUint::from_be_slice(bytes, p.bits_precision())
                .map_err(|_| bad("DSA value larger than p"))
        };
        let g = within_p(g)?;
        let y = within_p(y)?;
        let components = dsa::Components::from_components(p.clone(), q.clone(), g.clone())
            .map_err(|_| bad("unsupported or invalid DSA domain parameters"))?;
        // Only the checks are wanted: verification is done below, by this key.
        let _checked = dsa::VerifyingKey::from_components(components, y.clone())
            .map_err(|_| bad("invalid DSA public value"))?;
        // Both are odd: the dsa crate accepted p, and q is a prime of at least 160 bits.
        let odd = |n: BoxedUint| Odd::new(n).into_option().ok_or(bad("even DSA modulus"));
        let bases = Bases::new(&odd(p)?, &g, &y)
            .ok_or(bad("unsupported or invalid DSA domain parameters"))?;
        Ok(Self {
            q: odd(q)?,
            q_len,
            bases,
        })
    }

    /// Verifies a DER `Dss-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }` over a SHA-1
    /// digest (FIPS 186-4 §4.7).
    ///
    /// The encoding is checked strictly (DER, minimal, positive, nothing trailing, each value
    /// at most as long as `q`) before any arithmetic.
    pub(crate) fn verify_sha1_digest(
        &self,
        digest: &[u8; 20],
        signature: &[u8],
    ) -> Result<(), Error> {
        let (r, s) = parse_dss_signature(signature, self.q_len).ok_or(Error::InvalidSignature)?;
        let q = self.q.as_ref();
        let decode = |bytes: &[u8]| {
            BoxedUint::from_be_slice(bytes, q.bits_precision())
                .ok()
                .filter(|n| !bool::from(n.is_zero()) && n < q)
        };
        let (r, s) = decode(r).zip(decode(s)).ok_or(Error::InvalidSignature)?;
        let w = s
            .invert_odd_mod_vartime(&self.q)
            .into_option()
            .ok_or(Error::InvalidSignature)?;
        // z: the leftmost min(N, 160) bits of the digest.
        let z_len = digest
            .len()
            .min(usize::try_from(q.bit_width_vartime() / 8).unwrap_or(0));
        let z =
            BoxedUint::from_be_slice(digest.get(..z_len).unwrap_or_default(), q.bits_precision())
                .map_err(|_| Error::InvalidSignature)?;
        let q_nz = self.q.as_nz_ref();
        let u1 = z.rem_vartime(q_nz).mul_mod(&w, q_nz);
        let u2 = r.mul_mod(&w, q_nz);
        let v = self.bases.g_u1_y_u2(&u1, &u2).rem_vartime(q_nz);
        if v == r {
            Ok(())
        } else {
            Err(Error::InvalidSignature)
        }
    }
}

/// An RSA public key for PKCS#1 v1.5 signatures over SHA-1 digests (China's `/pkcs7`).
#[derive(Clone, Debug)]
pub(crate) struct RsaSha1Key {
    key: PublicKey,
}

impl RsaSha1Key {
    /// Parses a DER SubjectPublicKeyInfo holding an RSA key.
    pub(crate) fn from_public_key_der(spki: &[u8]) -> Result<Self, ConfigError> {
        let key =
            PublicKey::from_public_key_der(spki).map_err(|_| ConfigError::BadCertificate {
                reason: "not an RSA key the rsa crate accepts",
            })?;
        Ok(Self { key })
    }

    /// Verifies an RSASSA-PKCS1-v1_5 signature over a SHA-1 digest.
    pub(crate) fn verify_sha1_digest(
        &self,
        digest: &[u8; 20],
        signature: &[u8],
    ) -> Result<(), Error> {
        self.key
            .verify(Pkcs1v15Sign::new::<Sha1>(), digest, signature)
            .map_err(|_| Error::InvalidSignature)
    }
}

/// `p`, `q`, `g` and `y`: magnitudes, big-endian, without leading zeros.
type DsaParts<'a> = (&'a [u8], &'a [u8], &'a [u8], &'a [u8]);

/// The parts of a DSA SubjectPublicKeyInfo (DER, definite lengths, nothing trailing).
fn dsa_spki_parts(spki: &[u8]) -> Option<DsaParts<'_>> {
    let mut outer = Reader::new(spki);
    let info = outer.expect(TAG_SEQUENCE).ok()?.expect_definite().ok()?;
    outer.finish().ok()?;
    let mut fields = info.children().ok()?;
    let algorithm = fields.expect(TAG_SEQUENCE).ok()?.expect_definite().ok()?;
    let bits = fields.expect(TAG_BIT_STRING).ok()?;
    fields.finish().ok()?;

    let mut algorithm = algorithm.children().ok()?;
    if ber::oid(&algorithm.next_element().ok()?).ok()? != oids::ID_DSA {
        return None;
    }
    let params = algorithm
        .expect(TAG_SEQUENCE)
        .ok()?
        .expect_definite()
        .ok()?;
    algorithm.finish().ok()?;
    let mut params = params.children().ok()?;
    let p = der_uint(params.expect(TAG_INTEGER).ok()?.value)?;
    let q = der_uint(params.expect(TAG_INTEGER).ok()?.value)?;
    let g = der_uint(params.expect(TAG_INTEGER).ok()?.value)?;
    params.finish().ok()?;

    // DSAPublicKey ::= INTEGER, inside a BIT STRING with no unused bits.
    let [0, public_key @ ..] = bits.value else {
        return None;
    };
    let mut public_key = Reader::new(public_key);
    let y = der_uint(public_key.expect(TAG_INTEGER).ok()?.value)?;
    public_key.finish().ok()?;
    Some((p, q, g, y))
}

/// The magnitude of a DER INTEGER's content that must be positive and minimally encoded.
fn der_uint(content: &[u8]) -> Option<&[u8]> {
    match content {
        [] => None,
        [first, ..] if first & 0x80 != 0 => None,
        [0, second, ..] if second & 0x80 == 0 => None,
        [0, rest @ ..] => Some(rest),
        _ => Some(content),
    }
    .filter(|magnitude| !magnitude.is_empty())
}

/// `r` and `s` of a strict DER `SEQUENCE { INTEGER, INTEGER }`, each non-zero and at most
/// `max_len` bytes long.
fn parse_dss_signature(signature: &[u8], max_len: usize) -> Option<(&[u8], &[u8])> {
    // Both values are at most 32 + 1 bytes, so every length fits the short form.
    let [TAG_SEQUENCE, len, content @ ..] = signature else {
        return None;
    };
    if usize::from(*len) != content.len() || *len >= 0x80 {
        return None;
    }
    let (r, rest) = short_integer(content)?;
    let (s, rest) = short_integer(rest)?;
    if !rest.is_empty() || r.len() > max_len || s.len() > max_len {
        return None;
    }
    Some((r, s))
}

/// One short-form DER INTEGER at the start of `input`: its positive magnitude and the rest.
fn short_integer(input: &[u8]) -> Option<(&[u8], &[u8])> {
    let [TAG_INTEGER, len, rest @ ..] = input else {
        return None;
    };
    if *len >= 0x80 {
        return None;
    }
    let (content, rest) = rest.split_at_checked(usize::from(*len))?;
    Some((der_uint(content)?, rest))
}

#[cfg(test)]
mod tests;
