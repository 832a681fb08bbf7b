// The help of the vqs tool, run as a separate process (VQS_CLI_PATH). The
// commands are read from `vqs help`, so a new command is covered without
// touching this file. For each: `vqs CMD --help`, `-h` and `vqs help CMD`
// print the same full help on stdout and exit 0; it starts with a usage line
// naming the command and has an option list and an example. Every option the
// help lists is accepted by the parser (given before --help, with the value
// "1" if it takes one, the command still answers with its help), and every
// short option the parser accepts is listed (all of -a..-z, -A..-Z, -0..-9
// are tried). Long options are not enumerable from outside: that the parser
// accepts no unlisted one rests on both reading one table (tools/cli.h,
// vqs_cli_opt); an invented one is checked to be refused. Unknown options
// and commands exit 2 with a usage message on stderr.
#include "vqs_test.hpp"

#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

using namespace vqs_test;

namespace
{

// The lines of s.
std::vector<std::string> lines_of(const std::string &s)
{
    std::vector<std::string> v;
    std::istringstream in(s);
    for (std::string l; std::getline(in, l);)
        v.push_back(l);
    return v;
}

// The command names of `vqs help`: the lines after "commands:" up to a blank line.
std::vector<std::string> commands_of(const std::string &help)
{
    std::vector<std::string> v;
    bool in = false;
    for (const auto &l : lines_of(help)) {
        if (l == "commands:") {
            in = true;
            continue;
        }
        if (!in)
            continue;
        if (l.empty())
            break;
        std::smatch m;
        REQUIRE(std::regex_match(l, m, std::regex("  ([a-z][a-z0-9-]*) +\\S.*")));
        v.push_back(m[1]);
    }
    return v;
}

struct listed_opt {
    char shrt = 0;     // 'o' for -o, 0 if none
    std::string lname; // "out" for --out, empty if none
    bool value = false;
};

// The options of a command's help: the lines after "Options:" up to a blank
// line that are indented by 2 or 6 ("  -o, --out FILE  meaning",
// "      --data DIR  meaning", "  -o ids.ivecs  meaning"), each with a
// meaning on its line or on the next, more indented, one (meanings continue
// on lines aligned further right).
std::vector<listed_opt> options_of(const std::string &help)
{
    std::vector<listed_opt> v;
    auto ls = lines_of(help);
    size_t i = 0;
    while (i < ls.size() && ls[i] != "Options:")
        i++;
    REQUIRE(i < ls.size());
    static const std::regex re("  (?:    )?(?:-([A-Za-z0-9]))?(?:, )?(?:--([a-z0-9][a-z0-9-]*))?( \\S+)?( {2,}\\S.*)?");
    for (i++; i < ls.size() && !ls[i].empty(); i++) {
        const std::string &l = ls[i];
        size_t ind = l.find_first_not_of(' ');
        if (ind == std::string::npos || ind > 6)
            continue; // a meaning's continuation line (aligned past the option column)
        REQUIRE(l[ind] == '-');
        INFO(l);
        std::smatch m;
        REQUIRE(std::regex_match(l, m, re));
        listed_opt o;
        if (m[1].matched)
            o.shrt = m[1].str()[0];
        o.lname = m[2];
        o.value = m[3].matched;
        REQUIRE((o.shrt || !o.lname.empty()));
        if (!m[4].matched) { // the meaning is on the next line
            REQUIRE(i + 1 < ls.size());
            REQUIRE(ls[i + 1].find_first_not_of(' ') > ind + 4);
        }
        v.push_back(o);
    }
    return v;
}

// The commands `vqs help` lists.
std::vector<std::string> commands(const tmpdir &t)
{
    auto list = run_vqs(t, {"help"});
    REQUIRE(list.code == 0);
    return commands_of(list.out);
}

} // namespace

TEST_CASE("vqs help: every command answers --help, -h and vqs help CMD with its full help", "[tools][help]")
{
    tmpdir t;
    auto list = run_vqs(t, {"help"});
    REQUIRE(list.code == 0);
    REQUIRE(list.err.empty());
    REQUIRE(run_vqs(t, {"--help"}).out == list.out);
    REQUIRE(run_vqs(t, {"-h"}).out == list.out);
    auto cmds = commands_of(list.out);
    std::set<std::string> names(cmds.begin(), cmds.end());
    REQUIRE(names.size() == cmds.size());
    for (const char *c : {"demo", "gt", "build", "codec", "eval", "report", "recommend", "import", "search", "info",
                          "drop", "serve", "help", "version"})
        REQUIRE(names.count(c) == 1);

    for (const auto &cmd : cmds) {
        INFO("vqs " << cmd);
        auto h = run_vqs(t, {cmd, "--help"});
        REQUIRE(h.code == 0);
        REQUIRE(h.err.empty());
        auto first = lines_of(h.out).at(0);
        REQUIRE((first == "usage: vqs " + cmd || first.rfind("usage: vqs " + cmd + " ", 0) == 0));
        REQUIRE(h.out.find("\nOptions:\n") != std::string::npos);
        size_t ex = h.out.find("\nExample:\n");
        REQUIRE(ex != std::string::npos);
        REQUIRE(h.out.find("vqs " + cmd, ex) != std::string::npos);
        auto s = run_vqs(t, {cmd, "-h"});
        REQUIRE(s.code == 0);
        REQUIRE(s.out == h.out);
        auto v = run_vqs(t, {"help", cmd});
        REQUIRE(v.code == 0);
        REQUIRE(v.out == h.out);

        // every listed option is accepted: given first, the command still answers --help
        bool has_help = false;
        for (const auto &o : options_of(h.out)) {
            has_help |= o.lname == "help" && o.shrt == 'h';
            std::vector<std::string> forms;
            if (o.shrt)
                forms.push_back(std::string("-") + o.shrt);
            if (!o.lname.empty())
                forms.push_back("--" + o.lname);
            for (const auto &f : forms) {
                INFO(f);
                std::vector<std::string> args = {cmd, f};
                if (o.value)
                    args.push_back("1");
                args.push_back("--help");
                auto r = run_vqs(t, args);
                INFO(r.err);
                REQUIRE(r.code == 0);
                REQUIRE(r.out == h.out);
            }
        }
        REQUIRE(has_help);

        auto bad = run_vqs(t, {cmd, "--no-such-option", "--help"});
        REQUIRE(bad.code == 2);
        REQUIRE(bad.out.empty());
        REQUIRE(bad.err.find("usage: vqs " + cmd) != std::string::npos);
    }
}

TEST_CASE("vqs help: every short option a command accepts is in its help, the others are refused",
          "[tools][help]")
{
    tmpdir t;
    for (const auto &cmd : commands(t)) {
        INFO("vqs " << cmd);
        auto h = run_vqs(t, {cmd, "--help"});
        REQUIRE(h.code == 0);
        std::set<char> shorts;
        for (const auto &o : options_of(h.out))
            if (o.shrt)
                shorts.insert(o.shrt);
        std::string letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        for (char c : letters) {
            INFO("-" << c);
            auto r = run_vqs(t, {cmd, std::string("-") + c, "1", "--help"});
            if (shorts.count(c)) {
                REQUIRE(r.code == 0);
            } else {
                REQUIRE(r.code == 2);
                REQUIRE(r.out.empty());
                REQUIRE(r.err.find("usage: vqs " + cmd) != std::string::npos);
            }
        }
    }
}

TEST_CASE("vqs help: unknown commands and stray arguments are usage errors", "[tools][help]")
{
    tmpdir t;
    const std::vector<std::vector<std::string>> bad = {
        {"no-such-command"}, {"help", "no-such-command"}, {"help", "eval", "extra"}, {"version", "extra"},
        {"demo", "extra"}};
    for (const auto &args : bad) {
        INFO(args.at(0) << " " << args.back());
        auto r = run_vqs(t, args);
        REQUIRE(r.code == 2);
        REQUIRE(r.out.empty());
        REQUIRE(!r.err.empty());
    }
    auto none = run_vqs(t, {});
    REQUIRE(none.code == 2);
    REQUIRE(none.err.find("usage: vqs <command>") != std::string::npos);
    auto v = run_vqs(t, {"version"});
    REQUIRE(v.code == 0);
    REQUIRE(v.out.rfind("vqs ", 0) == 0);
    REQUIRE(run_vqs(t, {"--version"}).out == v.out);
}
