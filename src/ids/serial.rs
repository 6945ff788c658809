//! Certificate serial numbers.

use core::fmt;
use std::sync::Arc;

/// A certificate's serial number: big-endian bytes without leading zero bytes, so that the DER
/// INTEGER's `00 B6 4B` and a caller's `B6 4B` are one number.
///
/// It prints in one way everywhere, messages and JSON alike: upper-case hex as
/// `openssl x509 -serial` prints it, cut with `…` past 20 bytes (RFC 5280's longest serial) so
/// that an attacker's 60 KB serial is not echoed. Clones share the bytes, so each verified
/// document names its signer without copying the serial.
///
/// ```
/// use ec2_iid::ids::SerialNumber;
///
/// let serial = SerialNumber::from_be_bytes(&[0x00, 0xb6, 0x4b]);
/// assert_eq!(serial.as_bytes(), [0xb6, 0x4b]);
/// assert_eq!(serial.to_string(), "B64B");
/// assert_eq!(SerialNumber::from_be_bytes(&[0xab; 21]).to_string(), format!("{}…", "AB".repeat(20)));
/// ```
#[derive(Clone, Eq, Hash, Ord, PartialEq, PartialOrd)]
pub struct SerialNumber(Arc<[u8]>);

impl SerialNumber {
    /// The longest serial printed in full.
    const MAX_SHOWN: usize = 20;

    /// The serial of these big-endian bytes (a DER INTEGER's content), leading zeros dropped.
    #[must_use]
    pub fn from_be_bytes(bytes: &[u8]) -> Self {
        Self(Arc::from(significant_bytes(bytes)))
    }

    /// The big-endian bytes, without leading zero bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl core::borrow::Borrow<[u8]> for SerialNumber {
    fn borrow(&self) -> &[u8] {
        &self.0
    }
}

/// `bytes` without its leading zero bytes: the form serials are compared in.
pub(crate) fn significant_bytes(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or_default()
}

impl fmt::Display for SerialNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = self.0.get(..Self::MAX_SHOWN).unwrap_or(&self.0);
        for byte in shown {
            write!(f, "{byte:02X}")?;
        }
        if shown.len() < self.0.len() {
            f.write_str("…")?;
        }
        Ok(())
    }
}

impl fmt::Debug for SerialNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SerialNumber({self})")
    }
}

impl serde::Serialize for SerialNumber {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leading_zeros_do_not_make_another_serial() {
        let padded = SerialNumber::from_be_bytes(&[0, 0, 0x0a, 0xbc]);
        assert_eq!(padded, SerialNumber::from_be_bytes(&[0x0a, 0xbc]));
        assert_eq!(padded.as_bytes(), [0x0a, 0xbc]);
        assert_eq!(padded.to_string(), "0ABC");
        assert_eq!(SerialNumber::from_be_bytes(&[0, 0]).to_string(), "");
    }

    #[test]
    fn long_serials_are_cut_when_printed() {
        let long = [0xab; 21];
        assert_eq!(
            SerialNumber::from_be_bytes(&long).to_string(),
            format!("{}…", "AB".repeat(20))
        );
        assert_eq!(
            SerialNumber::from_be_bytes(&long[..20]).to_string(),
            "AB".repeat(20)
        );
        let every_byte: Vec<u8> = (1..=20).collect();
        let expected: String = every_byte.iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(
            SerialNumber::from_be_bytes(&every_byte).to_string(),
            expected
        );
        assert_eq!(
            format!("{:?}", SerialNumber::from_be_bytes(&[1])),
            "SerialNumber(01)"
        );
        assert_eq!(
            serde_json::to_string(&SerialNumber::from_be_bytes(&[0xb6])).unwrap(),
            "\"B6\""
        );
    }
}
