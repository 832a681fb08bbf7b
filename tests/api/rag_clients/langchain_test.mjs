// LangChain's QdrantVectorStore (@langchain/qdrant) against vqs serve, on its default paths:
//   node langchain_test.mjs PORT DATA_DIR ENDPOINTS_OUT [main|mmr]
// fromDocuments + addDocuments of the 778 fiori chunks, then main: similaritySearch (with and
// without a metadata filter), similaritySearchWithScore, delete by ids and by filter; or mmr:
// maxMarginalRelevanceSearch. Every answer is checked against exact cosine search over the same
// vectors (common.mjs).
import { QdrantVectorStore } from '@langchain/qdrant';
import { Embeddings } from '@langchain/core/embeddings';
import { Document } from '@langchain/core/documents';
import { Recorder, check, checkTopK, cosine, embedText, exactAll, loadCorpus, metadataOf, run, uuidOf } from './common.mjs';

const [port, dataDir, out, phase = 'main'] = process.argv.slice(2);
const NAME = 'langchain_fiori';
const rec = new Recorder([NAME]);
const corpus = loadCorpus(dataDir);
const N = corpus.records.length;

class FioriEmbeddings extends Embeddings {
  constructor() {
    super({});
  }
  async embedDocuments(texts) {
    return texts.map((t) => embedText(corpus, t));
  }
  async embedQuery(text) {
    return embedText(corpus, text);
  }
}

const docOf = (i) => new Document({ pageContent: corpus.records[i].content, metadata: metadataOf(corpus.records[i]) });
// a returned Document -> its record index, checking that content and metadata came back whole
function indexOf(doc, what) {
  const i = corpus.byText.get(doc.pageContent);
  check(i !== undefined, `${what}: a document whose text is no chunk`);
  check(JSON.stringify(doc.metadata) === JSON.stringify(metadataOf(corpus.records[i])),
    () => `${what}: record ${i}: metadata ${JSON.stringify(doc.metadata)}`);
  return i;
}

const cat = 'Btp Fiori Tools';
const QUERIES = [3, 77, 150, 222, 301, 415, 500, 613, 700, 777];
const alive = new Set(corpus.records.map((_, i) => i));

async function searches(store, what) {
  for (const qi of QUERIES) {
    const text = corpus.records[qi].content, q = corpus.vectors[qi];
    const docs = await store.similaritySearch(text, 10);
    checkTopK(corpus, `${what}: similaritySearch(record ${qi})`, q, 10,
      docs.map((d) => ({ i: indexOf(d, what) })), (i) => alive.has(i));
    const scored = await store.similaritySearchWithScore(text, 12);
    checkTopK(corpus, `${what}: similaritySearchWithScore(record ${qi})`, q, 12,
      scored.map(([d, s]) => ({ i: indexOf(d, what), score: s })), (i) => alive.has(i));
  }
}

// Qdrant's MMR (query.mmr): λ = 1 − diversity (LangChain passes its `lambda` as Qdrant's
// `diversity`, null when unset: Qdrant's default 0.5); from the candidates, greedily pick the one
// maximising λ·sim(q, c) − (1 − λ)·max over those picked of sim(c, p), similarities being the
// collection's (cosine). Each pick must be a best one, within 1e-4 (ties may fall either way).
// Dropping mmr and answering the plain nearest fails this whenever diversity changes the order.
function checkMMR(what, q, candidates, got, diversity) {
  const lambda = 1 - diversity;
  const picked = [];
  const left = new Set(candidates);
  const score = (c) =>
    lambda * cosine(q, corpus.vectors[c]) -
    (1 - lambda) * picked.reduce((m, p) => Math.max(m, cosine(corpus.vectors[c], corpus.vectors[p])), picked.length ? -Infinity : 0);
  for (const [r, g] of got.entries()) {
    let best = -Infinity, bestc = -1;
    for (const c of left) {
      const sc = score(c);
      if (sc > best) (best = sc), (bestc = c);
    }
    check(left.has(g), `${what}: rank ${r}: record ${g} is no candidate left`);
    check(score(g) >= best - 1e-4, `${what}: rank ${r}: record ${g} has MMR score ${score(g)}, record ${bestc} ${best}`);
    left.delete(g);
    picked.push(g);
  }
}

// the 778 chunks: the first 400 through fromDocuments (random UUIDs, as LangChain makes them),
// the rest through addDocuments with ids of our own
async function load() {
  const url = `http://127.0.0.1:${port}`;
  const embeddings = new FioriEmbeddings();
  const first = [...Array(400).keys()];
  const store = await QdrantVectorStore.fromDocuments(first.map(docOf), embeddings, { url, collectionName: NAME });
  const rest = [];
  for (let i = 400; i < N; i++) rest.push(i);
  for (let b = 0; b < rest.length; b += 150) {
    const part = rest.slice(b, b + 150);
    await store.addDocuments(part.map(docOf), { ids: part.map((i) => uuidOf(i)) });
  }
  rec.assertClean('after adding the documents');
  check((await rec.own(() => store.client.count(NAME, { exact: true }))).count === N, 'count after adding all chunks');
  return store;
}

// similaritySearch (with and without filters), similaritySearchWithScore, delete by ids and by filter
async function main(store) {

  await searches(store, 'all chunks');

  // metadata filters, Qdrant's syntax on the payload's "metadata" key (LangChain's layout)
  const filters = [
    [{ must: [{ key: 'metadata.category', match: { value: cat } }] }, (i) => corpus.records[i].category === cat],
    [{
      must: [{ key: 'metadata.wordCount', range: { gte: 300, lt: 900 } }],
      must_not: [{ key: 'metadata.category', match: { any: ['Sapui5', 'Fiori Samples'] } }],
    }, (i) => {
      const r = corpus.records[i];
      return r.wordCount >= 300 && r.wordCount < 900 && r.category !== 'Sapui5' && r.category !== 'Fiori Samples';
    }],
    [{ should: [{ key: 'metadata.tags', match: { value: 'OPA5' } }, { key: 'metadata.tags', match: { value: 'CLI' } }] },
      (i) => { const t = JSON.parse(corpus.records[i].tags_json); return t.includes('OPA5') || t.includes('CLI'); }],
  ];
  for (const [fi, [filter, keep]] of filters.entries()) {
    check(corpus.records.some((_, i) => keep(i)), `filter ${fi} matches something`);
    for (const qi of QUERIES.slice(0, 5)) {
      const text = corpus.records[qi].content, q = corpus.vectors[qi];
      const docs = await store.similaritySearch(text, 8, filter);
      checkTopK(corpus, `filter ${fi}: similaritySearch(record ${qi})`, q, 8,
        docs.map((d) => ({ i: indexOf(d, 'filtered') })), (i) => alive.has(i) && keep(i));
      const scored = await store.similaritySearchWithScore(text, 8, filter);
      checkTopK(corpus, `filter ${fi}: similaritySearchWithScore(record ${qi})`, q, 8,
        scored.map(([d, s]) => ({ i: indexOf(d, 'filtered'), score: s })), (i) => alive.has(i) && keep(i));
    }
  }

  // delete by ids (ours, from addDocuments): each deleted chunk no longer finds itself
  const gone = [401, 415, 500, 613, 700, 777];
  await store.delete({ ids: gone.map((i) => uuidOf(i)) });
  for (const i of gone) alive.delete(i);
  check((await rec.own(() => store.client.count(NAME, { exact: true }))).count === N - gone.length, 'count after delete by ids');
  await store.delete({ ids: gone.map((i) => uuidOf(i)) }); // again: deleting what is gone succeeds, as in Qdrant
  check((await rec.own(() => store.client.count(NAME, { exact: true }))).count === N - gone.length, 'count after deleting again');
  // delete by filter: the whole "Fiori Samples" category
  const samples = corpus.records.map((r, i) => (r.category === 'Fiori Samples' ? i : -1)).filter((i) => i >= 0);
  await store.delete({ filter: { must: [{ key: 'metadata.category', match: { value: 'Fiori Samples' } }] } });
  for (const i of samples) alive.delete(i);
  check((await rec.own(() => store.client.count(NAME, { exact: true }))).count === alive.size, 'count after delete by filter');
  await searches(store, 'after the deletes');
  for (const i of [...gone, ...samples.slice(0, 5)]) {
    const docs = await store.similaritySearch(corpus.records[i].content, 5);
    checkTopK(corpus, `after the deletes: deleted record ${i}`, corpus.vectors[i], 5,
      docs.map((d) => ({ i: indexOf(d, 'after the deletes') })), (j) => alive.has(j));
  }
  const none = await store.similaritySearch(corpus.records[samples[0]].content, 5,
    { must: [{ key: 'metadata.category', match: { value: 'Fiori Samples' } }] });
  check(none.length === 0, `the deleted category still finds ${none.length}`);

}

// maxMarginalRelevanceSearch: its own case, since it needs Qdrant's query mmr
async function mmr(store) {
  // MMR (Qdrant's query {nearest, mmr: {diversity, candidates_limit}}): k distinct results drawn
  // from the fetchK nearest, the first being the nearest (nothing is selected yet, so relevance
  // alone picks it)
  for (const qi of QUERIES) {
    const text = corpus.records[qi].content, q = corpus.vectors[qi];
    for (const [k, fetchK, lambda] of [[5, 20, undefined], [8, 30, 0.5], [4, 10, 0.2]]) {
      const what = `maxMarginalRelevanceSearch(record ${qi}, k ${k}, fetchK ${fetchK}, lambda ${lambda})`;
      // the query's own chunk is filtered out: picked first, it would make every other score ≤ 0
      const filter = { must_not: [{ key: 'metadata.document_id', match: { value: corpus.records[qi].document_id } }] };
      const docs = await store.maxMarginalRelevanceSearch(text, { k, fetchK, lambda, filter });
      const got = docs.map((d) => indexOf(d, what));
      check(got.length === k, `${what}: ${got.length} results`);
      check(new Set(got).size === k, `${what}: a result returned twice: ${got}`);
      const all = exactAll(corpus, q, (i) => i !== qi);
      const bar = all[fetchK - 1].score - 1e-4; // the fetchK-th nearest (ties within 1e-4 either way)
      for (const i of got)
        check(all.find((w) => w.i === i).score >= bar, `${what}: record ${i} is not among the ${fetchK} nearest`);
      check(Math.abs(all.find((w) => w.i === got[0]).score - all[0].score) <= 1e-4,
        `${what}: the first result is record ${got[0]}, the nearest is record ${all[0].i}`);
      checkMMR(what, q, all.slice(0, fetchK).map((w) => w.i), got, lambda ?? 0.5);
    }
  }
  // with a filter, the candidates are the fetchK nearest that match
  {
    const keep = (i) => corpus.records[i].category === cat;
    const qi = QUERIES[4], q = corpus.vectors[qi];
    check(corpus.records[qi].category !== cat, 'the filtered MMR query is outside the category');
    const docs = await store.maxMarginalRelevanceSearch(corpus.records[qi].content, {
      k: 5, fetchK: 15, filter: { must: [{ key: 'metadata.category', match: { value: cat } }] },
    });
    const got = docs.map((d) => indexOf(d, 'filtered MMR'));
    const all = exactAll(corpus, q, keep);
    check(got.length === 5 && new Set(got).size === 5, `filtered MMR: ${got}`);
    for (const i of got)
      check(keep(i) && cosine(q, corpus.vectors[i]) >= all[14].score - 1e-4, `filtered MMR: record ${i} is not among the 15 nearest that match`);
    check(Math.abs(cosine(q, corpus.vectors[got[0]]) - all[0].score) <= 1e-4, `filtered MMR: first ${got[0]}, nearest ${all[0].i}`);
    checkMMR('filtered MMR', q, all.slice(0, 15).map((w) => w.i), got, 0.5);
  }

}

await run(`langchain ${phase}`, async () => {
  check(phase === 'main' || phase === 'mmr', `unknown phase ${phase} (main, mmr)`);
  const store = await load();
  await (phase === 'main' ? main(store) : mmr(store));
  await rec.finish(out);
});
