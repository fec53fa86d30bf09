//! Waiting for async work in a backend without becoming deaf to it.

use std::future::Future;
use std::time::Duration;

use pgrx::prelude::*;

/// Runs `work` to completion on a runtime on the backend's own thread, in 100 ms
/// slices, so that cancel and `statement_timeout` interrupt it (an ERROR ends it).
pub fn block_on<F: Future>(work: F) -> F::Output {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| error!("ai_loader: cannot start a runtime: {e}"));
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
