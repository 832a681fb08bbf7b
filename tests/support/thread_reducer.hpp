// thread_reducer.hpp: a vqs_reducer whose participants are threads of this
// process, so that training over several participants (the code path of
// `mpirun vqs build`) is tested in every build, MPI or not. The sums are
// taken in participant order; agreement and the error detail of a
// participant that did not fail follow tools/mpi.c's wording.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "vqs_codebook.h"
#include "vqs_common.h"

namespace vqs_test {

class ThreadReducer {
  public:
    explicit ThreadReducer(int size) : P(size), rcs(size), vs(size), mine(size), rows(size), parts(size)
    {
        for (int r = 0; r < P; r++)
            parts[r] = Part{this, r, {r, P, &parts[r], sum_cb, gather_cb}};
    }
    const vqs_reducer *reducer(int rank) const { return &parts[rank].R; }

    // fn(rank) on P threads at once; returns each one's rc.
    std::vector<int> run(const std::function<int(int)> &fn)
    {
        std::vector<int> out(P);
        std::vector<std::thread> th;
        for (int r = 0; r < P; r++)
            th.emplace_back([&, r] { out[r] = fn(r); });
        for (auto &t : th)
            t.join();
        return out;
    }

  private:
    struct Part {
        ThreadReducer *T;
        int rank;
        vqs_reducer R;
    };
    int P;
    std::mutex m;
    std::condition_variable cv;
    size_t arrived = 0, generation = 0;
    std::vector<int> rcs;
    std::vector<double *> vs;
    std::vector<const void *> mine;
    std::vector<size_t> rows;
    std::vector<double> total;
    std::vector<Part> parts;

    void barrier()
    {
        std::unique_lock<std::mutex> l(m);
        size_t g = generation;
        if (++arrived == (size_t)P) {
            arrived = 0;
            generation++;
            cv.notify_all();
        } else {
            cv.wait(l, [&] { return generation != g; });
        }
    }

    int agree(int rank, int rc)
    {
        rcs[rank] = rc;
        barrier();
        int first = -1;
        for (int r = 0; r < P && first < 0; r++)
            if (rcs[r])
                first = r;
        barrier(); // rcs is reused by the next call
        if (rc)
            return rc;
        if (first >= 0)
            return vqs_seterr(VQS_EINVAL, "participant %d of %d: stopped, participant %d failed", rank, P, first);
        return 0;
    }

    static int sum_cb(void *ctx, int rc, double *v, size_t n)
    {
        Part *p = static_cast<Part *>(ctx);
        ThreadReducer *T = p->T;
        if ((rc = T->agree(p->rank, rc)))
            return rc;
        T->vs[p->rank] = v;
        T->barrier();
        if (p->rank == 0) {
            T->total.assign(n, 0.0);
            for (int r = 0; r < T->P; r++)
                for (size_t i = 0; i < n; i++)
                    T->total[i] += T->vs[r][i];
        }
        T->barrier();
        for (size_t i = 0; i < n; i++)
            v[i] = T->total[i];
        T->barrier();
        return 0;
    }

    static int gather_cb(void *ctx, int rc, const void *mine, size_t rows, size_t width, void *all)
    {
        Part *p = static_cast<Part *>(ctx);
        ThreadReducer *T = p->T;
        if ((rc = T->agree(p->rank, rc)))
            return rc;
        T->mine[p->rank] = mine;
        T->rows[p->rank] = rows;
        T->barrier();
        size_t at = 0;
        for (int r = 0; r < T->P; r++) {
            if (T->rows[r])
                std::memcpy(static_cast<char *>(all) + at, T->mine[r], T->rows[r] * width);
            at += T->rows[r] * width;
        }
        T->barrier();
        return 0;
    }
};

} // namespace vqs_test
