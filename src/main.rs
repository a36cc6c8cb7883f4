fn main() -> std::process::ExitCode {
    limit_malloc_arenas();
    // Plain mode prints panics with the default hook; the TUI installs its own chain.
    drillbook::engine::panic_redaction::install(|| {});
    drillbook::cli::main()
}

/// glibc gives every thread that allocates its own heap arena (up to 8 per
/// core); a drill's threads each touch a few, and memory freed in one arena
/// is not reused by another. Two arenas keep the resident size close to what
/// is live (measured: a `k8s-wait` on 500 pods, see BENCHMARKS.md).
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; it is called before any
    // other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}
