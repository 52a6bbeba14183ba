// pg-boss's batched no-op, measured the way `rappel bench --compare` measures Rappel: N jobs
// inserted BATCH at a time (`insert`, one statement per batch), then CONCURRENCY workers on one
// pg-boss instance (`localConcurrency`) fetch FETCH jobs at a time and complete them; jobs/s is
// N over the time from the workers' start until no job of the queue is left uncompleted.
//
//   N=20000 BATCH=1000 CONCURRENCY=3 FETCH=100 \
//     POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres node pgboss.js
import { PgBoss } from 'pg-boss';
import { drained, freshDatabase, params, printCompare, seconds } from './common.js';

const shape = params(3);
const { n, batch, concurrency } = shape;
const fetch = Number(process.env.FETCH ?? 100);
const db = await freshDatabase(shape.base, 'rappel_anchor_pgboss');
try {
  // No scheduling or maintenance while measuring: only the queue itself.
  const boss = new PgBoss({ connectionString: db.url, schedule: false, supervise: false });
  boss.on('error', (error) => console.error(error));
  await boss.start();
  await boss.createQueue('noop');

  let started = process.hrtime.bigint();
  for (let first = 0; first < n; first += batch) {
    const jobs = [];
    for (let i = first; i < Math.min(first + batch, n); i++) jobs.push({ data: { i } });
    await boss.insert('noop', jobs);
  }
  const enqueueS = seconds(started);

  // The handler counts the jobs it was given; the table is read only once they all were (a
  // `count(*)` every 20 ms from the start took CPU from the workers, see graphile.js).
  let handled = 0;
  let allHandled;
  const done = new Promise((resolve) => {
    allHandled = resolve;
  });
  started = process.hrtime.bigint();
  await boss.work(
    'noop',
    {
      batchSize: fetch,
      localConcurrency: concurrency,
      pollingIntervalSeconds: 0.5,
      burstWhenBatchFull: true,
    },
    async (jobs) => {
      handled += jobs.length;
      if (handled >= n) allHandled();
    },
  );
  await done;
  await drained(db.url, "SELECT count(*) FROM pgboss.job WHERE name = 'noop' AND state <> 'completed'");
  const runS = seconds(started);
  await boss.stop({ graceful: true, wait: true });
  printCompare('pg-boss', shape, fetch, enqueueS, runS);
} finally {
  await db.drop();
}
