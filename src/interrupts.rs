//! Waiting for async work in a backend without becoming deaf to it.

use std::future::Future;
use std::time::Duration;

use pgrx::prelude::*;

thread_local! {
    /// The backend's runtime, kept between calls: the clients it made (and their
    /// connections and cached AWS credentials) stay usable by the next call.
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .on_thread_start(ai_loader_pipeline::signals::block_all)
        .enable_all()
        .build()
        .unwrap_or_else(|e| error!("ai_loader: cannot start a runtime: {e}"));
}

/// Runs `work` to completion on a runtime on the backend's own thread, in 100 ms
/// slices, so that cancel and `statement_timeout` interrupt it (an ERROR ends it).
pub fn block_on<F: Future>(work: F) -> F::Output {
    RUNTIME.with(|runtime| run_in_slices(runtime, work))
}

fn run_in_slices<F: Future>(runtime: &tokio::runtime::Runtime, work: F) -> F::Output {
    let mut work = std::pin::pin!(work);
    loop {
        match runtime
            .block_on(async { tokio::time::timeout(Duration::from_millis(100), &mut work).await })
        {
            Ok(output) => return output,
            Err(_) => {
                check_for_interrupts!();
            }
        }
    }
}
