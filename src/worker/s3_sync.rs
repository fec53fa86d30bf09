//! The S3 syncs of a database, served by its worker between the vectorizers' turns.
//!
//! A listing runs on the runtime, with no transaction open; once complete, what it
//! changes (see `ai_loader_core::s3_sync::reconcile`) is written in short transactions
//! of at most `CHUNK` objects, the destination with the sync owner's rights. A listing
//! that fails deletes nothing. With a queue, a task long-polls SQS and hands the messages
//! over; they are applied in one transaction, and deleted from the queue only once it
//! committed (at least once, applied idempotently: an event older than what the sync
//! applied for its key is skipped). A message that is not an S3 event is recorded as an
//! error and deleted.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ai_loader_core::backoff::SYNC;
use ai_loader_core::error_log::SYNC_ERRORS;
use ai_loader_core::progress;
use ai_loader_core::s3_sync::reconcile::{self, Known, Object};
use ai_loader_core::s3_sync::sql::{self, Destination};
use ai_loader_core::s3_sync::{Definition, Sync};
use ai_loader_pipeline::loading::{scrub, UriLoader};
use ai_loader_pipeline::s3_sync::events::{self, Event, Seen};
use ai_loader_pipeline::s3_sync::list::list;
use ai_loader_pipeline::s3_sync::sqs::{Message, Queue, LONG_POLL_SECONDS};
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::JsonB;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::error_log;
use super::queues::{self, Reader};
use super::transaction::{in_transaction, Abort};
use super::{report_activity, signals};
use crate::catalog::{self, SYNCS};
use crate::roles::Owned;

/// Objects written per transaction.
const CHUNK: usize = 1000;

/// Set by the runtime's tasks when a listing finished or messages arrived.
static READY: AtomicBool = AtomicBool::new(false);

/// Wakes the worker's main thread: its latch is set by SIGUSR1, as a commit does.
fn notify() {
    READY.store(true, Ordering::SeqCst);
    // SAFETY: signals this very process; procsignal's handler sets the latch.
    unsafe { libc::kill(libc::getpid(), libc::SIGUSR1) };
}

/// Whether a listing finished or messages arrived since the last call.
pub fn take_ready() -> bool {
    READY.swap(false, Ordering::SeqCst)
}

/// A sync as the worker reads it from the catalog.
struct Row {
    id: i32,
    name: String,
    /// The catalog columns that make its configuration: a change restarts it.
    config: String,
    definition: Definition,
    owner: String,
    owner_oid: Option<pg_sys::Oid>,
    may_load: bool,
    destination: Option<(String, String)>,
    /// The destination's owner now.
    destination_owner: Option<pg_sys::Oid>,
    requested: Option<f64>,
    /// Where it was made or last resumed (`crate::worker::home`).
    home: String,
}

struct Listing {
    /// When it began, in Unix seconds: an event applied after that wins over it.
    began: f64,
    took: Duration,
    result: Result<Vec<Object>, String>,
}

/// What the queue's task hands over.
enum Received {
    Messages(Vec<Message>),
    Failed(String),
    /// The queue's approximate depth, now and then.
    Pending(i64),
}

/// How often the queue's depth is asked for.
const PENDING_EVERY: Duration = Duration::from_secs(10);

/// A sync the worker serves.
struct Running {
    config: String,
    sync: Sync,
    listing: Option<JoinHandle<Listing>>,
    next_listing: Instant,
    requested: Option<f64>,
    failures: u32,
    /// When the sync was last found unable to run (its owner lost a right), and said so.
    refused: Option<Instant>,
    /// The queue's depth as last recorded.
    pending: Option<i64>,
    queue: Option<Polling>,
    /// When the sync was last found unable to take its queue (another sync reads it).
    queue_refused: Option<Instant>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(l) = &self.listing {
            l.abort();
        }
    }
}

/// A queue being polled: its task, what the task hands over, and the sync it was
/// taken for (see `queues`); stopping the polling gives the queue back.
struct Polling {
    queue: Arc<Queue>,
    received: mpsc::Receiver<Received>,
    task: JoinHandle<()>,
    reader: Reader,
}

impl Drop for Polling {
    fn drop(&mut self) {
        self.task.abort();
        queues::give_back(self.reader);
    }
}

#[derive(Default)]
pub struct Syncs {
    running: HashMap<i32, Running>,
}

/// What a write did to the destination.
#[derive(Default, Debug, Clone, Copy)]
struct Counts {
    inserted: i64,
    updated: i64,
    deleted: i64,
}

impl Counts {
    fn add(&mut self, other: Counts) {
        self.inserted += other.inserted;
        self.updated += other.updated;
        self.deleted += other.deleted;
    }
}

impl Syncs {
    /// Whether the last round found no sync to serve (none, or all paused).
    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }

    /// Forgets every sync (its tasks stop): the settings changed.
    pub fn reset(&mut self) {
        self.running.clear();
    }

    /// Serves each sync once: starts what is due, applies what arrived. True when it
    /// did something (the worker looks again at once).
    pub fn serve(&mut self, runtime: &tokio::runtime::Runtime, uris: &Arc<UriLoader>) -> bool {
        let Ok(rows) = in_transaction(read) else {
            return false;
        };
        let ids: HashSet<i32> = rows.iter().map(|r| r.id).collect();
        self.running.retain(|id, _| ids.contains(id));
        let home = super::home();
        let mut busy = false;
        for row in rows {
            if signals::stopping() {
                break;
            }
            if row.home != home {
                pause_copy(&row, &home);
                self.running.remove(&row.id);
                continue;
            }
            busy |= self.serve_one(row, runtime, uris);
        }
        busy
    }

    fn serve_one(
        &mut self,
        row: Row,
        runtime: &tokio::runtime::Runtime,
        uris: &Arc<UriLoader>,
    ) -> bool {
        if self
            .running
            .get(&row.id)
            .is_some_and(|r| r.config != row.config)
        {
            self.running.remove(&row.id);
        }
        let run = match self.running.entry(row.id) {
            Entry::Occupied(running) => running.into_mut(),
            Entry::Vacant(vacant) => {
                let sync = match row.definition.check() {
                    Ok(s) => s,
                    Err(e) => {
                        debug1!("ai_loader: S3 sync {} skipped: {}", row.name, e.message);
                        return false;
                    }
                };
                vacant.insert(Running {
                    config: row.config.clone(),
                    sync,
                    listing: None,
                    next_listing: Instant::now(),
                    requested: row.requested,
                    failures: 0,
                    refused: None,
                    pending: None,
                    queue: None,
                    queue_refused: None,
                })
            }
        };
        let refused = match (&row.owner_oid, row.may_load, &row.destination) {
            (None, _, _) => Some(format!(
                "the sync's owner \"{}\" no longer exists; drop the sync and create it again",
                row.owner
            )),
            (_, false, _) => Some(crate::roles::not_s3_reader("sync", &row.owner, "read S3")),
            (_, _, None) => Some("the destination table no longer exists".to_string()),
            (owner, _, _) if *owner != row.destination_owner => Some(
                crate::roles::not_table_owner("sync", &row.owner, "destination"),
            ),
            _ => None,
        };
        if let Some(message) = refused {
            // Nothing runs for it, the queue's messages stay queued; said again every
            // 2, 4, … up to 60 s.
            run.queue = None;
            if run
                .refused
                .is_none_or(|t| t.elapsed() >= SYNC.after(run.failures))
            {
                run.failures += 1;
                run.refused = Some(Instant::now());
                record_error(row.id, &message, json!({"step": "owner"}));
            }
            return false;
        }
        if run.refused.take().is_some() {
            // Back: a listing catches up with what happened meanwhile.
            run.failures = 0;
            run.next_listing = Instant::now();
        }
        let mut busy = false;
        if run.queue.is_none() {
            if let Some(url) = run.sync.queue_url.clone() {
                take_queue(&row, run, runtime, uris, &url);
            }
        }
        busy |= drain_queue(&row, run, runtime);
        if run.listing.as_ref().is_some_and(|l| l.is_finished()) {
            let task = run.listing.take().expect("finished");
            match runtime.block_on(task) {
                Ok(listing) => apply_listing(&row, run, listing),
                Err(e) => record_error(
                    row.id,
                    &format!("the listing failed: {e}"),
                    json!({"step": "list"}),
                ),
            }
            busy = true;
        }
        let requested = row.requested.is_some_and(|t| Some(t) != run.requested);
        if run.listing.is_none() && (requested || run.next_listing <= Instant::now()) {
            run.requested = row.requested;
            run.listing = Some(start_listing(runtime, uris, &run.sync));
        }
        busy
    }
}

/// Pauses a sync found in a copy of its database (restored or cloned: another server or
/// another database than its home), so that the copy never takes the events of the
/// original's queue, and says how to resume it.
fn pause_copy(row: &Row, home: &str) {
    let paused = in_transaction(|| {
        Spi::get_one_with_args::<bool>(sql::PAUSE_COPY, &[row.id.into(), row.home.as_str().into()])
            .ok()
            .flatten()
            .unwrap_or(false)
    });
    if matches!(paused, Ok(true)) {
        record_error(
            row.id,
            &format!(
                "S3 sync \"{}\" was made in another database or server (home {}, here {home}): this \
                 database is a copy (a restore, a clone), so the sync is paused and reads nothing, \
                 lest it take the original's events; if this database is its home now, resume it: \
                 SELECT ai.resume_s3_sync({})",
                row.name, row.home, row.id
            ),
            json!({"step": "home", "home": row.home, "here": home}),
        );
    }
}

/// The syncs that are not paused, and what the worker needs of each.
fn read() -> Vec<Row> {
    Spi::connect(|client| {
        client
            .select(sql::ENABLED, None, &[])
            .map(|rows| rows.filter_map(|r| decode(&r)).collect())
            .unwrap_or_else(|e| {
                warning!("ai_loader: reading ai.s3_sync: {e}");
                Vec::new()
            })
    })
}

fn decode(r: &pgrx::spi::SpiHeapTupleData<'_>) -> Option<Row> {
    let text = |c: &str| r.get_by_name::<String, _>(c).ok().flatten();
    let list = |c: &str| -> Vec<String> {
        r.get_by_name::<Vec<Option<String>>, _>(c)
            .ok()
            .flatten()
            .unwrap_or_default()
            .into_iter()
            .flatten()
            .collect()
    };
    let float = |c: &str| r.get_by_name::<f64, _>(c).ok().flatten();
    Some(Row {
        id: r.get_by_name::<i32, _>("id").ok().flatten()?,
        name: text("name")?,
        config: r
            .get_by_name::<JsonB, _>("config")
            .ok()
            .flatten()?
            .0
            .to_string(),
        definition: Definition {
            uri_prefix: text("uri_prefix")?,
            column_name: text("column_name")?,
            aws_role_arn: text("aws_role_arn"),
            sqs_queue_url: text("sqs_queue_url"),
            include: list("include"),
            exclude: list("exclude"),
            columns: r
                .get_by_name::<JsonB, _>("columns")
                .ok()
                .flatten()
                .map(|j| j.0),
            reconcile_interval: Duration::from_secs_f64(float("interval_seconds")?.max(1.0)),
        },
        owner: text("owner")?,
        owner_oid: r.get_by_name::<pg_sys::Oid, _>("owner_oid").ok().flatten(),
        may_load: r
            .get_by_name::<bool, _>("may_load")
            .ok()
            .flatten()
            .unwrap_or(false),
        destination: text("dest_schema").zip(text("dest_table")),
        destination_owner: r.get_by_name::<pg_sys::Oid, _>("dest_owner").ok().flatten(),
        requested: float("requested"),
        home: text("home")?,
    })
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn start_listing(
    runtime: &tokio::runtime::Runtime,
    uris: &Arc<UriLoader>,
    sync: &Sync,
) -> JoinHandle<Listing> {
    let uris = Arc::clone(uris);
    let (prefix, filter, role) = (sync.prefix.clone(), sync.filter.clone(), sync.role.clone());
    runtime.spawn(async move {
        let began = unix_now();
        let start = Instant::now();
        let s3 = uris.s3(role.as_deref()).await;
        let result = list(&s3, uris.settings(), &prefix, &filter).await;
        notify();
        Listing {
            began,
            took: start.elapsed(),
            result,
        }
    })
}

/// Starts polling the sync's queue, unless another sync of the cluster reads it: then
/// says so (again after 2, 4, … up to 60 s) and leaves the queue to it.
fn take_queue(
    row: &Row,
    run: &mut Running,
    runtime: &tokio::runtime::Runtime,
    uris: &Arc<UriLoader>,
    url: &str,
) {
    // SAFETY: reads a backend global.
    let database = unsafe { pg_sys::MyDatabaseId }.to_u32();
    let reader = Reader {
        database,
        sync: row.id,
    };
    match queues::take(url, reader) {
        Ok(()) => {
            run.queue_refused = None;
            let (queue, received, task) = start_queue(runtime, uris, &run.sync, url);
            run.queue = Some(Polling {
                queue,
                received,
                task,
                reader,
            });
        }
        Err(other) => {
            if run
                .queue_refused
                .is_none_or(|t| t.elapsed() >= SYNC.after(run.failures))
            {
                run.queue_refused = Some(Instant::now());
                record_error(
                    row.id,
                    &queue_taken(url, other),
                    json!({"step": "receive", "queue": url}),
                );
            }
        }
    }
}

/// Why a sync does not read `url`: `other` does.
fn queue_taken(url: &str, other: Reader) -> String {
    let database = pg_sys::Oid::from(other.database);
    let database = in_transaction(|| super::database_name(database))
        .unwrap_or_else(|_| format!("with OID {}", other.database));
    format!(
        "the SQS queue {url} already feeds S3 sync {} of database \"{database}\": a queue feeds one \
         sync, so this one receives nothing from it (its listings go on); give each sync its own queue",
        other.sync
    )
}

fn start_queue(
    runtime: &tokio::runtime::Runtime,
    uris: &Arc<UriLoader>,
    sync: &Sync,
    url: &str,
) -> (Arc<Queue>, mpsc::Receiver<Received>, JoinHandle<()>) {
    let s3 = runtime.block_on(uris.s3(sync.role.as_deref()));
    let queue = Arc::new(Queue::new(&s3, url, uris.settings().timeout));
    let (tx, rx) = mpsc::channel(2);
    let polled = Arc::clone(&queue);
    let task = runtime.spawn(async move {
        let mut failures = 0;
        let mut asked: Option<Instant> = None;
        loop {
            let received = match polled.receive(LONG_POLL_SECONDS).await {
                Ok(messages) if messages.is_empty() => None,
                Ok(messages) => Some(Received::Messages(messages)),
                Err(e) => Some(Received::Failed(e)),
            };
            let failed = matches!(received, Some(Received::Failed(_)));
            failures = if failed { failures + 1 } else { 0 };
            if let Some(r) = received {
                if tx.send(r).await.is_err() {
                    return;
                }
                notify();
            }
            if asked.is_none_or(|t| t.elapsed() >= PENDING_EVERY) {
                asked = Some(Instant::now());
                if let Some(n) = polled.pending().await {
                    if tx.send(Received::Pending(n)).await.is_err() {
                        return;
                    }
                }
            }
            if failed {
                tokio::time::sleep(SYNC.after(failures)).await;
            }
        }
    });
    (queue, rx, task)
}

/// Applies what the queue's task received; true if there were messages or errors.
fn drain_queue(row: &Row, run: &mut Running, runtime: &tokio::runtime::Runtime) -> bool {
    let Some(Polling {
        queue, received, ..
    }) = &mut run.queue
    else {
        return false;
    };
    let (queue, rx) = (Arc::clone(queue), received);
    let mut any = false;
    while let Ok(received) = rx.try_recv() {
        match received {
            // Written only when it changed: an idle queue costs no write every 10 s.
            Received::Pending(n) if run.pending != Some(n) => {
                record_pending(row.id, n);
                run.pending = Some(n);
            }
            Received::Pending(_) => {}
            Received::Failed(e) => {
                any = true;
                record_error(row.id, &e, json!({"step": "receive", "queue": queue.url()}))
            }
            Received::Messages(messages) => {
                any = true;
                report_activity(&format!(
                    "S3 sync {}: applying {} message(s)",
                    row.name,
                    messages.len()
                ));
                let done = apply_messages(row, &run.sync, &messages);
                if done.is_empty() {
                    continue;
                }
                match signals::finish(runtime, queue.delete(&done)) {
                    Some(Ok(())) => {}
                    Some(Err(e)) => {
                        record_error(row.id, &e, json!({"step": "delete", "queue": queue.url()}))
                    }
                    None => return any,
                }
            }
        }
    }
    any
}

/// How many times a message whose events cannot be applied is received before it is
/// deleted (with an error row saying so): SQS gives it again after its visibility
/// timeout, so a lasting failure ends after a few minutes, not the queue's retention.
const MAX_RECEIVES: u32 = 5;

/// Applies the messages' events; returns the receipts of those that may be deleted:
/// applied and committed, not S3 events at all, or failed [`MAX_RECEIVES`] times
/// (recorded as errors). A record S3 cannot have made is dropped with an error row.
fn apply_messages(row: &Row, sync: &Sync, messages: &[Message]) -> Vec<String> {
    let mut done = Vec::new();
    let mut parsed = Vec::new();
    for m in messages {
        match events::parse(&m.body, unix_now()) {
            Ok(events::Parsed { events, dropped }) => {
                for why in dropped {
                    record_error(
                        row.id,
                        &format!("an event of the queue was dropped: {why}"),
                        json!({"step": "event"}),
                    );
                }
                parsed.push((m, events))
            }
            Err(why) => {
                let body: String = m.body.chars().take(500).collect();
                record_error(
                    row.id,
                    &format!("a message of the queue is not an S3 event notification: {why}; it is deleted"),
                    json!({"step": "event", "message": scrub(&body)}),
                );
                done.push(m.receipt.clone());
            }
        }
    }
    let all: Vec<&Event> = parsed.iter().flat_map(|(_, e)| e.iter()).collect();
    match in_transaction(|| apply_events(row, sync, &all)) {
        Ok(Some(counts)) => {
            record_progress(row.id, counts, all.len() as i64, None);
            done.extend(parsed.iter().map(|(m, _)| m.receipt.clone()));
        }
        Ok(None) => {}
        Err(_) => {
            // One message at a time: the one that cannot be written stays in the queue
            // (SQS gives it again, or to its dead-letter queue), the others go on.
            for (m, events) in &parsed {
                let events: Vec<&Event> = events.iter().collect();
                match in_transaction(|| apply_events(row, sync, &events)) {
                    Ok(Some(counts)) => {
                        record_progress(row.id, counts, events.len() as i64, None);
                        done.push(m.receipt.clone());
                    }
                    Ok(None) => {}
                    Err(e) if m.receives >= MAX_RECEIVES => {
                        record_error(
                            row.id,
                            &format!(
                                "applying an event failed, for the {}th time: {}; the message is deleted",
                                m.receives,
                                abort_message(e)
                            ),
                            json!({"step": "event", "receives": m.receives}),
                        );
                        done.push(m.receipt.clone());
                    }
                    Err(e) => record_error(
                        row.id,
                        &format!(
                            "applying an event failed, the message stays queued: {}",
                            abort_message(e)
                        ),
                        json!({"step": "event", "receives": m.receives}),
                    ),
                }
            }
        }
    }
    done
}

fn abort_message(e: Abort) -> String {
    match e {
        Abort::Refused(m) => m,
        Abort::Locked => "a lock was not granted in time".into(),
        Abort::Stop => "the worker is stopping".into(),
        Abort::Provider(e) => e.message,
    }
}

/// Whether the sync is still in the catalog, its row locked against a concurrent drop
/// until the end of the transaction.
fn still_there(client: &mut SpiClient<'_>, id: i32) -> bool {
    catalog::still_there(client, SYNCS, id).unwrap_or_else(|e| error!("S3 sync {id}: {e}"))
}

fn run(
    client: &mut SpiClient<'_>,
    row: &Row,
    sql: &str,
    args: Vec<DatumWithOid<'static>>,
) -> Vec<i64> {
    client
        .update(sql, None, &args)
        .unwrap_or_else(|e| error!("S3 sync {}: {e}", row.name))
        .next()
        .map(|r| {
            (1..=r.columns())
                .map(|i| r.get::<i64>(i).ok().flatten().unwrap_or(0))
                .collect()
        })
        .unwrap_or_default()
}

impl Owned for Row {
    fn owner_oid(&self) -> Option<pg_sys::Oid> {
        self.owner_oid
    }
    fn describe(&self) -> String {
        format!("S3 sync \"{}\"", self.name)
    }
}

/// The arrays the upsert takes, for these objects.
fn object_arrays(sync: &Sync, objects: &[&Object]) -> Vec<DatumWithOid<'static>> {
    let uris: Vec<String> = objects.iter().map(|o| sync.prefix.uri_of(&o.key)).collect();
    let keys: Vec<String> = objects.iter().map(|o| o.key.clone()).collect();
    let basenames: Vec<String> = objects.iter().map(|o| o.basename().to_string()).collect();
    let sizes: Vec<i64> = objects.iter().map(|o| o.size).collect();
    let etags: Vec<String> = objects.iter().map(|o| o.etag.clone()).collect();
    let times: Vec<Option<String>> = objects.iter().map(|o| o.last_modified.clone()).collect();
    vec![
        uris.into(),
        keys.into(),
        basenames.into(),
        sizes.into(),
        etags.into(),
        times.into(),
    ]
}

/// Inserts or updates the destination's rows of `objects` (as the owner) and remembers
/// them.
fn upsert(
    client: &mut SpiClient<'_>,
    row: &Row,
    sync: &Sync,
    objects: &[&Object],
    changed: bool,
) -> Counts {
    if objects.is_empty() {
        return Counts::default();
    }
    let (schema, table) = row.destination.clone().expect("checked before");
    let sql = Destination::new(sync, &schema, &table).upsert(changed);
    let counts = row.as_owner(|| run(client, row, &sql, object_arrays(sync, objects)));
    if changed {
        requeue(client, row, sync, objects);
    }
    let mut remember = object_arrays(sync, objects);
    remember.push(row.id.into());
    run(client, row, &sql::remember(), remember);
    Counts {
        inserted: counts.first().copied().unwrap_or(0),
        updated: counts.get(1).copied().unwrap_or(0),
        deleted: 0,
    }
}

/// Queues the rows of `objects`, whose content changed, for the destination's
/// `loading_uri` vectorizers (as the owner, who owns the table and so its vectorizers'
/// queues): their embeddings follow the object even when the row's values stay the same.
fn requeue(client: &mut SpiClient<'_>, row: &Row, sync: &Sync, objects: &[&Object]) {
    let (schema, table) = row.destination.clone().expect("checked before");
    let queues: Vec<((String, String), Vec<String>)> = client
        .select(
            sql::URI_QUEUES,
            None,
            &[
                schema.as_str().into(),
                table.as_str().into(),
                sync.column.as_str().into(),
            ],
        )
        .unwrap_or_else(|e| error!("S3 sync {}: {e}", row.name))
        .filter_map(|r| {
            let text = |name: &str| r.get_by_name::<String, _>(name).ok().flatten();
            let key = r.get_by_name::<Vec<String>, _>("key").ok().flatten()?;
            Some(((text("queue_schema")?, text("queue_table")?), key))
        })
        .collect();
    if queues.is_empty() {
        return;
    }
    let uris: Vec<String> = objects.iter().map(|o| sync.prefix.uri_of(&o.key)).collect();
    let destination = Destination::new(sync, &schema, &table);
    row.as_owner(|| {
        for (queue, key) in &queues {
            run(
                client,
                row,
                &destination.requeue(queue, key),
                vec![uris.clone().into()],
            );
        }
    });
    run(client, row, "SELECT ai._wake_worker_at_commit()", vec![]);
}

fn delete(client: &mut SpiClient<'_>, row: &Row, sync: &Sync, uris: Vec<String>) -> Counts {
    if uris.is_empty() {
        return Counts::default();
    }
    let (schema, table) = row.destination.clone().expect("checked before");
    let sql = Destination::new(sync, &schema, &table).delete();
    let deleted = row.as_owner(|| run(client, row, &sql, vec![uris.into()]));
    Counts {
        deleted: deleted.first().copied().unwrap_or(0),
        ..Default::default()
    }
}

/// A complete listing: compared with what the sync knows and the destination's rows,
/// and the differences written, chunk by chunk.
fn apply_listing(row: &Row, run: &mut Running, listing: Listing) {
    let objects = match listing.result {
        Ok(objects) => objects,
        Err(e) => {
            run.failures += 1;
            run.next_listing =
                Instant::now() + SYNC.after(run.failures).min(run.sync.reconcile_interval);
            record_error(
                row.id,
                &format!("{e}; nothing was deleted"),
                json!({"step": "list"}),
            );
            return;
        }
    };
    run.failures = 0;
    run.next_listing = Instant::now() + run.sync.reconcile_interval;
    report_activity(&format!(
        "S3 sync {}: reconciling {} object(s)",
        row.name,
        objects.len()
    ));
    let sync = &run.sync;
    let compared = in_transaction(|| {
        Spi::connect_mut(|client| {
            let known = known(client, row.id, listing.began);
            let (schema, table) = row.destination.clone().expect("checked before");
            let rows_sql = Destination::new(sync, &schema, &table).rows();
            let rows: HashSet<String> = row.as_owner(|| {
                client
                    .select(&rows_sql, None, &[sync.prefix.uri().into()])
                    .unwrap_or_else(|e| error!("S3 sync {}: {e}", row.name))
                    .filter_map(|r| r.get_by_name::<String, _>("uri").ok().flatten())
                    .collect()
            });
            (known, rows)
        })
    });
    let Ok((known, rows)) = compared else {
        record_error(
            row.id,
            "reading the destination failed; nothing was written",
            json!({"step": "list"}),
        );
        return;
    };
    let plan = reconcile::plan(sync, objects, &known, &rows);
    let mut counts = Counts::default();
    for chunk in plan.new.chunks(CHUNK) {
        counts.add(write_objects(row, sync, chunk, false));
    }
    for chunk in plan.changed.chunks(CHUNK) {
        counts.add(write_objects(row, sync, chunk, true));
    }
    for chunk in plan.gone.chunks(CHUNK) {
        let uris = chunk.to_vec();
        match in_transaction(|| guarded(row, |client| delete(client, row, sync, uris))) {
            Ok(c) => counts.add(c.unwrap_or_default()),
            Err(e) => record_error(
                row.id,
                &format!("deleting rows failed: {}", abort_message(e)),
                json!({"step": "delete"}),
            ),
        }
    }
    if !plan.forget.is_empty() {
        let _ = in_transaction(|| {
            guarded(row, |client| {
                run_forget(client, row, plan.forget.clone());
            })
        });
    }
    record_progress(row.id, counts, 0, Some(listing.took));
}

fn run_forget(client: &mut SpiClient<'_>, row: &Row, keys: Vec<String>) {
    run(client, row, sql::FORGET, vec![row.id.into(), keys.into()]);
}

/// Runs `work` if the sync still exists (its catalog row locked until the end of the
/// transaction).
fn guarded<T>(row: &Row, work: impl FnOnce(&mut SpiClient<'_>) -> T) -> Option<T> {
    Spi::connect_mut(|client| still_there(client, row.id).then(|| work(client)))
}

/// Writes a chunk of objects in one transaction; if it fails, one object at a time, so
/// that an object whose row cannot be written (a constraint, a trigger) holds back no
/// other. Its state is not remembered: the next listing tries it again.
fn write_objects(row: &Row, sync: &Sync, chunk: &[Object], changed: bool) -> Counts {
    let all: Vec<&Object> = chunk.iter().collect();
    match in_transaction(|| guarded(row, |client| upsert(client, row, sync, &all, changed))) {
        Ok(c) => return c.unwrap_or_default(),
        Err(Abort::Stop) => return Counts::default(),
        Err(_) => {}
    }
    let mut counts = Counts::default();
    for object in chunk {
        match in_transaction(|| {
            guarded(row, |client| upsert(client, row, sync, &[object], changed))
        }) {
            Ok(c) => counts.add(c.unwrap_or_default()),
            Err(e) => record_error(
                row.id,
                &format!(
                    "writing the row of {} failed: {}",
                    sync.prefix.uri_of(&object.key),
                    abort_message(e)
                ),
                json!({"step": "write", "key": object.key}),
            ),
        }
    }
    counts
}

fn known(client: &mut SpiClient<'_>, id: i32, began: f64) -> HashMap<String, Known> {
    client
        .select(sql::KNOWN, None, &[id.into(), began.into()])
        .unwrap_or_else(|e| error!("S3 sync {id}: {e}"))
        .filter_map(|r| {
            Some((
                r.get_by_name::<String, _>("key").ok().flatten()?,
                Known {
                    etag: r.get_by_name::<String, _>("etag").ok().flatten(),
                    present: r
                        .get_by_name::<bool, _>("present")
                        .ok()
                        .flatten()
                        .unwrap_or(false),
                    touched: r
                        .get_by_name::<bool, _>("touched")
                        .ok()
                        .flatten()
                        .unwrap_or(false),
                },
            ))
        })
        .collect()
}

/// Applies events in order, each unless an event applied before is newer. `None` when
/// the sync is gone.
fn apply_events(row: &Row, sync: &Sync, events: &[&Event]) -> Option<Counts> {
    guarded(row, |client| {
        let mut counts = Counts::default();
        for event in events {
            let Some(key) = (event.bucket == sync.prefix.bucket)
                .then_some(event.key.as_str())
                .filter(|k| k.starts_with(&sync.prefix.prefix) && sync.filter.keeps(k))
            else {
                continue;
            };
            let seen = client
                .update(sql::SEEN, None, &[row.id.into(), key.into()])
                .unwrap_or_else(|e| error!("S3 sync {}: {e}", row.name))
                .next()
                .map(|r| {
                    let seen = Seen {
                        sequencer: r.get_by_name::<String, _>("sequencer").ok().flatten(),
                        event_time: r.get_by_name::<f64, _>("event_time").ok().flatten(),
                        last_modified: r.get_by_name::<f64, _>("last_modified").ok().flatten(),
                    };
                    let present = r
                        .get_by_name::<bool, _>("present")
                        .ok()
                        .flatten()
                        .unwrap_or(false);
                    (
                        seen,
                        r.get_by_name::<String, _>("etag")
                            .ok()
                            .flatten()
                            .filter(|_| present),
                    )
                });
            let (seen, etag) = seen.unwrap_or_default();
            if events::is_stale(event, &seen) {
                continue;
            }
            match &event.created {
                Some((new_etag, size)) => {
                    let object = Object {
                        key: key.to_string(),
                        etag: new_etag.clone(),
                        size: *size,
                        last_modified: event.time_text(),
                    };
                    let changed = etag.as_ref() != Some(new_etag);
                    counts.add(upsert(client, row, sync, &[&object], changed));
                }
                None => {
                    counts.add(delete(client, row, sync, vec![sync.prefix.uri_of(key)]));
                }
            }
            run(
                client,
                row,
                sql::EVENT_APPLIED,
                vec![
                    row.id.into(),
                    key.into(),
                    event.created.is_some().into(),
                    event.sequencer.clone().into(),
                    event.time.into(),
                ],
            );
        }
        counts
    })
}

/// Adds to a sync's progress: rows written, events applied, a listing's duration.
fn record_progress(id: i32, counts: Counts, events: i64, listing: Option<Duration>) {
    let _ = in_transaction(|| {
        Spi::connect_mut(|client| {
            client
                .update(
                    progress::SYNC,
                    None,
                    &[
                        id.into(),
                        counts.inserted.into(),
                        counts.updated.into(),
                        counts.deleted.into(),
                        events.into(),
                        listing.map(|d| d.as_secs_f64()).into(),
                    ],
                )
                .unwrap_or_else(|e| error!("S3 sync {id}: {e}"));
        })
    });
}

/// Records the queue's depth.
fn record_pending(id: i32, pending: i64) {
    let _ =
        in_transaction(|| Spi::run_with_args(progress::SYNC_PENDING, &[id.into(), pending.into()]));
}

/// Records an error row, and the progress, for a sync (nothing once it is gone).
fn record_error(id: i32, message: &str, details: Value) {
    let message = scrub(message);
    warning!("ai_loader: S3 sync {id}: {message}");
    let _ = in_transaction(|| {
        Spi::connect_mut(|client| {
            if !still_there(client, id) {
                return;
            }
            error_log::append(
                client,
                &SYNC_ERRORS,
                id,
                vec![(message.clone(), details.to_string())],
            )
            .unwrap_or_else(|e| error!("S3 sync {id}: {e}"));
            client
                .update(
                    progress::SYNC_ERROR,
                    None,
                    &[id.into(), message.as_str().into()],
                )
                .unwrap_or_else(|e| error!("S3 sync {id}: {e}"));
        })
    });
}
