// The binary starts at `skiff_entry` (src/seal.rs): the seal's re-exec
// happens there, before the C library's start-up, which it would
// otherwise run twice. That code then jumps to the usual `_start`.
fn main() {
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("x86_64")
        && std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
    {
        println!("cargo:rustc-link-arg-bins=-Wl,--entry=skiff_entry");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
