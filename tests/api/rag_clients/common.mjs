// Shared by the RAG client scripts (tests/api/test_rag_clients.cpp runs them):
// - the fiori corpus (records.jsonl + embeddings.bin, row i = record i) and an embedding function
//   that returns the real MiniLM vector of a chunk, looked up by its text;
// - exact cosine search over the same vectors, computed here in doubles, independent of vqs;
// - a recorder around globalThis.fetch (the Qdrant client sends every request through the global
//   fetch, @qdrant/openapi-typescript-fetch): method, path with the collection name as {name} and
//   point ids as {id}, status. Any status >= 400 that the script did not announce with expect()
//   is a failure, even when the framework swallows the error.
import { readFileSync, writeFileSync } from 'node:fs';

export function fail(what) {
  console.error(`FAIL: ${what}`);
  process.exit(1);
}

export function check(cond, what) {
  if (!cond) fail(typeof what === 'function' ? what() : what);
}

// ---- the corpus -------------------------------------------------------------------------------

export function loadCorpus(dataDir) {
  const dir = `${dataDir}/fiori_docs_minilm384`;
  const records = readFileSync(`${dir}/records.jsonl`, 'utf8')
    .split('\n')
    .filter((l) => l.length)
    .map((l) => JSON.parse(l));
  const buf = readFileSync(`${dir}/embeddings.bin`);
  const D = 384;
  check(buf.length === records.length * D * 4, `embeddings.bin: ${buf.length} bytes for ${records.length} records`);
  const f = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
  const vectors = records.map((_, i) => Array.from(f.subarray(i * D, (i + 1) * D)));
  const byText = new Map();
  records.forEach((r, i) => {
    check(!byText.has(r.content), `two records with the same text (${i})`);
    byText.set(r.content, i);
  });
  return { records, vectors, byText, D };
}

// The embedding of a text: the corpus vector of the chunk with exactly that text. LangChain asks
// for the embedding of "test" once, only to learn the dimension: it gets record 0's vector.
export function embedText(corpus, text) {
  const i = text === 'test' ? 0 : corpus.byText.get(text);
  check(i !== undefined, () => `embedding asked for a text that is no chunk: ${JSON.stringify(text.slice(0, 80))}`);
  return corpus.vectors[i].slice();
}

// The metadata each chunk is stored with (numbers stay numbers; tags as an array)
export function metadataOf(r) {
  return {
    category: r.category,
    title: r.title,
    path: r.path,
    chunk_index: r.chunk_index,
    document_id: r.document_id,
    wordCount: r.wordCount,
    tags: JSON.parse(r.tags_json),
  };
}

// A deterministic UUID per record index (v4 layout)
export function uuidOf(i, salt = 0) {
  const h = (i + salt * 100000).toString(16).padStart(12, '0');
  return `00000000-0000-4000-8000-${h}`;
}

// ---- exact search ----------------------------------------------------------------------------

export function cosine(a, b) {
  let ab = 0, aa = 0, bb = 0;
  for (let j = 0; j < a.length; j++) {
    ab += a[j] * b[j];
    aa += a[j] * a[j];
    bb += b[j] * b[j];
  }
  return ab / Math.sqrt(aa * bb);
}

// All records i with keep(i), by descending cosine to q: [{i, score}]
export function exactAll(corpus, q, keep = () => true) {
  const out = [];
  for (let i = 0; i < corpus.vectors.length; i++) if (keep(i)) out.push({ i, score: cosine(q, corpus.vectors[i]) });
  out.sort((x, y) => y.score - x.score || x.i - y.i);
  return out;
}

const EPS = 1e-4;

// got: [{i, score}] in the order returned. It must be the exact top-k of the records keep()
// admits: as many results as exist (up to k), distinct, each score within 1e-4 of the exact cosine
// of that record and of the exact score at that rank, and no record left out that scores clearly
// better than the last one returned (ties within 1e-4 may fall either way).
export function checkTopK(corpus, what, q, k, got, keep = () => true) {
  const all = exactAll(corpus, q, keep);
  const want = all.slice(0, k);
  check(got.length === want.length, `${what}: ${got.length} results, expected ${want.length}`);
  const seen = new Set();
  got.forEach((g, r) => {
    check(g.i !== undefined && g.i >= 0, `${what}: rank ${r}: a result that is no known chunk`);
    check(!seen.has(g.i), `${what}: rank ${r}: record ${g.i} returned twice`);
    seen.add(g.i);
    check(keep(g.i), `${what}: rank ${r}: record ${g.i} does not match the filter (or was deleted)`);
    const exact = cosine(q, corpus.vectors[g.i]);
    if (g.score !== undefined) {
      check(Math.abs(g.score - exact) <= EPS, `${what}: rank ${r}: record ${g.i} score ${g.score}, exact cosine ${exact}`);
      check(Math.abs(g.score - want[r].score) <= EPS,
        `${what}: rank ${r}: score ${g.score}, exact score at that rank ${want[r].score} (record ${want[r].i})`);
    } else {
      check(Math.abs(exact - want[r].score) <= EPS,
        `${what}: rank ${r}: record ${g.i} (cosine ${exact}), exact rank ${r} is record ${want[r].i} (${want[r].score})`);
    }
  });
  if (want.length) {
    const last = want[want.length - 1].score;
    for (const w of all) {
      if (w.score <= last + EPS) break;
      check(seen.has(w.i), `${what}: record ${w.i} (cosine ${w.score}) is missing; the last result scores ${last}`);
    }
  }
}

// ---- the request recorder ------------------------------------------------------------------------

// a point id in a path: an unsigned integer or a UUID
const ID = /^(\d+|[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12})$/i;

export class Recorder {
  constructor(names) {
    this.names = new Set(names); // collection (and alias) names replaced by {name}
    this.calls = [];
    this.unexpected = [];
    this.allowed = new Map(); // "METHOD path" -> statuses announced by expect()
    this.inflight = new Set();
    this.mine = false; // set by own(): the requests are the test's checks, not the framework's
    const orig = globalThis.fetch;
    check(typeof orig === 'function', 'globalThis.fetch is missing (Node.js >= 18 needed)');
    globalThis.fetch = (input, init) => {
      const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
      const method = (init?.method ?? (typeof input === 'object' && input.method) ?? 'GET').toUpperCase();
      const path = this.normalise(url.pathname), mine = this.mine;
      const p = orig(input, init).then(
        (res) => {
          this.record(method, path, res.status, mine);
          return res;
        },
        (err) => {
          this.record(method, path, 'network error: ' + (err?.cause?.code ?? err?.message ?? err), mine);
          throw err;
        },
      );
      const tracked = p.catch(() => {}).finally(() => this.inflight.delete(tracked));
      this.inflight.add(tracked);
      return p;
    };
  }

  normalise(pathname) {
    const segs = pathname.split('/');
    return segs
      .map((s, k) => {
        const d = decodeURIComponent(s);
        if (k === 2 && segs[1] === 'collections' && this.names.has(d)) return '{name}';
        if (k === 4 && segs[3] === 'points' && segs[1] === 'collections' && ID.test(d) && segs.length === 5) return '{id}';
        if (k === 4 && segs[3] === 'index' && segs[1] === 'collections') return '{field_name}';
        return d;
      })
      .join('/');
  }

  record(method, path, status, mine) {
    const key = `${method} ${path}`;
    this.calls.push({ method, path, status, mine });
    const ok = typeof status === 'number' && (status < 400 || (this.allowed.get(key)?.has(status) ?? false));
    if (!ok) this.unexpected.push(`${key} -> ${status}`);
  }

  // run fn while the given "METHOD path" may answer the given status (an error the framework
  // provokes on purpose, e.g. LlamaIndex probing for a collection that does not exist yet)
  async expect(key, status, fn) {
    if (!this.allowed.has(key)) this.allowed.set(key, new Set());
    this.allowed.get(key).add(status);
    try {
      return await fn();
    } finally {
      this.allowed.get(key).delete(status);
    }
  }

  // run fn, its requests marked as the test's own checks (listed apart from the framework's)
  async own(fn) {
    this.mine = true;
    try {
      return await fn();
    } finally {
      this.mine = false;
    }
  }

  // fails on any request that got an unexpected error status so far
  assertClean(where) {
    check(this.unexpected.length === 0, () => `${where}: requests that failed:\n  ${this.unexpected.join('\n  ')}`);
  }

  // waits for requests still under way (the client's version check), then writes the distinct
  // endpoints touched, one "METHOD path statuses" per line, in order of first use; those only the
  // test's own checks used are marked "(test's check)"
  async finish(out) {
    while (this.inflight.size) await Promise.all([...this.inflight]);
    const seen = new Map();
    const add = (key, status) => {
      if (!seen.has(key)) seen.set(key, new Set());
      seen.get(key).add(status);
    };
    for (const c of this.calls) if (!c.mine) add(`${c.method} ${c.path}`, c.status);
    for (const c of this.calls) {
      const key = `${c.method} ${c.path}`;
      if (c.mine) add(seen.has(key) ? key : `${key} (test's check)`, c.status);
    }
    const lines = [...seen].map(([k, st]) => `${k} ${[...st].sort().join(',')}`);
    writeFileSync(out, lines.join('\n') + '\n');
    this.assertClean('at the end');
  }
}

// Runs main(), reporting an exception as a failure with what the server said
export async function run(name, main) {
  try {
    await main();
    console.log(`${name}: ok`);
  } catch (e) {
    console.error(`FAIL: ${name}: exception`, e?.status ?? '', JSON.stringify(e?.data ?? e?.message ?? String(e)));
    if (e?.stack) console.error(e.stack);
    process.exit(1);
  }
}
