//! The `varsmith` binary: everything lives in the library; see [`varsmith::cli`].

fn main() -> std::process::ExitCode {
    varsmith::cli::main()
}
