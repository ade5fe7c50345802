//! Per-node work of a whole fleet (the status pass of `generate` and `check`) spread over the
//! cores: reading 10,000 generators' manifests, facts and secrets files is system calls, which
//! run in parallel in the kernel.
//!
//! Invariant: the result is in `nodes`' order and the same as a serial map; `f` must only read
//! (every caller reads the workspace under its lock). A panic in `f` is resumed on the caller.

/// Nodes per thread below which no thread is started.
const MIN_PER_THREAD: usize = 256;

/// At most this many threads (status work is short; more threads only contend).
const MAX_THREADS: usize = 4;

/// `nodes.iter().map(f)`, on up to [`MAX_THREADS`] scoped threads (one per core, at least
/// [`MIN_PER_THREAD`] nodes each), in order.
pub(crate) fn map_nodes<T: Send>(nodes: &[usize], f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = cores
        .min(MAX_THREADS)
        .min(nodes.len() / MIN_PER_THREAD)
        .max(1);
    if threads == 1 {
        return nodes.iter().map(|&i| f(i)).collect();
    }
    let chunk = nodes.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = nodes
            .chunks(chunk)
            .map(|c| s.spawn(move || c.iter().map(|&i| f(i)).collect::<Vec<T>>()))
            .collect();
        let mut out = Vec::with_capacity(nodes.len());
        for h in handles {
            match h.join() {
                Ok(v) => out.extend(v),
                Err(p) => std::panic::resume_unwind(p),
            }
        }
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_as_a_serial_map_in_order() {
        for n in [0, 1, 255, 256, 513, 5000] {
            let nodes: Vec<usize> = (0..n).rev().collect();
            let got = map_nodes(&nodes, |i| i * 3 + 1);
            let want: Vec<usize> = nodes.iter().map(|i| i * 3 + 1).collect();
            assert_eq!(got, want, "{n} nodes");
        }
    }
}
