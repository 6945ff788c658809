//! A small, strict BER reader: just what CMS SignedData from AWS needs.
//!
//! It accepts definite and indefinite lengths (AWS writes indefinite ones), keeps every value
//! as a slice of the input (so signed bytes are hashed exactly as transmitted), bounds nesting
//! depth, indefinite-length nesting and (for untrusted input) the headers read per blob, and
//! never allocates. Only low tag numbers (< 31) exist in CMS, so a high-tag-number
//! form is an error.

use core::cell::Cell;

use crate::error::{Error, Malformed};

mod values;

pub(crate) use values::{
    integer, octet_string_into, oid, oid_element, oid_to_string, small_integer,
};

/// A BER error: where and what, and nothing that needs dropping.
///
/// The reader returns this instead of [`Error`] (72 bytes), so that every `Result` on its hot
/// path stays small; `?` in the CMS layer turns it into [`Error::Malformed`].
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub(crate) struct BerError {
    offset: usize,
    reason: Malformed,
}

impl From<BerError> for Error {
    fn from(e: BerError) -> Self {
        Self::Malformed {
            offset: e.offset,
            reason: e.reason,
        }
    }
}

fn ber_error(offset: usize, reason: Malformed) -> BerError {
    BerError { offset, reason }
}

/// Deepest nesting accepted. AWS blobs nest 9 levels deep; certificates add a few more.
const MAX_DEPTH: usize = 24;

/// Most indefinite-length elements nested in one another.
///
/// AWS nests six (ContentInfo, `[0]`, SignedData, encapContentInfo, `[0]`, the eContent OCTET
/// STRING); four more leave room for other encoders' segmented content. Each indefinite level
/// is measured by walking its children, so the bound also bounds how often a byte can be
/// walked when the record of lengths cannot help.
pub const MAX_INDEFINITE_DEPTH: usize = 10;

/// Most element headers read while parsing one blob, every walk that measures an indefinite
/// length included.
///
/// A real AWS blob reads 42 to 66 (a signer's certificate embedded in a definite-length field
/// is skipped in one step); 1 024 leaves room for any real encoder's extra attributes or
/// indefinite certificates, and keeps the costliest 64 KiB blob to about 10 µs of parsing,
/// less than one RSA check, where an unbounded count of tiny elements cost milliseconds.
pub const MAX_ELEMENTS: usize = 1024;

pub(crate) const TAG_INTEGER: u8 = 0x02;
pub(crate) const TAG_OCTET_STRING: u8 = 0x04;
pub(crate) const TAG_NULL: u8 = 0x05;
pub(crate) const TAG_OID: u8 = 0x06;
pub(crate) const TAG_UTC_TIME: u8 = 0x17;
pub(crate) const TAG_GENERALIZED_TIME: u8 = 0x18;
pub(crate) const TAG_SEQUENCE: u8 = 0x30;
pub(crate) const TAG_SET: u8 = 0x31;
pub(crate) const CONSTRUCTED: u8 = 0x20;

/// What parsing one blob may still spend, and the indefinite lengths already measured.
///
/// An indefinite length is only known by walking the element's children. Without the record
/// every indefinite element is walked again by each indefinite ancestor's walk and once more
/// when it is read: AWS nests six, so the innermost was walked seven times. With it, each is
/// walked once. A walk records the deepest elements first, so a full record keeps the
/// shallowest ones: those are the elements the parser reads again (it never descends into
/// certificates or CRLs), so hostile nesting cannot push the SignedData's own lengths out.
/// Every header read, walks included, is paid from a budget of [`MAX_ELEMENTS`].
#[derive(Debug)]
pub(crate) struct ParseState {
    /// `(offset, value length, depth)` of measured indefinite-length elements.
    entries: [Cell<(usize, usize, u8)>; 16],
    count: Cell<usize>,
    /// Element headers that may still be read.
    budget: Cell<usize>,
}

impl Default for ParseState {
    fn default() -> Self {
        Self {
            entries: Default::default(),
            count: Cell::new(0),
            budget: Cell::new(MAX_ELEMENTS),
        }
    }
}

impl ParseState {
    fn get(&self, offset: usize) -> Option<usize> {
        self.entries
            .iter()
            .take(self.count.get())
            .map(Cell::get)
            .find(|&(at, _, _)| at == offset)
            .map(|(_, len, _)| len)
    }

    fn record(&self, offset: usize, value_len: usize, depth: u8) {
        if let Some(entry) = self.entries.get(self.count.get()) {
            entry.set((offset, value_len, depth));
            self.count.set(self.count.get() + 1);
            return;
        }
        // Full: replace the deepest entry if this one is shallower.
        let deepest = self
            .entries
            .iter()
            .max_by_key(|entry| entry.get().2)
            .filter(|entry| entry.get().2 > depth);
        if let Some(entry) = deepest {
            entry.set((offset, value_len, depth));
        }
    }

    /// Pays for one header read at `offset`.
    fn spend(&self, offset: usize) -> Result<(), BerError> {
        match self.budget.get().checked_sub(1) {
            Some(left) => {
                self.budget.set(left);
                Ok(())
            }
            None => Err(ber_error(offset, Malformed::TooManyElements)),
        }
    }

    /// Headers read so far.
    #[cfg(test)]
    pub(crate) fn spent(&self) -> usize {
        MAX_ELEMENTS - self.budget.get()
    }
}

/// One decoded element: its identifier octet and its value bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Element<'a> {
    /// The identifier octet (class, constructed bit and tag number).
    pub(crate) tag: u8,
    /// Offset of the identifier octet in the whole input, for error messages.
    pub(crate) offset: usize,
    /// The whole encoding: identifier, length, value (and end-of-contents if indefinite).
    pub(crate) raw: &'a [u8],
    /// The value bytes (without end-of-contents for indefinite lengths).
    pub(crate) value: &'a [u8],
    /// Identifier and length octets: at most 6, since lengths have at most 4 bytes.
    header_len: u8,
    /// Whether the length was indefinite.
    pub(crate) indefinite: bool,
    /// Nesting depth, at most [`MAX_DEPTH`].
    depth: u8,
    /// Indefinite-length elements around the value (this one included), at most
    /// [`MAX_INDEFINITE_DEPTH`].
    indefinite_depth: u8,
    state: Option<&'a ParseState>,
}

impl<'a> Element<'a> {
    /// Offset of `value` in the whole input.
    pub(crate) fn value_offset(&self) -> usize {
        self.offset + usize::from(self.header_len)
    }

    /// Where `value` lies in the whole input: parsed structures keep ranges, not borrows, so
    /// the signature stage can reach the exact bytes that were parsed.
    pub(crate) fn value_span(&self) -> core::ops::Range<usize> {
        let start = self.value_offset();
        start..start + self.value.len()
    }

    /// Where the whole element (header and value) lies in the input.
    pub(crate) fn raw_span(&self) -> core::ops::Range<usize> {
        self.offset..self.offset + self.raw.len()
    }

    /// A reader over this element's children; requires the constructed bit.
    pub(crate) fn children(&self) -> Result<Reader<'a>, BerError> {
        if self.tag & CONSTRUCTED == 0 {
            return Err(ber_error(
                self.offset,
                Malformed::InvalidValue("primitive encoding"),
            ));
        }
        Ok(Reader {
            input: self.value,
            offset: self.value_offset(),
            depth: self.depth + 1,
            indefinite_depth: self.indefinite_depth,
            state: self.state,
        })
    }

    /// Fails unless the element's identifier octet is `tag`.
    pub(crate) fn expect_tag(self, tag: u8) -> Result<Self, BerError> {
        if self.tag == tag {
            Ok(self)
        } else {
            Err(ber_error(
                self.offset,
                Malformed::UnexpectedTag {
                    expected: tag,
                    found: self.tag,
                },
            ))
        }
    }

    /// Fails if the element used an indefinite length.
    pub(crate) fn expect_definite(self) -> Result<Self, BerError> {
        if self.indefinite {
            Err(ber_error(self.offset, Malformed::BadIndefiniteLength))
        } else {
            Ok(self)
        }
    }
}

/// Reads consecutive elements from a slice.
#[derive(Clone, Debug)]
pub(crate) struct Reader<'a> {
    input: &'a [u8],
    offset: usize,
    depth: u8,
    indefinite_depth: u8,
    state: Option<&'a ParseState>,
}

impl<'a> Reader<'a> {
    /// A reader over a whole input, at depth 0.
    pub(crate) fn new(input: &'a [u8]) -> Self {
        Self {
            input,
            offset: 0,
            depth: 0,
            indefinite_depth: 0,
            state: None,
        }
    }

    /// A reader over a whole untrusted input: each indefinite length is measured once and
    /// recorded in `state`, and every header read is paid from its budget (`state` must start
    /// as new and serve this input only). [`Reader::new`] is for trusted inputs (keys).
    pub(crate) fn bounded(input: &'a [u8], state: &'a ParseState) -> Self {
        Self {
            state: Some(state),
            ..Self::new(input)
        }
    }

    /// Whether all elements were read.
    pub(crate) fn is_empty(&self) -> bool {
        self.input.is_empty()
    }

    /// Bytes not read yet.
    pub(crate) fn remaining(&self) -> usize {
        self.input.len()
    }

    /// Reads the next element; `Truncated` at the end of the input.
    pub(crate) fn next_element(&mut self) -> Result<Element<'a>, BerError> {
        let at = Position {
            offset: self.offset,
            depth: self.depth,
            indefinite_depth: self.indefinite_depth,
        };
        let (element, len) = parse_element(self.input, at, self.state)?;
        self.advance(len);
        Ok(element)
    }

    /// Reads the next element and requires its identifier octet to be `tag`.
    pub(crate) fn expect(&mut self, tag: u8) -> Result<Element<'a>, BerError> {
        self.next_element()?.expect_tag(tag)
    }

    /// Reads the next element if its identifier octet is `tag`.
    pub(crate) fn optional(&mut self, tag: u8) -> Result<Option<Element<'a>>, BerError> {
        match self.input.first() {
            Some(&t) if t == tag => self.next_element().map(Some),
            _ => Ok(None),
        }
    }

    /// Fails unless every element was read.
    pub(crate) fn finish(&self) -> Result<(), BerError> {
        if self.input.is_empty() {
            Ok(())
        } else {
            Err(ber_error(
                self.offset,
                Malformed::InvalidValue("extra element in structure"),
            ))
        }
    }

    fn advance(&mut self, len: usize) {
        self.input = self.input.get(len..).unwrap_or_default();
        self.offset = self.offset.saturating_add(len);
    }
}

pub(crate) fn malformed(offset: usize, reason: Malformed) -> Error {
    Error::Malformed { offset, reason }
}

/// Where an element starts: its offset in the whole input and its nesting.
#[derive(Clone, Copy)]
struct Position {
    offset: usize,
    depth: u8,
    /// Indefinite-length elements around this one.
    indefinite_depth: u8,
}

impl Position {
    /// The position of a child of an element at `self`, starting at `offset`.
    fn child(self, offset: usize, indefinite: bool) -> Self {
        Self {
            offset,
            depth: self.depth + 1,
            indefinite_depth: self.indefinite_depth + u8::from(indefinite),
        }
    }
}

/// Parses one element at the start of `input`; returns it and its total encoded length.
fn parse_element<'a>(
    input: &'a [u8],
    at: Position,
    state: Option<&'a ParseState>,
) -> Result<(Element<'a>, usize), BerError> {
    let offset = at.offset;
    if usize::from(at.depth) > MAX_DEPTH {
        return Err(ber_error(offset, Malformed::NestingTooDeep));
    }
    if let Some(state) = state {
        state.spend(offset)?;
    }
    let Header {
        tag,
        header_len,
        value_len,
        indefinite,
    } = read_header(input, at, state)?;
    let eoc_len = if indefinite { 2 } else { 0 };
    let header = usize::from(header_len);
    let total = header
        .checked_add(value_len)
        .and_then(|n| n.checked_add(eoc_len))
        .ok_or_else(|| ber_error(offset, Malformed::BadLength))?;
    let raw = input.get(..total).ok_or_else(|| {
        let reason = if indefinite {
            Malformed::Truncated
        } else {
            Malformed::BadLength
        };
        ber_error(offset, reason)
    })?;
    let value = raw
        .get(header..header + value_len)
        .ok_or_else(|| ber_error(offset, Malformed::BadLength))?;
    let element = Element {
        tag,
        offset,
        raw,
        value,
        header_len,
        indefinite,
        depth: at.depth,
        indefinite_depth: at.indefinite_depth + u8::from(indefinite),
        state,
    };
    Ok((element, total))
}

/// An element's identifier and length octets, read but not yet checked against the input.
struct Header {
    tag: u8,
    header_len: u8,
    /// Without the end-of-contents octets of an indefinite length.
    value_len: usize,
    indefinite: bool,
}

/// Reads the tag (low tag numbers only) and the length: short, long (up to 4 bytes), or
/// indefinite on a constructed element.
fn read_header(input: &[u8], at: Position, state: Option<&ParseState>) -> Result<Header, BerError> {
    let offset = at.offset;
    let truncated = || ber_error(offset, Malformed::Truncated);
    let (&tag, rest) = input.split_first().ok_or_else(truncated)?;
    if tag & 0x1f == 0x1f {
        return Err(ber_error(
            offset,
            Malformed::InvalidValue("high tag number"),
        ));
    }
    let (&first, rest) = rest.split_first().ok_or_else(truncated)?;
    let (header_len, value_len, indefinite) = match first {
        0x80 if tag & CONSTRUCTED == 0 => {
            return Err(ber_error(offset, Malformed::BadIndefiniteLength));
        }
        0x80 if usize::from(at.indefinite_depth) >= MAX_INDEFINITE_DEPTH => {
            return Err(ber_error(offset, Malformed::IndefiniteNestingTooDeep));
        }
        0x80 => (2, remembered_indefinite_len(rest, at, state)?, true),
        0..=0x7f => (2, usize::from(first), false),
        0x81..=0x84 => {
            let n = first & 0x7f;
            let bytes = rest.get(..usize::from(n)).ok_or_else(truncated)?;
            let len = bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            (2 + n, len, false)
        }
        _ => return Err(ber_error(offset, Malformed::BadLength)),
    };
    Ok(Header {
        tag,
        header_len,
        value_len,
        indefinite,
    })
}

/// The value length of the indefinite-length element at `at` (whose value starts with
/// `rest`), measured once and remembered in `state` for the element's later readers.
fn remembered_indefinite_len(
    rest: &[u8],
    at: Position,
    state: Option<&ParseState>,
) -> Result<usize, BerError> {
    if let Some(len) = state.and_then(|s| s.get(at.offset)) {
        return Ok(len);
    }
    let len = indefinite_value_len(rest, at, state)?;
    if let Some(s) = state {
        s.record(at.offset, len, at.depth);
    }
    Ok(len)
}

/// Length of the value of the indefinite-length element at `at`: its children up to (not
/// including) end-of-contents. Each child's header is read (and paid for), nothing more.
fn indefinite_value_len(
    input: &[u8],
    at: Position,
    state: Option<&ParseState>,
) -> Result<usize, BerError> {
    let start = at.offset + 2;
    let mut pos = 0usize;
    loop {
        // `pos` never passes the end: each child's length was checked against the input.
        match input.get(pos..).unwrap_or_default() {
            [0, 0, ..] => return Ok(pos),
            [0, ..] => {
                return Err(ber_error(
                    start + pos,
                    Malformed::InvalidValue("end-of-contents"),
                ));
            }
            // At the end of the input this reports `Truncated` where end-of-contents was due.
            rest => {
                let (_, len) = parse_element(rest, at.child(start + pos, true), state)?;
                pos += len;
            }
        }
    }
}

#[cfg(test)]
mod tests;
