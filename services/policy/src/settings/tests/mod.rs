//! Tests of the settings core, kept apart so the modules stay short.

mod catalogue;
mod parse;
mod resolve;
mod resolve_props;
mod validate_objects;
mod validate_scalars;
mod value;

use super::{Definition, Value, lookup, validate};

pub(super) fn def(name: &str) -> &'static Definition {
    lookup(name).unwrap()
}

pub(super) fn accepted(name: &str, value: impl Into<Value>) -> Value {
    validate(def(name), value.into()).unwrap_or_else(|e| panic!("refused: {e}"))
}

/// Refused, and the error names the setting and contains `needle`.
pub(super) fn refused(name: &str, value: impl Into<Value>, needle: &str) {
    let value = value.into();
    let e = validate(def(name), value.clone()).expect_err(&format!("{name} took {value:?}"));
    assert_eq!(e.setting, name);
    let text = e.to_string();
    assert!(text.starts_with(&format!("{name}: ")), "{text}");
    assert!(text.contains(needle), "{text:?} lacks {needle:?}");
}
