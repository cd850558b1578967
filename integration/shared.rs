//! Helpers shared by the `integration` and `engines` targets (the latter
//! includes this file with #[path]).
use std::time::{Duration, Instant};

/// Polls `f` every `every` until it is true or `secs` pass: the bounded
/// wait both harnesses use instead of sleeping.
pub fn poll_every(secs: u64, every: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        if f() {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(every);
    }
}
