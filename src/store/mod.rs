//! On-disk layout, atomic commits and fingerprints.
