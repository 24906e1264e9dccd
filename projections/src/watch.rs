//! Which keys of a tree the folds wrote since a cache last looked: what lets a cache derived
//! from many keys (one alert per operator below the threshold) redo only the parts those
//! keys hold, instead of everything whenever a fold commits.
//!
//! In memory and per process: a cache lives in the process whose folds commit to the tree it
//! reads (every write of a fold goes through `runtime::commit`, which notes its keys here
//! once they are all written). A tree replaced by a rebuild is another tree, so its cache
//! starts over. Nothing here reaches a read model: the folds stay the only writers.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};

/// Past this many keys noted and not yet taken, a watch stops noting and reports that
/// everything may have changed: its cache is then rebuilt whole, which costs about what
/// looking at that many keys would. It bounds a watch nobody asks (a dashboard opened once,
/// then ingest for hours) to ~0.6 MiB; the anomaly detector keeps one per cached span.
const MOST_NOTED: usize = 1 << 13;

/// The keys written under `prefix` of one tree since [`KeyWatch::take`] was last called.
#[derive(Debug)]
pub(crate) struct KeyWatch {
    tree: sled::Tree,
    prefix: &'static [u8],
    /// `None` once more than [`MOST_NOTED`] keys were noted.
    written: Mutex<Option<BTreeSet<Vec<u8>>>>,
}

/// What a watch saw since it was last asked.
#[derive(Debug, PartialEq)]
pub(crate) enum Written {
    /// These keys (each once, in key order).
    Keys(BTreeSet<Vec<u8>>),
    /// Too many to list: anything under the prefix may have changed.
    Everything,
}

/// Every watch in the process; a dropped one is skipped and pruned by the next [`KeyWatch::start`].
static WATCHES: RwLock<Vec<Weak<KeyWatch>>> = RwLock::new(Vec::new());

impl KeyWatch {
    /// Starts noting the keys written under `prefix` of `tree` from now on (until dropped).
    /// Start it before reading what the cache derives, so that a commit under way while the
    /// cache reads is noted when it ends.
    pub(crate) fn start(tree: &sled::Tree, prefix: &'static [u8]) -> Arc<Self> {
        let watch = Arc::new(Self {
            tree: tree.clone(),
            prefix,
            written: Mutex::new(Some(BTreeSet::new())),
        });
        let mut watches = WATCHES.write().unwrap_or_else(PoisonError::into_inner);
        watches.retain(|w| w.strong_count() > 0);
        watches.push(Arc::downgrade(&watch));
        watch
    }

    /// The keys written since the last call (or the start), and forgets them.
    pub(crate) fn take(&self) -> Written {
        let mut written = self.written.lock().unwrap_or_else(PoisonError::into_inner);
        match written.replace(BTreeSet::new()) {
            Some(keys) => Written::Keys(keys),
            None => Written::Everything,
        }
    }

    fn note<'k>(&self, keys: impl Iterator<Item = &'k [u8]>) {
        let mut written = self.written.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(set) = written.as_mut() else { return };
        set.extend(
            keys.filter(|k| k.starts_with(self.prefix))
                .map(<[u8]>::to_vec),
        );
        if set.len() > MOST_NOTED {
            *written = None;
        }
    }
}

/// Whether two handles are the same tree (not merely equal contents): what a cache of
/// results computed from one tree checks before it answers for another.
pub(crate) fn same_tree(a: &sled::Tree, b: &sled::Tree) -> bool {
    std::ptr::eq(&**a, &**b)
}

/// Notes that `keys` of `tree` were written (called by the commit, after its writes).
pub(crate) fn written<'k>(tree: &sled::Tree, keys: impl Iterator<Item = &'k [u8]> + Clone) {
    let watches = WATCHES.read().unwrap_or_else(PoisonError::into_inner);
    for watch in watches.iter().filter_map(Weak::upgrade) {
        if same_tree(&watch.tree, tree) {
            watch.note(keys.clone());
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test fails by panicking
mod tests {
    use super::*;

    fn keys(list: &[&str]) -> Written {
        Written::Keys(list.iter().map(|k| k.as_bytes().to_vec()).collect())
    }

    #[test]
    fn a_watch_lists_the_keys_of_its_tree_and_prefix_written_since_it_last_looked() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let (tree, other) = (db.open_tree("a").unwrap(), db.open_tree("b").unwrap());
        written(&tree, [b"ps/early".as_slice()].into_iter());
        let watch = KeyWatch::start(&tree, b"ps/");
        let batch = [b"ps/op_b".as_slice(), b"os/op_b", b"ps/op_a", b"ps/op_b"];
        written(&tree, batch.into_iter());
        written(&other, [b"ps/elsewhere".as_slice()].into_iter());
        assert_eq!(watch.take(), keys(&["ps/op_a", "ps/op_b"]));
        assert_eq!(watch.take(), keys(&[]));
        // Dropped, it is no longer noted into, and the next start prunes it.
        drop(watch);
        written(&tree, [b"ps/op_c".as_slice()].into_iter());
        let again = KeyWatch::start(&tree, b"ps/");
        assert_eq!(again.take(), keys(&[]));
    }

    #[test]
    fn a_watch_that_would_list_too_many_keys_says_everything_changed() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let tree = db.open_tree("a").unwrap();
        let watch = KeyWatch::start(&tree, b"ps/");
        let many: Vec<Vec<u8>> = (0..=MOST_NOTED)
            .map(|n| format!("ps/{n}").into_bytes())
            .collect();
        written(&tree, many.iter().map(Vec::as_slice));
        assert_eq!(watch.take(), Written::Everything);
        assert_eq!(watch.take(), keys(&[]));
    }
}
