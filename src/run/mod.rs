//! Running generators: the sandbox (run directories, bubblewrap, the outputs check), the
//! panic-safe scheduler, prompts, progress and signals.

pub mod progress;
pub mod prompts;
pub mod sandbox;
