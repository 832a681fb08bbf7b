// vqs report (tools/report.c): the page is self-contained and escapes
// everything that comes from the results file; and, in a real headless
// browser (Debian's chromium), its plots render with the number of points the
// fixture implies, inside their plot areas, and a screenshot shows the
// colours of the quantizer families. chromium is required (CI installs it,
// scripts/setup.sh lists it): its absence is a failure, not a skip.
#include "tools_test.hpp"

#include <cmath>
#include <set>
#include <zlib.h>

using namespace vqs_test;
using namespace vqs_tools_test;

namespace
{

std::string html_of(const vqs_results *r, const vqs_report_opts *o = nullptr)
{
    char *h = nullptr;
    size_t len = 0;
    REQUIRE_OK(vqs_report_html(r, o, &h, &len));
    std::string s(h, len);
    free(h);
    REQUIRE(s.size() == std::strlen(s.c_str()));
    return s;
}

size_t count(const std::string &s, const std::string &needle)
{
    size_t n = 0;
    for (size_t p = s.find(needle); p != std::string::npos; p = s.find(needle, p + 1))
        n++;
    return n;
}

// The <svg class="plot" id="ID" ...> ... </svg> element of the page.
std::string svg_of(const std::string &html, const std::string &id)
{
    size_t a = html.find("<svg class=\"plot\" id=\"" + id + "\"");
    if (a == std::string::npos)
        return "";
    size_t b = html.find("</svg>", a);
    REQUIRE(b != std::string::npos);
    return html.substr(a, b - a);
}

// Runs chromium headless on a local file with a private profile.
proc_out chromium(const tmpdir &t, const std::vector<std::string> &args, const std::string &file)
{
    std::vector<std::string> a = {"chromium",       "--headless",         "--no-sandbox",  "--disable-gpu",
                                  "--no-first-run", "--disable-extensions", "--mute-audio", "--hide-scrollbars",
                                  "--user-data-dir=" + t.file("profile")};
    a.insert(a.end(), args.begin(), args.end());
    a.push_back("file://" + file);
    auto p = run(t, a, 120);
    INFO("chromium exit " << p.code << " (127: not installed: apt-get install chromium, or scripts/setup.sh)");
    REQUIRE(p.code == 0); // stderr is noise (dbus and the like); the status and the outputs count
    return p;
}

// The JSON the page's script wrote into <pre id="render-check"> (new reference).
json_t *render_check(const std::string &dom)
{
    size_t a = dom.find("<pre id=\"render-check\"");
    INFO(dom.substr(0, 300));
    REQUIRE(a != std::string::npos);
    a = dom.find('>', a) + 1;
    size_t b = dom.find("</pre>", a);
    std::string js = dom.substr(a, b - a);
    INFO("render-check: " << js);
    json_error_t e;
    json_t *j = json_loads(js.c_str(), 0, &e);
    REQUIRE(j != nullptr); // empty when the script did not run
    return j;
}

struct png_image {
    uint32_t w = 0, h = 0;
    std::vector<uint8_t> rgb; // w * h * 3
};

uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

// An 8-bit RGB or RGBA non-interlaced PNG (what chromium writes) decoded to RGB.
png_image decode_png(const std::vector<uint8_t> &f)
{
    static const uint8_t sig[8] = {137, 'P', 'N', 'G', 13, 10, 26, 10};
    REQUIRE(f.size() > 33);
    REQUIRE(std::memcmp(f.data(), sig, 8) == 0);
    png_image im;
    int ctype = -1;
    std::vector<uint8_t> z;
    for (size_t p = 8; p + 12 <= f.size();) {
        uint32_t len = be32(&f[p]);
        REQUIRE(p + 12 + len <= f.size());
        std::string type((const char *)&f[p + 4], 4);
        const uint8_t *d = &f[p + 8];
        if (type == "IHDR") {
            im.w = be32(d);
            im.h = be32(d + 4);
            REQUIRE(d[8] == 8);  // bit depth
            ctype = d[9];        // 2 RGB, 6 RGBA
            REQUIRE(d[12] == 0); // not interlaced
        } else if (type == "IDAT") {
            z.insert(z.end(), d, d + len);
        } else if (type == "IEND") {
            break;
        }
        p += 12 + len;
    }
    REQUIRE((ctype == 2 || ctype == 6));
    size_t bpp = ctype == 6 ? 4 : 3, stride = im.w * bpp;
    std::vector<uint8_t> raw((stride + 1) * im.h);
    uLongf rl = raw.size();
    REQUIRE(uncompress(raw.data(), &rl, z.data(), z.size()) == Z_OK);
    REQUIRE(rl == raw.size());
    std::vector<uint8_t> cur(stride), prev(stride, 0);
    im.rgb.resize((size_t)im.w * im.h * 3);
    for (uint32_t y = 0; y < im.h; y++) {
        const uint8_t *row = &raw[y * (stride + 1)];
        int ft = row[0];
        for (size_t x = 0; x < stride; x++) {
            int a = x >= bpp ? cur[x - bpp] : 0, b = prev[x], c = x >= bpp ? prev[x - bpp] : 0, v = row[1 + x];
            switch (ft) {
            case 0: break;
            case 1: v += a; break;
            case 2: v += b; break;
            case 3: v += (a + b) / 2; break;
            case 4: {
                int pp = a + b - c, pa = std::abs(pp - a), pb = std::abs(pp - b), pc = std::abs(pp - c);
                v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
                break;
            }
            default: FAIL("PNG filter type " << ft);
            }
            cur[x] = (uint8_t)v;
        }
        for (uint32_t x = 0; x < im.w; x++)
            for (int k = 0; k < 3; k++)
                im.rgb[((size_t)y * im.w + x) * 3 + k] = cur[x * bpp + k];
        std::swap(cur, prev);
    }
    return im;
}

} // namespace

TEST_CASE("report: self-contained page, one point per row in each plot, the front marked", "[report]")
{
    auto r = load_fixture();
    std::string h = html_of(r.r);
    // nothing external: no links, scripts from elsewhere, images, fonts or imports
    for (const char *no : {"<link", "src=", "href=", "@import", "url(", "https://"})
        REQUIRE(h.find(no) == std::string::npos);
    // the only URL is the SVG namespace
    REQUIRE(count(h, "http://") == count(h, "http://www.w3.org/2000/svg"));
    // no coordinate is NaN or infinite
    for (const char *no : {"nan\"", "inf\"", "nan ", "inf ", "nanH", "nanV"})
        REQUIRE(h.find(no) == std::string::npos);
    // points: 22 ok rows; 19 of them timed (3 PCA576 rows have null qps); 21 with an SQNR (not exact)
    std::string p1 = svg_of(h, "plot-recall-bytes"), p2 = svg_of(h, "plot-qps-recall"), p3 = svg_of(h, "plot-sqnr-bits");
    REQUIRE(p1.find("data-points=\"22\"") != std::string::npos);
    REQUIRE(count(p1, "class=\"pt\"") == 22);
    REQUIRE(p2.find("data-points=\"19\"") != std::string::npos);
    REQUIRE(count(p2, "class=\"pt\"") == 19);
    REQUIRE(p3.find("data-points=\"21\"") != std::string::npos);
    REQUIRE(count(p3, "class=\"pt\"") == 21);
    // each point names its spec and has hover text
    REQUIRE(p1.find("data-spec=\"PCA192,ROT,BIN\"") != std::string::npos);
    REQUIRE(count(p1, "<title>") == 22);
    // the front: a step line, and 8 rows marked in the table
    // (PCA192,ROT,BIN BIN PCA192,SQ8 SQ4 SQ8s SQ8 ROT,BIN,Refine(SQfp16) exact)
    REQUIRE(count(p1, "class=\"front\"") == 1);
    REQUIRE(count(h, "<tr class=\"front\">") == 8);
    REQUIRE(h.find("8 on the Pareto front of recall@10 against total bytes") != std::string::npos);
    // the failed row is in the table with its message, the float32 reference line is drawn
    REQUIRE(h.find("failed: spec &#39;PCA1024,SQ8&#39;: PCA1024 is larger than d = 768") != std::string::npos);
    REQUIRE(p1.find("float32: 3 KB") != std::string::npos);
    // the budgets: 1/4 of float32 (768 B) buys SQ4, 1/32 (96 B) nothing
    REQUIRE(h.find("&le; 768 B (1/4 of float32)</td><td class=\"l\">SQ4</td>") != std::string::npos);
    REQUIRE(h.find("&le; 96 B (1/32 of float32)</td><td class=\"l\" colspan=\"4\">nothing fits") != std::string::npos);
    // the command, the data set
    REQUIRE(h.find("<pre>vqs eval --base /work/shared/data/sts15k_bert768/base.fvecs") != std::string::npos);
    REQUIRE(h.find("14004 vectors &times; 768 dimensions") != std::string::npos);
    // another metric and cost: the axis and the front follow
    vqs_report_opts o = {"ndcg@10", "My title", "code"};
    std::string h2 = html_of(r.r, &o);
    REQUIRE(h2.find("<h1>My title</h1>") != std::string::npos);
    REQUIRE(h2.find("nDCG@10 against code bytes per vector") != std::string::npos);
    o = {"f1", nullptr, nullptr};
    char *bad = nullptr;
    REQUIRE_ERR(vqs_report_html(r.r, &o, &bad, nullptr), VQS_EUSAGE);
    REQUIRE(bad == nullptr);
}

TEST_CASE("report: everything from the results file is HTML-escaped", "[report]")
{
    json_t *d = fixture_json();
    json_t *ds = json_object_get(d, "dataset");
    json_object_set_new(ds, "description", json_string("STS & friends <script>alert('desc')</script>"));
    json_object_set_new(ds, "name", json_string("sts<b>15k</b>"));
    json_object_set_new(d, "command", json_string("vqs eval --describe '<img src=x onerror=alert(1)>' && rm -rf /"));
    json_object_set_new(d, "simd", json_string("avx512\"><script>alert('simd')</script>"));
    json_t *e = row_of(d, "PCA1024,SQ8");
    json_object_set_new(e, "spec", json_string("<script>alert('spec')</script>"));
    json_object_set_new(e, "error", json_string("bad \"quote\" & <tag>"));
    json_object_set_new(row_of(d, "SQ8"), "spec", json_string("SQ8\" onmouseover=\"alert('attr')"));
    auto r = parse_doc(d);
    json_decref(d);
    std::string h = html_of(r.r);
    for (const char *raw : {"<script>alert", "<b>15k", "<img", "onmouseover=\"alert", "<tag>", "&& rm", "\"><script>"})
        REQUIRE(h.find(raw) == std::string::npos);
    REQUIRE(h.find("STS &amp; friends &lt;script&gt;alert(&#39;desc&#39;)&lt;/script&gt;") != std::string::npos);
    REQUIRE(h.find("sts&lt;b&gt;15k&lt;/b&gt;") != std::string::npos);
    REQUIRE(h.find("&lt;img src=x onerror=alert(1)&gt;&#39; &amp;&amp; rm -rf /</pre>") != std::string::npos);
    REQUIRE(h.find("&lt;script&gt;alert(&#39;spec&#39;)&lt;/script&gt;") != std::string::npos);
    REQUIRE(h.find("bad &quot;quote&quot; &amp; &lt;tag&gt;") != std::string::npos);
    REQUIRE(h.find("data-spec=\"SQ8&quot; onmouseover=&quot;alert(&#39;attr&#39;)\"") != std::string::npos);
    // exactly one script on the page: the render check
    REQUIRE(count(h, "<script>") == 1);
}

TEST_CASE("report: no timing omits the queries/s plot with a note, ties are said", "[report]")
{
    json_t *d = fixture_json();
    json_object_set_new(d, "timing", json_false());
    size_t i;
    json_t *row;
    json_array_foreach(json_object_get(d, "rows"), i, row)
    {
        if (json_object_get(row, "qps_1_thread")) {
            json_object_set_new(row, "qps_1_thread", json_null());
            json_object_set_new(row, "qps_all_threads", json_null());
        }
    }
    // a copy of SQ4 under another name: the same bytes and recall, later in the file
    json_t *copy = json_deep_copy(row_of(d, "SQ4"));
    json_object_set_new(copy, "spec", json_string("SQint4"));
    json_array_append_new(json_object_get(d, "rows"), copy);
    auto r = parse_doc(d);
    json_decref(d);
    std::string h = html_of(r.r);
    REQUIRE(svg_of(h, "plot-qps-recall").empty());
    REQUIRE(h.find("No timing in these results (vqs eval --no-timing)") != std::string::npos);
    REQUIRE(count(h, "<svg class=\"plot\"") == 2);
    REQUIRE(h.find("data-points=\"23\"") != std::string::npos); // the copy is a point too
    REQUIRE(h.find("1 configuration with the same bytes and recall@10 as an earlier one") != std::string::npos);
    REQUIRE(h.find("which is kept on the front\">tie") != std::string::npos);
    REQUIRE(count(h, "<tr class=\"front\">") == 8); // SQ4 stays, SQint4 is not added
}

TEST_CASE("report: results whose rows all failed give a page without plots that says so", "[report]")
{
    json_t *d = fixture_json();
    json_t *rows = json_object_get(d, "rows");
    for (size_t i = json_array_size(rows); i-- > 0;)
        if (strcmp(json_string_value(json_object_get(json_array_get(rows, i), "status")), "error"))
            json_array_remove(rows, i);
    auto r = parse_doc(d);
    json_decref(d);
    REQUIRE(r->nrows == 1);
    std::string h = html_of(r.r);
    REQUIRE(count(h, "<svg class=\"plot\"") == 0);
    REQUIRE(h.find("No row has recall@10: nothing to plot against bytes.") != std::string::npos);
    REQUIRE(h.find("nan") == std::string::npos);
    REQUIRE(h.find("failed: spec &#39;PCA1024,SQ8&#39;") != std::string::npos);
    REQUIRE(h.find("0 on the Pareto front") != std::string::npos);
}

TEST_CASE("report: vqs report writes the page, refuses bad input and leaves no partial file", "[report]")
{
    tmpdir t;
    auto ok = run_vqs(t, {"report", fixture_path(), "--out", t.file("r.html"), "--title", "T"});
    INFO(ok.err);
    REQUIRE(ok.code == 0);
    std::string h = slurp(t.file("r.html"));
    REQUIRE(h.find("<h1>T</h1>") != std::string::npos);
    REQUIRE(h.substr(h.size() - 8) == "</html>\n");
    // a broken file: the loader's message, no output written
    json_t *d = fixture_json();
    json_object_set_new(d, "format", json_string("vqs-eval/3"));
    std::string s = dump(d);
    json_decref(d);
    write_bytes(t.file("bad.json"), s.data(), s.size());
    auto bad = run_vqs(t, {"report", t.file("bad.json"), "--out", t.file("b.html")});
    REQUIRE(bad.code == 1);
    REQUIRE(bad.err.find("format 'vqs-eval/3'") != std::string::npos);
    REQUIRE(access(t.file("b.html").c_str(), F_OK) != 0);
    auto usage = run_vqs(t, {"report", fixture_path()});
    REQUIRE(usage.code == 2);
    usage = run_vqs(t, {"report", fixture_path(), "--out", t.file("c.html"), "--metric", "recall@7"});
    REQUIRE(usage.code == 2);
    auto nodir = run_vqs(t, {"report", fixture_path(), "--out", t.file("no/such/dir/r.html")});
    REQUIRE(nodir.code == 1);
    // only r.html was left in the directory (no temporary files)
    auto ls = run(t, {"ls", "-A", t.path});
    REQUIRE(ls.out.find(".tmp") == std::string::npos);
    // the function eval calls
    REQUIRE_OK(vqs_report_write(fixture_path().c_str(), t.file("w.html").c_str(), nullptr));
    REQUIRE(slurp(t.file("w.html")) == html_of(load_fixture().r));
}

TEST_CASE("report: the plots render in headless chromium with the expected points, the screenshot shows them",
          "[report][browser]")
{
    tmpdir t;
    std::string page = t.file("report.html");
    auto rep = run_vqs(t, {"report", fixture_path(), "--out", page});
    INFO(rep.err);
    REQUIRE(rep.code == 0);

    // the points each plot should have, from the fixture's rows
    auto r = load_fixture();
    size_t n_ok = 0, n_timed = 0, n_sqnr = 0;
    for (size_t i = 0; i < r->nrows; i++) {
        const vqs_result_row &w = r->rows[i];
        n_ok += w.ok;
        n_timed += w.ok && !std::isnan(w.qps_1_thread);
        n_sqnr += w.ok && !std::isnan(w.sqnr_db);
    }
    REQUIRE(n_ok == 22); // by hand: 23 rows, one failed; 3 without timing; exact has no SQNR
    REQUIRE(n_timed == 19);
    REQUIRE(n_sqnr == 21);

    // the DOM after the page's script ran: each plot measured by the browser
    auto dom = chromium(t, {"--dump-dom"}, page);
    json_t *rc = render_check(dom.out);
    struct want {
        const char *id;
        size_t n;
    } wants[] = {{"plot-recall-bytes", n_ok}, {"plot-qps-recall", n_timed}, {"plot-sqnr-bits", n_sqnr}};
    REQUIRE(json_object_size(rc) == 3);
    for (auto &w : wants) {
        json_t *p = json_object_get(rc, w.id);
        INFO(w.id);
        REQUIRE(p != nullptr);
        REQUIRE((size_t)json_integer_value(json_object_get(p, "declared")) == w.n);
        REQUIRE((size_t)json_integer_value(json_object_get(p, "rendered")) == w.n); // non-empty bounding boxes
        REQUIRE((size_t)json_integer_value(json_object_get(p, "inside")) == w.n);   // centres inside the plot area
        REQUIRE(json_integer_value(json_object_get(p, "width")) > 200);
        REQUIRE(json_integer_value(json_object_get(p, "height")) > 100);
    }
    json_decref(rc);

    // a screenshot at a laptop's width: the page's colours are on it
    std::string shot = t.file("shot.png");
    chromium(t, {"--screenshot=" + shot, "--window-size=1280,2000"}, page);
    png_image im = decode_png(read_bytes(shot));
    REQUIRE(im.w == 1280);
    REQUIRE(im.h == 2000);
    std::set<uint32_t> colours;
    for (size_t i = 0; i < (size_t)im.w * im.h; i++)
        colours.insert((uint32_t)im.rgb[3 * i] << 16 | (uint32_t)im.rgb[3 * i + 1] << 8 | im.rgb[3 * i + 2]);
    INFO(colours.size() << " distinct colours");
    REQUIRE(colours.size() > 100); // a blank page has one; text and anti-aliased markers make hundreds
    // the legend's swatches are drawn in the exact colour of each family of the fixture:
    // float32 (exact), SQfp8, SQ8, SQ8s, SQ4, BIN, ROT,BIN
    for (uint32_t c : {0x222222u, 0x4e79a7u, 0xf28e2bu, 0xe15759u, 0x76b7b2u, 0x59a14fu, 0xb07aa1u}) {
        INFO(std::hex << c);
        REQUIRE(colours.count(c) == 1);
    }

    // without timing: two plots, and the browser agrees
    json_t *d = fixture_json();
    json_object_set_new(d, "timing", json_false());
    size_t i;
    json_t *row;
    json_array_foreach(json_object_get(d, "rows"), i, row)
    {
        if (json_object_get(row, "qps_1_thread")) {
            json_object_set_new(row, "qps_1_thread", json_null());
            json_object_set_new(row, "qps_all_threads", json_null());
        }
    }
    std::string s = dump(d);
    json_decref(d);
    write_bytes(t.file("nt.json"), s.data(), s.size());
    REQUIRE_OK(vqs_report_write(t.file("nt.json").c_str(), t.file("nt.html").c_str(), nullptr));
    auto dom2 = chromium(t, {"--dump-dom"}, t.file("nt.html"));
    json_t *rc2 = render_check(dom2.out);
    REQUIRE(json_object_size(rc2) == 2);
    REQUIRE(json_object_get(rc2, "plot-qps-recall") == nullptr);
    REQUIRE((size_t)json_integer_value(json_object_get(json_object_get(rc2, "plot-recall-bytes"), "rendered")) == n_ok);
    json_decref(rc2);
}
