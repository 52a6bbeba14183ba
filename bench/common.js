// What bench/graphile.js and bench/pgboss.js share: the run's parameters (from the environment),
// a throw-away database on the server of POSTGRES_URL, the wait for the queue to drain, and the
// `compare` line in the shape `rappel bench --compare` prints.
import { readFileSync } from 'node:fs';
import pg from 'pg';

// The run's shape from the environment; CONCURRENCY defaults to what each script passes.
export function params(defaultConcurrency) {
  return {
    n: Number(process.env.N ?? 20000),
    batch: Number(process.env.BATCH ?? 1000),
    concurrency: Number(process.env.CONCURRENCY ?? defaultConcurrency),
    base: process.env.POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
  };
}

// Creates `<prefix>_<pid>` beside the database of `base` and returns its URL and a function that
// drops it (as `rappel bench` does with its own throw-away database).
export async function freshDatabase(base, prefix) {
  const name = `${prefix}_${process.pid}`;
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  await admin.query(`CREATE DATABASE "${name}"`);
  await admin.end();
  const url = new URL(base);
  url.pathname = `/${name}`;
  const drop = async () => {
    const again = new pg.Client({ connectionString: base });
    await again.connect();
    await again.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    await again.end();
  };
  return { url: url.toString(), drop };
}

// Polls `sql` (a count of the jobs not completed yet) until it answers 0.
export async function drained(url, sql) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  for (;;) {
    const { rows } = await client.query(sql);
    if (Number(rows[0].count) === 0) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await client.end();
}

// The process's peak resident memory (Linux VmHWM), in MB.
export function peakRssMb() {
  try {
    const status = readFileSync('/proc/self/status', 'utf8');
    const kb = Number(/VmHWM:\s+(\d+)/.exec(status)[1]);
    return kb / 1024;
  } catch {
    return 0;
  }
}

// The line `rappel bench --compare` prints, with this queue's figures. `fetch` is how many jobs
// one fetch takes at most (graphile-worker's local queue, pg-boss's batch size).
export function printCompare(queue, { n, batch, concurrency }, fetch, enqueueS, runS) {
  console.log(
    `compare queue=${queue} store=postgres n=${n} enqueue_batch=${batch} concurrency=${concurrency} ` +
      `fetch_batch=${fetch} ` +
      `enqueue_s=${enqueueS.toFixed(3)} enqueue_jobs_per_s=${(n / enqueueS).toFixed(0)} ` +
      `run_s=${runS.toFixed(3)} jobs_per_s=${(n / runS).toFixed(0)} ` +
      `total_s=${(enqueueS + runS).toFixed(3)} peak_rss_mb=${peakRssMb().toFixed(1)}`,
  );
}

export function seconds(since) {
  return Number(process.hrtime.bigint() - since) / 1e9;
}
