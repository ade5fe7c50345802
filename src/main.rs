//! The `varsmith` binary: everything lives in the library; see [`varsmith::cli`].

/// mimalloc rather than glibc's malloc: the status pass of a 10,000-generator fleet allocates
/// and frees from several threads, where glibc's arenas contend (a no-op `generate` spent a
/// quarter of its time in malloc and free).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    varsmith::cli::main()
}
