//! A vector kept as shared, fixed-size chunks: the storage of the ratchet tree's nodes and
//! cached hashes.
//!
//! A commit works on a copy of the tree and a past epoch keeps one; with one flat vector each
//! copy (and each drop) touches every node. Here a copy shares all chunks, and a write copies
//! only the chunk it lands in (copy-on-write), so a commit that changes one direct path pays
//! O(log n) chunk copies instead of O(n) per clone.

use std::sync::Arc;

/// Entries per chunk: large enough that a tree of 100,000 nodes is a few hundred chunks,
/// small enough that copying one on write is cheap.
const CHUNK: usize = 256;

/// A copy-on-write chunked vector.
#[derive(Debug, Clone)]
pub(super) struct Chunked<T: Clone> {
    chunks: Vec<Arc<Vec<T>>>,
    len: usize,
}

impl<T: Clone> Chunked<T> {
    /// The entries of `items`, in order.
    pub(super) fn from_vec(items: Vec<T>) -> Self {
        let len = items.len();
        let mut chunks = Vec::with_capacity(len.div_ceil(CHUNK));
        let mut items = items.into_iter();
        loop {
            let chunk: Vec<T> = items.by_ref().take(CHUNK).collect();
            if chunk.is_empty() {
                break;
            }
            chunks.push(Arc::new(chunk));
        }
        Self { chunks, len }
    }

    /// The number of entries.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// The entry at `i`.
    pub(super) fn get(&self, i: usize) -> Option<&T> {
        if i >= self.len {
            return None;
        }
        self.chunks.get(i / CHUNK).and_then(|c| c.get(i % CHUNK))
    }

    /// The entry at `i`, for writing: its chunk is copied first if another copy shares it.
    pub(super) fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        if i >= self.len {
            return None;
        }
        self.chunks
            .get_mut(i / CHUNK)
            .and_then(|c| Arc::make_mut(c).get_mut(i % CHUNK))
    }

    /// Every entry, in order.
    pub(super) fn iter(&self) -> impl Iterator<Item = &T> + '_ {
        self.chunks.iter().flat_map(|c| c.iter())
    }

    /// The entries from `start` (inclusive) to `end` (exclusive), in order, without walking
    /// the entries before `start`.
    pub(super) fn range(&self, start: usize, end: usize) -> impl Iterator<Item = &T> + '_ {
        let end = end.min(self.len);
        let start = start.min(end);
        let first = start / CHUNK;
        let skip = start % CHUNK;
        self.chunks[first..]
            .iter()
            .flat_map(|c| c.iter())
            .skip(skip)
            .take(end - start)
    }

    /// Grows or shrinks to `len` entries, new ones being `value`.
    pub(super) fn resize(&mut self, len: usize, value: T) {
        if len <= self.len {
            self.truncate(len);
            return;
        }
        let mut missing = len - self.len;
        if let Some(last) = self.chunks.last_mut() {
            let room = (CHUNK - last.len()).min(missing);
            if room > 0 {
                Arc::make_mut(last).extend(std::iter::repeat_n(value.clone(), room));
                missing -= room;
            }
        }
        while missing > 0 {
            let n = missing.min(CHUNK);
            self.chunks
                .push(Arc::new(std::iter::repeat_n(value.clone(), n).collect()));
            missing -= n;
        }
        self.len = len;
    }

    /// Keeps the first `len` entries.
    pub(super) fn truncate(&mut self, len: usize) {
        if len >= self.len {
            return;
        }
        self.chunks.truncate(len.div_ceil(CHUNK));
        let keep = len - self.chunks.len().saturating_sub(1) * CHUNK;
        if let Some(last) = self.chunks.last_mut() {
            if last.len() > keep {
                Arc::make_mut(last).truncate(keep);
            }
        }
        self.len = len;
    }

    /// Sets every entry to `value`.
    pub(super) fn fill(&mut self, value: T) {
        let len = self.len;
        self.chunks.clear();
        self.len = 0;
        self.resize(len, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every operation agrees with a plain `Vec`, across chunk boundaries, and a copy is not
    /// affected by writes to the original.
    #[test]
    fn behaves_like_a_vec() {
        let mut plain: Vec<u32> = (0..700).collect();
        let mut chunked = Chunked::from_vec(plain.clone());
        let check = |c: &Chunked<u32>, p: &Vec<u32>| {
            assert_eq!(c.len(), p.len());
            assert!(c.iter().eq(p.iter()));
            for (s, e) in [
                (0, 0),
                (0, 5),
                (250, 260),
                (255, 513),
                (600, 9999),
                (699, 700),
            ] {
                let want: Vec<_> = p
                    .get(s.min(p.len())..e.min(p.len()))
                    .unwrap_or(&[])
                    .to_vec();
                assert!(c.range(s, e).copied().eq(want), "range {s}..{e}");
            }
            assert_eq!(c.get(p.len()), None);
        };
        check(&chunked, &plain);
        let copy = chunked.clone();
        *chunked.get_mut(300).unwrap() = 1;
        plain[300] = 1;
        check(&chunked, &plain);
        assert_eq!(copy.get(300), Some(&300));
        for len in [1023, 256, 1, 513, 0, 5] {
            chunked.resize(len, 7);
            plain.resize(len, 7);
            check(&chunked, &plain);
        }
        chunked.truncate(3);
        plain.truncate(3);
        check(&chunked, &plain);
        chunked.fill(9);
        assert!(chunked.iter().all(|&x| x == 9) && chunked.len() == 3);
        assert_eq!(copy.len(), 700);
    }
}
