// fixture: starting the database and the server for one test, seeding through libmongoc.
#include "fixture.hpp"

#include <fcntl.h>
#include <mongoc/mongoc.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <unistd.h>

#include <boost/json/parse.hpp>
#include <catch2/catch.hpp>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace e2e {
namespace {

std::string read_file(const std::string& path) {
    std::ifstream in{path, std::ios::binary};
    if (!in) throw std::runtime_error("cannot read " + path);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

void init_driver_once() {
    static std::once_flag once;
    std::call_once(once, [] {
        mongoc_init();
        std::atexit(mongoc_cleanup);
    });
}

struct bson_owner {
    bson_t* doc;
    explicit bson_owner(bson_t* d) : doc(d) {}
    ~bson_owner() {
        if (doc) bson_destroy(doc);
    }
    bson_owner(const bson_owner&) = delete;
};

bson_t* bson_from_json(const std::string& json, const std::string& what) {
    bson_error_t error;
    bson_t* doc = bson_new_from_json(reinterpret_cast<const uint8_t*>(json.data()),
                                     static_cast<ssize_t>(json.size()), &error);
    if (!doc) throw std::runtime_error("seed: " + what + ": " + error.message);
    return doc;
}

// True when articles.coll holds exactly `docs` (BSON-equal, in natural order).
bool holds_exactly(mongoc_collection_t* coll, const std::vector<std::string>& docs) {
    bson_t empty = BSON_INITIALIZER;
    mongoc_cursor_t* cursor = mongoc_collection_find_with_opts(coll, &empty, nullptr, nullptr);
    const bson_t* doc = nullptr;
    std::size_t i = 0;
    bool same = true;
    while (same && mongoc_cursor_next(cursor, &doc)) {
        if (i == docs.size()) {
            same = false;
            break;
        }
        bson_owner expected{bson_from_json(docs[i++], "expected")};
        same = bson_equal(doc, expected.doc);
    }
    bson_error_t error;
    if (mongoc_cursor_error(cursor, &error)) same = false;
    mongoc_cursor_destroy(cursor);
    return same && i == docs.size();
}

// Makes articles.coll hold exactly `docs` (extended JSON): if it does not already, drops it
// (a missing collection is fine) and inserts them.
void refill(mongoc_client_t* client, const char* coll_name, const std::vector<std::string>& docs) {
    mongoc_collection_t* coll = mongoc_client_get_collection(client, "articles", coll_name);
    if (holds_exactly(coll, docs)) {
        mongoc_collection_destroy(coll);
        return;
    }
    bson_error_t error;
    mongoc_collection_drop(coll, &error);  // "ns not found" on a fresh database: ignored
    for (const auto& json : docs) {
        bson_owner doc{bson_from_json(json, coll_name)};
        if (!mongoc_collection_insert_one(coll, doc.doc, nullptr, nullptr, &error)) {
            mongoc_collection_destroy(coll);
            throw std::runtime_error(std::string{"seed: insert into articles."} + coll_name + ": " +
                                     error.message);
        }
    }
    mongoc_collection_destroy(coll);
}

// Test processes run in parallel (ctest -j) against one MONGODB_URI: seeding is serialised
// through a lock file, and a collection that already holds the right documents is left
// alone, so no test ever reads a collection while another process refills it.
class seed_lock {
  public:
    seed_lock()
        : fd_(::open("/tmp/coroserve-e2e-seed.lock", O_RDONLY | O_CREAT | O_CLOEXEC, 0666)) {
        if (fd_ >= 0) ::flock(fd_, LOCK_EX);
    }
    ~seed_lock() {
        if (fd_ >= 0) ::close(fd_);  // releases the lock
    }
    seed_lock(const seed_lock&) = delete;

  private:
    int fd_;
};

void seed_collections(const std::string& uri, bool benchmark_docs) {
    init_driver_once();
    seed_lock lock;
    bson_error_t error;
    mongoc_uri_t* u = mongoc_uri_new_with_error(uri.c_str(), &error);
    if (!u) throw std::runtime_error("seed: bad MongoDB URI: " + std::string{error.message});
    if (!mongoc_uri_has_option(u, MONGOC_URI_SERVERSELECTIONTIMEOUTMS))
        mongoc_uri_set_option_as_int32(u, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 5000);
    mongoc_client_t* client = mongoc_client_new_from_uri(u);
    mongoc_uri_destroy(u);
    if (!client) throw std::runtime_error("seed: cannot create a MongoDB client");
    mongoc_client_set_error_api(client, MONGOC_ERROR_API_VERSION_2);
    try {
        if (benchmark_docs) {
            const std::string dir = test_support::standin::data_dir();
            const std::string small = read_file(dir + "/small_doc.json");
            const std::string big = read_file(dir + "/big_doc.json");
            refill(client, "articles", {small});
            refill(client, "small", {small});
            refill(client, "big", {big});
        }
        refill(client, std::string{strings_collection}.c_str(),
               {R"({"_id":"article-42","title":"a document with a string id","n":42})",
                R"({"_id":"article-43","title":"another one","n":43})"});
        refill(client, std::string{hidden_collection}.c_str(),
               {R"({"_id":"secret","note":"exists, but not in the allow-list"})"});
    } catch (...) {
        mongoc_client_destroy(client);
        throw;
    }
    mongoc_client_destroy(client);
}

}  // namespace

std::optional<std::string> database::external_uri() {
    const char* v = std::getenv("MONGODB_URI");
    if (!v || !*v) return std::nullopt;
    return std::string{v};
}

database::database() {
    if (auto uri = external_uri()) {
        uri_ = *uri;
        seed_collections(uri_, true);
        return;
    }
    standin_ =
        std::make_unique<test_support::standin>(test_support::standin::benchmark_seed_args());
    uri_ = standin_->uri();
    // The benchmark documents come from the stand-in's own --seed, as in production runs.
    seed_collections(uri_, false);
}

database::~database() = default;

test_support::standin& database::standin() {
    if (!standin_) throw std::logic_error("no stand-in: the tests run against MONGODB_URI");
    return *standin_;
}

void seed(const std::string& uri) {
    seed_collections(uri, true);
}

std::string allowed_collections() {
    return "articles,small,big," + std::string{strings_collection};
}

std::string server::executable() {
    return COROSERVE_EXE;
}

server::server(const std::string& mongodb_uri, std::vector<std::string> extra_args) {
    // Database deadlines that a loaded machine meets; fault tests pass shorter ones (later
    // flags win).
    std::vector<std::string> argv = {executable(),
                                     "--host",
                                     "127.0.0.1",
                                     "--port",
                                     "0",
                                     "--mongodb-uri",
                                     mongodb_uri,
                                     "--collections",
                                     allowed_collections(),
                                     "--server-selection-timeout-ms",
                                     "5000",
                                     "--db-timeout-ms",
                                     "5000"};
    argv.insert(argv.end(), extra_args.begin(), extra_args.end());
    process_ = std::make_unique<test_support::child_process>(argv);
    std::string line = process_->first_line(std::chrono::seconds(20));
    int got = 0;
    auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), got);
    if (ec != std::errc{} || end != line.data() + line.size() || got <= 0 || got > 65535)
        throw std::runtime_error("coroserve: expected the port on stdout, got '" + line + "'");
    port_ = static_cast<unsigned short>(got);
}

server::~server() {
    if (!process_) return;
    try {
        auto st = process_->terminate(std::chrono::seconds(15));
        INFO("coroserve (pid " << process_->pid() << ") ended: exited " << st.exited << " code "
                               << st.code << " signal " << st.signal);
        CHECK(st.ok());
    } catch (const std::exception& e) {
        FAIL_CHECK("stopping coroserve: " << e.what());
    }
}

bool skip_without_standin(const database& db) {
    if (!db.external()) return false;
    WARN("skipped: MONGODB_URI is set and this test needs the stand-in's fault injection");
    return true;
}

boost::json::value parse(std::string_view text) {
    boost::system::error_code ec;  // boost::json::error_code is gone in Boost 1.88
    auto v = boost::json::parse(text, ec);
    if (ec)
        throw std::runtime_error("invalid JSON (" + ec.message() +
                                 "): " + std::string{text.substr(0, 200)});
    return v;
}

boost::json::value read_json_file(const std::string& path) {
    return parse(read_file(path));
}

bool same_json(const boost::json::value& a, const boost::json::value& b) {
    if (a.is_number() && b.is_number()) {
        if (a.is_double() || b.is_double()) return a.to_number<double>() == b.to_number<double>();
        if (a.is_int64() && b.is_int64()) return a.get_int64() == b.get_int64();
        if (a.is_uint64() && b.is_uint64()) return a.get_uint64() == b.get_uint64();
        // int64 against uint64: equal only when both are non-negative and the same.
        auto s = a.is_int64() ? a.get_int64() : b.get_int64();
        auto u = a.is_uint64() ? a.get_uint64() : b.get_uint64();
        return s >= 0 && static_cast<std::uint64_t>(s) == u;
    }
    if (a.kind() != b.kind()) return false;
    if (a.is_object()) {
        const auto& x = a.get_object();
        const auto& y = b.get_object();
        if (x.size() != y.size()) return false;
        for (const auto& [k, v] : x) {
            auto it = y.find(k);
            if (it == y.end() || !same_json(v, it->value())) return false;
        }
        return true;
    }
    if (a.is_array()) {
        const auto& x = a.get_array();
        const auto& y = b.get_array();
        if (x.size() != y.size()) return false;
        for (std::size_t i = 0; i < x.size(); ++i)
            if (!same_json(x[i], y[i])) return false;
        return true;
    }
    return a == b;
}

double metric(std::string_view text, std::string_view sample) {
    std::size_t pos = 0;
    while (pos < text.size()) {
        auto eol = text.find('\n', pos);
        auto line = text.substr(pos, eol == std::string_view::npos ? text.npos : eol - pos);
        pos = eol == std::string_view::npos ? text.size() : eol + 1;
        if (line.size() > sample.size() && line.substr(0, sample.size()) == sample &&
            line[sample.size()] == ' ')
            return std::stod(std::string{line.substr(sample.size() + 1)});
    }
    return 0;
}

double metric_now(unsigned short port, std::string_view sample) {
    auto r = get(port, "/metrics");
    if (r.status != 200) throw std::runtime_error("GET /metrics: " + std::to_string(r.status));
    return metric(r.body, sample);
}

double wait_for_metric(unsigned short port, std::string_view sample, double value) {
    double v = -1;
    for (int i = 0; i < 200 && v != value; ++i) {
        v = metric_now(port, sample);
        if (v != value) std::this_thread::sleep_for(std::chrono::milliseconds{10});
    }
    return v;
}

std::size_t raise_fd_limit(std::size_t wanted) {
    rlimit lim{};
    ::getrlimit(RLIMIT_NOFILE, &lim);
    if (lim.rlim_cur < wanted) {
        lim.rlim_cur = std::min<rlim_t>(wanted, lim.rlim_max);
        ::setrlimit(RLIMIT_NOFILE, &lim);
        ::getrlimit(RLIMIT_NOFILE, &lim);
    }
    return lim.rlim_cur;
}

}  // namespace e2e
