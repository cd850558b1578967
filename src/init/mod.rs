//! Container init (to be written).
