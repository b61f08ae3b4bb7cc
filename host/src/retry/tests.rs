use std::time::Duration;

use super::*;

const MS: Duration = Duration::from_millis(1);

fn policy(attempts: u32) -> RetryPolicy {
    RetryPolicy {
        attempts,
        backoff: Backoff::new(100 * MS, 5000 * MS),
    }
}

#[test]
fn the_schedule_doubles_from_the_first_wait_up_to_the_cap() {
    let b = Backoff::new(50 * MS, 5000 * MS);
    let waits: Vec<u128> = (0..10).map(|n| b.delay(n).as_millis()).collect();
    assert_eq!(
        waits,
        [50, 100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]
    );
    // Far past any sane step: still the cap, no overflow.
    assert_eq!(b.delay(40), 5000 * MS);
    assert_eq!(b.delay(u32::MAX), 5000 * MS);
}

#[test]
fn retry_after_counts_failures_and_gives_up_at_the_last_attempt() {
    let outbox = RetryPolicy {
        attempts: 12,
        backoff: Backoff::new(250 * MS, Duration::from_secs(300)),
    };
    assert_eq!(outbox.retry_after(1), Some(250 * MS));
    assert_eq!(outbox.retry_after(2), Some(500 * MS));
    assert_eq!(outbox.retry_after(3), Some(1000 * MS));
    // 250 ms · 2^10 = 256 s; the next would be 512 s, capped at 300 s.
    assert_eq!(outbox.retry_after(11), Some(Duration::from_secs(256)));
    assert_eq!(outbox.retry_after(12), None);
    assert_eq!(outbox.retry_after(13), None);
}

#[test]
fn guest_failures_are_retried_until_the_attempts_are_used() {
    let mut r = Retry::new(policy(3));
    assert_eq!(r.failed(Blame::Guest), Verdict::Retry(100 * MS));
    assert_eq!(r.failures(), 1);
    assert_eq!(r.failed(Blame::Guest), Verdict::Retry(200 * MS));
    assert_eq!(r.failures(), 2);
    assert_eq!(r.failed(Blame::Guest), Verdict::GiveUp);
    assert_eq!(r.failures(), 3);
    // Still given up until the work goes through.
    assert_eq!(r.failed(Blame::Guest), Verdict::GiveUp);
}

#[test]
fn host_failures_never_count_but_move_the_schedule_along() {
    let mut r = Retry::new(policy(2));
    for _ in 0..100 {
        assert!(matches!(r.failed(Blame::Host), Verdict::Retry(_)));
    }
    assert_eq!(r.failures(), 0, "host faults never count against the guest");
    // The waits went on doubling meanwhile (one schedule per piece of work).
    assert_eq!(r.failed(Blame::Guest), Verdict::Retry(5000 * MS));
    assert_eq!(r.failed(Blame::Guest), Verdict::GiveUp);
    // A host fault after giving up is still waited out, not a give-up.
    assert!(matches!(r.failed(Blame::Host), Verdict::Retry(_)));
}

#[test]
fn one_attempt_gives_up_at_the_first_guest_failure() {
    let mut r = Retry::new(policy(1));
    assert_eq!(r.failed(Blame::Guest), Verdict::GiveUp);
    let mut none = Retry::new(policy(0));
    assert_eq!(none.failed(Blame::Guest), Verdict::GiveUp);
}

#[test]
fn success_starts_attempts_and_waits_over() {
    let mut r = Retry::new(policy(3));
    r.failed(Blame::Guest);
    r.failed(Blame::Host);
    assert_eq!(r.wait(), 400 * MS, "a wait counted for nobody");
    assert_eq!(r.failures(), 1);
    r.succeeded();
    assert_eq!(r.failures(), 0);
    assert_eq!(r.failed(Blame::Guest), Verdict::Retry(100 * MS));
}

#[test]
fn forever_never_gives_up() {
    let mut r = Retry::new(RetryPolicy::forever(Backoff::new(50 * MS, 5000 * MS)));
    let waits: Vec<Duration> = (0..4).map(|_| r.wait()).collect();
    assert_eq!(waits, [50 * MS, 100 * MS, 200 * MS, 400 * MS]);
    for _ in 0..1000 {
        assert_ne!(r.failed(Blame::Guest), Verdict::GiveUp);
    }
}

#[tokio::test]
async fn idle_ends_at_a_wake_up_the_poll_interval_or_shutdown() {
    let (stop_tx, mut stop) = watch::channel(false);
    let poll = 100 * MS;
    let started = tokio::time::Instant::now();
    let mut idle = Idle::new(poll);
    let woke = idle.wait(std::future::ready(7), &mut stop).await;
    assert!(matches!(woke, Woke::Woken(7)));
    assert!(started.elapsed() < poll, "a wake-up ends the wait at once");

    let woke = idle.wait(std::future::pending::<()>(), &mut stop).await;
    assert!(matches!(woke, Woke::Polled));
    assert!(started.elapsed() >= poll);

    // The interval runs across waits: once passed, it polls at once until restarted.
    let again = tokio::time::Instant::now();
    let woke = idle.wait(std::future::pending::<()>(), &mut stop).await;
    assert!(matches!(woke, Woke::Polled));
    assert!(again.elapsed() < poll);

    idle.restart();
    stop_tx.send(true).expect("receiver alive");
    let woke = idle.wait(std::future::pending::<()>(), &mut stop).await;
    assert!(matches!(woke, Woke::Stopped));
}
