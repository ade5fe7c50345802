//! Host keys to targets (push-keys), nixos-anywhere bootstrap, and wrapped deploys.
