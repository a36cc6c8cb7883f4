//! How drillbook's memory allocator (mimalloc, see `main.rs`) is tuned at
//! start, before any drill work.

use std::ffi::{c_int, c_long};

// Links mimalloc's C library, whose options are set here, into every binary.
use mimalloc as _;

/// Indices into mimalloc's `mi_option_e` (mimalloc.h, v3, as built by
/// `libmimalloc-sys` 0.1.49); the unit test below checks them against
/// their defaults, so a renumbering fails the tests.
const PURGE_DELAY: c_int = 15;

unsafe extern "C" {
    fn mi_option_set(option: c_int, value: c_long);
    #[cfg(test)]
    fn mi_option_get(option: c_int) -> c_long;
}

/// Call first thing in `main`.
///
/// - Memory freed is given back to the system at once instead of after
///   a second: a `k8s-wait` decoding the events of 500 pods peaked at 45-48 MiB
///   with the delay and 41-42 MiB without it (glibc: 40 MiB); a resume
///   costs a few percent more for it.
/// - mimalloc is built `no_thp`: on Linux it would otherwise commit its
///   arenas into 2 MiB transparent huge pages (a quiet drill: 37 MiB instead
///   of 24). It turns them off with `prctl(PR_SET_THP_DISABLE)`, which every
///   command the drill runs would inherit; this gives the commands the
///   system's setting back. drillbook's own heap stays off huge pages, as
///   mimalloc no longer asks for them.
pub fn tune() {
    // SAFETY: a setter of mimalloc's option table (linked in by the
    // `mimalloc` crate); the delay is read each time memory is purged.
    unsafe { mi_option_set(PURGE_DELAY, 0) };
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes an integer flag and no pointers.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 0, 0, 0, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_option_indices_are_mimallocs() {
        // Defaults in mimalloc v3's options.c: purge_delay 1000 (ms), arena_eager_commit 2.
        // SAFETY: plain getters of mimalloc's option table.
        unsafe {
            assert_eq!(mi_option_get(PURGE_DELAY), 1000, "mi_option_purge_delay");
            assert_eq!(mi_option_get(4), 2, "mi_option_arena_eager_commit");
        }
    }
}
