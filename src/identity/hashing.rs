//! Where password hashing (argon2id) runs: on its own threads, never on a request worker.
//!
//! One argon2 check takes a core for tens of milliseconds. On a request worker it would stall
//! every request that worker holds; on tokio's blocking pool it would still compete on equal
//! terms with the workers for the cores. So it gets its own threads, one fewer than the cores
//! (at least one), at a lower CPU priority (nice 10): when the workers have something to do the
//! kernel gives them the core first, and a sign-in waits a little longer instead of every
//! catalog read (docs/BENCHMARKS.md, staff logins). Idle cores still run argon2 at full speed.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, LazyLock, Mutex, mpsc};

use super::AuthError;

type Job = Box<dyn FnOnce() + Send>;

/// Nice value of the argon2 threads: weight 110 against the workers' 1024, so about a tenth of
/// a contended core, and all of an idle one.
const NICENESS: i32 = 10;

static THREADS: LazyLock<Option<mpsc::Sender<Job>>> = LazyLock::new(start);

fn start() -> Option<mpsc::Sender<Job>> {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let (sender, receiver) = mpsc::channel::<Job>();
    let receiver = Arc::new(Mutex::new(receiver));
    let mut started = 0;
    for index in 0..cores.saturating_sub(1).max(1) {
        let receiver = receiver.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("argon2-{index}"))
            .spawn(move || {
                lower_priority();
                loop {
                    // The lock is held only while waiting for the next job, not while running it.
                    let job = match receiver.lock() {
                        Ok(receiver) => receiver.recv(),
                        Err(_) => return,
                    };
                    let Ok(job) = job else { return };
                    // A panicking job loses its own answer (the caller sees an internal
                    // error), not the thread.
                    let _ = catch_unwind(AssertUnwindSafe(job));
                }
            });
        match spawned {
            Ok(_) => started += 1,
            Err(error) => tracing::error!(%error, "cannot start an argon2 thread"),
        }
    }
    (started > 0).then_some(sender)
}

fn lower_priority() {
    let thread = rustix::thread::gettid();
    if let Err(error) = rustix::process::setpriority_process(Some(thread), NICENESS) {
        // Still correct, only without the priority: the workers then share the cores evenly.
        tracing::warn!(%error, "cannot lower the argon2 thread's CPU priority");
    }
}

/// Runs `work` on an argon2 thread and waits for it without blocking the caller's thread. A
/// job whose caller has gone (the request was dropped while queued) is skipped.
pub(super) async fn off_the_workers<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AuthError> {
    let Some(threads) = THREADS.as_ref() else {
        return Err(AuthError::Internal(anyhow::anyhow!(
            "no argon2 thread could be started"
        )));
    };
    let (answer, answered) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        if !answer.is_closed() {
            let _ = answer.send(work());
        }
    });
    threads
        .send(job)
        .map_err(|_| AuthError::Internal(anyhow::anyhow!("the argon2 threads have stopped")))?;
    answered
        .await
        .map_err(|_| AuthError::Internal(anyhow::anyhow!("an argon2 job did not finish")))
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn runs_work_off_the_calling_thread_and_returns_its_answer() {
        let caller = std::thread::current().id();
        let (answer, thread) = super::off_the_workers(|| (6 * 7, std::thread::current().id()))
            .await
            .unwrap();
        assert_eq!(answer, 42);
        assert_ne!(thread, caller);
    }

    #[tokio::test]
    async fn a_panicking_job_is_an_error_and_the_threads_keep_working() {
        let failed = super::off_the_workers(|| -> u8 { panic!("boom") }).await;
        assert!(failed.is_err());
        assert_eq!(super::off_the_workers(|| 1u8).await.unwrap(), 1);
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn the_threads_run_at_a_lower_priority() {
        let nice = super::off_the_workers(|| rustix::process::getpriority_process(None))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(nice, super::NICENESS);
    }
}
