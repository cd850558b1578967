//! hooks (to be written).
