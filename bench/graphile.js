// graphile-worker's batched no-op, measured the way `rappel bench --compare` measures Rappel:
// N jobs enqueued BATCH at a time (`addJobs`, one statement per batch), then one runner with
// CONCURRENCY jobs at once drains them; jobs/s is N over the time from the runner's start until
// no job is left in the table (graphile-worker deletes a job when it completes). The runner is
// configured as graphile-worker's own performance page configures it for its published figures
// (worker.graphile.org/docs/performance): concurrentJobs 24, a pool of 25, a local queue of
// 500 jobs fetched at once, completions batched.
//
//   N=20000 BATCH=1000 CONCURRENCY=24 POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres \
//     node graphile.js
import { Logger, makeWorkerUtils, run } from 'graphile-worker';
import pg from 'pg';
import { drained, freshDatabase, params, printCompare, seconds } from './common.js';

const shape = params(24);
const { n, batch, concurrency } = shape;
const localQueue = Number(process.env.LOCAL_QUEUE ?? 500);
const db = await freshDatabase(shape.base, 'rappel_anchor_graphile');
try {
  const utils = await makeWorkerUtils({ connectionString: db.url });
  await utils.migrate();
  let started = process.hrtime.bigint();
  for (let first = 0; first < n; first += batch) {
    const specs = [];
    for (let i = first; i < Math.min(first + batch, n); i++) {
      specs.push({ identifier: 'noop', payload: { i } });
    }
    await utils.addJobs(specs);
  }
  const enqueueS = seconds(started);
  await utils.release();

  // The runner's pool is this script's, so that it is closed before the database is dropped.
  const pool = new pg.Pool({ connectionString: db.url, max: concurrency + 1 });
  pool.on('error', (error) => console.error(error.message));
  pool.on('connect', (client) => client.on('error', (error) => console.error(error.message)));
  // Completions are counted from the runner's own events (`job:complete` follows the write of
  // the job's result), not by polling the table: a `count(*)` of 100,000 rows every 20 ms took
  // a third of a core from the runner and halved its jobs/s at N = 100,000 (2026-12-07).
  let completed = 0;
  let allCompleted;
  const done = new Promise((resolve) => {
    allCompleted = resolve;
  });
  started = process.hrtime.bigint();
  const runner = await run({
    pgPool: pool,
    preset: {
      worker: {
        concurrentJobs: concurrency,
        localQueue: { size: localQueue },
        completeJobBatchDelay: 0,
        failJobBatchDelay: 0,
        logger: quietLogger(),
      },
    },
    noHandleSignals: true,
    taskList: { noop: async () => {} },
  });
  runner.events.on('job:complete', () => {
    completed += 1;
    if (completed >= n) allCompleted();
  });
  await done;
  // A last look at the table, which must be empty now.
  await drained(db.url, 'SELECT count(*) FROM graphile_worker._private_jobs');
  const runS = seconds(started);
  await runner.stop();
  await pool.end();
  printCompare('graphile-worker', shape, localQueue, enqueueS, runS);
} finally {
  await db.drop();
}

// graphile-worker logs every job at info level; a run of 20,000 would measure the console.
function quietLogger() {
  return new Logger(() => (level, message) => {
    if (level === 'error') console.error(message);
  });
}
