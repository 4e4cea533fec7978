// Micro-benchmark of BSON to JSON on the seed documents: libbson's own printer, our direct
// writer (reused buffer and fresh string) and a detour through boost::json::value.
// Usage: bson_json_bench [seconds-per-run]   (default 0.5; the best of 5 runs is kept)
//        bson_json_bench --count small|big N   (N conversions as src/mongo.cpp does them, nothing
//        else: run it under valgrind to count instructions per conversion)
#include <bson/bson.h>
#include <time.h>

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "bson_json.hpp"

#ifndef COROSERVE_SOURCE_DIR
#error "COROSERVE_SOURCE_DIR must name the source tree (for bench/data)"
#endif

namespace json = boost::json;

namespace {

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// libbson's output without its whitespace (outside string literals).
std::string strip_ws(const char* s, std::size_t n) {
    std::string out;
    out.reserve(n);
    bool in_string = false;
    for (std::size_t i = 0; i < n; ++i) {
        const char c = s[i];
        if (in_string) {
            out += c;
            if (c == '\\') {
                out += s[++i];
            } else if (c == '"') {
                in_string = false;
            }
        } else if (c == '"') {
            in_string = true;
            out += c;
        } else if (c != ' ' && c != '\n') {
            out += c;
        }
    }
    return out;
}

// The Boost.JSON detour: bson_iter into a json::value, then json::serialize. Only the types
// the seed documents use; enough to measure what the detour costs.
json::value to_value(bson_iter_t& it);

json::object to_object(bson_iter_t& it) {
    json::object o;
    while (bson_iter_next(&it)) o.emplace(bson_iter_key(&it), to_value(it));
    return o;
}

json::value to_value(bson_iter_t& it) {
    switch (bson_iter_type(&it)) {
        case BSON_TYPE_DOUBLE:
            return bson_iter_double(&it);
        case BSON_TYPE_INT32:
            return bson_iter_int32(&it);
        case BSON_TYPE_INT64:
            return bson_iter_int64(&it);
        case BSON_TYPE_BOOL:
            return bson_iter_bool(&it);
        case BSON_TYPE_NULL:
            return nullptr;
        case BSON_TYPE_UTF8: {
            std::uint32_t n = 0;
            const char* s = bson_iter_utf8(&it, &n);
            return json::string(s, n);
        }
        case BSON_TYPE_OID: {
            char hex[25];
            bson_oid_to_string(bson_iter_oid(&it), hex);
            return json::object{{"$oid", hex}};
        }
        case BSON_TYPE_DOCUMENT: {
            bson_iter_t child;
            bson_iter_recurse(&it, &child);
            return to_object(child);
        }
        case BSON_TYPE_ARRAY: {
            bson_iter_t child;
            bson_iter_recurse(&it, &child);
            json::array a;
            while (bson_iter_next(&child)) a.push_back(to_value(child));
            return a;
        }
        default:
            throw std::runtime_error("type not handled by the Boost.JSON variant");
    }
}

std::string via_boost_json(const bson_t& doc) {
    bson_iter_t it;
    if (!bson_iter_init(&it, &doc)) throw std::runtime_error("corrupt BSON");
    return json::serialize(to_object(it));
}

struct timing {
    double wall_ns;  // steady_clock
    double cpu_ns;   // this thread's CPU time: less hurt when the machine is shared
};

double thread_cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Runs `op` n times per run, with n grown until a run takes `seconds`; best of 5 runs.
timing best_per_op(const std::function<std::size_t()>& op, double seconds) {
    using clock = std::chrono::steady_clock;
    volatile std::size_t sink = 0;
    auto run = [&](long n) {
        const double c0 = thread_cpu_seconds();
        const auto t0 = clock::now();
        for (long i = 0; i < n; ++i) sink = sink + op();
        const double wall = std::chrono::duration<double>(clock::now() - t0).count();
        return timing{wall, thread_cpu_seconds() - c0};
    };
    long n = 1;
    while (run(n).wall_ns < seconds) n *= 2;
    timing best{1e300, 1e300};
    for (int r = 0; r < 5; ++r) {
        const timing t = run(n);
        best.wall_ns = std::min(best.wall_ns, t.wall_ns / static_cast<double>(n) * 1e9);
        best.cpu_ns = std::min(best.cpu_ns, t.cpu_ns / static_cast<double>(n) * 1e9);
    }
    return best;
}

double load_average() {
    double load = -1;
    if (std::FILE* f = std::fopen("/proc/loadavg", "r")) {
        if (std::fscanf(f, "%lf", &load) != 1) load = -1;
        std::fclose(f);
    }
    return load;
}

}  // namespace

// N conversions of one seed document, as the server does them per request.
// Instructions per conversion = (Ir at N - Ir at 0) / N under cachegrind or callgrind.
int count_mode(const char* which, long n) {
    const std::string name = std::string(which) + "_doc.json";
    const std::string text = read_file(std::string(COROSERVE_SOURCE_DIR) + "/bench/data/" + name);
    bson_error_t err;
    bson_t* doc = bson_new_from_json(reinterpret_cast<const std::uint8_t*>(text.data()),
                                     static_cast<ssize_t>(text.size()), &err);
    if (doc == nullptr) {
        std::fprintf(stderr, "%s: %s\n", name.c_str(), err.message);
        return 1;
    }
    std::size_t total = 0;
    for (long i = 0; i < n; ++i) {
        // As src/mongo.cpp does per request: a fresh string reserved at 1.25 x the BSON size.
        std::string json;
        json.reserve(doc->len + doc->len / 4);
        coroserve::append_relaxed_json(json, *doc);
        total += json.size();
    }
    std::printf("%s: %ld conversions, %zu bytes\n", name.c_str(), n, total);
    bson_destroy(doc);
    return 0;
}

int main(int argc, char** argv) {
    if (argc == 4 && std::string(argv[1]) == "--count") {
        const std::string which = argv[2];
        if (which != "small" && which != "big") {
            std::fprintf(stderr, "--count wants small or big, not %s\n", argv[2]);
            return 2;
        }
        return count_mode(argv[2], std::atol(argv[3]));
    }
    const double seconds = argc > 1 ? std::atof(argv[1]) : 0.5;
    std::printf("best of 5 runs of >= %.2f s each; MB/s of BSON input; load average %.2f\n",
                seconds, load_average());
    bool all_ok = true;
    for (const char* name : {"small_doc.json", "big_doc.json"}) {
        const std::string text =
            read_file(std::string(COROSERVE_SOURCE_DIR) + "/bench/data/" + name);
        bson_error_t err;
        bson_t* doc = bson_new_from_json(reinterpret_cast<const std::uint8_t*>(text.data()),
                                         static_cast<ssize_t>(text.size()), &err);
        if (doc == nullptr) {
            std::fprintf(stderr, "%s: %s\n", name, err.message);
            return 1;
        }

        // Equivalence: each method's output parses (with libbson) back to the document.
        // Ours differs from libbson's in the digits of doubles (shortest against %.20g),
        // so bytes are only compared for information.
        std::size_t n = 0;
        char* lib = bson_as_relaxed_extended_json(doc, &n);
        const std::string lib_compact = strip_ws(lib, n);
        const std::size_t lib_bytes = n;
        bson_free(lib);
        const std::string ours = coroserve::to_relaxed_json(*doc);
        const std::string boosted = via_boost_json(*doc);
        auto round_trips = [&](const std::string& j) {
            bson_t* back = bson_new_from_json(reinterpret_cast<const std::uint8_t*>(j.data()),
                                              static_cast<ssize_t>(j.size()), &err);
            const bool ok = back != nullptr && bson_equal(back, doc);
            if (back != nullptr) bson_destroy(back);
            return ok;
        };
        const bool same = ours == lib_compact;
        const bool trips = round_trips(ours) && round_trips(lib_compact) && round_trips(boosted);
        all_ok = all_ok && trips;
        std::printf("%s: BSON %u bytes, compact JSON %zu bytes (libbson %zu, with spaces %zu)\n",
                    name, doc->len, ours.size(), lib_compact.size(), lib_bytes);
        std::printf(
            "  check: all outputs parse back to the document: %s; ours == libbson compacted: "
            "%s\n",
            trips ? "yes" : "NO", same ? "yes" : "no (doubles)");

        std::string buffer;
        struct method {
            const char* name;
            std::function<std::size_t()> op;
        };
        const method methods[] = {
            {"libbson bson_as_relaxed_extended_json + bson_free",
             [&] {
                 std::size_t len = 0;
                 char* s = bson_as_relaxed_extended_json(doc, &len);
                 bson_free(s);
                 return len;
             }},
            {"libbson + strip whitespace (compact, %.20g doubles)",
             [&] {
                 std::size_t len = 0;
                 char* s = bson_as_relaxed_extended_json(doc, &len);
                 const std::string compact = strip_ws(s, len);
                 bson_free(s);
                 return compact.size();
             }},
            {"coroserve append_relaxed_json, reused buffer",
             [&] {
                 buffer.clear();
                 coroserve::append_relaxed_json(buffer, *doc);
                 return buffer.size();
             }},
            {"coroserve to_relaxed_json, fresh string",
             [&] { return coroserve::to_relaxed_json(*doc).size(); }},
            {"Boost.JSON: bson_iter -> json::value -> serialize",
             [&] { return via_boost_json(*doc).size(); }},
        };
        std::printf("  %-52s %12s %12s %10s\n", "method", "ns/op wall", "ns/op cpu", "MB/s wall");
        for (const auto& m : methods) {
            const timing t = best_per_op(m.op, seconds);
            std::printf("  %-52s %12.1f %12.1f %10.1f\n", m.name, t.wall_ns, t.cpu_ns,
                        doc->len / t.wall_ns * 1e3);
        }
        bson_destroy(doc);
    }
    std::printf("load average at the end %.2f\n", load_average());
    return all_ok ? 0 : 1;
}
