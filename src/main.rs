fn main() -> std::process::ExitCode {
    tune_malloc();
    // Plain mode prints panics with the default hook; the TUI installs its own chain.
    drillbook::engine::panic_redaction::install(|| {});
    drillbook::cli::main()
}

/// glibc gives every thread that allocates its own heap arena (up to 8 per
/// core); a drill's threads each touch a few, and memory freed in one arena
/// is not reused by another. Two arenas keep the resident size close to what
/// is live (measured: a `k8s-wait` on 500 pods, see BENCHMARKS.md).
///
/// Streaming hands buffers from thread to thread (a batch is filled by the
/// pump and freed by the front-end): with glibc's default 128 KiB trim
/// threshold, the arena gave the freed top back to the kernel and took it
/// again for the next batch, zeroed page by page (3,900 to 20,000 page
/// faults streaming 63 MB; 1,400 to 3,700 with these). Up to 16 MiB stays
/// with each arena instead, and buffers under 4 MiB (a journal block, a
/// decoded round) come from the heap rather than from an mmap each time.
fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; it is called before any
    // other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 16 << 20);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
    }
}
