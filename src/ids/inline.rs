//! Where an identifier keeps its text: inline when its rule bounds its length, so parsing one
//! from a document and cloning it do not allocate; in a `String` when it may be long (ARNs).

use core::cmp::Ordering;
use core::fmt;
use core::hash::{Hash, Hasher};

/// The text of an identifier, as `id_newtype!` stores it.
pub(super) trait IdText: Sized {
    /// The text stored, or `None` if it does not fit.
    fn from_text(text: &str) -> Option<Self>;

    /// The text.
    fn text(&self) -> &str;
}

impl IdText for String {
    fn from_text(text: &str) -> Option<Self> {
        Some(text.to_owned())
    }

    fn text(&self) -> &str {
        self
    }
}

/// Text of at most `N` bytes (and at most 255), kept in place of a heap buffer.
///
/// It compares, orders, hashes and prints as its `&str` does, so a newtype deriving those traits
/// behaves as it did when it held a `String`.
#[derive(Clone, Copy)]
pub(super) struct InlineStr<const N: usize> {
    /// The text, then zeros.
    bytes: [u8; N],
    /// How many bytes of `bytes` are the text.
    len: u8,
}

impl<const N: usize> InlineStr<N> {
    /// The empty text.
    pub(super) const EMPTY: Self = Self {
        bytes: [0; N],
        len: 0,
    };

    /// `text`, or `None` if it is longer than `N` bytes: too long is refused, never cut.
    pub(super) fn new(text: &str) -> Option<Self> {
        let len = u8::try_from(text.len()).ok()?;
        let mut bytes = [0; N];
        bytes
            .get_mut(..text.len())?
            .copy_from_slice(text.as_bytes());
        Some(Self { bytes, len })
    }

    /// The text.
    pub(super) fn as_str(&self) -> &str {
        // The bytes were copied from a `&str`, so both fallbacks are unreachable; checking the
        // UTF-8 again (at most N bytes) is what reading them back costs without `unsafe`.
        let bytes = self.bytes.get(..usize::from(self.len)).unwrap_or_default();
        core::str::from_utf8(bytes).unwrap_or_default()
    }
}

impl<const N: usize> IdText for InlineStr<N> {
    fn from_text(text: &str) -> Option<Self> {
        Self::new(text)
    }

    fn text(&self) -> &str {
        self.as_str()
    }
}

impl<const N: usize> PartialEq for InlineStr<N> {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl<const N: usize> Eq for InlineStr<N> {}

impl<const N: usize> PartialOrd for InlineStr<N> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<const N: usize> Ord for InlineStr<N> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl<const N: usize> Hash for InlineStr<N> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl<const N: usize> fmt::Debug for InlineStr<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    use super::*;

    #[test]
    fn holds_up_to_its_capacity_and_refuses_more() {
        assert_eq!(InlineStr::<4>::new("").map(|s| s.as_str().len()), Some(0));
        assert_eq!(InlineStr::<4>::new("abcd").unwrap().as_str(), "abcd");
        assert!(InlineStr::<4>::new("abcde").is_none());
        assert_eq!(InlineStr::<4>::new("é").unwrap().as_str(), "é");
        assert!(InlineStr::<300>::new(&"a".repeat(256)).is_none());
        assert_eq!(InlineStr::<4>::EMPTY.as_str(), "");
    }

    #[test]
    fn compares_orders_and_hashes_as_its_text() {
        let texts = ["b", "a", "ab", "", "a\u{0}", "ba", "aa"];
        let mut inline: Vec<InlineStr<4>> =
            texts.iter().map(|t| InlineStr::new(t).unwrap()).collect();
        let mut strings = texts.map(String::from);
        inline.sort();
        strings.sort();
        assert_eq!(
            inline.iter().map(InlineStr::as_str).collect::<Vec<_>>(),
            strings
        );

        let hasher = std::hash::RandomState::new();
        for (a, b) in inline.iter().zip(&strings) {
            assert_eq!(hasher.hash_one(a), hasher.hash_one(b.as_str()));
            assert_eq!(format!("{a:?}"), format!("{b:?}"));
        }
        let (short, long) = (
            InlineStr::<4>::new("a").unwrap(),
            InlineStr::<4>::new("a\0"),
        );
        assert_ne!(Some(short), long);
    }
}
