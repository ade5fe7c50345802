//! Searching the nix store, system closures and the repo for leaked secret values.
