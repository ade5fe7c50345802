//! The Nix side: the NixOS / nix-darwin module (nix/module.nix) against real Nix, the real
//! sops-nix module, real NixOS (2020 nixpkgs) and real nix-darwin (lib 26.11), after a real
//! `varsmith generate` of the example fleet (examples/fleet as a flake).
//!
//! The kit of tarballs in `../shared/nix/` makes it offline; in CI (`CI=true`) a missing nix or
//! kit fails the test, elsewhere it is skipped with the reason. Evaluations are batched into a
//! few `nix eval` calls (each call re-reads the flake; the nixpkgs tarball unpacks once).

mod common_nix;

use std::path::Path;

use common_nix::{Fleet, Kit};

/// The bundled generators as the module reads them (nix/generators.json): produced from
/// generators/*.yaml, which stays the only source of truth.
#[test]
fn bundled_generators_json() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let want = common_nix::bundled_json(&root.join("generators"));
    let path = root.join("nix/generators.json");
    if std::env::var_os("VARSMITH_UPDATE_NIX_GENERATORS").is_some() {
        std::fs::write(&path, &want).expect("write nix/generators.json");
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "nix/generators.json is out of sync with generators/*.yaml; regenerate it with\n  \
         VARSMITH_UPDATE_NIX_GENERATORS=1 cargo test --test nix_module bundled_generators_json"
    );
}

/// Everything that needs real Nix, in one test so evaluations and the generated workspace are
/// shared: a real `varsmith generate --all` of the example fleet, then NixOS and nix-darwin.
#[test]
fn nixos_and_darwin_configurations() {
    let Some(kit) = Kit::find() else { return };
    let fleet = Fleet::generate(&kit);
    fleet.check_nixos();
    fleet.check_fingerprints();
    fleet.check_darwin();
    fleet.check_toplevel_and_audit();
    fleet.check_missing_and_stale();
}
