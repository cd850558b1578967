//! `every!`: the list of all variants of an enum (oci-spec's, whose
//! variants are the names config.json may use), checked complete when
//! skiff is built. `skiff features` prints such lists, so they must be
//! what the parser accepts and the code handles: the match inside has no
//! wildcard, so a variant left out (oci-spec adding one) fails the build
//! here, next to the exhaustive match in the code that handles it.
//! Runs in: nowhere at run time; the lists are constants.

/// `every!(Type: Type::A, Type::B, ...)` → `[Type; N]`, all variants.
macro_rules! every {
    ($t:ty: $($v:path),+ $(,)?) => {{
        #[allow(dead_code)]
        const fn complete(x: $t) {
            match x {
                $($v)|+ => {}
            }
        }
        [$($v),+]
    }};
}
pub(crate) use every;
