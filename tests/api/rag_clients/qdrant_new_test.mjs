// The plain Qdrant client (@qdrant/js-client-rest 1.18) on the endpoints issue 17 adds:
//   node qdrant_new_test.mjs PORT DATA_DIR ENDPOINTS_OUT SECTION
// SECTION: scroll, payload, vectors, batch, index, recommend, fusion, query_batch, groups, patch,
// aliases, named (a second collection with two named vectors). Each loads the 778 fiori chunks (ids 0..777, payload: category, title, wordCount, path)
// into a fresh collection with upsert, then checks one group of endpoints against what Qdrant's
// documentation says they do, with exact ground truth computed here (common.mjs).
import { QdrantClient } from '@qdrant/js-client-rest';
import { Recorder, check, checkTopK, cosine, exactAll, loadCorpus, run } from './common.mjs';

const [port, dataDir, out, section] = process.argv.slice(2);
const NAME = 'fiori_new', ALIAS = 'fiori_alias', ALIAS2 = 'fiori_alias2', NAMED = 'fiori_named';
const rec = new Recorder([NAME, ALIAS, ALIAS2, NAMED]);
const corpus = loadCorpus(dataDir);
const N = corpus.records.length, R = corpus.records, V = corpus.vectors;
const client = new QdrantClient({ url: `http://127.0.0.1:${port}` });

const payloadOf = (i) => ({ category: R[i].category, title: R[i].title, wordCount: R[i].wordCount, path: R[i].path });
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
const norm = (v) => {
  const n = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  return v.map((x) => x / n);
};
const QUERIES = [3, 77, 150, 222, 301, 415, 500, 613, 700, 777];

async function load() {
  await client.createCollection(NAME, { vectors: { size: corpus.D, distance: 'Cosine' } });
  for (let b = 0; b < N; b += 200) {
    const points = [];
    for (let i = b; i < Math.min(N, b + 200); i++) points.push({ id: i, vector: V[i], payload: payloadOf(i) });
    const r = await client.upsert(NAME, { wait: true, points });
    check(r.status === 'completed', `upsert: ${r.status}`);
  }
}

async function payloads(ids) {
  const got = await client.retrieve(NAME, { ids, with_payload: true });
  const m = new Map(got.map((p) => [p.id, p.payload]));
  return ids.map((i) => m.get(i));
}

// scroll: pages in id order, next_page_offset the id to start the next page at (null at the end)
async function scrollAll(args, pageSize) {
  const ids = [];
  let offset, pages = 0;
  for (;;) {
    const r = await client.scroll(NAME, { ...args, limit: pageSize, ...(offset !== undefined && { offset }) });
    check(r.points.length <= pageSize, `scroll page of ${r.points.length} > ${pageSize}`);
    ids.push(...r.points.map((p) => p.id));
    pages++;
    if (r.next_page_offset === null || r.next_page_offset === undefined) break;
    check(r.points.length === pageSize, 'a page before the last is full');
    offset = r.next_page_offset;
    check(pages <= N, 'scroll ends');
  }
  return { ids, pages };
}

const sections = {
  async scroll() {
    const { ids, pages } = await scrollAll({ with_payload: false }, 100);
    check(pages === Math.ceil(N / 100) || pages === Math.ceil(N / 100) + 1, `scroll: ${pages} pages`);
    check(same(ids, [...Array(N).keys()]), 'scroll returns every id once, in id order');
    const first = await client.scroll(NAME, { limit: 5, with_payload: true, with_vector: true });
    check(same(first.points.map((p) => p.id), [0, 1, 2, 3, 4]) && first.next_page_offset === 5, 'scroll first page');
    for (const p of first.points) {
      check(same(p.payload, payloadOf(p.id)), `scroll payload of ${p.id}`);
      check(p.vector.length === corpus.D && Math.abs(cosine(p.vector, V[p.id]) - 1) < 1e-5, `scroll vector of ${p.id}`);
    }
    const mid = await client.scroll(NAME, { limit: 3, offset: 500, with_payload: ['category'] });
    check(same(mid.points.map((p) => p.id), [500, 501, 502]), 'scroll from offset 500');
    check(same(mid.points[0].payload, { category: R[500].category }), 'scroll with_payload keys');
    const filter = { must: [{ key: 'category', match: { value: 'Fiori Samples' } }] };
    const f = await scrollAll({ filter, with_payload: false }, 7);
    const want = R.map((r, i) => (r.category === 'Fiori Samples' ? i : -1)).filter((i) => i >= 0);
    check(same(f.ids, want), 'filtered scroll, in pages of 7');
    const end = await client.scroll(NAME, { limit: 10, offset: N - 3 });
    check(end.points.length === 3 && end.next_page_offset === null, 'the last page has next_page_offset null');
  },

  async payload() {
    const ids = [10, 11, 12];
    // set: merges keys into the payload
    let r = await client.setPayload(NAME, { wait: true, points: ids, payload: { reviewed: true, tags: ['a', 'b'] } });
    check(r.status === 'completed', 'setPayload status');
    let p = await payloads(ids);
    ids.forEach((i, k) => check(same(p[k], { ...payloadOf(i), reviewed: true, tags: ['a', 'b'] }), `set payload of ${i}`));
    // set by filter, under a nested key
    await client.setPayload(NAME, { wait: true, filter: { must: [{ key: 'category', match: { value: 'Tools Suite' } }] },
      payload: { stars: 5 } });
    const ts = R.findIndex((x) => x.category === 'Tools Suite');
    check(same((await payloads([ts]))[0], { ...payloadOf(ts), stars: 5 }), 'set payload by filter');
    await client.setPayload(NAME, { wait: true, points: [10], payload: { level: 2 }, key: 'review' });
    p = await payloads([10]);
    check(same(p[0].review, { level: 2 }), `set payload with key: ${JSON.stringify(p[0])}`);
    // a filter finds the new payload
    const c = await client.count(NAME, { exact: true, filter: { must: [{ key: 'reviewed', match: { value: true } }] } });
    check(c.count === 3, `count by a set field: ${c.count}`);
    // delete keys
    await client.deletePayload(NAME, { wait: true, points: [11], keys: ['tags', 'category'] });
    p = await payloads([11]);
    const { category, ...rest11 } = payloadOf(11);
    check(same(p[0], { ...rest11, reviewed: true }), `delete payload keys: ${JSON.stringify(p[0])}`);
    // overwrite: replaces the payload whole
    await client.overwritePayload(NAME, { wait: true, points: [12], payload: { only: 'this' } });
    check(same((await payloads([12]))[0], { only: 'this' }), 'overwrite payload');
    // clear
    await client.clearPayload(NAME, { wait: true, points: [10, 12] });
    p = await payloads([10, 12]);
    check(same(p[0], {}) && same(p[1], {}), `clear payload: ${JSON.stringify(p)}`);
    check(same((await payloads([13]))[0], payloadOf(13)), 'other points untouched');
    // deleting payload of a missing point: Qdrant answers 404
    await rec.expect('POST /collections/{name}/points/payload', 404, async () => {
      let failed = false;
      try {
        await client.setPayload(NAME, { wait: true, points: [987654], payload: { x: 1 } });
      } catch (e) {
        failed = e.status === 404;
      }
      check(failed, 'set payload on a missing point is a 404');
    });
  },

  async vectors() {
    // point 5 takes record 600's vector: a search for it finds both at cosine 1
    await client.updateVectors(NAME, { wait: true, points: [{ id: 5, vector: V[600] }] });
    const [p] = await client.retrieve(NAME, { ids: [5], with_vector: true, with_payload: true });
    check(Math.abs(cosine(p.vector, V[600]) - 1) < 1e-5, 'update vectors: the new vector');
    check(same(p.payload, payloadOf(5)), 'update vectors keeps the payload');
    const hits = await client.search(NAME, { vector: V[600], limit: 2 });
    check(same(hits.map((h) => h.id).sort((a, b) => a - b), [5, 600]), `search after update: ${hits.map((h) => h.id)}`);
    for (const h of hits) check(Math.abs(h.score - 1) < 1e-4, 'score 1');
    const vecs = V.map((v, i) => (i === 5 ? V[600] : v));
    const q = V[42];
    const got = await client.search(NAME, { vector: q, limit: 10 });
    checkTopK({ ...corpus, vectors: vecs }, 'search after update', q, 10, got.map((h) => ({ i: h.id, score: h.score })));
  },

  async batch() {
    const r = await client.batchUpdate(NAME, {
      wait: true,
      operations: [
        { upsert: { points: [{ id: 9000, vector: V[1], payload: { category: 'new' } }] } },
        { delete: { points: [0, 2] } },
        { set_payload: { payload: { flag: 1 }, points: [4] } },
        { overwrite_payload: { payload: { only: 1 }, points: [6] } },
        { delete_payload: { keys: ['title'], points: [7] } },
        { clear_payload: { points: [8] } },
        { update_vectors: { points: [{ id: 9, vector: V[700] }] } },
      ],
    });
    check(Array.isArray(r) && r.length === 7 && r.every((x) => x.status === 'completed'), `batch result ${JSON.stringify(r)}`);
    check((await client.count(NAME, { exact: true })).count === N - 1, 'count after the batch');
    const got = await client.retrieve(NAME, { ids: [0, 2, 4, 6, 7, 8, 9000], with_payload: true });
    const m = new Map(got.map((p) => [p.id, p.payload]));
    check(!m.has(0) && !m.has(2), 'batch delete');
    check(same(m.get(4), { ...payloadOf(4), flag: 1 }), 'batch set_payload');
    check(same(m.get(6), { only: 1 }), 'batch overwrite_payload');
    const { title, ...rest7 } = payloadOf(7);
    check(same(m.get(7), rest7), 'batch delete_payload');
    check(same(m.get(8), {}), 'batch clear_payload');
    check(same(m.get(9000), { category: 'new' }), 'batch upsert');
    const hits = await client.search(NAME, { vector: V[700], limit: 2 });
    check(same(hits.map((h) => h.id).sort((a, b) => a - b), [9, 700]), 'batch update_vectors');
    // atomic (vqs's promise, issue 17; Qdrant applies the operations one by one): a batch with a
    // bad operation changes nothing
    await rec.expect('POST /collections/{name}/points/batch', 400, async () => {
      let failed = false;
      try {
        await client.batchUpdate(NAME, { wait: true, operations: [
          { delete: { points: [1] } },
          { upsert: { points: [{ id: 9001, vector: [1, 2, 3] }] } },
        ] });
      } catch (e) {
        failed = e.status === 400;
      }
      check(failed, 'a batch with a wrong dimension is a 400');
    });
    check((await client.count(NAME, { exact: true })).count === N - 1, 'a refused batch deletes nothing');
  },

  async index() {
    let r = await client.createPayloadIndex(NAME, { wait: true, field_name: 'category', field_schema: 'keyword' });
    check(r.status === 'completed', 'create keyword index');
    r = await client.createPayloadIndex(NAME, { wait: true, field_name: 'wordCount', field_schema: 'integer' });
    check(r.status === 'completed', 'create integer index');
    const info = await client.getCollection(NAME);
    check(info.payload_schema?.category?.data_type === 'keyword', `payload_schema ${JSON.stringify(info.payload_schema)}`);
    check(info.payload_schema?.wordCount?.data_type === 'integer', 'payload_schema integer');
    check(info.payload_schema.category.points === N, `indexed points ${info.payload_schema.category.points}`);
    // filtered searches with the index give the exact filtered answer
    const keep = (i) => R[i].category === 'Btp Fiori Tools' && R[i].wordCount > 300;
    const filter = { must: [{ key: 'category', match: { value: 'Btp Fiori Tools' } }, { key: 'wordCount', range: { gt: 300 } }] };
    for (const qi of QUERIES) {
      const got = await client.search(NAME, { vector: V[qi], limit: 10, filter });
      checkTopK(corpus, `indexed filtered search (record ${qi})`, V[qi], 10, got.map((h) => ({ i: h.id, score: h.score })), keep);
    }
    // order_by needs an index on the field (Qdrant): scroll by wordCount descending
    const byWc = await client.scroll(NAME, { limit: 5, order_by: { key: 'wordCount', direction: 'desc' }, with_payload: true });
    const want = [...R.keys()].sort((a, b) => R[b].wordCount - R[a].wordCount).slice(0, 5).map((i) => R[i].wordCount);
    check(same(byWc.points.map((p) => p.payload.wordCount), want), 'scroll order_by wordCount desc');
    r = await client.deletePayloadIndex(NAME, 'category', { wait: true });
    check(r.status === 'completed', 'delete index');
    const info2 = await client.getCollection(NAME);
    check(!info2.payload_schema.category && info2.payload_schema.wordCount, 'payload_schema after the delete');
  },

  async recommend() {
    // average_vector: query = avg(pos) + (avg(pos) − avg(neg)), the examples excluded from the answer
    const pos = [3, 150], neg = [700];
    const avg = (ids) => V[0].map((_, j) => ids.reduce((s, i) => s + norm(V[i])[j], 0) / ids.length);
    const ap = avg(pos), an = avg(neg);
    const q = ap.map((x, j) => x + x - an[j]);
    const ex = new Set([...pos, ...neg]);
    const got = await client.recommend(NAME, { positive: pos, negative: neg, limit: 10, strategy: 'average_vector' });
    checkTopK(corpus, 'recommend average_vector', q, 10, got.map((h) => ({ i: h.id, score: h.score })), (i) => !ex.has(i));
    // positives only: the average of the positives
    const got2 = await client.recommend(NAME, { positive: pos, limit: 10 });
    checkTopK(corpus, 'recommend positives only', ap, 10, got2.map((h) => ({ i: h.id, score: h.score })), (i) => !pos.includes(i));
    // best_score: each candidate is judged by its best example: those nearer a positive than any
    // negative come first, by that positive similarity; the rest after, the farther from their
    // nearest negative the better. (Qdrant maps these through a sigmoid for the score it reports,
    // so the order is checked, and the scores only for descending.)
    const best = await client.recommend(NAME, { positive: pos, negative: neg, limit: 10, strategy: 'best_score' });
    const key = (i) => {
      const p = Math.max(...pos.map((k) => cosine(V[i], V[k]))), n = Math.max(...neg.map((k) => cosine(V[i], V[k])));
      return p > n ? 1 + p : -1 - n; // positives above 0, negatives below, each in its order
    };
    const ranked = [...R.keys()].filter((i) => !ex.has(i)).map((i) => key(i)).sort((a, b) => b - a);
    check(best.length === 10, 'best_score: 10 results');
    best.forEach((h, r) => {
      check(!ex.has(h.id), `best_score rank ${r}: an example (${h.id}) returned`);
      check(Math.abs(key(h.id) - ranked[r]) < 1e-4, `best_score rank ${r}: record ${h.id} (${key(h.id)}), exact ${ranked[r]}`);
      if (r) check(h.score <= best[r - 1].score, 'best_score scores descending');
    });
    // recommend through query, with a filter
    const keep = (i) => R[i].category === 'Sapui5' && !pos.includes(i);
    const viaQuery = await client.query(NAME, { query: { recommend: { positive: pos } }, limit: 8,
      filter: { must: [{ key: 'category', match: { value: 'Sapui5' } }] } });
    checkTopK(corpus, 'query recommend with a filter', ap, 8, viaQuery.points.map((h) => ({ i: h.id, score: h.score })), keep);
  },

  async fusion() {
    // two prefetches, fused by reciprocal rank: score = Σ 1 / (k + rank), rank from 0, k = 2
    for (const [a, b] of [[3, 500], [77, 613], [150, 777]]) {
      const la = exactAll(corpus, V[a]).slice(0, 20), lb = exactAll(corpus, V[b]).slice(0, 30);
      const fused = new Map();
      for (const l of [la, lb]) l.forEach((w, r) => fused.set(w.i, (fused.get(w.i) ?? 0) + 1 / (2 + r)));
      const want = [...fused].map(([i, s]) => ({ i, s })).sort((x, y) => y.s - x.s);
      const res = await client.query(NAME, {
        prefetch: [{ query: V[a], limit: 20 }, { query: V[b], limit: 30 }],
        query: { fusion: 'rrf' },
        limit: 10,
      });
      const got = res.points;
      check(got.length === 10, `rrf: ${got.length} results`);
      got.forEach((h, r) => {
        check(fused.has(h.id), `rrf rank ${r}: ${h.id} is in neither prefetch`);
        check(Math.abs(h.score - fused.get(h.id)) < 1e-4, `rrf rank ${r}: ${h.id} score ${h.score}, expected ${fused.get(h.id)}`);
        check(Math.abs(h.score - want[r].s) < 1e-4, `rrf rank ${r}: score ${h.score}, expected ${want[r].s}`);
      });
      // nested: a prefetch of a prefetch, re-scored by a vector over the inner candidates
      const nested = await client.query(NAME, {
        prefetch: [{ prefetch: [{ query: V[a], limit: 50 }], query: V[b], limit: 10 }],
        query: V[b],
        limit: 5,
      });
      const inner = new Set(exactAll(corpus, V[a]).slice(0, 50).map((w) => w.i));
      checkTopK(corpus, 'nested prefetch', V[b], 5, nested.points.map((h) => ({ i: h.id, score: h.score })), (i) => inner.has(i));
    }
  },

  async query_batch() {
    const searches = QUERIES.map((qi, k) => ({ query: V[qi], limit: 5 + k,
      ...(k % 2 && { filter: { must: [{ key: 'category', match: { value: 'Sapui5' } }] } }) }));
    const res = await client.queryBatch(NAME, { searches });
    check(res.length === QUERIES.length, `queryBatch: ${res.length} answers`);
    res.forEach((r, k) => {
      const keep = k % 2 ? (i) => R[i].category === 'Sapui5' : () => true;
      checkTopK(corpus, `queryBatch ${k}`, V[QUERIES[k]], 5 + k, r.points.map((h) => ({ i: h.id, score: h.score })), keep);
    });
  },

  async groups() {
    // groups by category: the best groups first, each with its best group_size hits
    for (const qi of QUERIES.slice(0, 5)) {
      const res = await client.searchPointGroups(NAME, { vector: V[qi], group_by: 'category', limit: 4, group_size: 3 });
      const all = exactAll(corpus, V[qi]);
      const groups = new Map();
      for (const w of all) {
        const c = R[w.i].category;
        if (!groups.has(c)) groups.set(c, []);
        if (groups.get(c).length < 3) groups.get(c).push(w);
      }
      const want = [...groups].slice(0, 4); // Map order = order of each group's best hit
      check(res.groups.length === 4, `groups: ${res.groups.length}`);
      res.groups.forEach((g, k) => {
        check(g.id === want[k][0], `group ${k}: ${g.id}, expected ${want[k][0]}`);
        const keep = (i) => R[i].category === g.id;
        checkTopK(corpus, `group ${g.id}`, V[qi], Math.min(3, want[k][1].length), g.hits.map((h) => ({ i: h.id, score: h.score })), keep);
      });
    }
    const qg = await client.queryGroups(NAME, { query: V[3], group_by: 'path', limit: 2, group_size: 2 });
    check(qg.groups.length === 2 && qg.groups.every((g) => g.hits.length <= 2), 'queryGroups');
  },

  async patch() {
    // 3000 KB of 384-d float32 vectors = 2000 points exactly (vqs keeps a training size in points)
    check(await client.updateCollection(NAME, { optimizers_config: { indexing_threshold: 3000 } }), 'PATCH optimizers_config');
    const info = await client.getCollection(NAME);
    check(info.config.optimizer_config?.indexing_threshold === 3000,
      `indexing_threshold after PATCH: ${JSON.stringify(info.config.optimizer_config)}`);
    await rec.expect('PATCH /collections/{name}', 400, async () => {
      let msg = '';
      try {
        await client.updateCollection(NAME, { sparse_vectors: { text: {} } });
      } catch (e) {
        msg = e.status === 400 ? JSON.stringify(e.data) : `status ${e.status}`;
      }
      check(/sparse_vectors/.test(msg), `PATCH sparse_vectors is refused naming the field: ${msg}`);
    });
    check((await client.count(NAME, { exact: true })).count === N, 'PATCH keeps the points');
  },

  async aliases() {
    check(await client.updateCollectionAliases({ actions: [{ create_alias: { collection_name: NAME, alias_name: ALIAS } }] }),
      'create alias');
    let a = await client.getCollectionAliases(NAME);
    check(same(a.aliases, [{ alias_name: ALIAS, collection_name: NAME }]), `aliases of the collection ${JSON.stringify(a)}`);
    a = await client.getAliases();
    check(a.aliases.some((x) => x.alias_name === ALIAS && x.collection_name === NAME), 'getAliases');
    // the alias answers as the collection
    const q = V[77];
    const viaName = await client.search(NAME, { vector: q, limit: 10 });
    const viaAlias = await client.search(ALIAS, { vector: q, limit: 10 });
    check(same(viaName, viaAlias), 'search through the alias');
    check((await client.count(ALIAS, { exact: true })).count === N, 'count through the alias');
    await client.upsert(ALIAS, { wait: true, points: [{ id: 5000, vector: V[1], payload: {} }] });
    check((await client.count(NAME, { exact: true })).count === N + 1, 'upsert through the alias');
    // rename, atomically with the old alias gone
    check(await client.updateCollectionAliases({ actions: [{ rename_alias: { old_alias_name: ALIAS, new_alias_name: ALIAS2 } }] }),
      'rename alias');
    a = await client.getCollectionAliases(NAME);
    check(same(a.aliases, [{ alias_name: ALIAS2, collection_name: NAME }]), `after rename ${JSON.stringify(a)}`);
    await rec.expect('POST /collections/{name}/points/search', 404, async () => {
      let failed = false;
      try {
        await client.search(ALIAS, { vector: q, limit: 1 });
      } catch (e) {
        failed = e.status === 404;
      }
      check(failed, 'the old alias name is gone');
    });
    check(await client.updateCollectionAliases({ actions: [{ delete_alias: { alias_name: ALIAS2 } }] }), 'delete alias');
    check((await client.getCollectionAliases(NAME)).aliases.length === 0, 'no aliases left');
  },

  async named() {
    // named vectors: "text" (the 384-d MiniLM vector, Cosine) and "mini" (its first 96
    // dimensions, a Matryoshka-style short vector, Euclid, int8-quantized); every point has both
    const M = 96, mini = (i) => V[i].slice(0, M);
    const l2 = (a, b) => Math.sqrt(a.reduce((s, x, j) => s + (x - b[j]) * (x - b[j]), 0));
    check(await client.createCollection(NAMED, { vectors: {
      text: { size: corpus.D, distance: 'Cosine' },
      mini: { size: M, distance: 'Euclid', quantization_config: { scalar: { type: 'int8' } } } } }), 'create');
    const info = await client.getCollection(NAMED);
    const vp = info.config.params.vectors;
    check(vp.text.size === corpus.D && vp.text.distance === 'Cosine' && vp.mini.size === M && vp.mini.distance === 'Euclid',
      `collection info vectors ${JSON.stringify(vp)}`);
    for (let b = 0; b < N; b += 200) {
      const points = [];
      for (let i = b; i < Math.min(N, b + 200); i++) points.push({ id: i, vector: { text: V[i], mini: mini(i) }, payload: payloadOf(i) });
      check((await client.upsert(NAMED, { wait: true, points })).status === 'completed', 'upsert named');
    }
    check((await client.getCollection(NAMED)).points_count === N, 'points_count');
    // each vector searched on its own: exact top k (below the training size vqs scores exactly)
    const byL2 = (q, keep = () => true) => [...R.keys()].filter(keep).map((i) => ({ i, d: l2(q, mini(i)) }))
      .sort((x, y) => x.d - y.d || x.i - y.i);
    const checkL2 = (what, q, k, got, keep) => {
      const want = byL2(q, keep).slice(0, k);
      check(got.length === want.length, `${what}: ${got.length} results`);
      got.forEach((h, r) => {
        check(Math.abs(h.score - l2(q, mini(h.id))) < 1e-4, `${what}: rank ${r}: ${h.id} score ${h.score}`);
        check(Math.abs(h.score - want[r].d) < 1e-4, `${what}: rank ${r}: ${h.score}, exact ${want[r].d} (${want[r].i})`);
      });
    };
    for (const qi of QUERIES.slice(0, 4)) {
      const t = await client.search(NAMED, { vector: { name: 'text', vector: V[qi] }, limit: 10 });
      checkTopK(corpus, 'search text', V[qi], 10, t.map((h) => ({ i: h.id, score: h.score })));
      const m = await client.search(NAMED, { vector: { name: 'mini', vector: mini(qi) }, limit: 10 });
      checkL2('search mini', mini(qi), 10, m);
      const q = await client.query(NAMED, { query: mini(qi), using: 'mini', limit: 7,
        filter: { must: [{ key: 'category', match: { value: 'Sapui5' } }] } });
      checkL2('query using mini, filtered', mini(qi), 7, q.points, (i) => R[i].category === 'Sapui5');
    }
    // with_vector: a list of names returns those; true returns both
    const one = await client.query(NAMED, { query: V[3], using: 'text', limit: 3, with_vector: ['mini'] });
    one.points.forEach((p) => {
      check(Object.keys(p.vector).join() === 'mini', `with_vector [mini]: ${Object.keys(p.vector)}`);
      check(p.vector.mini.every((x, j) => Math.abs(x - mini(p.id)[j]) < 1e-6), 'the mini vector as upserted');
    });
    const [got] = await client.retrieve(NAMED, { ids: [150], with_vector: true });
    check(Object.keys(got.vector).sort().join() === 'mini,text', `retrieve: ${Object.keys(got.vector)}`);
    check(got.vector.text.every((x, j) => Math.abs(x - norm(V[150])[j]) < 1e-5), 'text vector (cosine: normalised)');
    // a prefetch over each vector, fused: Σ 1 / (2 + rank) over the two exact lists
    const la = exactAll(corpus, V[77]).slice(0, 20), lb = byL2(mini(500)).slice(0, 20);
    const fused = new Map();
    la.forEach((w, r) => fused.set(w.i, (fused.get(w.i) ?? 0) + 1 / (2 + r)));
    lb.forEach((w, r) => fused.set(w.i, (fused.get(w.i) ?? 0) + 1 / (2 + r)));
    const want = [...fused.values()].sort((x, y) => y - x);
    const f = await client.query(NAMED, { prefetch: [{ query: V[77], using: 'text', limit: 20 },
      { query: mini(500), using: 'mini', limit: 20 }], query: { fusion: 'rrf' }, limit: 10 });
    f.points.forEach((h, r) => {
      check(Math.abs(h.score - fused.get(h.id)) < 1e-4 && Math.abs(h.score - want[r]) < 1e-4,
        `rrf over two vectors: rank ${r}: ${h.id} ${h.score}, expected ${want[r]}`);
    });
    // recommend over "mini" by point ids: the average of the examples' mini vectors
    const reco = await client.recommend(NAMED, { positive: [3, 150], using: 'mini', limit: 5 });
    const avg = mini(3).map((x, j) => (x + mini(150)[j]) / 2);
    checkL2('recommend using mini', avg, 5, reco, (i) => i !== 3 && i !== 150);
    // update vectors (both given): the point moves in both spaces
    await client.updateVectors(NAMED, { wait: true, points: [{ id: 5, vector: { text: V[700], mini: mini(700) } }] });
    const [p5] = await client.retrieve(NAMED, { ids: [5], with_vector: true, with_payload: true });
    check(p5.vector.mini.every((x, j) => Math.abs(x - mini(700)[j]) < 1e-6) && same(p5.payload, payloadOf(5)),
      'updated vectors, payload kept');
    // a point without one of its vectors is refused, naming it; nothing is written
    await rec.expect('PUT /collections/{name}/points', 400, async () => {
      let msg = '';
      try {
        await client.upsert(NAMED, { wait: true, points: [{ id: 9000, vector: { text: V[1] } }] });
      } catch (e) {
        msg = JSON.stringify(e.data ?? '');
      }
      check(msg.includes('mini'), `upsert without "mini": ${msg}`);
    });
    check((await client.count(NAMED, { exact: true })).count === N, 'nothing written');
    check(await client.deleteCollection(NAMED), 'drop');
  },
};

await run(`qdrant ${section}`, async () => {
  check(sections[section], `unknown section ${section} (${Object.keys(sections).join(', ')})`);
  await load();
  rec.assertClean('after loading');
  await sections[section]();
  await rec.finish(out);
});
