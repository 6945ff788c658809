//! Reading a configuration object (a token, a rule) field by field, so that every mistake is
//! refused with where it is and what to write: unknown fields with the nearest known name,
//! values with the shape they must have.
//!
//! Objects are read through `serde_json::Value`, which any serde format (YAML, JSON, TOML)
//! deserializes into; the object is small and read once at setup. [`read_value`] builds that
//! value itself rather than with `Value`'s own `Deserialize`, which keeps the last of a key
//! given twice: a second `aws_account` or `expires` would silently replace the first.

use core::fmt;

use serde::de::{DeserializeOwned, DeserializeSeed, Error as _, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Number, Value};

use crate::error::ConfigError;
use crate::ids::Identifier;
use crate::text::{bounded, bounded_escaped};

/// The fields of one object, taken one by one; what is left at the end was never asked for.
pub(crate) struct Fields {
    map: Map<String, Value>,
    /// Where the object is, e.g. `spec.allow[1]`; empty for a top-level object.
    at: String,
}

impl Fields {
    /// The object `value` found `at`, refusing fields outside `known` and dropping those in
    /// `ignored` (fields of the format that this crate does not use).
    pub(crate) fn new(
        value: Value,
        at: &str,
        known: &[&'static str],
        ignored: &[&str],
    ) -> Result<Self, ConfigError> {
        let Value::Object(mut map) = value else {
            return Err(ConfigError::InvalidField {
                field: display_path(at),
                reason: format!("expected an object, found {}", kind_of(&value)),
            });
        };
        map.retain(|name, _| !ignored.contains(&name.as_str()));
        if let Some(name) = map.keys().find(|name| !known.contains(&name.as_str())) {
            return Err(ConfigError::UnknownField {
                field: join(at, &bounded_escaped(name)),
                did_you_mean: nearest(name, known),
            });
        }
        Ok(Self {
            map,
            at: at.to_owned(),
        })
    }

    /// Where field `name` is.
    pub(crate) fn path(&self, name: &str) -> String {
        join(&self.at, name)
    }

    /// Whether the object has field `name`.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }

    /// Field `name` as any serde type, `None` when absent.
    pub(crate) fn value<T: DeserializeOwned>(
        &mut self,
        name: &str,
    ) -> Result<Option<T>, ConfigError> {
        let Some(value) = self.map.remove(name) else {
            return Ok(None);
        };
        serde_json::from_value(value)
            .map(Some)
            .map_err(|e| self.invalid(name, e.to_string()))
    }

    /// Field `name` as an identifier, `None` when absent.
    pub(crate) fn id<T: Identifier>(&mut self, name: &str) -> Result<Option<T>, ConfigError> {
        let path = self.path(name);
        self.map
            .remove(name)
            .map(|v| parse_id(&v, path))
            .transpose()
    }

    /// Field `name` as a list of identifiers, empty when absent. An empty or `null` list is
    /// refused: it would read as "any", which is rarely what was meant.
    pub(crate) fn ids<T: Identifier>(&mut self, name: &str) -> Result<Vec<T>, ConfigError> {
        let Some(value) = self.map.remove(name) else {
            return Ok(Vec::new());
        };
        let Value::Array(items) = value else {
            return Err(self.invalid(
                name,
                format!("expected a list of {}s, found {}", T::KIND, kind_of(&value)),
            ));
        };
        if items.is_empty() {
            return Err(self.invalid(
                name,
                format!(
                    "an empty list: list at least one {}, or remove the field",
                    T::KIND
                ),
            ));
        }
        let path = self.path(name);
        items
            .iter()
            .enumerate()
            .map(|(index, item)| parse_id(item, format!("{path}[{index}]")))
            .collect()
    }

    fn invalid(&self, name: &str, reason: String) -> ConfigError {
        ConfigError::InvalidField {
            field: self.path(name),
            reason,
        }
    }
}

/// The value `d` holds (of any serde format), found `at` (`spec` for a bare spec, empty for a
/// token resource or a bare rule), refusing a key that appears twice in any of its objects
/// with [`ConfigError::DuplicateField`] naming where.
pub(crate) fn read_value<'de, D: Deserializer<'de>>(d: D, at: &str) -> Result<Value, D::Error> {
    Strict(&Place::Root(at)).deserialize(d)
}

/// Where a value is while it is read; written out as a path only for an error.
enum Place<'a> {
    Root(&'a str),
    Field(&'a Self, &'a str),
    Item(&'a Self, usize),
}

impl Place<'_> {
    /// `spec.allow[0].aws_account`, keys escaped and cut as unknown fields are, the whole cut
    /// to [`MAX_PATH_CHARS`] (only objects nested inside unknown or ignored fields get long).
    fn path(&self) -> String {
        let path = self.full_path();
        if path.chars().count() <= MAX_PATH_CHARS {
            return path;
        }
        let half = MAX_PATH_CHARS / 2;
        let skip = path.chars().count().saturating_sub(half);
        let head: String = path.chars().take(half).collect();
        let tail: String = path.chars().skip(skip).collect();
        format!("{head}…{tail}")
    }

    fn full_path(&self) -> String {
        match self {
            Self::Root(at) => (*at).to_owned(),
            Self::Field(parent, name) => join(&parent.full_path(), &bounded_escaped(name)),
            Self::Item(parent, index) => format!("{}[{index}]", parent.full_path()),
        }
    }
}

/// The longest path a duplicate-field error prints.
const MAX_PATH_CHARS: usize = 256;

/// Reads one value as `serde_json::Value`'s visitor does, except that maps refuse a key seen
/// before in the same map.
struct Strict<'a>(&'a Place<'a>);

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_i128<E: serde::de::Error>(self, value: i128) -> Result<Value, E> {
        Number::deserialize(serde::de::value::I128Deserializer::new(value)).map(Value::Number)
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_u128<E: serde::de::Error>(self, value: u128) -> Result<Value, E> {
        Number::deserialize(serde::de::value::U128Deserializer::new(value)).map(Value::Number)
    }

    fn visit_f64<E>(self, value: f64) -> Result<Value, E> {
        Ok(Number::from_f64(value).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        loop {
            let place = Place::Item(self.0, items.len());
            match seq.next_element_seed(Strict(&place))? {
                Some(item) => items.push(item),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let place = Place::Field(self.0, &key);
            if object.contains_key(&key) {
                return Err(A::Error::custom(ConfigError::DuplicateField {
                    field: place.path(),
                }));
            }
            let value = map.next_value_seed(Strict(&place))?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

fn parse_id<T: Identifier>(value: &Value, field: String) -> Result<T, ConfigError> {
    let Value::String(text) = value else {
        return Err(ConfigError::InvalidField {
            field,
            reason: format!(
                "expected a {} as a quoted string (e.g. \"{}\"), found {}",
                T::KIND,
                T::EXAMPLE,
                kind_of(value)
            ),
        });
    };
    text.parse().map_err(|_| ConfigError::InvalidField {
        field,
        reason: format!(
            "{:?} is not a valid {}: write it like \"{}\"",
            bounded(text),
            T::KIND,
            T::EXAMPLE
        ),
    })
}

fn join(at: &str, name: &str) -> String {
    if at.is_empty() {
        name.to_owned()
    } else {
        format!("{at}.{name}")
    }
}

fn display_path(at: &str) -> String {
    if at.is_empty() {
        "the value".to_owned()
    } else {
        at.to_owned()
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing (null)",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// The known name nearest to `name`, if it is near enough to be the one meant: at most a third
/// of its letters apart (at least 2 edits, at most 4).
fn nearest(name: &str, known: &[&'static str]) -> Option<&'static str> {
    let limit = (name.chars().count() / 3).clamp(2, 4);
    known
        .iter()
        .map(|&candidate| (edit_distance(name, candidate), candidate))
        .filter(|&(distance, _)| distance <= limit)
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, candidate)| candidate)
}

/// Levenshtein distance; the names compared are short field names (the unknown one is cut to
/// 64 characters first, so the work is bounded).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().take(64).collect();
    let mut previous: Vec<usize> = (0..=a.len()).collect();
    for (j, cb) in b.chars().enumerate() {
        let mut current = Vec::with_capacity(a.len() + 1);
        current.push(j + 1);
        for (i, &ca) in a.iter().enumerate() {
            let substitute = previous
                .get(i)
                .map_or(usize::MAX, |d| d + usize::from(ca != cb));
            let delete = previous.get(i + 1).map_or(usize::MAX, |d| d + 1);
            let insert = current.get(i).map_or(usize::MAX, |d| d + 1);
            current.push(substitute.min(delete).min(insert));
        }
        previous = current;
    }
    previous.last().copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::ids::Region;

    const KNOWN: [&str; 3] = ["aws_account", "aws_regions", "aws_role"];

    #[test]
    fn unknown_fields_name_the_nearest_known_one() {
        let unknown = |value: Value, at: &str| match Fields::new(value, at, &KNOWN, &["bot_name"]) {
            Err(ConfigError::UnknownField {
                field,
                did_you_mean,
            }) => (field, did_you_mean),
            Err(other) => panic!("{other:?}"),
            Ok(_) => panic!("accepted"),
        };
        assert_eq!(
            unknown(json!({"aws_region": ["us-east-1"]}), "spec.allow[1]"),
            ("spec.allow[1].aws_region".into(), Some("aws_regions"))
        );
        assert_eq!(
            unknown(json!({"aws_acount": "1"}), ""),
            ("aws_acount".into(), Some("aws_account"))
        );
        assert_eq!(unknown(json!({"colour": 1}), ""), ("colour".into(), None));
        assert!(Fields::new(json!({"bot_name": "x"}), "", &KNOWN, &["bot_name"]).is_ok());
        let long = "x".repeat(10_000);
        let (field, _) = unknown(json!({ long: 1 }), "");
        assert_eq!(field.chars().count(), 65, "bounded");
    }

    #[test]
    fn values_are_parsed_where_they_are_named() {
        let mut fields = Fields::new(
            json!({"aws_regions": ["us-east-1", "us-east1"], "aws_account": 123456789012_u64}),
            "spec.allow[0]",
            &KNOWN,
            &[],
        )
        .unwrap();
        assert!(fields.has("aws_regions"));
        let err = fields.ids::<Region>("aws_regions").unwrap_err().to_string();
        assert_eq!(
            err,
            "spec.allow[0].aws_regions[1]: \"us-east1\" is not a valid region: write it like \"us-east-1\""
        );
        let err = fields
            .id::<crate::ids::AccountId>("aws_account")
            .unwrap_err()
            .to_string();
        assert!(err.contains("as a quoted string"), "{err}");
        let mut empty = Fields::new(json!({"aws_regions": []}), "", &KNOWN, &[]).unwrap();
        assert!(
            empty
                .ids::<Region>("aws_regions")
                .unwrap_err()
                .to_string()
                .contains("empty list")
        );
        let mut null = Fields::new(json!({"aws_regions": null}), "", &KNOWN, &[]).unwrap();
        assert!(
            null.ids::<Region>("aws_regions")
                .unwrap_err()
                .to_string()
                .contains("null")
        );
        assert!(matches!(
            Fields::new(json!([1]), "spec", &KNOWN, &[]),
            Err(ConfigError::InvalidField { .. })
        ));
    }

    #[test]
    fn duplicate_paths_are_escaped_and_bounded() {
        let read = |json: &str, at: &str| {
            let mut de = serde_json::Deserializer::from_str(json);
            read_value(&mut de, at).map_err(|e| e.to_string())
        };
        assert_eq!(
            read(r#"{"a": [1, {"b": {}}], "c": null}"#, "spec").unwrap(),
            json!({"a": [1, {"b": {}}], "c": null})
        );
        let err = read(r#"{"a": [1, {"b\n": 1, "b\n": 2}]}"#, "spec").unwrap_err();
        assert!(
            err.starts_with("duplicate field spec.a[1].b\\n: write each field once"),
            "{err}"
        );
        let deep = format!(
            "{}{{\"x\": 1, \"x\": 2}}{}",
            r#"{"abcdefghijklmnopqrstuvwxyz": "#.repeat(40),
            "}".repeat(40)
        );
        let err = read(&deep, "").unwrap_err();
        let field = err
            .strip_prefix("duplicate field ")
            .and_then(|rest| rest.split(": write").next())
            .unwrap();
        assert_eq!(field.chars().count(), MAX_PATH_CHARS + 1, "{field}");
        assert!(
            field.starts_with("abcdefghijklmnopqrstuvwxyz.abc"),
            "{field}"
        );
        assert!(field.ends_with("qrstuvwxyz.x"), "{field}");
    }

    #[test]
    fn distances() {
        assert_eq!(edit_distance("aws_region", "aws_regions"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("abc", ""), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
