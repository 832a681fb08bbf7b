// LlamaIndex's QdrantVectorStore (@llamaindex/qdrant) against vqs serve:
//   node llamaindex_test.mjs PORT DATA_DIR ENDPOINTS_OUT
// The 778 fiori chunks as TextNodes (metadata, and the source file as their ref doc), embedded by
// a BaseEmbedding that returns each chunk's MiniLM vector; add, query with similarityTopK and the
// metadata filters toQdrantMetadataFilters emits (EQ on strings and numbers, IN, GT/LT, GTE/LTE,
// NE, OR), docIds, delete by ref doc. Every answer is checked against exact cosine search
// (common.mjs).
import { QdrantVectorStore } from '@llamaindex/qdrant';
import { BaseEmbedding } from '@llamaindex/core/embeddings';
import { TextNode, NodeRelationship } from '@llamaindex/core/schema';
import { FilterCondition, FilterOperator, VectorStoreQueryMode } from '@llamaindex/core/vector-store';
import { Recorder, check, checkTopK, embedText, loadCorpus, run, uuidOf } from './common.mjs';

const [port, dataDir, out] = process.argv.slice(2);
const NAME = 'llamaindex_fiori';
const rec = new Recorder([NAME]);
const corpus = loadCorpus(dataDir);
const N = corpus.records.length;

class FioriEmbedding extends BaseEmbedding {
  async getTextEmbedding(text) {
    return embedText(corpus, text);
  }
}

const meta = (r) => ({ category: r.category, title: r.title, wordCount: r.wordCount, path: r.path });
const nodeId = (i) => uuidOf(i, 1);

await run('llamaindex', async () => {
  const embedModel = new FioriEmbedding();
  const nodes = corpus.records.map((r, i) => new TextNode({
    id_: nodeId(i),
    text: r.content,
    metadata: meta(r),
    excludedEmbedMetadataKeys: Object.keys(meta(r)), // the embedded text is the chunk's, nothing added
    relationships: { [NodeRelationship.SOURCE]: { nodeId: r.path } }, // the ref doc: the source file
  }));
  await embedModel(nodes); // the framework's own embedding transform sets node.embedding
  nodes.forEach((n, i) => check(JSON.stringify(n.embedding) === JSON.stringify(corpus.vectors[i]), `node ${i} embedding`));

  const store = new QdrantVectorStore({ url: `http://127.0.0.1:${port}`, collectionName: NAME, embedModel });
  // add() in slices of at most batchSize (100) nodes: @llamaindex/qdrant 0.1.32's buildPoints
  // skips the node after each full batch of a longer list (its inner loop and its outer loop both
  // advance i), so add(778 nodes) stores 771. The first add() probes for the collection with
  // getCollection: a 404 it expects.
  const ids = [];
  for (let b = 0; b < N; b += 100) {
    const slice = nodes.slice(b, b + 100);
    const add = () => store.add(slice);
    ids.push(...(b === 0 ? await rec.expect('GET /collections/{name}', 404, add) : await add()));
  }
  check(JSON.stringify(ids) === JSON.stringify(nodes.map((n) => n.id_)), 'add() returns the node ids');
  rec.assertClean('after add');
  const client = store.client();
  check((await rec.own(() => client.count(NAME, { exact: true }))).count === N, 'count after add');

  const alive = new Set(corpus.records.map((_, i) => i));
  // a query's result -> [{i, score}], checking the node that came back (id, text, metadata, ref doc)
  function results(res, what) {
    check(res.nodes.length === res.ids.length && res.ids.length === res.similarities.length, `${what}: result arrays`);
    return res.nodes.map((n, r) => {
      const i = corpus.byText.get(n.text);
      check(i !== undefined, `${what}: rank ${r}: a node whose text is no chunk`);
      check(res.ids[r] === nodeId(i) && n.id_ === nodeId(i), `${what}: rank ${r}: id ${res.ids[r]}, expected ${nodeId(i)}`);
      check(JSON.stringify(n.metadata) === JSON.stringify(meta(corpus.records[i])),
        () => `${what}: rank ${r}: metadata ${JSON.stringify(n.metadata)}`);
      check(n.sourceNode?.nodeId === corpus.records[i].path, `${what}: rank ${r}: ref doc ${n.sourceNode?.nodeId}`);
      return { i, score: res.similarities[r] };
    });
  }
  const QUERIES = [3, 77, 150, 222, 301, 415, 500, 613, 700, 777];
  async function queries(what, k, filters, keep, extra = {}) {
    for (const qi of QUERIES) {
      const q = await embedModel.getTextEmbedding(corpus.records[qi].content);
      const res = await store.query({ queryEmbedding: q, similarityTopK: k, mode: VectorStoreQueryMode.DEFAULT, filters, ...extra });
      checkTopK(corpus, `${what} (record ${qi})`, q, k, results(res, what), (i) => alive.has(i) && keep(i));
    }
  }
  await queries('query', 10, undefined, () => true);
  await queries('query, top 1', 1, undefined, () => true);

  const R = corpus.records;
  const wc = R[500].wordCount;
  const F = (filters, condition) => ({ filters, ...(condition && { condition }) });
  const cases = [
    ['EQ string', F([{ key: 'category', value: 'Sapui5', operator: FilterOperator.EQ }]), (i) => R[i].category === 'Sapui5'],
    ['EQ number', F([{ key: 'wordCount', value: wc, operator: FilterOperator.EQ }]), (i) => R[i].wordCount === wc],
    ['IN', F([{ key: 'category', value: ['Fiori Samples', 'Create README'], operator: FilterOperator.IN }]),
      (i) => ['Fiori Samples', 'Create README'].includes(R[i].category)],
    ['GT and LT', F([{ key: 'wordCount', value: 500, operator: FilterOperator.GT },
      { key: 'wordCount', value: 1500, operator: FilterOperator.LT }], FilterCondition.AND),
      (i) => R[i].wordCount > 500 && R[i].wordCount < 1500],
    ['GTE and LTE', F([{ key: 'wordCount', value: 622, operator: FilterOperator.GTE },
      { key: 'wordCount', value: 700, operator: FilterOperator.LTE }]),
      (i) => R[i].wordCount >= 622 && R[i].wordCount <= 700],
    ['NE', F([{ key: 'category', value: 'Sapui5', operator: FilterOperator.NE }]), (i) => R[i].category !== 'Sapui5'],
    ['OR', F([{ key: 'category', value: 'Sap Fe Test Api', operator: FilterOperator.EQ },
      { key: 'wordCount', value: 3000, operator: FilterOperator.GT }], FilterCondition.OR),
      (i) => R[i].category === 'Sap Fe Test Api' || R[i].wordCount > 3000],
  ];
  for (const [what, filters, keep] of cases) {
    const n = R.filter((_, i) => keep(i)).length;
    check(n > 0 && n < N, `${what}: the filter matches ${n} chunks`);
    await queries(`filter ${what}`, 10, filters, keep);
  }
  // docIds: the ref docs' nodes only (doc_id match any)
  const docs = ['data_local/fiori-samples.md', 'data_local/sap_fe_test_api.md'];
  await queries('docIds', 10, undefined, (i) => docs.includes(R[i].path), { docIds: docs });
  await queries('docIds and a filter', 5, F([{ key: 'wordCount', value: 400, operator: FilterOperator.GT }]),
    (i) => docs.includes(R[i].path) && R[i].wordCount > 400, { docIds: docs });
  rec.assertClean('after the queries');

  // delete by ref doc: every node of that source file goes
  await store.delete('data_local/fiori-samples.md');
  for (const [i, r] of R.entries()) if (r.path === 'data_local/fiori-samples.md') alive.delete(i);
  check(alive.size === N - 38, 'the ref doc had 38 nodes');
  check((await rec.own(() => client.count(NAME, { exact: true }))).count === alive.size, 'count after delete by ref doc');
  await queries('query after the delete', 10, undefined, () => true);
  await queries('docIds after the delete', 10, undefined, (i) => docs.includes(R[i].path), { docIds: docs });
  await store.delete('no-such-ref-doc'); // deleting nothing is not an error
  check((await rec.own(() => client.count(NAME, { exact: true }))).count === alive.size, 'count after deleting an unknown ref doc');

  await rec.finish(out);
});
