// HTTP helpers of the api tests: one request per connection over loopback,
// JSON parsing of Qdrant-shaped answers, and an in-process server.
#pragma once
#include "vqs_test.hpp"

#include "vqs_http.h"

#include <arpa/inet.h>
#include <csignal>
#include <cstring>
#include <functional>
#include <jansson.h>
#include <netinet/in.h>
#include <string>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace vqs_http_test
{

struct http_resp {
    int code = 0;         // 0: no answer (refused, reset or closed)
    std::string headers;  // the status line and headers
    std::string body;
};

// A TCP connection to 127.0.0.1:port from source address src (any address of
// 127.0.0.0/8 is this machine); -1 if it cannot connect.
inline int connect_from(int port, const char *src = nullptr)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (src) {
        sockaddr_in me = {};
        me.sin_family = AF_INET;
        inet_pton(AF_INET, src, &me.sin_addr);
        if (bind(fd, (sockaddr *)&me, sizeof me) != 0) {
            close(fd);
            return -1;
        }
    }
    sockaddr_in sa = {};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

// One request on a new connection (Connection: close), the whole response read.
inline http_resp http(int port, const std::string &method, const std::string &path, const std::string &body = "",
                      const std::string &extra_headers = "", const std::string &ctype = "application/json")
{
    http_resp r;
    int fd = connect_from(port); // no Catch assertion here: worker threads call this too
    if (fd < 0)
        return r;
    std::string req = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" + extra_headers;
    if (!body.empty() || method == "POST" || method == "PUT")
        req += "Content-Type: " + ctype + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
    req += "\r\n" + body;
    size_t off = 0;
    while (off < req.size()) {
        ssize_t w = send(fd, req.data() + off, req.size() - off, MSG_NOSIGNAL);
        if (w <= 0)
            break; // the server may answer (413) and close before reading everything
        off += (size_t)w;
    }
    std::string all;
    char buf[65536];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0)
            break;
        all.append(buf, (size_t)n);
    }
    close(fd);
    if (all.compare(0, 9, "HTTP/1.1 ") == 0 || all.compare(0, 9, "HTTP/1.0 ") == 0)
        r.code = std::atoi(all.c_str() + 9);
    size_t h = all.find("\r\n\r\n");
    if (h != std::string::npos) {
        r.headers = all.substr(0, h);
        r.body = all.substr(h + 4);
    }
    return r;
}

// The value of a Prometheus sample without labels from /metrics (-1 if absent).
inline double metric(int port, const std::string &name)
{
    http_resp r = http(port, "GET", "/metrics");
    size_t p = r.body.find("\n" + name + " ");
    return p == std::string::npos ? -1 : std::atof(r.body.c_str() + p + name.size() + 2);
}

struct jptr {
    json_t *j = nullptr;
    explicit jptr(json_t *p) : j(p) {}
    jptr(const jptr &) = delete;
    ~jptr() { json_decref(j); }
};

inline json_t *parse(const std::string &s)
{
    json_error_t e;
    json_t *j = json_loadb(s.data(), s.size(), 0, &e);
    INFO("response body: " << s.substr(0, 500));
    REQUIRE(j != nullptr);
    return j;
}

inline std::string dump(const json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    std::string r(s);
    free(s);
    return r;
}

// A 2xx answer's "result" (new reference).
inline json_t *ok_result(const http_resp &r)
{
    INFO("response " << r.code << ": " << r.body.substr(0, 500));
    REQUIRE(r.code == 200);
    json_t *j = parse(r.body);
    REQUIRE(std::string(json_string_value(json_object_get(j, "status"))) == "ok");
    json_t *res = json_incref(json_object_get(j, "result"));
    json_decref(j);
    return res;
}

// A 4xx answer naming what was wrong.
inline void require_error(const http_resp &r, int code, const std::string &needle)
{
    INFO("response " << r.code << ": " << r.body.substr(0, 500));
    REQUIRE(r.code == code);
    jptr j(parse(r.body));
    const char *msg = json_string_value(json_object_get(json_object_get(j.j, "status"), "error"));
    REQUIRE(msg != nullptr);
    REQUIRE(std::string(msg).find(needle) != std::string::npos);
}

struct server {
    vqs_server *s = nullptr;
    int port = 0;
    server(const std::string &dir, vqs_server_opts o = {})
    {
        REQUIRE_OK(vqs_server_start(dir.c_str(), &o, &s));
        port = vqs_server_port(s);
    }
    void stop()
    {
        vqs_server_stop(s, 10);
        s = nullptr;
    }
    ~server() { vqs_server_stop(s, 10); }
};

inline std::string vec_json(const float *v, size_t d)
{
    std::string s = "[";
    char b[32];
    for (size_t j = 0; j < d; j++) {
        std::snprintf(b, sizeof b, "%s%.9g", j ? "," : "", (double)v[j]);
        s += b;
    }
    return s + "]";
}

// Starts `vqs serve --data dir --port 0 [args]` as a child process; child_setup
// runs in the child before exec (limits, redirections). Returns the port it
// listens on; *out is its standard output (the caller closes it).
inline int spawn_serve(const std::string &dir, const std::vector<std::string> &args, pid_t *pid, FILE **out,
                       const std::function<void()> &child_setup = {})
{
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    fflush(nullptr);
    *pid = fork();
    REQUIRE(*pid >= 0);
    if (*pid == 0) {
        if (child_setup)
            child_setup();
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        std::vector<const char *> av = {"vqs", "serve", "--data", dir.c_str(), "--port", "0"};
        for (auto &a : args)
            av.push_back(a.c_str());
        av.push_back(nullptr);
        execv(VQS_CLI_PATH, (char *const *)av.data());
        _exit(127);
    }
    close(fds[1]);
    *out = fdopen(fds[0], "r");
    char line[512] = {0};
    REQUIRE(fgets(line, sizeof line, *out) != nullptr);
    const char *p = std::strstr(line, "127.0.0.1:");
    INFO(line);
    REQUIRE(p != nullptr);
    return std::atoi(p + 10);
}

} // namespace vqs_http_test
