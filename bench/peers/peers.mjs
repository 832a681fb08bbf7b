// peers.mjs: the graph-index peers of bench/run_peers.sh (usearch and
// hnswlib, the npm packages pinned by package-lock.json), on the same data,
// queries and k as vqs and FAISS.
//
//   node bench/peers/peers.mjs BASE.fvecs QUERIES.fvecs GT.ivecs l2|cos NQ THREADS [EF ...]
//
// Builds each index once (usearch: connectivity 16, expansion_add 128, f32,
// added with THREADS threads; hnswlib: M 16, efConstruction 200, one thread:
// its binding has no threaded add), then for each EF searches the first NQ
// queries for k = 10 on 1 and THREADS threads, best of 3 runs; recall@10 is
// |result ∩ ground truth| / 10 over the ids of the last timed run (ties not
// counted). Index bytes per vector: the saved index file's size / n. hnswlib
// on THREADS threads: THREADS worker threads, each with its own copy of the
// index read from the saved file, each searching its share of the queries
// (the binding's searchKnn is one query at a time); the time is from the
// first worker's start to the last one's end. Output: Markdown table rows.
import { readFileSync, statSync, rmSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const usearch = require('usearch');
const { HierarchicalNSW } = require('hnswlib-node');

function readVecs(path, elem) {
  const buf = readFileSync(path);
  const d = buf.readInt32LE(0);
  if (!(d > 0)) throw new Error(`${path}: dimension ${d} in the first row`);
  const row = 4 + 4 * d, n = buf.length / row;
  if (!Number.isInteger(n)) throw new Error(`${path}: size ${buf.length} is not a multiple of ${row}`);
  const out = elem === 'f' ? new Float32Array(n * d) : new Int32Array(n * d);
  for (let i = 0; i < n; i++) {
    if (buf.readInt32LE(i * row) !== d) throw new Error(`${path}: row ${i} has another dimension`);
    const src = elem === 'f'
      ? new Float32Array(buf.buffer, buf.byteOffset + i * row + 4, d)
      : new Int32Array(buf.buffer, buf.byteOffset + i * row + 4, d);
    out.set(src, i * d);
  }
  return { n, d, x: out };
}

const K = 10;

function now() { return Number(process.hrtime.bigint()) / 1e9; }

// hnswlib worker: its own index copy, its share of the queries
if (!isMainThread) {
  const { file, space, d, ef, q, from, to } = workerData;
  const ix = new HierarchicalNSW(space, d);
  ix.readIndexSync(file);
  ix.setEf(ef);
  const qs = new Float32Array(q);
  const rows = [];
  for (let i = from; i < to; i++) rows.push(Array.from(qs.subarray(i * d, (i + 1) * d)));
  parentPort.postMessage({ ready: true });
  parentPort.once('message', () => {
    const ids = new Int32Array((to - from) * K).fill(-1);
    for (let i = 0; i < rows.length; i++) {
      const r = ix.searchKnn(rows[i], K);
      r.neighbors.forEach((v, j) => { ids[i * K + j] = v; });
    }
    parentPort.postMessage({ ids }, [ids.buffer]);
  });
} else {
  const [basePath, queryPath, gtPath, metric, nqArg, thrArg, ...efArgs] = process.argv.slice(2);
  if (!basePath || !['l2', 'cos'].includes(metric)) {
    console.error('usage: peers.mjs BASE.fvecs QUERIES.fvecs GT.ivecs l2|cos NQ THREADS [EF ...]');
    process.exit(2);
  }
  const B = readVecs(basePath, 'f'), Q = readVecs(queryPath, 'f'), G = readVecs(gtPath, 'i');
  const T = Number(thrArg), nq = Math.min(Number(nqArg), Q.n), d = B.d;
  const efs = efArgs.length ? efArgs.map(Number) : [16, 32, 64, 128];
  if (Q.d !== d || G.n < nq || G.d < K) throw new Error('dimensions or ground truth do not match');
  const recall = (ids) => {
    let hit = 0;
    for (let i = 0; i < nq; i++) {
      const want = new Set(G.x.subarray(i * G.d, i * G.d + K));
      for (let j = 0; j < K; j++) if (want.has(ids[i * K + j])) hit++;
    }
    return hit / (nq * K);
  };
  const best3 = (fn) => {
    let best = Infinity, out;
    for (let r = 0; r < 3; r++) {
      const t = now();
      out = fn();
      best = Math.min(best, now() - t);
    }
    return { s: best, out };
  };
  const dir = mkdtempSync(join(tmpdir(), 'vqs-peers-'));
  const fmt = (x) => Math.round(x).toLocaleString('en-US');
  const q = Q.x.subarray(0, nq * d);

  // ---- usearch
  {
    const mk = (ef) => new usearch.Index({ dimensions: d, metric: metric === 'l2' ? 'l2sq' : 'cos',
      quantization: 'f32', connectivity: 16, expansion_add: 128, expansion_search: ef });
    const ix = mk(efs[0]);
    const keys = new BigUint64Array(B.n);
    for (let i = 0; i < B.n; i++) keys[i] = BigInt(i);
    let t = now();
    ix.add(keys, B.x, T);
    const build = now() - t;
    const file = join(dir, 'usearch.bin');
    ix.save(file);
    const bpv = statSync(file).size / B.n;
    for (const ef of efs) {
      const s = mk(ef);
      s.load(file);
      const qps = [], ids = new Int32Array(nq * K);
      for (const th of [1, T]) {
        const r = best3(() => s.search(q, K, th));
        qps.push(nq / r.s);
        ids.fill(-1);
        for (let i = 0; i < nq; i++) {
          const m = r.out.get(i);
          m.keys.forEach((v, j) => { ids[i * K + j] = Number(v); });
        }
      }
      console.log(`| usearch 2.26.2 | HNSW M16 (connectivity 16, expansion_add 128), ef ${ef} | ${build.toFixed(1)} | ` +
        `${recall(ids).toFixed(4)} | ${fmt(qps[0])} | ${fmt(qps[1])} | ${bpv.toFixed(0)} |`);
    }
  }

  // ---- hnswlib
  {
    const space = metric === 'l2' ? 'l2' : 'cosine';
    const ix = new HierarchicalNSW(space, d);
    ix.initIndex(B.n, 16, 200, 100);
    let t = now();
    for (let i = 0; i < B.n; i++) ix.addPoint(Array.from(B.x.subarray(i * d, (i + 1) * d)), i);
    const build = now() - t;
    const file = join(dir, 'hnswlib.bin');
    ix.writeIndexSync(file);
    const bpv = statSync(file).size / B.n;
    const rows = [];
    for (let i = 0; i < nq; i++) rows.push(Array.from(q.subarray(i * d, (i + 1) * d)));
    for (const ef of efs) {
      ix.setEf(ef);
      const ids = new Int32Array(nq * K).fill(-1);
      const one = best3(() => {
        for (let i = 0; i < nq; i++) {
          const r = ix.searchKnn(rows[i], K);
          r.neighbors.forEach((v, j) => { ids[i * K + j] = v; });
        }
      });
      // THREADS workers, each with its own copy of the index
      let bestT = Infinity, idsT = new Int32Array(nq * K).fill(-1);
      for (let rep = 0; rep < 3; rep++) {
        const per = Math.ceil(nq / T), ws = [];
        for (let w = 0; w < T; w++) {
          const from = w * per, to = Math.min(nq, from + per);
          ws.push({ from, worker: new Worker(new URL(import.meta.url), {
            workerData: { file, space, d, ef, q: q.slice().buffer, from, to } }) });
        }
        await Promise.all(ws.map((w) => new Promise((res) => w.worker.once('message', res))));
        const t0 = now();
        const outs = await Promise.all(ws.map((w) => new Promise((res) => {
          w.worker.once('message', (m) => res(m.ids));
          w.worker.postMessage('go');
        })));
        bestT = Math.min(bestT, now() - t0);
        outs.forEach((o, w) => idsT.set(o, ws[w].from * K));
        await Promise.all(ws.map((w) => w.worker.terminate()));
      }
      console.log(`| hnswlib-node 3.0.0 | HNSW M16 (efConstruction 200), ef ${ef} | ${build.toFixed(1)} | ` +
        `${recall(idsT).toFixed(4)} | ${fmt(nq / one.s)} | ${fmt(nq / bestT)} | ${bpv.toFixed(0)} |`);
      if (recall(ids) !== recall(idsT))
        console.error(`hnswlib ef ${ef}: recall 1 thread ${recall(ids)} differs from ${T} threads ${recall(idsT)}`);
    }
  }
  rmSync(dir, { recursive: true, force: true });
}
