//! varsmith's integration tests: one binary (as ripgrep has), one module per area, and
//! `util/` for the real-component harnesses (sops, sshd, the nix kit, tty, CI detection).

// A test binary exports nothing: `pub` in its modules only makes helpers visible to siblings.
#![allow(unreachable_pub)]

mod util;

mod advice;
mod audit_cli;
mod audit_encodings;
mod audit_store;
mod check_gate;
mod clan_compat;
mod cli_surface;
mod eval_cache;
mod flake_defs;
mod gates;
mod generate;
mod hardening_sandbox;
mod home_manager;
mod hostile_audit;
mod hostile_env;
mod hostile_sandbox;
mod hostile_workspace;
mod import;
mod inventory_edit;
mod keys_identities;
mod lifecycle;
mod nix_module;
mod remote_activation_staging;
mod remote_bootstrap;
mod remote_bootstrap_pin;
mod remote_cli;
mod remote_darwin_preview;
mod remote_deploy;
mod remote_dry;
mod remote_hey_flags;
mod remote_install;
mod remote_pins;
mod remote_push;
mod remote_rotate_verb;
mod remote_rotation;
mod remote_verify;
mod sandbox;
mod sops_bounds;
mod sops_errors;
mod sops_fidelity;
mod sops_interop;
mod sops_props;
mod sops_rules;
mod sops_vectors;
mod sops_verbs;
mod store_safety;
mod template_walk;
mod tty_prompts;
mod validation;
mod zerotier;
