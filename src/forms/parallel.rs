//! Per-definition work spread over the machine's cores while the catalog loads.
//!
//! Loading checks and compiles every definition independently (parsing, the rules, the examples,
//! the JSON Schema); with ~170 of them that is most of startup, and nothing else runs yet.

use std::sync::Mutex;

/// `work` applied to every item, on up to one thread per core, results in the items' order.
/// Items are handed out one at a time, so one slow definition does not hold up a whole share.
pub(crate) fn map<T: Send, R: Send>(items: Vec<T>, work: impl Fn(T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .min(items.len());
    if threads <= 1 {
        return items.into_iter().map(work).collect();
    }
    let count = items.len();
    let queue = Mutex::new(items.into_iter().enumerate());
    let next = || queue.lock().ok().and_then(|mut queue| queue.next());
    let mut done: Vec<(usize, R)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut results = Vec::new();
                    while let Some((index, item)) = next() {
                        results.push((index, work(item)));
                    }
                    results
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| match worker.join() {
                Ok(results) => results,
                // A panic in `work` is a bug; let it surface as it would have without threads.
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    });
    debug_assert_eq!(done.len(), count);
    done.sort_unstable_by_key(|(index, _)| *index);
    done.into_iter().map(|(_, result)| result).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_the_order_and_every_item() {
        let items: Vec<u64> = (0..1000).collect();
        let squares = super::map(items, |n| n * n);
        assert_eq!(squares, (0..1000u64).map(|n| n * n).collect::<Vec<_>>());
    }

    #[test]
    fn handles_no_items_and_one() {
        assert!(super::map(Vec::<u8>::new(), |n| n).is_empty());
        assert_eq!(super::map(vec![7u8], |n| n + 1), vec![8]);
    }
}
