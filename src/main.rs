/// mimalloc rather than glibc's malloc: a drill decodes and frees many
/// small values on several threads (journal records on every core at
/// resume, output batches filled by the pump and freed by the front-end),
/// where glibc spent about a sixth of a resume's CPU in malloc and free.
/// Measured: resume of 100,000 events about 15% faster, the same streaming
/// CPU and peak RSS (BENCHMARKS.md, #17 third pass). Tuned in
/// [`drillbook::allocator`].
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    drillbook::allocator::tune();
    // Plain mode prints panics with the default hook; the TUI installs its own chain.
    drillbook::engine::panic_redaction::install(|| {});
    drillbook::cli::main()
}
