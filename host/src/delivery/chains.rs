//! Order per user, concurrency between users: a batch of messages (a relay round, a bulk
//! delivery) is split into one chain per key, each chain run in order and the chains side by
//! side. The relay and the Dapr bulk route both split with [`by_key`].

use std::collections::HashMap;
use std::hash::Hash;

/// Splits `items` into one chain per key, each in the items' order, the chains in the order of
/// their first item. An item without a key (`None`) is a chain of its own.
pub fn by_key<T, K: Hash + Eq>(
    items: impl IntoIterator<Item = T>,
    key: impl Fn(&T) -> Option<K>,
) -> Vec<Vec<T>> {
    let mut index: HashMap<K, usize> = HashMap::new();
    let mut chains: Vec<Vec<T>> = Vec::new();
    for item in items {
        match key(&item) {
            Some(k) => match index.get(&k) {
                Some(&i) => chains[i].push(item),
                None => {
                    index.insert(k, chains.len());
                    chains.push(vec![item]);
                }
            },
            None => chains.push(vec![item]),
        }
    }
    chains
}
