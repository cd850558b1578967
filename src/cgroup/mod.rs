//! Cgroups: placeholder with the interface; the real module lands from the cgroup branch.
#![allow(dead_code)]
use anyhow::Result;
use std::path::Path;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Cgroup {}
pub struct Write {
    pub controller: String,
    pub file: String,
    pub value: String,
}
impl Cgroup {
    pub fn resolve(_p: Option<&Path>, _id: &str) -> Result<Cgroup> {
        Ok(Cgroup {})
    }
    pub fn plan(&self, _r: Option<&oci_spec::runtime::LinuxResources>) -> Result<Vec<Write>> {
        Ok(vec![])
    }
    pub fn create(&mut self, _w: &[Write]) -> Result<()> {
        Ok(())
    }
    pub fn add_task(&self, _pid: i32) -> Result<()> {
        Ok(())
    }
    pub fn apply(&self, _w: &[Write]) -> Result<()> {
        Ok(())
    }
    pub fn pids(&self) -> Result<Vec<i32>> {
        Ok(vec![])
    }
    pub fn freeze(&self, _f: bool) -> Result<()> {
        Ok(())
    }
    pub fn is_frozen(&self) -> bool {
        false
    }
    pub fn destroy(&self) -> Result<()> {
        Ok(())
    }
    #[cfg(test)]
    pub fn for_tests() -> Cgroup {
        Cgroup {}
    }
}
