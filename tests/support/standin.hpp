// standin: a test fixture that runs tools/mongo-standin on an ephemeral port and breaks or
// heals it on demand (latency, refused or dropped connections, injected errors, restarts).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "process.hpp"

namespace test_support {

class standin {
  public:
    // Starts `mongo-standin --port 0 --control-stdin [extra_args]` and reads its port.
    // Throws std::runtime_error if it does not come up within 10 s.
    explicit standin(std::vector<std::string> extra_args = {});
    ~standin();  // stops the process (SIGTERM, then SIGKILL)
    standin(const standin&) = delete;
    standin& operator=(const standin&) = delete;

    unsigned short port() const { return port_; }
    std::string uri() const;  // "mongodb://127.0.0.1:PORT"

    // Fault control through the stand-in's stdin, so it works even while connections are
    // refused. Each call returns once the stand-in has applied it (it answers "ok ...").
    void set_latency_ms(int ms);       // added before every reply, 0 = none
    void refuse_connections(bool on);  // close new connections right after accept
    void drop_connections();           // close every open connection now
    void fail_next(int n, int code, std::string_view message = "injected by mongo-standin");
    std::string state();                         // e.g. "ok latency=0 refuse=off fail=0 code=0 ..."
    std::string control(std::string_view line);  // any control line (see the README)

    // With extra args "--replset NAME --members N": member i listens on port() + i, and the
    // "rs" control reports the set (throws std::runtime_error for a standalone stand-in).
    struct replset_status {
        int primary = -1;  // member index; -1 while the set has no primary
        long long term = 0;
        std::vector<long long> finds;  // finds served, per member
        std::vector<bool> up, partitioned;
        long long total_finds() const;
    };
    replset_status replset();
    unsigned short member_port(int member) const {
        return static_cast<unsigned short>(port_ + member);
    }

    // stop(): the process exits (SIGTERM); nothing listens on port() until start(), which
    // runs a new process on the SAME port with the same arguments (the data it holds
    // starts again from the --seed files: inserted documents are lost).
    void stop();
    void start();
    // start() with other arguments from now on (e.g. the right user after a wrong one).
    void start(std::vector<std::string> extra_args);
    bool running() const { return process_ != nullptr; }

    // --seed arguments for the benchmark's documents, as tools/run.sh passes them:
    // articles.articles and articles.small = small_doc.json, articles.big = big_doc.json.
    static std::vector<std::string> benchmark_seed_args();
    // Absolute path of the mongo-standin binary and of bench/data.
    static std::string executable();
    static std::string data_dir();

  private:
    void launch(unsigned short port);

    std::vector<std::string> extra_args_;
    std::unique_ptr<child_process> process_;
    unsigned short port_ = 0;
};

}  // namespace test_support
