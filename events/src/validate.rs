//! Semantic validation with errors that name the field.

use std::fmt;

/// A rejected field: `field` is a dotted path inside the event (`data.score`), `reason` says
/// what was wrong with the value, in lowercase, without a trailing period.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct FieldError {
    /// Dotted path of the field inside the event, e.g. `data.skills_practiced[2]`.
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

impl FieldError {
    /// Builds an error for `field`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Prefixes the path, e.g. `score` inside `data` becomes `data.score`.
    pub fn within(mut self, parent: &str) -> Self {
        self.field = if self.field.is_empty() {
            parent.to_owned()
        } else if self.field.starts_with('[') {
            format!("{parent}{}", self.field)
        } else {
            format!("{parent}.{}", self.field)
        };
        self
    }
}

/// Longest identifier or free-text string accepted in a payload field.
pub const MAX_STRING_LEN: usize = 4096;
/// Most items accepted in a list field.
pub const MAX_LIST_LEN: usize = 1024;

/// Domain rules serde cannot express: ranges, finiteness, ordering of times, lengths.
pub trait Validate {
    /// Returns the first rule this value breaks, naming the field relative to the value.
    fn validate(&self) -> Result<(), FieldError>;
}

pub(crate) fn finite(field: &str, value: f64) -> Result<(), FieldError> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(FieldError::new(
            field,
            format!("must be a finite number, got {value}"),
        ))
    }
}

pub(crate) fn non_negative(field: &str, value: f64) -> Result<(), FieldError> {
    finite(field, value)?;
    if value < 0.0 {
        return Err(FieldError::new(
            field,
            format!("must not be negative, got {value}"),
        ));
    }
    Ok(())
}

pub(crate) fn unit_interval(field: &str, value: f64) -> Result<(), FieldError> {
    finite(field, value)?;
    if !(0.0..=1.0).contains(&value) {
        return Err(FieldError::new(
            field,
            format!("must be within 0..=1, got {value}"),
        ));
    }
    Ok(())
}

pub(crate) fn positive(field: &str, value: f64) -> Result<(), FieldError> {
    finite(field, value)?;
    if value <= 0.0 {
        return Err(FieldError::new(
            field,
            format!("must be greater than 0, got {value}"),
        ));
    }
    Ok(())
}

pub(crate) fn id(field: &str, value: &str) -> Result<(), FieldError> {
    if value.trim().is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    text(field, value)
}

pub(crate) fn text(field: &str, value: &str) -> Result<(), FieldError> {
    if value.len() > MAX_STRING_LEN {
        return Err(FieldError::new(
            field,
            format!(
                "is {} bytes long, the limit is {MAX_STRING_LEN}",
                value.len()
            ),
        ));
    }
    Ok(())
}

pub(crate) fn opt_text(field: &str, value: &Option<String>) -> Result<(), FieldError> {
    value.as_deref().map_or(Ok(()), |v| text(field, v))
}

pub(crate) fn ids(field: &str, values: &[String]) -> Result<(), FieldError> {
    if values.len() > MAX_LIST_LEN {
        return Err(FieldError::new(
            field,
            format!("has {} items, the limit is {MAX_LIST_LEN}", values.len()),
        ));
    }
    for (i, v) in values.iter().enumerate() {
        id(&format!("{field}[{i}]"), v)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within_builds_dotted_and_indexed_paths() {
        let e = FieldError::new("score", "bad")
            .within("data")
            .within("events[3]");
        assert_eq!(e.to_string(), "events[3].data.score: bad");
        let e = FieldError::new("[2]", "bad").within("skills");
        assert_eq!(e.field, "skills[2]");
    }

    #[test]
    fn ranges() {
        assert!(unit_interval("s", 1.0).is_ok());
        assert!(unit_interval("s", 1.01).is_err());
        assert!(unit_interval("s", f64::NAN).is_err());
        assert!(non_negative("c", -0.1).is_err());
        assert!(positive("a", 0.0).is_err());
    }
}
