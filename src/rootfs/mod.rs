//! Rootfs setup (to be written).
