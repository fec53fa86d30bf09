//! What every configuration part shares: its pgai JSON shape (`implementation`,
//! `config_type`, then the parameters) and validation on the way in and out.

use serde::{de::DeserializeOwned, Serialize};
use serde_json::{Map, Value};

use crate::error::{ConfigError, Result, SqlState};

/// One part of a vectorizer's configuration (loading, chunking, embedding, …).
pub trait ConfigPart: Serialize + DeserializeOwned {
    /// The value of `config_type` in the JSON, and the parameter's name in
    /// `ai.create_vectorizer`.
    const CONFIG_TYPE: &'static str;
    /// The builders that make this part, for hints.
    const BUILDERS: &'static str;

    /// Checks what can be checked without the source table.
    fn validate(&self) -> Result<()> {
        Ok(())
    }

    /// Validates and returns the pgai-shaped JSON: what the `ai.*` builders return.
    fn build(&self) -> Result<Value> {
        self.validate()?;
        Ok(self.to_json())
    }

    /// The pgai-shaped JSON, without validation.
    fn to_json(&self) -> Value {
        let mut value = serde_json::to_value(self).expect("configuration serializes");
        if let Value::Object(map) = &mut value {
            map.insert("config_type".into(), Value::from(Self::CONFIG_TYPE));
        }
        value
    }

    /// What pgai's builders return: the arguments given, those that are SQL NULL left
    /// out (as pgai's `json_strip_nulls` leaves them), read as the part (defaults fill
    /// what was left out; it is validated) and written back.
    fn from_arguments(implementation: &str, arguments: Value) -> Result<Value> {
        let mut map = match arguments {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        map.retain(|_, v| !v.is_null());
        map.insert("implementation".into(), Value::from(implementation));
        map.insert("config_type".into(), Value::from(Self::CONFIG_TYPE));
        Ok(Self::from_json(&Value::Object(map))?.to_json())
    }

    /// Reads and validates a part from JSON that a builder made or a user wrote.
    fn from_json(value: &Value) -> Result<Self> {
        let map = object(value, Self::CONFIG_TYPE, Self::BUILDERS)?;
        match map.get("config_type").and_then(Value::as_str) {
            Some(t) if t == Self::CONFIG_TYPE => {}
            found => {
                return Err(ConfigError::invalid(format!(
                    "{} configuration has config_type {}, expected \"{}\"",
                    Self::CONFIG_TYPE,
                    found.map_or("missing".to_string(), |t| format!("\"{t}\"")),
                    Self::CONFIG_TYPE
                ))
                .with_hint(format!("build it with {}", Self::BUILDERS)))
            }
        }
        let mut params = map.clone();
        params.remove("config_type");
        let part: Self = serde_json::from_value(Value::Object(params)).map_err(|e| {
            ConfigError::invalid(format!("invalid {} configuration: {e}", Self::CONFIG_TYPE))
                .with_hint(format!("build it with {}", Self::BUILDERS))
        })?;
        part.validate()?;
        Ok(part)
    }
}

/// Reads a required part: SQL NULL is an error naming the parameter.
pub fn required<T: ConfigPart>(value: Option<&Value>) -> Result<T> {
    match value {
        None | Some(Value::Null) => Err(ConfigError::new(
            SqlState::NullValueNotAllowed,
            format!("{} configuration is required", T::CONFIG_TYPE),
        )
        .with_hint(format!("pass {} => {}", T::CONFIG_TYPE, T::BUILDERS))),
        Some(v) => T::from_json(v),
    }
}

fn object<'a>(value: &'a Value, kind: &str, builders: &str) -> Result<&'a Map<String, Value>> {
    value.as_object().ok_or_else(|| {
        ConfigError::invalid(format!(
            "{kind} configuration must be a JSON object, got {value}"
        ))
        .with_hint(format!("build it with {builders}"))
    })
}

/// Checks an integer parameter lies in `range`.
pub fn in_range(what: &str, value: i32, range: std::ops::RangeInclusive<i32>) -> Result<()> {
    if range.contains(&value) {
        Ok(())
    } else if *range.end() == i32::MAX {
        Err(ConfigError::invalid(format!(
            "{what} must be at least {}, got {value}",
            range.start()
        )))
    } else {
        Err(ConfigError::invalid(format!(
            "{what} must be between {} and {}, got {value}",
            range.start(),
            range.end()
        )))
    }
}
