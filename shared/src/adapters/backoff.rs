//! The one retry loop of the adapters: batch calls (BatchWriteItem, SendMessageBatch) can
//! leave part of a batch undone without failing; what is left is sent again after a short,
//! doubling wait. The same loop retries a single call that must not be given up lightly
//! (the log line of a request already sent).

use std::future::Future;
use std::time::Duration;

/// How often a batch is sent at most, and the first wait (doubled after each try).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub tries: u32,
    pub first_wait: Duration,
}

impl Default for Backoff {
    /// Six tries, 50 ms to 800 ms apart (1.55 s in all): the SDK already retried each call.
    fn default() -> Self {
        Backoff {
            tries: 6,
            first_wait: Duration::from_millis(50),
        }
    }
}

impl Backoff {
    /// For writing down what already happened outside (a request sent, an email accepted):
    /// 8 tries, 50 ms to 3.2 s apart (6.35 s), so a passing fault does not make it happen
    /// twice when the message is handled again.
    pub const RECORDING: Backoff = Backoff {
        tries: 8,
        first_wait: Duration::from_millis(50),
    };

    /// Calls `send` with `pending` until it returns nothing left or the tries run out;
    /// returns what is still left (empty when everything went through). An error of `send`
    /// ends the loop at once.
    pub async fn until_done<T, E, F, Fut>(
        self,
        mut pending: Vec<T>,
        mut send: F,
    ) -> Result<Vec<T>, E>
    where
        F: FnMut(Vec<T>) -> Fut,
        Fut: Future<Output = Result<Vec<T>, E>>,
    {
        let mut wait = self.first_wait;
        for try_number in 1..=self.tries {
            if pending.is_empty() {
                break;
            }
            pending = send(pending).await?;
            if !pending.is_empty() && try_number < self.tries {
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
        }
        Ok(pending)
    }
}

impl Backoff {
    /// Calls `call` until it succeeds, fails with an error `retryable` says will not go away,
    /// or the tries run out; returns the last result.
    pub async fn retry<T, E, F, Fut>(
        self,
        mut call: F,
        retryable: impl Fn(&E) -> bool,
    ) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut wait = self.first_wait;
        let mut try_number = 1;
        loop {
            match call().await {
                Err(err) if try_number < self.tries && retryable(&err) => {
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                    try_number += 1;
                }
                done => return done,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    const QUICK: Backoff = Backoff {
        tries: 3,
        first_wait: Duration::from_millis(1),
    };

    #[tokio::test]
    async fn what_is_left_is_sent_again_until_done() {
        let calls = Cell::new(0);
        let left = QUICK
            .until_done(vec![1, 2, 3], |batch| {
                calls.set(calls.get() + 1);
                // Each call gets one item through.
                async move { Ok::<_, ()>(batch[1..].to_vec()) }
            })
            .await;
        assert_eq!(left, Ok(vec![]));
        assert_eq!(calls.get(), 3);
    }

    #[tokio::test]
    async fn the_tries_run_out_and_the_rest_is_returned() {
        let calls = Cell::new(0);
        let left = QUICK
            .until_done(vec!["a", "b"], |batch| {
                calls.set(calls.get() + 1);
                async move { Ok::<_, ()>(batch) }
            })
            .await;
        assert_eq!(left, Ok(vec!["a", "b"]));
        assert_eq!(calls.get(), 3);
    }

    #[tokio::test]
    async fn an_error_ends_the_loop() {
        let calls = Cell::new(0);
        let left = QUICK
            .until_done(vec![1], |_| {
                calls.set(calls.get() + 1);
                async { Err::<Vec<i32>, _>("refused") }
            })
            .await;
        assert_eq!(left, Err("refused"));
        assert_eq!(calls.get(), 1);
    }

    #[tokio::test]
    async fn nothing_pending_sends_nothing() {
        let calls = Cell::new(0);
        let left = QUICK
            .until_done(Vec::<i32>::new(), |batch| {
                calls.set(calls.get() + 1);
                async move { Ok::<_, ()>(batch) }
            })
            .await;
        assert_eq!(left, Ok(vec![]));
        assert_eq!(calls.get(), 0);
    }

    #[tokio::test]
    async fn a_call_is_retried_while_its_error_may_go_away() {
        let calls = Cell::new(0);
        let result = QUICK
            .retry(
                || {
                    calls.set(calls.get() + 1);
                    let n = calls.get();
                    async move {
                        if n < 3 {
                            Err("throttled")
                        } else {
                            Ok(n)
                        }
                    }
                },
                |_| true,
            )
            .await;
        assert_eq!(result, Ok(3));

        calls.set(0);
        let result = QUICK
            .retry(
                || {
                    calls.set(calls.get() + 1);
                    async { Err::<(), _>("throttled") }
                },
                |_| true,
            )
            .await;
        assert_eq!(result, Err("throttled"));
        assert_eq!(calls.get(), 3, "the tries run out");

        calls.set(0);
        let result = QUICK
            .retry(
                || {
                    calls.set(calls.get() + 1);
                    async { Err::<(), _>("refused") }
                },
                |e| *e != "refused",
            )
            .await;
        assert_eq!(result, Err("refused"));
        assert_eq!(calls.get(), 1, "an error that stays is not retried");
    }
}
