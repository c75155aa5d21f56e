//! The connection pool: one small deadpool per thread that uses the database.
//!
//! tokio-postgres drives each connection with a task on the runtime that opened it, and every
//! actix worker thread has a runtime of its own. With one pool shared by the workers, a request
//! on worker A that checks out a connection opened on worker B sends each statement through B:
//! A wakes B, B writes to the socket, reads the answer and wakes A, for every statement. A pool
//! per thread keeps each connection on the thread that opened it, so a statement costs no
//! wake-up of another thread (docs/BENCHMARKS.md, issue #21).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use diesel_async::AsyncPgConnection;
use diesel_async::pooled_connection::deadpool::{Object, Pool, PoolError};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use thread_local::ThreadLocal;

pub type DbConn = Object<AsyncPgConnection>;

/// Connections in use and idle, summed over every thread's pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStatus {
    pub size: usize,
    pub available: usize,
}

/// A pool per thread, created the first time that thread asks for a connection. Cloning shares
/// the pools.
#[derive(Clone)]
pub struct DbPool {
    inner: Arc<PerThread>,
}

struct PerThread {
    url: String,
    /// The most connections one thread's pool opens.
    size_per_thread: usize,
    wait: Duration,
    pools: ThreadLocal<Pool<AsyncPgConnection>>,
}

impl DbPool {
    /// A pool for `threads` threads sharing `total` connections: each thread's pool opens at most
    /// `total / threads`, rounded up, and at least 2 (a request may hold two at once) unless the
    /// total is smaller. The URL already carries the session options.
    pub fn new(url: String, total: usize, threads: usize, wait: Duration) -> anyhow::Result<Self> {
        let size_per_thread = total.div_ceil(threads.max(1)).max(2).min(total.max(1));
        let pool = Self {
            inner: Arc::new(PerThread {
                url,
                size_per_thread,
                wait,
                pools: ThreadLocal::new(),
            }),
        };
        // Building a pool only fails on a bad configuration: find that out now, not per request.
        pool.inner.build().context("building the database pool")?;
        Ok(pool)
    }

    /// A connection of the calling thread's pool.
    pub async fn get(&self) -> Result<DbConn, PoolError> {
        let pool = self
            .inner
            .pools
            .get_or_try(|| self.inner.build())
            // The only build error, no runtime, was ruled out when the first pool was built.
            .map_err(|_| PoolError::NoRuntimeSpecified)?;
        pool.get().await
    }

    pub fn status(&self) -> PoolStatus {
        self.inner
            .pools
            .iter()
            .map(Pool::status)
            .fold(PoolStatus::default(), |sum, status| PoolStatus {
                size: sum.size + status.size,
                available: sum.available + status.available,
            })
    }

    /// The most connections one thread opens.
    pub fn size_per_thread(&self) -> usize {
        self.inner.size_per_thread
    }
}

impl PerThread {
    /// A connection is handed out again without a test query (`RecyclingMethod::Fast`): one
    /// round trip less on every request. A connection PostgreSQL closed (a restart, a terminated
    /// backend) is still never reused, because the client sees the socket close and the pool
    /// drops connections that are closed or mid-transaction; a failure in between surfaces as a
    /// 503 (tested by stopping PostgreSQL under load).
    fn build(&self) -> Result<Pool<AsyncPgConnection>, deadpool::managed::BuildError> {
        let mut config = ManagerConfig::default();
        config.recycling_method = RecyclingMethod::Fast;
        let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(
            self.url.clone(),
            config,
        );
        Pool::builder(manager)
            .max_size(self.size_per_thread)
            .wait_timeout(Some(self.wait))
            .create_timeout(Some(self.wait))
            .recycle_timeout(Some(self.wait))
            .runtime(deadpool::Runtime::Tokio1)
            .build()
    }
}
