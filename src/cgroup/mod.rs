//! Cgroups (to be written).
