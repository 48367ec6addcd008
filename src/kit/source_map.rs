//! The book's map from raw source to internal key.

use std::io;

use crate::source::RawSource;

/// Raw source to internal key.
///
/// On Unix a table indexed by fd: fds are small dense integers (the lowest free one is always
/// reused), so the table only grows to the highest fd registered (4 bytes an fd, and never
/// beyond the process's fd limit), and a lookup is an index rather than a hash.
#[cfg(unix)]
#[derive(Debug, Default)]
pub(super) struct SourceMap {
    /// `key + 1` by fd; 0 for none.
    keys: Vec<u32>,
    len: usize,
}

#[cfg(unix)]
impl SourceMap {
    /// Whether `raw` can be recorded under `key`.
    pub(super) fn check(raw: RawSource, key: usize) -> io::Result<()> {
        if raw < 0 || key >= u32::MAX as usize {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("source {raw} cannot be registered (negative fd or too many registrations)"),
            ));
        }
        Ok(())
    }

    #[inline]
    pub(super) fn get(&self, raw: RawSource) -> Option<usize> {
        let slot = *self.keys.get(usize::try_from(raw).ok()?)?;
        (slot as usize).checked_sub(1)
    }

    /// Records `raw` (not yet recorded) under `key`, as accepted by [`check`](Self::check).
    pub(super) fn insert(&mut self, raw: RawSource, key: usize) {
        let (Ok(fd), Ok(slot)) = (usize::try_from(raw), u32::try_from(key + 1)) else {
            unreachable!("vacant_key checks the fd and key");
        };
        if fd >= self.keys.len() {
            // Amortised growth (`resize` reserves like `push`); only on registration.
            self.keys.resize(fd + 1, 0);
        }
        self.keys[fd] = slot;
        self.len += 1;
    }

    pub(super) fn remove(&mut self, raw: RawSource) -> Option<usize> {
        let slot = self.keys.get_mut(usize::try_from(raw).ok()?)?;
        let key = (*slot as usize).checked_sub(1)?;
        *slot = 0;
        self.len -= 1;
        Some(key)
    }

    pub(super) fn clear(&mut self) {
        self.keys.clear();
        self.len = 0;
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }
}

/// Raw source to internal key.
///
/// On Windows a hash map over socket handles (kernel handles: multiples of 4, not dense), with
/// a multiplicative hash: sockets are not attacker-chosen, so SipHash buys nothing here.
#[cfg(not(unix))]
#[derive(Debug, Default)]
pub(super) struct SourceMap(
    std::collections::HashMap<RawSource, usize, std::hash::BuildHasherDefault<SocketHasher>>,
);

/// Fibonacci hashing of a handle; the high half is folded into the low bits, which pick the
/// bucket, as handles share their low bits.
#[cfg(not(unix))]
#[derive(Default)]
struct SocketHasher(u64);

#[cfg(not(unix))]
impl std::hash::Hasher for SocketHasher {
    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 32)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

#[cfg(not(unix))]
impl SourceMap {
    /// Whether `raw` can be recorded under `key`: always.
    pub(super) fn check(_raw: RawSource, _key: usize) -> io::Result<()> {
        Ok(())
    }

    #[inline]
    pub(super) fn get(&self, raw: RawSource) -> Option<usize> {
        self.0.get(&raw).copied()
    }

    pub(super) fn insert(&mut self, raw: RawSource, key: usize) {
        self.0.insert(raw, key);
    }

    pub(super) fn remove(&mut self, raw: RawSource) -> Option<usize> {
        self.0.remove(&raw)
    }

    pub(super) fn clear(&mut self) {
        self.0.clear();
    }

    pub(super) fn len(&self) -> usize {
        self.0.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_map() {
        let mut map = SourceMap::default();
        // Unix fds are small; Windows sockets are multiples of 4 and can be large.
        let raws: Vec<RawSource> = (0..2000).map(|i| i * 4).chain([100_003]).collect();
        for (key, &raw) in raws.iter().enumerate() {
            assert_eq!(map.get(raw), None);
            map.insert(raw, key);
        }
        assert_eq!(map.len(), raws.len());
        for (key, &raw) in raws.iter().enumerate() {
            assert_eq!(map.get(raw), Some(key));
        }
        assert_eq!(map.get(1), None);
        for (key, &raw) in raws.iter().enumerate().step_by(2) {
            assert_eq!(map.remove(raw), Some(key));
            assert_eq!(map.remove(raw), None);
        }
        for (key, &raw) in raws.iter().enumerate() {
            assert_eq!(map.get(raw), (key % 2 == 1).then_some(key));
        }
        map.clear();
        assert_eq!(map.len(), 0);
        assert_eq!(map.get(4), None);
    }
}
