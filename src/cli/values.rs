//! The value converters the flag tables use (`cli::path`, `cli::number`,
//! ...): each turns an argument into a typed value or says why it is bad.

use std::ffi::OsString;
use std::path::PathBuf;
use std::str::FromStr;

/// A path value: not empty.
pub fn path(v: OsString) -> Result<PathBuf, String> {
    match v.is_empty() {
        true => Err("a value is required".into()),
        false => Ok(PathBuf::from(v)),
    }
}

/// A UTF-8 value.
pub fn string(v: OsString) -> Result<String, String> {
    v.into_string().map_err(|_| "invalid UTF-8".into())
}

/// A number: `i32`, `u64`, …
pub fn number<T: FromStr>(v: OsString) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    string(v)?.parse().map_err(|e: T::Err| e.to_string())
}

/// One of a fixed set of words.
pub fn one_of(v: OsString, allowed: &[&str]) -> Result<String, String> {
    let s = string(v)?;
    match allowed.contains(&s.as_str()) {
        true => Ok(s),
        false => Err(format!("possible values: {}", allowed.join(", "))),
    }
}
