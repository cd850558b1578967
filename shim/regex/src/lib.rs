//! oci-spec validates `process.execCPUAffinity` with the `regex` crate,
//! whose Unicode tables (about 200 KB of pointer tables) sit in the binary's
//! relocated data: the static-pie start-up rewrites every page of them in
//! every skiff process, and each container init carries them as dirty
//! memory. That one ASCII pattern needs none of it, so `[patch.crates-io]`
//! points `regex` here: regex-lite (same author, same API subset, no
//! Unicode tables).
pub use regex_lite::*;
