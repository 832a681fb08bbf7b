// Drives `vqs serve` with the real Qdrant JavaScript client (@qdrant/js-client-rest).
//   node client_test.mjs PORT load OUT.json   create, upsert with payloads, count, search (with and
//                                             without a filter), query, retrieve; writes the queries
//                                             and results for the in-process comparison
//   node client_test.mjs PORT drop            delete by ids and by filter, then drop the collection
// Exits non-zero with a message on the first check that fails.
import { QdrantClient } from '@qdrant/js-client-rest';
import { writeFileSync } from 'node:fs';

const [port, phase, out] = process.argv.slice(2);
const client = new QdrantClient({ url: `http://127.0.0.1:${port}` });
const NAME = 'qc';
const D = 32, N = 600;

function check(cond, what) {
  if (!cond) {
    console.error(`FAIL: ${what}`);
    process.exit(1);
  }
}

// deterministic vectors: a small LCG, so that the C++ side needs nothing but the ids
let seed = 12345;
function rnd() {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648 - 0.5;
}
const vecs = [];
for (let i = 0; i < N; i++) vecs.push(Array.from({ length: D }, rnd));
const payload = (i) => ({ group: `g${i % 5}`, n: i, even: i % 2 === 0, tags: [`t${i % 3}`, 'all'] });

async function load() {
  check((await client.collectionExists(NAME)).exists === false, 'collection absent at start');
  // Qdrant's own settings: int8 scalar quantization (vqs spec SQ8), and an indexing threshold of
  // 37 KB of float32 vectors = 296 points of 32-d, at which vqs trains its codec
  await client.createCollection(NAME, {
    vectors: { size: D, distance: 'Cosine' },
    quantization_config: { scalar: { type: 'int8', always_ram: true } },
    optimizers_config: { indexing_threshold: 37 },
  });
  const cols = await client.getCollections();
  check(cols.collections.some((c) => c.name === NAME), 'getCollections lists the collection');
  for (let b = 0; b < N; b += 100) {
    const points = [];
    for (let i = b; i < b + 100; i++) points.push({ id: i, vector: vecs[i], payload: payload(i) });
    const r = await client.upsert(NAME, { wait: true, points });
    check(r.status === 'completed', `upsert ${b}: status ${r.status}`);
  }
  const info = await client.getCollection(NAME);
  check(info.points_count === N, `getCollection points_count ${info.points_count}`);
  check(info.indexed_vectors_count === N, `trained at the threshold: indexed ${info.indexed_vectors_count}`);
  check(info.config.params.vectors.size === D, 'getCollection size');
  check((await client.count(NAME, { exact: true })).count === N, 'count');
  const g2 = { must: [{ key: 'group', match: { value: 'g2' } }] };
  check((await client.count(NAME, { filter: g2, exact: true })).count === N / 5, 'count with a filter');

  const filter = {
    must: [{ key: 'group', match: { any: ['g1', 'g3'] } }, { key: 'n', range: { gte: 100 } }],
    must_not: [{ key: 'even', match: { value: true } }],
  };
  const keep = (i) => (i % 5 === 1 || i % 5 === 3) && i >= 100 && i % 2 === 1;
  const res = { queries: [], plain: [], filtered: [], filter_ids: [] };
  for (let i = 0; i < N; i++) if (keep(i)) res.filter_ids.push(i);
  for (let q = 0; q < 12; q++) {
    const v = Array.from({ length: D }, rnd);
    res.queries.push(v);
    const plain = await client.search(NAME, { vector: v, limit: 10, with_payload: true });
    check(plain.length === 10, `search ${q}: ${plain.length} results`);
    for (const p of plain) check(JSON.stringify(p.payload) === JSON.stringify(payload(p.id)), `payload of ${p.id}`);
    for (let j = 1; j < plain.length; j++) check(plain[j - 1].score >= plain[j].score, 'scores descending');
    const filtered = await client.search(NAME, { vector: v, limit: 10, filter });
    check(filtered.length === 10, `filtered search ${q}: ${filtered.length} results`);
    for (const p of filtered) check(keep(p.id), `filtered result ${p.id} does not match`);
    const queried = await client.query(NAME, { query: v, limit: 10 });
    check(JSON.stringify(queried.points.map((p) => p.id)) === JSON.stringify(plain.map((p) => p.id)),
      'query() equals search()');
    res.plain.push(plain.map((p) => ({ id: p.id, score: p.score })));
    res.filtered.push(filtered.map((p) => ({ id: p.id, score: p.score })));
  }
  const got = await client.retrieve(NAME, { ids: [3, 4, 99999], with_payload: true });
  check(got.length === 2, `retrieve found ${got.length}`);
  check(JSON.stringify(got.map((p) => p.payload)) === JSON.stringify([payload(3), payload(4)]), 'retrieve payloads');
  // a bad request comes back as an error with vqs's message
  let failed = false;
  try {
    await client.search(NAME, { vector: [1, 2, 3], limit: 3 });
  } catch (e) {
    failed = /dimension 3/.test(JSON.stringify(e.data ?? e.message));
  }
  check(failed, 'a wrong dimension is refused with a message naming it');
  writeFileSync(out, JSON.stringify(res));
}

async function drop() {
  // delete 10 by id and all of group g4 by filter
  await client.delete(NAME, { wait: true, points: [0, 1, 2, 3, 5, 6, 7, 8, 10, 11] });
  await client.delete(NAME, { wait: true, filter: { must: [{ key: 'group', match: { value: 'g4' } }] } });
  const left = (await client.count(NAME, { exact: true })).count;
  check(left === N - 10 - N / 5, `count after deletes: ${left}`); // none of the 10 is in g4
  const after = await client.search(NAME, { vector: vecs[42], limit: 20 });
  for (const p of after) check(p.id % 5 !== 4 && ![0, 1, 2, 3, 5, 6, 7, 8, 10, 11].includes(p.id), `deleted ${p.id} found`);
  check(after.length === 20, 'search after deletes');
  check(await client.deleteCollection(NAME), 'deleteCollection');
  check((await client.collectionExists(NAME)).exists === false, 'collection gone');
  const cols = await client.getCollections();
  check(!cols.collections.some((c) => c.name === NAME), 'not listed after drop');
}

try {
  if (phase === 'load') await load();
  else if (phase === 'drop') await drop();
  else check(false, `unknown phase ${phase}`);
  console.log(`qdrant client ${phase}: ok`);
} catch (e) {
  console.error('FAIL: exception', e?.status ?? '', JSON.stringify(e?.data ?? e?.message ?? e));
  process.exit(1);
}
