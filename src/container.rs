//! container (to be written).
