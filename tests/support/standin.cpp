// standin: starts mongo-standin as a child process and speaks its stdin control protocol.
#include "standin.hpp"

#include <numeric>
#include <sstream>
#include <stdexcept>

namespace test_support {

standin::standin(std::vector<std::string> extra_args) : extra_args_(std::move(extra_args)) {
    launch(0);
}

standin::~standin() = default;

std::string standin::executable() {
    return STANDIN_EXE;
}
std::string standin::data_dir() {
    return COROSERVE_BENCH_DATA_DIR;
}

std::vector<std::string> standin::benchmark_seed_args() {
    const std::string dir = data_dir();
    return {"--seed", "articles.articles=" + dir + "/small_doc.json",
            "--seed", "articles.small=" + dir + "/small_doc.json",
            "--seed", "articles.big=" + dir + "/big_doc.json"};
}

void standin::launch(unsigned short port) {
    std::vector<std::string> argv = {executable(), "--port", std::to_string(port),
                                     "--control-stdin"};
    argv.insert(argv.end(), extra_args_.begin(), extra_args_.end());
    auto child = std::make_unique<child_process>(argv);
    std::string line = child->first_line(std::chrono::seconds(10));
    int got = 0;
    try {
        got = std::stoi(line);
    } catch (const std::exception&) {
        throw std::runtime_error("mongo-standin: expected a port on stdout, got '" + line + "'");
    }
    if (got <= 0 || got > 65535 || (port != 0 && got != port))
        throw std::runtime_error("mongo-standin: unexpected port line '" + line + "'");
    port_ = static_cast<unsigned short>(got);
    process_ = std::move(child);
}

std::string standin::uri() const {
    return "mongodb://127.0.0.1:" + std::to_string(port_);
}

std::string standin::control(std::string_view line) {
    if (!process_) throw std::runtime_error("standin: not running");
    process_->write_line(line);
    auto answer = process_->read_line(std::chrono::seconds(10));
    if (!answer) throw std::runtime_error("standin: no answer to '" + std::string(line) + "'");
    if (answer->rfind("ok", 0) != 0)
        throw std::runtime_error("standin: '" + std::string(line) + "' -> " + *answer);
    return *answer;
}

void standin::set_latency_ms(int ms) {
    control("latency " + std::to_string(ms));
}
void standin::refuse_connections(bool on) {
    control(on ? "refuse on" : "refuse off");
}
void standin::drop_connections() {
    control("drop");
}
void standin::fail_next(int n, int code, std::string_view message) {
    control("fail " + std::to_string(n) + " " + std::to_string(code) + " " + std::string(message));
}
std::string standin::state() {
    return control("state");
}

namespace {

// "3,0,12" -> {3, 0, 12}
std::vector<long long> number_list(const std::string& text) {
    std::vector<long long> out;
    std::size_t pos = 0;
    while (!text.empty()) {
        const auto comma = text.find(',', pos);
        out.push_back(std::stoll(text.substr(pos, comma - pos)));
        if (comma == std::string::npos) break;
        pos = comma + 1;
    }
    return out;
}

}  // namespace

long long standin::replset_status::total_finds() const {
    return std::accumulate(finds.begin(), finds.end(), 0LL);
}

standin::replset_status standin::replset() {
    // "ok latency=0 ... connections=3 primary=0 term=1 counter=0 finds=1,0,0 up=1,1,1
    // partitioned=0,0,0"
    const std::string answer = control("rs");
    replset_status st;
    bool is_set = false;
    std::istringstream in(answer);
    std::string word;
    while (in >> word) {
        const auto eq = word.find('=');
        if (eq == std::string::npos) continue;
        const std::string key = word.substr(0, eq), value = word.substr(eq + 1);
        if (key == "primary") {
            st.primary = std::stoi(value);
            is_set = true;
        } else if (key == "term") {
            st.term = std::stoll(value);
        } else if (key == "finds") {
            st.finds = number_list(value);
        } else if (key == "up" || key == "partitioned") {
            auto& flags = key == "up" ? st.up : st.partitioned;
            for (long long v : number_list(value)) flags.push_back(v != 0);
        }
    }
    if (!is_set) throw std::runtime_error("standin: 'rs' answered '" + answer + "'");
    return st;
}

void standin::stop() {
    if (!process_) return;
    process_->terminate();
    process_.reset();
}

void standin::start() {
    if (process_) return;
    // The port was ours a moment ago; the stand-in binds with SO_REUSEADDR, so TIME_WAIT
    // connections do not block it. Retry briefly in case the old socket lingers.
    for (int attempt = 0;; ++attempt) {
        try {
            launch(port_);
            return;
        } catch (const std::exception&) {
            if (attempt == 20) throw;
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
    }
}

void standin::start(std::vector<std::string> extra_args) {
    extra_args_ = std::move(extra_args);
    start();
}

}  // namespace test_support
