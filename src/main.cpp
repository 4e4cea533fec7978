// coroserve: wiring only. Reads the configuration, builds the parts, serves until a signal.
#include <coroserve/blocking_pool.hpp>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <vector>

#include "config.hpp"
#include "handlers.hpp"
#include "metrics.hpp"
#include "mongo.hpp"
#include "server.hpp"

int main(int argc, char** argv) {
    using namespace coroserve;
    auto parsed =
        parse_config(std::span<const char* const>{argv + 1, static_cast<std::size_t>(argc - 1)},
                     [](const char* name) -> std::optional<std::string> {
                         const char* v = std::getenv(name);
                         return v ? std::optional<std::string>{v} : std::nullopt;
                     });
    if (!parsed.cfg) {
        std::fprintf(parsed.help ? stdout : stderr, "%s%s",
                     parsed.help ? "" : "coroserve: ", parsed.message.c_str());
        if (!parsed.help) std::fputs("\n", stderr);
        return parsed.help ? 0 : 2;
    }
    const config& cfg = *parsed.cfg;

    try {
        database db{
            {cfg.mongodb_uri, cfg.database, cfg.workers, cfg.db_timeout, cfg.server_selection}};
        blocking_pool pool{cfg.workers,
                           cfg.resolved_queue(),
                           {cfg.resolved_admission_target(), cfg.admission_interval}};
        if (!db.wait_for_servers(cfg.server_selection))
            std::fputs("coroserve: no MongoDB server for our reads yet; serving anyway\n", stderr);
        metrics stats;
        handlers routes{cfg, pool, db, stats};
        server http{cfg, routes, stats};

        auto port = http.listen();
        std::printf("%u\n", port);  // the bound port, alone on stdout, for scripts and tests
        std::fflush(stdout);
        std::fprintf(
            stderr,
            "coroserve: listening on %s:%u; %u I/O threads (%s); %u pool workers, queue %zu; "
            "MongoDB %s, %s.%s\n",
            cfg.host.c_str(), port, cfg.resolved_io_threads(),
            cfg.reuse_port ? "reuseport" : "shared", cfg.workers, cfg.resolved_queue(),
            redact_uri(cfg.mongodb_uri).c_str(), cfg.database.c_str(), cfg.collection.c_str());

        http.run();
        pool.shutdown();  // before the I/O contexts go: running jobs complete into them
        std::fprintf(stderr, "coroserve: stopped\n");
    } catch (const std::exception& e) {
        std::fprintf(stderr, "coroserve: %s\n", e.what());
        return 1;
    }
    return 0;
}
