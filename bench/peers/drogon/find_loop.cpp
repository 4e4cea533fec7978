// Driver-only load for `bench/run decompose`, drogon's part (b): N threads each doing, in a
// loop, the /mongo handler's database work (peer::database::find_one: a client from the
// mongoc_client_pool_t, find_one on articles.articles, relaxed extended JSON), no HTTP. N is the
// peer's --db-threads: the finds drogon can have in flight. Built and run in the Debian 13
// chroot with the peer (libmongoc 1.30).
//
// Usage: peer-drogon-findloop --uri URI [--threads N] [--seconds S] [--warmup S] [--pool P]
// Prints one JSON line: finds, empty, errors, seconds, cpu_s (this process, measured window only).
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "peer_mongo.hpp"

namespace {

struct options {
    std::string uri = "mongodb://127.0.0.1:27017";
    std::size_t threads = 8;
    double seconds = 5;
    double warmup = 1;
    std::int32_t pool_size = 6000;
};

double parse_seconds(std::string_view text, std::string_view flag) {
    // Whole milliseconds are enough: 0.001..3600 s.
    const std::string value{text};
    std::size_t used = 0;
    double s = 0;
    try {
        s = std::stod(value, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    if (used != value.size() || !(s >= 0 && s <= 3600))
        throw std::invalid_argument{std::string{flag} +
                                    " must be a number of seconds in 0..3600, got '" + value + "'"};
    return s;
}

options parse_options(int argc, char** argv) {
    options opt;
    for (int i = 1; i < argc; i += 2) {
        std::string_view flag = argv[i];
        if (i + 1 >= argc) throw std::invalid_argument{std::string{flag} + " needs a value"};
        std::string_view value = argv[i + 1];
        if (flag == "--uri")
            opt.uri = value;
        else if (flag == "--threads")
            opt.threads = peer::parse_number<std::size_t>(value, 1, 1024, flag);
        else if (flag == "--seconds")
            opt.seconds = parse_seconds(value, flag);
        else if (flag == "--warmup")
            opt.warmup = parse_seconds(value, flag);
        else if (flag == "--pool")
            opt.pool_size = peer::parse_number<std::int32_t>(value, 1, 100000, flag);
        else
            throw std::invalid_argument{"unknown option " + std::string{flag}};
    }
    if (opt.seconds <= 0) throw std::invalid_argument{"--seconds must be above 0"};
    return opt;
}

double cpu_seconds() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// What the threads count, in the measured window only.
struct tally {
    std::atomic<bool> counting{false};
    std::atomic<bool> stop{false};
    std::atomic<long> finds{0};
    std::atomic<long> empty{0};  // no document: a wrong answer for a seeded collection
    std::atomic<long> errors{0};
    std::mutex first_error_mutex;
    std::string first_error;
};

void find_until_stopped(const peer::database& db, tally& t) {
    while (!t.stop.load(std::memory_order_relaxed)) {
        try {
            const bool found = db.find_one().has_value();
            if (t.counting.load(std::memory_order_relaxed)) ++(found ? t.finds : t.empty);
        } catch (const peer::db_failure& e) {
            if (t.counting.load(std::memory_order_relaxed)) ++t.errors;
            const std::lock_guard lock{t.first_error_mutex};
            if (t.first_error.empty()) t.first_error = e.what();
        }
    }
}

}  // namespace

int main(int argc, char** argv) {
    const options opt = peer::or_exit(
        "peer-drogon-findloop", [&] { return parse_options(argc, argv); },
        "--uri URI [--threads N] [--seconds S] [--warmup S] [--pool P]");
    const auto db = peer::or_exit("peer-drogon-findloop", [&] {
        return std::make_unique<peer::database>(opt.uri, opt.pool_size);
    });

    tally t;
    std::vector<std::thread> workers;
    for (std::size_t i = 0; i < opt.threads; ++i)
        workers.emplace_back([&db, &t] { find_until_stopped(*db, t); });
    std::this_thread::sleep_for(std::chrono::duration<double>(opt.warmup));
    const double cpu0 = cpu_seconds();
    const auto t0 = std::chrono::steady_clock::now();
    t.counting = true;
    std::this_thread::sleep_for(std::chrono::duration<double>(opt.seconds));
    t.counting = false;
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double cpu = cpu_seconds() - cpu0;
    t.stop = true;
    for (auto& w : workers) w.join();

    if (!t.first_error.empty())
        std::fprintf(stderr, "peer-drogon-findloop: find failed: %s\n", t.first_error.c_str());
    std::printf(
        "{\"threads\": %zu, \"seconds\": %.3f, \"finds\": %ld, \"empty\": %ld, \"errors\": %ld, "
        "\"cpu_s\": %.3f, \"finds_per_sec\": %.1f}\n",
        opt.threads, elapsed, t.finds.load(), t.empty.load(), t.errors.load(), cpu,
        static_cast<double>(t.finds.load()) / elapsed);
    // No find at all in the window is a failure too (a database that never answered).
    return t.finds.load() > 0 && t.errors.load() == 0 && t.empty.load() == 0 ? 0 : 1;
}
