//! Rootfs: placeholder with the interface; the real module lands from the rootfs branch.
#![allow(dead_code)]
use anyhow::Result;
use std::path::Path;

#[derive(Debug, Clone)]
pub struct Plan {}
pub fn plan(_spec: &oci_spec::runtime::Spec, _rootfs: &Path, _no_pivot: bool) -> Result<Plan> {
    Ok(Plan {})
}
pub fn setup(_plan: &Plan) -> Result<()> {
    Ok(())
}
pub fn pivot(_plan: &Plan) -> Result<()> {
    Ok(())
}
pub fn finalize(_plan: &Plan) -> Result<()> {
    Ok(())
}
pub fn mount_console(_slave: std::os::fd::BorrowedFd) -> Result<()> {
    Ok(())
}
