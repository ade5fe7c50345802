//! Group flushes: many commits, one `syncfs`.
//!
//! A commit's temp files must be on disk before they are renamed into place (else a power loss
//! could leave a renamed but empty file). Each commit asks for a flush that *starts after* its
//! writes; when one is already running, the commit waits for the next one, which then covers
//! every commit that asked in the meantime. Serial runs overlap their flush with the next
//! script (see `run::scheduler`), parallel ones share it.

use std::sync::{Condvar, Mutex};

use super::Error;
use super::fs::Dir;

#[derive(Default)]
struct State {
    /// Flushes started so far (the number of the last one).
    started: u64,
    /// The last flush that finished (successfully or not).
    completed: u64,
    /// The last flush that finished successfully.
    completed_ok: u64,
    syncing: bool,
}

static STATE: Mutex<State> = Mutex::new(State {
    started: 0,
    completed: 0,
    completed_ok: 0,
    syncing: false,
});
static DONE: Condvar = Condvar::new();

/// Returns once a flush of `dir`'s filesystem that started after this call finished.
pub(crate) fn flush(dir: &Dir) -> Result<(), Error> {
    let mut st = STATE.lock().unwrap_or_else(|e| e.into_inner());
    let target = st.started + 1;
    loop {
        if st.completed_ok >= target {
            return Ok(());
        }
        if st.completed >= target {
            // The flush covering our writes failed: try once more ourselves.
            drop(st);
            return Ok(dir.sync_fs()?);
        }
        if !st.syncing {
            st.syncing = true;
            st.started += 1;
            let mine = st.started;
            drop(st);
            let r = dir.sync_fs();
            let mut st = STATE.lock().unwrap_or_else(|e| e.into_inner());
            st.syncing = false;
            st.completed = mine;
            if r.is_ok() {
                st.completed_ok = mine;
            }
            DONE.notify_all();
            return Ok(r?);
        }
        st = DONE.wait(st).unwrap_or_else(|e| e.into_inner());
    }
}
